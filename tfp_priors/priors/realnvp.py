"""RealNVP prior of the LARS paper: a stack of TFP affine couplings with permutations.

Source: Bauer & Mnih (2019), appendix C.2 ("RealNVP"): TFP's reference RealNVP, a stack of 4
RealNVPs whose shift-and-log-scale network has two hidden layers of 100 units (ReLU, as TFP's
`real_nvp_default_template`), reordering permutations in between since each coupling only
transforms half of the variables. Couplings of Dinh et al. (2017).
"""
import gin
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import seeds
from tfp_priors.priors import interface
from tfp_priors.priors import flow

tfb = tfp.bijectors


def swap_halves_permutation(size, num_masked, rng):
  """A random permutation that moves the transformed part of a coupling to the front.

  With y[..., i] = x[..., perm[i]], the first `num_masked` entries of y (which the next
  coupling conditions on) all come from the last size - num_masked entries of x (the ones
  this coupling transformed), in random order; so every dimension is transformed by every
  other coupling, whatever the random draw (for d = 2 this is the swap [1, 0]).

  Returns:
    int array [size].
  """
  return np.concatenate([rng.permutation(np.arange(num_masked, size)),
                         rng.permutation(np.arange(num_masked))])


class BoundedLogScale(tf.Module):
  """A coupling network whose log_scale is soft-clipped to (-bound, bound).

  net(x) = (shift, s) -> (shift, bound * tanh(s / bound)): the identity to first order near
  s = 0 (a flow started near the identity starts where it did), |log_scale| < bound everywhere.
  The bounded, tanh-rescaled log-scale of the RealNVP authors (Dinh et al. 2017; their code:
  log_scale = scale * tanh(s)) with a fixed scale, so that no input, however far outside the
  data, makes exp(log_scale) overflow.
  """

  def __init__(self, net, bound, name=None):
    super().__init__(name=name)
    self.net = net
    self.bound = float(bound)

  def __call__(self, x, output_units=None, **condition_kwargs):
    shift, log_scale = self.net(x, output_units, **condition_kwargs)
    return shift, soft_clip(log_scale, self.bound)


def soft_clip(log_scale, bound):
  """bound * tanh(log_scale / bound), or log_scale itself where bound is None."""
  return log_scale if bound is None else bound * tf.math.tanh(log_scale / bound)


