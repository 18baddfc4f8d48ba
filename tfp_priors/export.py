"""SavedModel export: `sample`, `log_prob`, `encode`, `decode` and `log_likelihood` signatures,
plus those the prior adds (`Prior.export_signatures`: `sample_langevin` of energy-based priors).

The export is self-contained: `tf.saved_model.load(path)` in a process that never imports
tfp_priors can sample (exact LARS rejection sampling is traced into the graph), score z, encode
and decode, and estimate log p(x) of images.
"""
import tensorflow as tf

from tfp_priors.data import files


# Samples per draw of the `sample` signature, and images per IWAE pass of `log_likelihood`
# (memory K * IWAE_CHUNK * D floats; metrics.DEFAULT_IWAE_BATCH_SIZE).
SAMPLE_CHUNK = 10000
IWAE_CHUNK = 20

_SEED = tf.TensorSpec([], tf.int32, name="seed")


class _Exported(tf.Module):

  def __init__(self, model, prior, image_shape):
    super().__init__()
    self.model = model
    self.prior = prior
    latent_size, input_size = prior.latent_size, model.input_size
    self.image_shape = list(image_shape)
    images = tf.TensorSpec([None, input_size], tf.float32, name="x")
    latents = tf.TensorSpec([None, latent_size], tf.float32, name="z")

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"), _SEED])
    def sample(num_samples, seed):
      # The draw depends on the check, so that its error comes first (not a division by 0).
      with tf.control_dependencies([tf.debugging.assert_positive(
          num_samples, message="num_samples must be a positive number of samples")]):
        num_samples = tf.identity(num_samples)
      return self._sample(num_samples, seed)

    log_prob_name = "log_prob_lower_bound" if prior.log_prob_is_lower_bound else "log_prob"

    @tf.function(input_signature=[latents])
    def log_prob(z):
      return {log_prob_name: self.prior.distribution().log_prob(z)}

    @tf.function(input_signature=[images])
    def encode(x):
      with tf.control_dependencies(_image_checks(x)):
        x = tf.identity(x)
      return self._encode(x)

    @tf.function(input_signature=[latents, _SEED])
    def decode(z, seed):
      return self._decode(z, tf.stack([seed, 2]))

    @tf.function(input_signature=[images, tf.TensorSpec([], tf.int32,
                                                        name="num_importance_samples"), _SEED])
    def log_likelihood(x, num_importance_samples, seed):
      checks = _image_checks(x) + [tf.debugging.assert_positive(
          num_importance_samples, message="num_importance_samples must be >= 1")]
      with tf.control_dependencies(checks):
        x = tf.identity(x)
      return {"log_likelihood": self._log_likelihood(x, num_importance_samples, seed)}

    self._signature_fns = {"sample": sample, "log_prob": log_prob, "encode": encode,
                           "decode": decode, "log_likelihood": log_likelihood}
    for name, fn in self._signature_fns.items():
      setattr(self, name, fn)
    for name, fn in prior.export_signatures(self._decode).items():
      setattr(self, name, fn)
      self._signature_fns[name] = fn

  def _decode(self, z, seed):
    images = self.prior.decode(self.model, z, seed=seed)
    return {"images": tf.reshape(images, [-1] + self.image_shape), "latents": z}

  def _sample(self, num_samples, seed):
    """Exact samples in chunks of SAMPLE_CHUNK (chunk 0 with the seeds of one draw of all)."""
    chunks = (num_samples + SAMPLE_CHUNK - 1) // SAMPLE_CHUNK
    images = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)
    latents = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)
    for i in tf.range(chunks):
      size = tf.minimum(SAMPLE_CHUNK, num_samples - i * SAMPLE_CHUNK)
      chunk_seed = tf.where(i == 0, seed, tf.cast(tf.random.experimental.stateless_fold_in(
          tf.stack([seed, 1]), tf.cast(i, tf.int64))[0], tf.int32))
      seed_prior, seed_decoder = tf.unstack(
          tf.random.experimental.stateless_split(tf.stack([chunk_seed, 0]), 2))
      x, z, _ = self.model.sample_images(self.prior, size, seed=seed_prior,
                                         decode_seed=seed_decoder)
      images = images.write(i, tf.reshape(x, [-1] + self.image_shape))
      latents = latents.write(i, z)
    return {"images": images.concat(), "latents": latents.concat()}

  def _encode(self, x):
    """q(z_top|x)'s mean and scale [N, d]; for a model with a lower group (the HVAE) also
    q(z1|x, z_top = its mean)'s, as lower_mean / lower_scale."""
    posterior = self.model.encode_top(x)
    out = {"mean": posterior.mean(), "scale": posterior.stddev()}
    if self.model.has_lower_latent_group:
      lower = self.model.posterior_lower(x, posterior.mean())
      out.update(lower_mean=lower.mean(), lower_scale=lower.stddev())
    return out

  def _log_likelihood(self, x, num_importance_samples, seed):
    """IWAE_K(x) [N] nats (Burda et al. 2016), IWAE_CHUNK images at a time."""
    n = tf.shape(x)[0]
    chunks = (n + IWAE_CHUNK - 1) // IWAE_CHUNK
    bounds = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)
    for i in tf.range(chunks):
      batch = x[i * IWAE_CHUNK:(i + 1) * IWAE_CHUNK]
      chunk_seed = tf.cast(tf.random.experimental.stateless_fold_in(
          tf.stack([seed, 3]), tf.cast(i, tf.int64)), tf.int32)
      f = self.model.forward(batch, num_importance_samples, seed=chunk_seed)
      log_w = (f.log_likelihood - f.log_posterior_top - f.log_posterior_rest
               + self.prior.latent_log_prob(f))
      bounds = bounds.write(i, tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(
          tf.cast(num_importance_samples, tf.float32)))
    return bounds.concat()


