"""Real NVP prior of Xu et al. (2019): K Glow-style blocks with sigmoid-scaled couplings.

Source: Xu, Chen, Lai, Li, Zhao, Pei (2019), "On the Necessity and Effectiveness of Learning the
Prior of Variational Auto-Encoder", appendix B.2 ("Real NVP"), flow depth K = 20 (Table 1):

  f(z) = z -> f_1 -> ... -> f_K = w,   f_k = InvertibleDense -> CouplingLayer -> ActNorm,
  CouplingLayer(u) = Concat[u_l, u_r * sigmoid(s(h(u_l))) + t(h(u_l))],
  h = Dense[256] (leaky ReLU; slope 0.2, TF's default), s, t linear, u_l = u[:floor(d/2)],
  u_r the rest.

p(z) = N(f(z); 0, I) |det df/dz|. InvertibleDense and ActNorm are Glow's (Kingma & Dhariwal
2018); ActNorm is initialised from data (`initialize`).

Registry name 'xu_realnvp' (its former name 'rnvp' is still accepted by `build_prior`); not
LARS C.2's RealNVP, which is 'realnvp' (`RealNVPPrior`).
"""
import gin
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import bijectors
from tfp_priors import seeds
from tfp_priors.priors import interface
from tfp_priors.priors import flow

tfb = tfp.bijectors


class SigmoidAffine(tf.Module):
  """Xu et al.'s coupling transform of u_r given u_l, as a RealNVP `bijector_fn`.

  (s, t) = net(u_l); returns the bijector u_r -> u_r * sigmoid(s) + t, with
  log scale = log_sigmoid(s) (stable for large |s|), so the scale is in (0, 1).
  """

  def __init__(self, net, name=None):
    super().__init__(name=name)
    self.net = net

  def __call__(self, u_l, output_units, **condition_kwargs):
    s, t = self.net(u_l, output_units, **condition_kwargs)
    return tfb.Shift(t)(tfb.Scale(log_scale=tf.math.log_sigmoid(s)))


