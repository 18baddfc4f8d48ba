"""LARS on the discrete outputs of a VAE: a learned acceptance function a(x) in pixel space.

Source: Bauer & Mnih (2019), Sec. 5.3 (AISTATS) / appendix D.7, Eq. (11)-(12) / (D.24)-(D.25),
Table D.6 (dynamic MNIST: 83.63 nats against 84.97 for the plain VAE, Z = 0.014).

The marginal likelihood pi(x) = int pi(x|z) p(z) dz of a VAE is the proposal; the model is its
truncated resampling (Eq. 4 with x in place of z):

  p_T(x) = pi(x) [(1 - alpha_T) a(x) / Z + alpha_T],  alpha_T = (1 - Z)^(T - 1),
  Z = E_pi[a(x)] ~ 1/S sum_s a(x_s),  x_s ~ pi(x|z_s), z_s ~ p(z)             (Eq. 12 / D.25).

Because the resampling factor depends on x only, every bound on log pi(x) becomes a bound on
log p_T(x) by adding log[(1 - alpha_T) a(x) / Z + alpha_T]: the ELBO of Eq. (11) / (D.24) and
the IWAE bound. `forward` adds the factor to `log_likelihood`, so the trainer, the evaluation
(IWAE NLL, ELBO; "reconstruction" then includes the factor) and the export need no special case.

Training uses Algorithm 1's EMA and straight-through estimate of Z from S decoded prior samples
per step. The samples x_s are binary draws, so the gradient of log Z with respect to the
encoder, decoder and prior (through x_s) cannot be reparameterised; as the paper does, it is
ignored (x_s carry no gradient), which amounts to a post-hoc fit of a(x) to the current decoder.
log Z still has its gradient with respect to a(x). For evaluation Z is estimated with many more
samples (`estimate_log_normalizer`; the paper: S = 10^11).
"""
import math

import gin
import tensorflow as tf

from tfp_priors import distributions
from tfp_priors import seeds
from tfp_priors.estimators import ema as ema_lib
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.models import latent_variable_model
from tfp_priors.models.vae import VAE
from tfp_priors.nets import MLP
from tfp_priors.samplers import rejection

DEFAULT_CPU_NORMALIZER_SAMPLES = 10**6
DEFAULT_GPU_NORMALIZER_SAMPLES = 10**9


class DecodedPrior:
  """The proposal of output resampling: joint draws (z, x), z ~ p(z), x ~ pi(x|z) (binary).

  Samples are [..., d + D] vectors [z, x], so the accepted draws of rejection sampling keep
  their latent. Only `sample`, `event_shape` and `dtype` are provided: pi(x) has no tractable
  density, and the samplers and the Z estimator need none.
  """

  def __init__(self, model, prior):
    self.model, self.prior = model, prior
    self.latent_size, self.data_size = model.latent_size, model.input_size
    self.event_shape = tf.TensorShape([self.latent_size + self.data_size])
    self.dtype = tf.float32

  def sample(self, sample_shape=(), seed=None):
    """[*sample_shape, d + D] joint draws; the x part is in {0, 1}."""
    shape = tf.reshape(tf.convert_to_tensor(sample_shape, tf.int32), [-1])
    n = tf.reduce_prod(shape)
    seed_z, seed_decode, seed_x = seeds.split_seed(
        seed if seed is not None else tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32),
        3)
    z = self.prior.sample(n, seed=seed_z)
    means = self.model.decode(z, seed=seed_decode)
    x = tf.cast(tf.random.stateless_uniform(tf.shape(means), seed_x) < means, tf.float32)
    return tf.reshape(tf.concat([z, x], -1), tf.concat([shape, self.event_shape], 0))