@gin.configurable
@interface.register("realnvp")
class RealNVPPrior(flow.FlowPrior):
  """RealNVP flow prior of the LARS paper (Bauer & Mnih, appendix C.2), registered as 'realnvp'.

  A `FlowPrior`: w ~ N(0, I_d), z = (C_K o P_{K-1} o ... o P_1 o C_1)(w), with C_k
  `tfb.RealNVP` affine couplings and P_k reordering permutations (`swap_halves_permutation`,
  so that every dimension is transformed by every other coupling). Both directions are
  single-pass: sampling and log_prob cost the same. log_scale is unconstrained, as in TFP's
  reference template, unless `log_scale_bound` B is set (then B tanh(log_scale / B)). LARS's
  defaults: K = 4 couplings, shift-and-log-scale MLPs with two hidden layers of 100 ReLU units.
  log_prob: z [..., d] -> [...] nats; sample(n) -> [n, d].

  State (checkpointed): the coupling networks `nets` and the permutations (non-trainable int32
  variables in `permutations`, so a checkpoint carries them whatever the constructor seed).

  Raises:
    ValueError: latent_size < 2, num_couplings < 1 or log_scale_bound <= 0.

  #### Mathematical details

  C_k keeps the first m = d // 2 entries and maps the rest (Dinh et al. 2017, affine coupling):

  ```none
  y_{1:m} = x_{1:m},
  y_{m+1:d} = x_{m+1:d} * exp(log_scale(x_{1:m})) + shift(x_{1:m}),
  log |det dy/dx| = sum_i log_scale_i(x_{1:m}),
  ```

  with (shift, log_scale) = MLP(kept half); p(z) follows by the change of variables of
  `FlowPrior`.

  #### Examples

  ```python
  from tfp_priors.priors import RealNVPPrior

  prior = RealNVPPrior(latent_size=2, num_couplings=2, hidden_sizes=(8,), seed=0)
  z = prior.sample(5, seed=[0, 1])
  log_p = prior.distribution().log_prob(z)
  assert z.shape == (5, 2) and log_p.shape == (5,)
  assert np.all(np.isfinite(log_p))
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428

  [2]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       In _International Conference on Learning Representations (ICLR)_, 2017.
       https://arxiv.org/abs/1605.08803
  """

  def __init__(self, latent_size, num_couplings=4, hidden_sizes=(100, 100), activation="relu",
               output_scale=1e-2, seed=0, log_scale_bound=None, name="realnvp_prior"):
    """Args:
      latent_size: d >= 2.
      num_couplings: K >= 1 couplings (LARS: 4).
      hidden_sizes: hidden units of each shift-and-log-scale MLP (LARS: (100, 100)).
      activation: hidden nonlinearity (TFP's template: relu).
      output_scale: factor on the Glorot-initialised output kernels (flow starts near identity).
      seed: integer seed of the permutations and weight initialisation.
      log_scale_bound: None (unconstrained log_scale, TFP's template) or B > 0: each
        coupling's log_scale is B * tanh(log_scale / B), so that its scale stays in
        (exp(-B), exp(B)) also far outside the data. Needed where the flow is sampled during
        training, e.g. as LARS's proposal: the reparameterised samples z_s of Z_S = 1/S sum
        a(z_s) come from base noise w in the tails, where an unconstrained log_scale (a ReLU
        MLP, linear in its input) makes x * exp(log_scale) overflow to inf.
      name: module name.

    Raises:
      ValueError: latent_size < 2, num_couplings < 1 or log_scale_bound <= 0.
    """
    super().__init__(latent_size, name=name)
    flow.check_coupling_latent_size(latent_size)
    if log_scale_bound is not None and not float(log_scale_bound) > 0.0:
      raise ValueError(f"log_scale_bound must be None or > 0, got {log_scale_bound}.")
    if int(num_couplings) < 1:
      raise ValueError(f"num_couplings must be >= 1, got {num_couplings}.")
    d, num_masked = self.latent_size, self.latent_size // 2
    self.num_masked = num_masked
    self.log_scale_bound = None if log_scale_bound is None else float(log_scale_bound)
    rng = np.random.default_rng(seeds.derive_seed(seed, 0))
    self.nets, self.couplings, self.permutations = [], [], []
    steps = []  # in the w -> z order
    for k in range(int(num_couplings)):
      if k > 0:
        self.permutations.append(flow.permute(swap_halves_permutation(d, num_masked, rng),
                                              name=f"permute_{k}"))
        steps.append(self.permutations[-1])
      self.nets.append(flow.CouplingNet(num_masked, d - num_masked, hidden_sizes, activation,
                                        output_scale, seed=seeds.derive_seed(seed, 1, k),
                                        name=f"shift_and_log_scale_{k}"))
      self.couplings.append(tfb.RealNVP(num_masked=num_masked,
                                        shift_and_log_scale_fn=(
                                            self.nets[-1] if log_scale_bound is None else
                                            BoundedLogScale(self.nets[-1], log_scale_bound,
                                                            name=f"bounded_log_scale_{k}")),
                                        name=f"real_nvp_{k}"))
      steps.append(self.couplings[-1])
    self.bijector = tfb.Chain(list(reversed(steps)), name="realnvp_flow")

  def flow_to_base(self, z):
    """z -> w through C_K^{-1}, P_{K-1}^{-1}, ..., C_1^{-1}, each network run once.

    Args:
      z: [N, d] latents.

    Returns:
      (w [N, d], log |det dw/dz| [N] nats).
    """
    m = self.num_masked

    def coupling_inverse(k, h):
      shift, log_scale = self.nets[k](h[:, :m])
      h1, log_det = flow.affine_inverse(h[:, m:], shift,
                                        soft_clip(log_scale, self.log_scale_bound))
      return tf.concat([h[:, :m], h1], axis=-1), log_det
    return flow.inverse_through_blocks(z, len(self.couplings), coupling_inverse,
                                       self.permutations)