def _image_checks(x):
  """Assertions that the images x [N, D] are in [0, 1] (binary or grey values)."""
  return [tf.debugging.assert_greater_equal(x, 0.0, message="images must lie in [0, 1]"),
          tf.debugging.assert_less_equal(x, 1.0, message="images must lie in [0, 1]")]


def export(model, prior, export_dir, image_shape=(28, 28, 1)):
  """Writes a SavedModel of `model` and `prior` to `export_dir`.

  Signatures (images x are flat, [N, D] float32 in [0, 1]; z are top latents [N, d]):
    sample(num_samples: int32 > 0, seed: int32) -> {'images': [N, 28, 28, 1] Bernoulli means
      in [0, 1], 'latents': [N, d] exact samples of the prior}, drawn SAMPLE_CHUNK at a time
      (one draw for N <= SAMPLE_CHUNK); for a model with resampled outputs
      (`ResampledOutputs`), 'images' are exact binary samples of p_T(x) and 'latents' the z
      they were decoded from (`LatentVariableModel.sample_images`).
    log_prob(z) -> {'log_prob': [N] nats}; for a prior whose density has no closed form
      (`Prior.log_prob_is_lower_bound`: SNIS) {'log_prob_lower_bound': [N] nats}, a fresh
      draw of the bound's proposals per call.
    encode(x) -> {'mean', 'scale': [N, d]} of q(z_top|x); for the HVAE also 'lower_mean',
      'lower_scale' of q(z1|x, z2 = the mean).
    decode(z, seed: int32) -> {'images': [N, 28, 28, 1] Bernoulli means (the HVAE draws z1 ~
      p(z1|z2) with the seed), 'latents': z}.
    log_likelihood(x, num_importance_samples: int32 K >= 1, seed: int32) ->
      {'log_likelihood': [N]}: the IWAE estimate of log p(x) in nats per image (Burda et al.
      2016), IWAE_CHUNK images per pass; the test NLL of metrics.json is minus its mean
      over the test set (other seeds).
    sample_langevin(num_samples, seed, step_size: float32 > 0, num_steps: int32 >= 0), for
      energy-based priors (NCP, implicit): Langevin dynamics on E(z) = -log r(z) - log b(z)
      from base samples (Aneja et al. Sec. 4.3); same outputs as `sample`. `sample` of those
      priors is SIR with the prior's M proposals (implicit prior: its aggregate posterior).
  A non-positive num_samples or K, or images outside [0, 1], raise InvalidArgumentError at
  call time, naming the problem.

  The SavedModel is written beside export_dir and then takes its place
  (`data.files.atomic_directory`): a reader, or a run killed while exporting, sees the old
  export or the new one, never half of one.

  Returns:
    export_dir.
  """
  module = _Exported(model, prior, image_shape)
  with files.atomic_directory(export_dir) as staging:  # a killed export leaves the old one
    tf.saved_model.save(module, staging, signatures=module._signature_fns)
  return export_dir
