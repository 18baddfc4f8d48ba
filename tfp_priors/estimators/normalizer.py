"""Evaluation-time Monte Carlo estimate of Z = E_pi[a(z)] with its standard error.

Source: Bauer & Mnih (2019), appendix A.4, Eq. (A.17): S = 10^10 proposal samples in chunks of
10^5, antithetic pairs (z, -z) for proposals symmetric about the origin.
"""
import collections
import math

import tensorflow as tf
import tensorflow_probability as tfp

NormalizerEstimate = collections.namedtuple(
    "NormalizerEstimate",
    ["log_normalizer", "normalizer", "standard_error", "log_normalizer_standard_error",
     "num_samples"])

DEFAULT_GPU_SAMPLES = 10**10
DEFAULT_CPU_SAMPLES = 10**7


def default_num_samples(gpu_samples=DEFAULT_GPU_SAMPLES, cpu_samples=DEFAULT_CPU_SAMPLES):
  """S = `gpu_samples` when a GPU is visible, else `cpu_samples` to keep CPU runs short
  (defaults: 10^10, the paper's choice, and 10^7)."""
  return gpu_samples if tf.config.list_physical_devices("GPU") else cpu_samples


def estimate_log_normalizer(proposal, log_acceptance_fn, num_samples=None, chunk_size=10**5,
                            antithetic=False, seed=None):
  """Streams S proposal samples through a(z) and returns Z, log Z and standard errors.

  Sums are accumulated in float64, so S = 10^10 loses no precision; memory is O(chunk_size).
  With `antithetic=True` each chunk holds chunk_size / 2 pairs (z, -z); the pair means are the
  i.i.d. units of the standard error. Valid only for proposals symmetric about 0 (N(0, I)).

  Args:
    proposal: `tfd.Distribution` pi with event shape [d].
    log_acceptance_fn: callable, z [..., d] -> log a(z) [...]; any log weight works (NCP:
      log r(z), Z = E_b[r(z)]).
    num_samples: total S (rounded up to whole chunks); None picks `default_num_samples()`.
    chunk_size: samples evaluated per step (10^5 in the paper); even when antithetic.
    antithetic: whether to use antithetic pairs.
    seed: stateless seed (shape [2]), int or None.

  Returns:
    `NormalizerEstimate` of float64 scalars: log_normalizer (nats), normalizer Z, standard_error
    of Z, log_normalizer_standard_error (delta method, SE / Z), and num_samples actually used.

  Raises:
    ValueError: if num_samples or chunk_size < 1, or chunk_size is odd with antithetic=True.
  """
  if num_samples is None:
    num_samples = default_num_samples()
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f"num_samples and chunk_size must be >= 1, got {num_samples}, {chunk_size}.")
  if antithetic and chunk_size % 2:
    raise ValueError(f"chunk_size must be even for antithetic pairs, got {chunk_size}.")
  chunk_size = int(min(chunk_size, num_samples))
  chunk_size += chunk_size % 2 if antithetic else 0
  num_chunks = int(math.ceil(num_samples / chunk_size))
  draws = chunk_size // 2 if antithetic else chunk_size
  seed = tfp.random.sanitize_seed(seed)

  @tf.function(autograph=False)
  def run():
    def body(i, total, total_sq):
      chunk_seed = tf.cast(tf.random.experimental.stateless_fold_in(seed, i), tf.int32)
      z = proposal.sample(draws, seed=chunk_seed)
      # exp in float64: density ratios r(z) (NCP) may exceed 1 by far and their squares
      # overflow float32.
      a = tf.exp(tf.cast(log_acceptance_fn(z), tf.float64))
      if antithetic:
        a = 0.5 * (a + tf.exp(tf.cast(log_acceptance_fn(-z), tf.float64)))
      return i + 1, total + tf.reduce_sum(a), total_sq + tf.reduce_sum(tf.square(a))

    zero = tf.constant(0.0, tf.float64)
    _, total, total_sq = tf.while_loop(
        lambda i, *_: i < num_chunks, body, (tf.constant(0, tf.int64), zero, zero))
    return total, total_sq

  total, total_sq = run()
  units = tf.constant(float(num_chunks * draws), tf.float64)
  mean = total / units
  variance = tf.maximum(total_sq / units - tf.square(mean), 0.0) * units / tf.maximum(units - 1, 1)
  standard_error = tf.sqrt(variance / units)
  return NormalizerEstimate(
      log_normalizer=tf.math.log(mean), normalizer=mean, standard_error=standard_error,
      log_normalizer_standard_error=standard_error / mean,
      num_samples=num_chunks * chunk_size if antithetic else num_chunks * draws)


def as_metrics(estimate):
  """A `NormalizerEstimate` as a dict of Python floats for metrics.json."""
  return {"log_normalizer": float(estimate.log_normalizer),
          "normalizer": float(estimate.normalizer),
          "normalizer_standard_error": float(estimate.standard_error),
          "log_normalizer_standard_error": float(estimate.log_normalizer_standard_error),
          "normalizer_samples": int(estimate.num_samples)}
