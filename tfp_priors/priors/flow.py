"""Flow priors: p(z) is a standard Normal pushed through a learned bijection w -> z.

p(z) = N(w; 0, I) |det dw/dz| with w = g^{-1}(z) (change of variables, Dinh et al. 2017). The
subclasses (`RealNVPPrior`, `XuRealNVPPrior`, `MAFPrior`) only build the bijector g; this
module holds what they share: the base class, the coupling network and its seeded
initialiser (seeds from `tfp_priors.seeds.derive_seed`).

Direction convention: `FlowPrior.bijector` maps base noise w to latents z (its `forward` is
used by `sample`, its `inverse` by `log_prob`).

Bijector caching: TFP caches bijector results keyed on the input tensor, not on the variables'
values (see `tfp_priors.bijectors.caching`); `FlowPrior.distribution()` drops the cached results
of its bijectors, so each call reflects the current variables. A distribution object kept across
variable updates does not: call `distribution()` again after a training step or a restore.

Fast log-density: `FlowPrior.log_prob` (used by `latent_log_prob`, hence the ELBO and the IWAE
evaluation, and by `training_log_prob`) computes w = g^{-1}(z) and log |det dw/dz| in one pass
over z reshaped to [N, d], with the subclass's `flow_to_base`. TFP's `TransformedDistribution`
runs each coupling network twice (once for the inverse, once for the log-determinant),
multiplies each sample by the LU matrix with a batched matrix-vector product, and keeps every
result in its cache; the fused pass uses plain TF ops on the bijectors' variables (one [N, d]
x [d, d] product per dense step, log-determinants of z-independent steps once per call), never
touches the cache, and gives the same density (tests/test_flow_evaluation.py).
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_priors import seeds
from tfp_priors.bijectors import caching
from tfp_priors.nets import MLP
from tfp_priors.priors import interface

tfb = tfp.bijectors
tfd = tfp.distributions


def permute(permutation, name="permute"):
  """`tfb.Permute` (y[..., i] = x[..., permutation[i]]) holding the permutation in a
  non-trainable int32 tf.Variable, so that checkpoints carry it whatever the constructor seed."""
  permutation = np.asarray(permutation, dtype=np.int32)
  return tfb.Permute(tf.Variable(permutation, trainable=False, name=f"{name}_permutation"),
                     name=name)


def glorot_uniform_sequence(seed):
  """A kernel initializer whose i-th call draws Glorot-uniform values from seed (seed, i).

  Unlike one seeded `GlorotUniform`, which repeats itself on every call of the same shape,
  successive layers get different values; the whole sequence is reproducible.
  """
  calls = [0]

  def initializer(shape, dtype=None, **kwargs):
    del kwargs
    init = tf_keras.initializers.GlorotUniform(seed=seeds.derive_seed(seed, calls[0]))
    calls[0] += 1
    return init(shape, dtype=dtype or tf.float32)

  return initializer


class CouplingNet(tf.Module):
  """MLP[input_size - hidden_sizes - 2 * output_size] whose output is split in two halves.

  Used as the conditioner of affine coupling layers: the two halves are (shift, log_scale)
  for TFP's RealNVP template convention, or (s, t) for Xu et al.'s sigmoid coupling. Kernels
  are Glorot-uniform from `seed`; the output kernel is scaled by `output_scale` so that the
  coupling starts near the identity while every weight still gets a nonzero gradient (a zero
  output kernel would block the gradient to all hidden layers at step one). `output_bias`
  (initial bias of a, initial bias of b) sets the starting point of the two halves.

  Call: x [..., input_size] -> (a [..., output_size], b [..., output_size]).
  """

  def __init__(self, input_size, output_size, hidden_sizes, activation, output_scale=1e-2,
               output_bias=(0.0, 0.0), seed=0, name=None):
    super().__init__(name=name)
    self.output_size = int(output_size)
    self.mlp = MLP(input_size, hidden_sizes, 2 * self.output_size, activation=activation,
                   name="mlp")
    init = glorot_uniform_sequence(seed)
    layers = self.mlp.net.layers
    for i, layer in enumerate(layers):
      scale = output_scale if i == len(layers) - 1 else 1.0
      layer.kernel.assign(init(layer.kernel.shape, dtype=layer.kernel.dtype) * scale)
    layers[-1].bias.assign(tf.repeat(tf.constant(output_bias, tf.float32), self.output_size))

  def __call__(self, x, output_units=None, **condition_kwargs):
    """Signature of TFP's `shift_and_log_scale_fn` (x0, output_units) -> (a, b).

    Raises:
      ValueError: output_units given and != output_size; conditioning arguments given.
    """
    if condition_kwargs:
      raise ValueError(f"CouplingNet takes no conditioning inputs, got {sorted(condition_kwargs)}.")
    if output_units is not None and int(output_units) != self.output_size:
      raise ValueError(f"coupling expects {output_units} outputs, net has {self.output_size}.")
    a, b = tf.split(self.mlp(x), 2, axis=-1)
    return a, b


class FlowPrior(interface.Prior):
  """Base class of the flow priors: N(0, I_d) pushed through a learned bijector w -> z.

  `distribution()` is `tfd.TransformedDistribution(N(0, I_d), bijector)` with event shape
  [latent_size]; log_prob(z) [..., d] -> [...] nats. Subclasses (`RealNVPPrior`,
  `XuRealNVPPrior`, `MAFPrior`) set `self.bijector` (a `tfb.Bijector` on [..., d], owning its
  variables as tf.Variables) in their constructor; its `forward` maps base noise w to latents
  z (used by `sample`), its `inverse` z to w (used by `log_prob`). `distribution()` drops the
  bijectors' cached results first, so each call reflects the current variables (see the
  module docstring). `log_prob(z)` is the same density in one fused pass (`flow_to_base`, which
  a subclass may implement; else `distribution()` is used); `latent_log_prob` and
  `training_log_prob` use it.

  Raises:
    NotImplementedError: `distribution()` of a subclass that did not set `bijector`.

  #### Mathematical details

  With z = g(w), w ~ N(0, I_d) and g the bijector (change of variables, Dinh et al. 2017;
  Xu et al. Eq. 4 with f = g^{-1}):

  ```none
  log p(z) = log N(g^{-1}(z); 0, I) + log |det d g^{-1}(z) / dz|.
  ```

  #### Examples

  ```python
  from tfp_priors.priors import FlowPrior

  class ShiftFlowPrior(FlowPrior):

    def __init__(self, latent_size):
      super().__init__(latent_size, name="shift_flow_prior")
      self.shift = tf.Variable(tf.fill([latent_size], 2.0))
      self.bijector = tfp.bijectors.Shift(self.shift)

  prior = ShiftFlowPrior(latent_size=2)
  log_p = prior.distribution().log_prob(tf.fill([4, 2], 2.0))
  np.testing.assert_allclose(log_p, np.full(4, -np.log(2 * np.pi)), rtol=1e-6)
  assert prior.sample(3, seed=[0, 1]).shape == (3, 2) and len(prior.trainable_variables) == 1
  ```

  #### References

  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       In _International Conference on Learning Representations (ICLR)_, 2017.
       https://arxiv.org/abs/1605.08803

  [2]: Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian Zhao, Dan Pei. On the
       Necessity and Effectiveness of Learning the Prior of Variational Auto-Encoder.
       _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
  """

  bijector = None

  def distribution(self):
    """`tfd.TransformedDistribution` with event shape [latent_size].

    Raises:
      NotImplementedError: a subclass did not set `bijector`.
    """
    if self.bijector is None:
      raise NotImplementedError(f"{type(self).__name__} must set self.bijector (w -> z).")
    caching.clear_caches(caching.tree(self.bijector))
    return tfd.TransformedDistribution(
        tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_size])), self.bijector)

  def flow_to_base(self, z):
    """w = g^{-1}(z) and log |det dw/dz| in one pass; None where a subclass has no fused pass.

    Args:
      z: [N, d] float32 latents.

    Returns:
      (w [N, d], log_det [N] or a scalar, nats), or None (then `log_prob` uses
      `distribution()`).
    """
    del z
    return None

  def log_prob(self, z):
    """log p(z) = log N(w; 0, I) + log |det dw/dz|, w = g^{-1}(z), in one fused pass.

    The density of `distribution().log_prob` (equal to float32 round-off), computed by
    `flow_to_base` without TFP's bijector calls and cache (module docstring).

    Args:
      z: [..., d] latents.

    Returns:
      [...] log densities in nats.
    """
    z = tf.convert_to_tensor(z, dtype=tf.float32)
    fused = self.flow_to_base(tf.reshape(z, [-1, self.latent_size]))
    if fused is None:
      return self.distribution().log_prob(z)
    w, log_det = fused
    return tf.reshape(standard_normal_log_prob(w) + log_det, tf.shape(z)[:-1])

  def latent_log_prob(self, forward):
    """`Prior.latent_log_prob` with the fused `log_prob`: [K, B] nats."""
    return self.log_prob(forward.z_top) + forward.log_prior_rest

  def training_log_prob(self, z, log_posterior, seed=None):
    """`Prior.training_log_prob` with the fused `log_prob`: ([R] nats, {})."""
    del log_posterior, seed
    return self.log_prob(z), {}


def standard_normal_log_prob(w):
  """log N(w; 0, I_d) = -(d log(2 pi) + |w|^2) / 2 nats: [N, d] -> [N]."""
  d = tf.cast(tf.shape(w)[-1], w.dtype)
  return -0.5 * (d * np.log(2.0 * np.pi) + tf.reduce_sum(tf.square(w), axis=-1))


def permute_inverse(permute_bijector, y):
  """`tfb.Permute(perm).inverse(y)` without the bijector call: x[..., perm[i]] = y[..., i]."""
  return tf.gather(y, tf.math.invert_permutation(permute_bijector.permutation), axis=-1)


def inverse_through_blocks(z, num_blocks, block_inverse, permutations):
  """z -> w through B_K^{-1}, P_{K-1}^{-1}, ..., P_1^{-1}, B_1^{-1} of a flow
  B_K o P_{K-1} o ... o P_1 o B_1 (w -> z), and the summed log-determinants.

  Args:
    z: [N, d] latents.
    num_blocks: K.
    block_inverse: callable (k, h [N, d]) -> (B_{k+1}^{-1}(h) [N, d], log |det| [N] nats),
      k = 0 for the block next to w.
    permutations: the K - 1 `tfb.Permute` between the blocks, in the w -> z order.

  Returns:
    (w [N, d], log |det dw/dz| [N] nats).
  """
  h, log_det = z, 0.0
  for k in reversed(range(num_blocks)):
    h, block_log_det = block_inverse(k, h)
    log_det += block_log_det
    if k > 0:
      h = permute_inverse(permutations[k - 1], h)
  return h, log_det


def affine_inverse(y, shift, log_scale):
  """Inverse of y = x exp(log_scale) + shift and its log-determinant.

  Args:
    y, shift, log_scale: [N, k].

  Returns:
    (x = (y - shift) exp(-log_scale) [N, k], log |det dx/dy| = -sum log_scale [N] nats).
  """
  return (y - shift) * tf.exp(-log_scale), -tf.reduce_sum(log_scale, axis=-1)


def check_coupling_latent_size(latent_size):
  """Coupling layers split z in two non-empty halves.

  Raises:
    ValueError: latent_size < 2.
  """
  if int(latent_size) < 2:
    raise ValueError(f"coupling flows need latent_size >= 2 (one half conditions the other), "
                     f"got {latent_size}.")
