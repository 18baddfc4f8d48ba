"""SavedModel export: `sample(num_samples, seed)` and `log_prob(z)` signatures, plus those the
prior adds (`Prior.export_signatures`: `sample_langevin` of energy-based priors).

The export is self-contained: `tf.saved_model.load(path)` in a process that never imports
tfp_priors can sample (exact LARS rejection sampling is traced into the graph) and score z.
"""
import tensorflow as tf

from tfp_priors.data import files


class _Exported(tf.Module):

  def __init__(self, model, prior, image_shape):
    super().__init__()
    self.model = model
    self.prior = prior
    latent_size = prior.latent_size
    self.image_shape = list(image_shape)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"),
                                  tf.TensorSpec([], tf.int32, name="seed")])
    def sample(num_samples, seed):
      # The draw depends on the check, so that its error comes first (not a division by 0).
      with tf.control_dependencies([tf.debugging.assert_positive(
          num_samples, message="num_samples must be a positive number of samples")]):
        num_samples = tf.identity(num_samples)
      seed_prior, seed_decoder = tf.unstack(
          tf.random.experimental.stateless_split(tf.stack([seed, 0]), 2))
      images, z, _ = self.model.sample_images(self.prior, num_samples, seed=seed_prior,
                                              decode_seed=seed_decoder)
      return {"images": tf.reshape(images, [-1] + self.image_shape), "latents": z}

    @tf.function(input_signature=[tf.TensorSpec([None, latent_size], tf.float32, name="z")])
    def log_prob(z):
      return {"log_prob": self.prior.distribution().log_prob(z)}

    self.sample = sample
    self.log_prob = log_prob
    self._signature_fns = {"sample": sample, "log_prob": log_prob}
    for name, fn in prior.export_signatures(self._decode).items():
      setattr(self, name, fn)
      self._signature_fns[name] = fn

  def _decode(self, z, seed):
    images = self.prior.decode(self.model, z, seed=seed)
    return {"images": tf.reshape(images, [-1] + self.image_shape), "latents": z}


def export(model, prior, export_dir, image_shape=(28, 28, 1)):
  """Writes a SavedModel of `model` and `prior` to `export_dir`.

  Signatures:
    sample(num_samples: int32 scalar > 0, seed: int32 scalar) -> {'images': [N, 28, 28, 1]
      Bernoulli means in [0, 1], 'latents': [N, d] exact samples of the prior}; for a model
      with resampled outputs (`ResampledOutputs`), 'images' are exact binary samples of
      p_T(x) and 'latents' the z they were decoded from (`LatentVariableModel.sample_images`).
    log_prob(z: [N, d] float32) -> {'log_prob': [N] nats}.
    sample_langevin(num_samples, seed, step_size: float32 > 0, num_steps: int32 >= 0), for
      energy-based priors (NCP, implicit): Langevin dynamics on E(z) = -log r(z) - log b(z)
      from base samples (Aneja et al. Sec. 4.3); same outputs as `sample`. `sample` of those
      priors is SIR with the prior's M proposals (implicit prior: its aggregate posterior).
  A non-positive num_samples raises InvalidArgumentError at call time.

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
