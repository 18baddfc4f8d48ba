"""SavedModel export: `sample(num_samples, seed)` and `log_prob(z)` signatures.

The export is self-contained: `tf.saved_model.load(path)` in a process that never imports
tfp_priors can sample (exact LARS rejection sampling is traced into the graph) and score z.
"""
import tensorflow as tf


class _Exported(tf.Module):

  def __init__(self, model, prior, image_shape):
    super().__init__()
    self.model = model
    self.prior = prior
    latent_size = prior.latent_size
    image_shape = list(image_shape)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"),
                                  tf.TensorSpec([], tf.int32, name="seed")])
    def sample(num_samples, seed):
      tf.debugging.assert_positive(
          num_samples, message="num_samples must be a positive number of samples")
      seed_prior, seed_decoder = tf.unstack(
          tf.random.experimental.stateless_split(tf.stack([seed, 0]), 2))
      z = self.prior.distribution().sample(num_samples, seed=seed_prior)
      images = self.model.decode(z, seed=seed_decoder)
      return {"images": tf.reshape(images, [-1] + image_shape), "latents": z}

    @tf.function(input_signature=[tf.TensorSpec([None, latent_size], tf.float32, name="z")])
    def log_prob(z):
      return {"log_prob": self.prior.distribution().log_prob(z)}

    self.sample = sample
    self.log_prob = log_prob


def export(model, prior, export_dir, image_shape=(28, 28, 1)):
  """Writes a SavedModel of `model` and `prior` to `export_dir`.

  Signatures:
    sample(num_samples: int32 scalar > 0, seed: int32 scalar) -> {'images': [N, 28, 28, 1]
      Bernoulli means in [0, 1], 'latents': [N, d] exact samples of the prior}.
    log_prob(z: [N, d] float32) -> {'log_prob': [N] nats}.
  A non-positive num_samples raises InvalidArgumentError at call time.

  Returns:
    export_dir.
  """
  module = _Exported(model, prior, image_shape)
  tf.saved_model.save(module, export_dir, signatures={
      "sample": module.sample, "log_prob": module.log_prob})
  return export_dir
