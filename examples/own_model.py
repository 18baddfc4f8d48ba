r"""Your own Keras encoder and decoder with a LARS prior, trained in a custom loop.

  python examples/own_model.py --steps=2000

The prior is the only part of the library used in the model: `build_prior` makes it, and
`prior.training_log_prob(z, log q(z|x))` gives log p(z) during training (for LARS with
Algorithm 1's estimate of Z and its moving average); after training,
`prior.refresh_log_normalizer` estimates Z and `prior.distribution()` is the trained p(z).
"""
import sys

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_priors.data import pipelines
from tfp_priors.priors import build_prior

tfd = tfp.distributions


def train(steps=2000, latent_size=8, data_dir=None, print_fn=print):
  """Trains the VAE below with a LARS prior; returns the test ELBO (nats per image)."""
  data = pipelines.make_datasets(batch_size=64, data_dir=data_dir, allow_download=False)
  encoder = tf_keras.Sequential([tf_keras.layers.Dense(256, "relu"),
                                 tf_keras.layers.Dense(2 * latent_size)])
  decoder = tf_keras.Sequential([tf_keras.layers.Dense(256, "relu"),
                                 tf_keras.layers.Dense(data.event_size)])
  encoder.build([None, data.event_size])
  decoder.build([None, latent_size])
  prior = build_prior(latent_size, name="lars")
  variables = (encoder.trainable_variables + decoder.trainable_variables
               + list(prior.trainable_variables))
  optimizer = tf_keras.optimizers.Adam(1e-3)

  def elbo(x, seed, log_prior):
    loc, scale = tf.split(encoder(x), 2, axis=-1)
    q = tfd.MultivariateNormalDiag(loc, tf.nn.softplus(scale) + 1e-4)
    z = q.sample(seed=seed)
    likelihood = tfd.Independent(tfd.Bernoulli(logits=decoder(z)), 1)
    return likelihood.log_prob(x) + log_prior(z, q.log_prob(z)) - q.log_prob(z)

  @tf.function
  def step(x, seed):
    def log_prior(z, log_q):  # Algorithm 1: Z from this batch and S proposal samples
      return prior.training_log_prob(z, log_q, seed=seed + 1)[0]

    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(elbo(x, seed, log_prior))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  for i, x in enumerate(data.train.take(steps)):
    loss = step(x, tf.constant([0, i]))
    if (i + 1) % max(steps // 5, 1) == 0:
      print_fn(f"step {i + 1}: -ELBO {float(loss):.2f} nats")
  prior.refresh_log_normalizer(num_samples=10**5, seed=0)  # Z of the trained a(z)
  test = [elbo(x, tf.constant([1, i]), lambda z, _: prior.distribution().log_prob(z))
          for i, x in enumerate(data.test)]
  result = float(tf.reduce_mean(tf.concat(test, 0)))
  print_fn(f"test ELBO {result:.2f} nats, Z = {float(tf.exp(prior.log_normalizer())):.3f}")
  return result


if __name__ == "__main__":
  steps = [int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--steps=")]
  train(steps[0] if steps else 2000)
