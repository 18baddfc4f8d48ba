"""What every latent variable model returns, so objectives and evaluation need no special cases.

The learned prior always models the top latent z_top (z for the VAE, z2 for the HVAE, LARS
Sec. 4); the rest of the hierarchy is part of the model.
"""
import collections

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import replicas

tfd = tfp.distributions

# All fields have shape [K, B] (K importance samples, B examples) except z_top [K, B, d] and
# z_rest [K, B, d_rest].
Forward = collections.namedtuple("Forward", [
    "z_top",               # samples of the top latent from q
    "log_posterior_top",   # log q(z_top | x), nats
    "log_likelihood",      # log p(x | z), nats
    "log_posterior_rest",  # log q(lower latents | x, z_top), nats (0 for one latent layer)
    "log_prior_rest",      # log p(lower latents | z_top), nats (0 for one latent layer)
    "z_rest",              # samples of the lower latents (HVAE: z1), None for one latent layer
], defaults=(None,))


def diagonal_normal(params):
  """Splits [..., 2d] into mean and log std and returns the diagonal Normal (event [d])."""
  loc, log_scale = tf.split(params, 2, axis=-1)
  return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(log_scale))


def bernoulli_log_likelihood(logits, x):
  """log Bernoulli(x; sigmoid(logits)) summed over pixels: logits [K, B, D], x [B, D] -> [K, B]."""
  return -tf.reduce_sum(
      tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.broadcast_to(x, tf.shape(logits)),
                                              logits=logits), axis=-1)


def gaussian_log_likelihood(mean_and_log_variance, x):
  """log N(x; mean, diag(exp(log_variance))) summed over pixels, in nats.

  Args:
    mean_and_log_variance: [K, B, 2D], the mean [..., :D] and the log variance [..., D:] of
      each pixel (the decoder output of a Gaussian-likelihood VAE, Takahashi et al. 2019,
      Sec. 5.2).
    x: [B, D] continuous data.

  Returns:
    [K, B]: sum_i -0.5 * (log(2 pi) + log_variance_i + (x_i - mean_i)^2 / variance_i).
  """
  mean, log_variance = tf.split(mean_and_log_variance, 2, axis=-1)
  return -0.5 * tf.reduce_sum(
      np.log(2.0 * np.pi) + log_variance + tf.square(x - mean) * tf.exp(-log_variance),
      axis=-1)


def single_latent_forward(encoder_output, logits_fn, x, num_samples, seed,
                          log_likelihood_fn=bernoulli_log_likelihood):
  """`Forward` of a one-latent-layer VAE with q(z|x) = N(mean, std).

  Args:
    encoder_output: [B, 2d] mean and log std.
    logits_fn: z [K, B, d] -> decoder output [K, B, ...]: Bernoulli logits [K, B, D] for the
      default likelihood, whatever `log_likelihood_fn` takes otherwise.
    x: [B, D]. num_samples: K. seed: stateless seed or None.
    log_likelihood_fn: (decoder output, x) -> log p(x|z) [K, B] in nats:
      `bernoulli_log_likelihood` (default) or `gaussian_log_likelihood`.
  """
  posterior = diagonal_normal(encoder_output)
  z = replicas.sample_diagonal_normal(posterior, seed, num_samples)
  zeros = tf.zeros(tf.shape(z)[:-1])
  return Forward(z, posterior.log_prob(z), log_likelihood_fn(logits_fn(z), x), zeros, zeros)


def output_bias(train_mean):
  """Decoder output-bias initialiser: logit of the mean training image (or zeros if None)."""
  if train_mean is None:
    return "zeros"
  p = np.clip(np.asarray(train_mean, np.float32).reshape(-1), 1e-3, 1 - 1e-3)
  return tf.constant_initializer(np.log(p) - np.log1p(-p))


def check_input(x, input_size):
  """Raises ValueError unless x is [B, input_size]."""
  if x.shape.rank != 2 or (x.shape[-1] is not None and x.shape[-1] != input_size):
    raise ValueError(f"the model expects flat images of shape [batch, {input_size}]; got "
                     f"{x.shape}.")