@gin.configurable
@interface.register("xu_realnvp", aliases=("rnvp",))
class XuRealNVPPrior(flow.FlowPrior):
  """Real NVP prior of Xu et al. (2019, appendix B.2), registered as 'xu_realnvp'.

  A `FlowPrior`, p(z) = N(f(z); 0, I) |det df/dz|, with f: z -> w the K Glow-style blocks of
  Xu et al. (B.2; K = 20, Table 1). `bijector` = tfb.Invert(f) maps w -> z; `encoder_flow` = f
  maps z -> w. log_prob(z) runs f forward (single pass); sampling runs f's inverse (single
  pass: LU solves and coupling inverses). `blocks` lists (InvertibleDense, coupling, ActNorm)
  per block, in the z -> w order; `coupling_nets` the networks (s, t)(u_l) of the couplings.
  log_prob: z [..., d] -> [...] nats; sample(n) -> [n, d]. The former registry name 'rnvp' is
  still accepted by `build_prior`.

  State (checkpointed): each block's LU factors and permutation, coupling networks and ActNorm
  variables (`bias`, `log_scale`, `initialized`). `initialize(z)` sets the ActNorms from
  posterior samples (data-dependent initialisation, Kingma & Dhariwal 2018); the trainer calls
  it once before the first step of a fresh run.

  Raises:
    ValueError: latent_size < 2 or flow_depth < 1.

  #### Mathematical details

  Xu et al. Eq. 4 (the prior) and appendix B.2 (the blocks):

  ```none
  p(z) = N(f(z); 0, I) |det df(z)/dz|,
  f(z) = z -> f_1 -> ... -> f_K = w,  f_k = InvertibleDense -> CouplingLayer -> ActNorm,
  CouplingLayer(u) = Concat[u_l, u_r * sigmoid(s(h(u_l))) + t(h(u_l))],
  ```

  h = Dense[256] (leaky ReLU), s, t linear, u_l = u[:floor(d/2)] and u_r the rest. Joint
  training maximises the ELBO with this prior, Xu et al. Eq. 5.

  #### Examples

  ```python
  from tfp_priors.priors import XuRealNVPPrior

  prior = XuRealNVPPrior(latent_size=4, flow_depth=2, hidden_size=8, seed=0)
  prior.initialize(tf.random.stateless_normal([64, 4], seed=[0, 1]) * 3.0 + 1.0)
  z = prior.sample(5, seed=[1, 2])
  log_p = prior.distribution().log_prob(z)
  assert z.shape == (5, 4) and log_p.shape == (5,)
  assert all(bool(act_norm.initialized) for _, _, act_norm in prior.blocks)
  ```

  #### References

  [1]: Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian Zhao, Dan Pei. On the
       Necessity and Effectiveness of Learning the Prior of Variational Auto-Encoder.
       _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452

  [2]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
       Convolutions. In _Advances in Neural Information Processing Systems (NeurIPS)_, 2018.
       https://arxiv.org/abs/1807.03039

  [3]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       In _International Conference on Learning Representations (ICLR)_, 2017.
       https://arxiv.org/abs/1605.08803
  """

  def __init__(self, latent_size, flow_depth=20, hidden_size=256, scale_bias_init=2.0,
               output_scale=1e-2, seed=0, name="rnvp_prior"):
    """Args:
      latent_size: d >= 2.
      flow_depth: K >= 1 blocks (Xu et al.: 20).
      hidden_size: units of the leaky-ReLU layer h of each coupling (Xu et al.: 256).
      scale_bias_init: initial bias of the linear layer s, so the coupling scale starts near
        sigmoid(2) = 0.88 (the paper leaves the initialisation open; 2 is the constant
        `sigmoid_scale_bias` of the authors' code, tfsnippet's CouplingLayer).
      output_scale: factor on the Glorot-initialised (s, t) kernels, so the couplings start
        near u_r -> sigmoid(scale_bias_init) u_r (t ~ 0).
      seed: integer seed of the initial rotations and coupling weights.
      name: module name.

    Raises:
      ValueError: latent_size < 2 or flow_depth < 1.
    """
    super().__init__(latent_size, name=name)
    flow.check_coupling_latent_size(latent_size)
    if int(flow_depth) < 1:
      raise ValueError(f"flow_depth K must be an integer >= 1 (Xu et al. use K = 20), "
                       f"got {flow_depth}.")
    d, num_masked = self.latent_size, self.latent_size // 2
    self.flow_depth = int(flow_depth)
    self.blocks, self.coupling_nets = [], []
    for k in range(self.flow_depth):
      dense = bijectors.invertible_dense(d, seed=seeds.derive_seed(seed, 0, k),
                                         name=f"invertible_dense_{k}")
      net = flow.CouplingNet(num_masked, d - num_masked, (hidden_size,), tf.nn.leaky_relu,
                             output_scale, output_bias=(scale_bias_init, 0.0),
                             seed=seeds.derive_seed(seed, 1, k),
                             name=f"coupling_net_{k}")
      self.coupling_nets.append(net)
      coupling = tfb.RealNVP(num_masked=num_masked,
                             bijector_fn=SigmoidAffine(net, name=f"sigmoid_affine_{k}"),
                             name=f"coupling_{k}")
      self.blocks.append((dense, coupling, bijectors.ActNorm(d, name=f"act_norm_{k}")))
    steps = [b for block in self.blocks for b in block]  # z -> w order
    self.encoder_flow = tfb.Chain(list(reversed(steps)), name="rnvp_f")
    self.bijector = tfb.Invert(self.encoder_flow, name="rnvp_prior_flow")

  def flow_to_base(self, z):
    """w = f(z) through the K blocks, each coupling network run once.

    Each InvertibleDense step is one [N, d] x [d, d] product, with the preceding block's
    ActNorm folded into it ((x + b) e W^T = x diag(e) W^T + (b e) W^T); the log-determinants
    of both do not depend on z and are summed once per call.

    Args:
      z: [N, d] latents.

    Returns:
      (w [N, d], log |det dw/dz| [N] nats).
    """
    h, constant, softplus_terms = z, 0.0, []
    m, act_norm = self.latent_size // 2, None
    for (dense, _, next_act_norm), net in zip(self.blocks, self.coupling_nets):
      matrix, dense_log_det = bijectors.matrix_and_log_det(dense)
      h = _dense_after_act_norm(h, matrix, act_norm)
      s, t = net(h[:, :m])
      # Xu's coupling u_r * sigmoid(s) + t (`SigmoidAffine`); log sigmoid(s) = -softplus(-s).
      softplus_terms.append(tf.nn.softplus(-s))
      h = tf.concat([h[:, :m], h[:, m:] * tf.math.sigmoid(s) + t], axis=-1)
      act_norm = next_act_norm
      constant += dense_log_det + tf.reduce_sum(act_norm.log_scale)
    h = (h + act_norm.bias) * tf.exp(act_norm.log_scale)
    return h, constant - tf.reduce_sum(tf.add_n(softplus_terms), axis=-1)

  def initialize(self, z):
    """Data-dependent ActNorm init: runs z through the blocks in the z -> w order and sets
    each not yet initialised ActNorm so that its outputs have zero mean and unit variance.

    Args:
      z: [N, d] posterior samples (N of a few hundred or more).
    """
    h = tf.convert_to_tensor(z, dtype=tf.float32)
    for dense, coupling, act_norm in self.blocks:
      h = act_norm.initialize(coupling.forward(dense.forward(h)), overwrite=False)


def _dense_after_act_norm(x, matrix, act_norm):
  """W (ActNorm(x)) for rows x [N, d]: x W^T, or x diag(e) W^T + (b e) W^T after an ActNorm
  with bias b and scale e = exp(log_scale) (None: no ActNorm)."""
  if act_norm is None:
    return tf.matmul(x, matrix, transpose_b=True)
  scale = tf.exp(act_norm.log_scale)
  kernel = scale[:, tf.newaxis] * tf.transpose(matrix)
  return tf.nn.bias_add(tf.matmul(x, kernel), tf.linalg.matvec(matrix, act_norm.bias * scale))