@gin.configurable
class ResampledOutputs(latent_variable_model.LatentVariableModel):
  """A VAE (or HVAE) whose marginal likelihood is LARS-resampled in pixel space (Sec. 5.3).

  The base model's marginal likelihood pi(x) is the proposal of a truncated resampling with a
  learned acceptance function a(x) in pixel space (Bauer & Mnih, Sec. 5.3 / appendix D.7;
  dynamic MNIST: 83.63 nats against 84.97 for the plain VAE, Table D.6). `forward` adds the
  resampling factor to the base model's log p(x|z), so the ELBO and the IWAE bound become
  bounds on log p_T(x) and the trainer, the evaluation and the export need no special case.
  a(x) = sigmoid(MLP[D - 300 - 300 - 1](x)), tanh, the size of the encoder (D.7). State (all
  checkpointed): the base model, the acceptance network, the EMA <Z> (`moving_average`, 0 until
  the first training step) and, once estimated, `evaluation_log_normalizer` (NaN until then).

  Call signature as every model: `forward(x [B, D], K, seed)` -> `common.Forward` with [K, B]
  fields; log densities in nats. log Z is NaN before the first training step or estimate (an
  untrained model has no Z, and NaN makes that visible in every bound). The gradient of log Z
  with respect to the encoder, decoder and prior (through the binary x_s) is ignored, as in
  the paper; log Z keeps its gradient with respect to a(x).

  Raises:
    ValueError: T < 1, S < 1 or epsilon outside (0, 1].

  #### Mathematical details

  The truncated resampling of Eq. 4 with x in place of z, and its bound (Eq. 11-12 /
  D.24-D.25):

  ```none
  p_T(x) = pi(x) [(1 - alpha_T) a(x) / Z + alpha_T],  alpha_T = (1 - Z)^(T - 1),
  log p_T(x) >= E_q(z|x)[log pi(x|z)] - KL(q(z|x) || p(z))
                + log[(1 - alpha_T) a(x) / Z + alpha_T],
  Z = E_pi[a(x)] ~ 1/S sum_s a(x_s),  x_s ~ pi(x|z_s),  z_s ~ p(z).
  ```

  Training estimates Z by Algorithm 1's EMA (Eq. A.20) from S decoded prior samples per
  step; evaluation uses many more (`estimate_log_normalizer`; the paper: S = 10^11).

  #### Examples

  ```python
  import functools
  from tfp_priors.models import VAE, ResampledOutputs
  from tfp_priors.priors import StandardNormalPrior

  model = ResampledOutputs(
      base_model_fn=functools.partial(VAE, input_size=16, latent_size=2, hidden_sizes=(8,)),
      hidden_sizes=(8,), num_proposal_samples=32)
  prior = StandardNormalPrior(latent_size=2)
  x = tf.cast(tf.random.stateless_uniform([4, 16], seed=[0, 1]) < 0.5, tf.float32)
  _, statistics = model.training_forward(x, prior, seed=[1, 2])
  forward = model.forward(x, 3, seed=[2, 3])
  images, z, acceptance_rate = model.sample_outputs(prior, 5, seed=[3, 4])
  assert forward.log_likelihood.shape == (3, 4) and np.all(np.isfinite(forward.log_likelihood))
  assert images.shape == (5, 16) and z.shape == (5, 2) and float(model.moving_average) > 0
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  def __init__(self, base_model_fn=VAE, hidden_sizes=(300, 300), truncation=100,
               num_proposal_samples=2**10, ema_epsilon=0.1, normalizer_samples=None,
               train_mean=None, input_size=None, name="resampled_outputs"):
    """Args:
      base_model_fn: model class of the proposal pi(x|z) p(z) (gin: `@VAE`), called with
        `train_mean=`; it must have a Bernoulli likelihood (binary x) and `decode`.
      hidden_sizes: hidden units of a(x) (the paper: those of the encoder, 300-300).
      truncation: T >= 1, or None for untruncated resampling (the paper: 100).
      num_proposal_samples: S decoded prior samples per training step for Z_S (Alg. 1).
      ema_epsilon: epsilon of Eq. (A.20).
      normalizer_samples: S of the evaluation estimate of Z (None: 10^9 on a GPU, 10^6 on a
        CPU; the paper: 10^11).
      train_mean: [D] mean training image, passed to the base model.
      input_size: D, passed to the base model (the trainer passes the data's); None: the base
        model's default.
      name: module name.

    Raises:
      ValueError: T < 1, S < 1 or epsilon outside (0, 1].
    """
    super().__init__(name=name)
    self.truncation = distributions.resampled.validate_truncation(truncation)
    if int(num_proposal_samples) < 1:
      raise ValueError(f"num_proposal_samples must be >= 1, got {num_proposal_samples}.")
    if not 0.0 < float(ema_epsilon) <= 1.0:
      raise ValueError(f"ema_epsilon must be in (0, 1], got {ema_epsilon}.")
    sizes = {} if input_size is None else {"input_size": input_size}
    self.base = base_model_fn(train_mean=train_mean, **sizes)
    self.input_size, self.latent_size = self.base.input_size, self.base.latent_size
    self.num_proposal_samples = int(num_proposal_samples)
    self.ema_epsilon = float(ema_epsilon)
    self.normalizer_samples = normalizer_samples
    self.acceptance_net = MLP(self.input_size, hidden_sizes, 1, activation="tanh",
                              name="acceptance")
    # MEAN: assignable from every replica under tf.distribute (see priors.LarsPrior).
    self.moving_average = tf.Variable(0.0, trainable=False,
                                      aggregation=tf.VariableAggregation.MEAN,
                                      name="ema_normalizer")
    self.evaluation_log_normalizer = tf.Variable(math.nan, trainable=False,
                                                 aggregation=tf.VariableAggregation.MEAN,
                                                 name="evaluation_log_normalizer")

  def log_acceptance(self, x):
    """log a(x): x [..., D] -> [...], nats, <= 0."""
    return tf.math.log_sigmoid(self.acceptance_net(x)[..., 0])

  def log_normalizer(self):
    """log Z in use: the evaluation estimate if present, else log <Z>; NaN before either
    exists (an untrained model has no Z, and NaN makes that visible in every bound)."""
    ev = self.evaluation_log_normalizer
    ema = tf.where(self.moving_average > 0, tf.math.log(self.moving_average), math.nan)
    return tf.where(tf.math.is_finite(ev), ev, ema)

  def log_resampling_factor(self, x, log_normalizer=None):
    """log p_T(x) - log pi(x) = log[(1 - alpha_T) a(x) / Z + alpha_T]: x [B, D] -> [B] nats."""
    if log_normalizer is None:
      log_normalizer = self.log_normalizer()
    return distributions.resampled.resampled_log_prob(
        0.0, self.log_acceptance(x), log_normalizer, self.truncation)

  def forward(self, x, num_samples=1, seed=None):
    """The base model's `Forward` with log p(x|z) replaced by log pi(x|z) + the resampling
    factor, so that ELBO and IWAE bound are bounds on log p_T(x) (Eq. 11)."""
    f = self.base.forward(x, num_samples, seed=seed)
    return f._replace(log_likelihood=f.log_likelihood + self.log_resampling_factor(x))

  def training_forward(self, x, prior, seed=None):
    """One-sample `Forward` for a training step, with Z from Algorithm 1 over S decoded prior
    samples; updates the EMA <Z>.

    Args:
      x: [B, D] binary training images. prior: the `Prior` of the top latent (z_s ~ p(z)).
      seed: stateless seed.

    Returns:
      (`Forward` with [1, B] fields, {'output_normalizer', 'output_batch_normalizer'}).
    """
    seed_model, seed_proposal = seeds.split_seed(seed)
    f = self.base.forward(x, 1, seed=seed_model)
    draws = DecodedPrior(self.base, prior).sample(self.num_proposal_samples, seed=seed_proposal)
    x_s = tf.stop_gradient(draws[:, self.latent_size:])
    log_a_s, log_a = tf.split(self.log_acceptance(tf.concat([x_s, x], 0)),
                              [self.num_proposal_samples, -1])
    estimate = ema_lib.ema_log_normalizer(log_a_s, None, None, self.moving_average,
                                          self.ema_epsilon)
    self.moving_average.assign(estimate.new_moving_average)
    self.evaluation_log_normalizer.assign(math.nan)  # stale once a(x) changes
    factor = distributions.resampled.resampled_log_prob(
        0.0, log_a, estimate.log_normalizer, self.truncation)
    stats = {"output_normalizer": estimate.new_moving_average,
             "output_batch_normalizer": estimate.batch_normalizer}
    return f._replace(log_likelihood=f.log_likelihood + factor), stats

  def estimate_log_normalizer(self, prior, num_samples=None, chunk_size=10**4, seed=0):
    """Estimates log Z = log E_pi[a(x)] with S decoded prior samples (Eq. 12 / D.25) and stores
    it for evaluation.

    Returns:
      `estimators.NormalizerEstimate` (float64 scalars).
    """
    if num_samples is None:
      num_samples = self.normalizer_samples or normalizer_lib.default_num_samples(
          DEFAULT_GPU_NORMALIZER_SAMPLES, DEFAULT_CPU_NORMALIZER_SAMPLES)
    estimate = normalizer_lib.estimate_log_normalizer(
        DecodedPrior(self.base, prior), self._joint_log_acceptance, num_samples, chunk_size,
        seed=seed)
    self.evaluation_log_normalizer.assign(tf.cast(estimate.log_normalizer, tf.float32))
    return estimate

  def _joint_log_acceptance(self, draws):
    return self.log_acceptance(draws[..., self.latent_size:])

  def sample_outputs(self, prior, num_samples, seed=None):
    """Exact samples of p_T(x) by truncated rejection sampling over (z, x) ~ p(z) pi(x|z).

    Returns:
      (images [N, D] in {0, 1}, their latents z [N, d], acceptance rate: a scalar estimate of
      Z from the coin flips made).
    """
    result = rejection.truncated_rejection_sample(
        DecodedPrior(self.base, prior), self._joint_log_acceptance, num_samples,
        truncation=self.truncation, seed=seed)
    z, images = tf.split(result.samples, [self.latent_size, self.input_size], axis=-1)
    return images, z, result.acceptance_rate

  def sample_images(self, prior, num_samples, seed=None, decode_seed=None, statistics=False):
    """Exact binary images of p_T(x) (`sample_outputs`; `decode_seed` is unused): (images
    [N, D] in {0, 1}, z [N, d], {'output_sampler_acceptance_rate'})."""
    del decode_seed, statistics
    images, z, rate = self.sample_outputs(prior, num_samples, seed=seed)
    return images, z, {"output_sampler_acceptance_rate": rate}

  def finalize_outputs(self, prior, normalizer_samples=None, seed=0, log_fn=None):
    """Estimates log Z for evaluation and the exact sampler's acceptance rate (1,000 images).

    Returns:
      dict for metrics.json: output_log_normalizer (nats), output_normalizer, their standard
      errors, output_normalizer_samples, output_sampler_acceptance_rate.
    """
    estimate = self.estimate_log_normalizer(prior, normalizer_samples, seed=seed)
    results = {f"output_{k}": v for k, v in normalizer_lib.as_metrics(estimate).items()}
    results["output_sampler_acceptance_rate"] = float(
        self.sample_outputs(prior, 1000, seed=[seed, 2])[2])
    if log_fn:
      log_fn(f"output log Z = {results['output_log_normalizer']:.4f} +- "
             f"{results['output_log_normalizer_standard_error']:.1e} "
             f"(Z = {results['output_normalizer']:.4g}, "
             f"S = {results['output_normalizer_samples']:.1e})")
    return results

  # The rest of the model interface is the base model's.
  def encode_top(self, x):
    """q(z_top|x) of the base model."""
    return self.base.encode_top(x)

  def posterior_mean(self, x):
    """E_q[z_top|x]: [B, D] -> [B, d]."""
    return self.base.posterior_mean(x)

  def decode(self, z_top, seed=None):
    """Pixel probabilities of pi(x|z): [N, d] -> [N, D] (the proposal's, before resampling)."""
    return self.base.decode(z_top, seed=seed)
