"""Evaluation-time Monte Carlo estimate of Z = E_pi[a(z)] with its standard error.

Source: Bauer & Mnih (2019), appendix A.4, Eq. (A.17): S = 10^10 proposal samples in chunks of
10^5, antithetic pairs (z, -z) for proposals symmetric about the origin.
"""
import collections
import math
import time

import tensorflow as tf

from tfp_priors import progress
from tfp_priors import seeds

NormalizerEstimate = collections.namedtuple(
    "NormalizerEstimate",
    ["log_normalizer", "normalizer", "standard_error", "log_normalizer_standard_error",
     "num_samples"])

DEFAULT_GPU_SAMPLES = 10**10
DEFAULT_CPU_SAMPLES = 10**7
# Speed settings of the loop, measured by `python -m benchmarks.log_normalizer_throughput`
# (README, Benchmarks): on CPU XLA is ~6x slower (its random normals are slow) and chunks of
# 16k-1M samples or float32 chunk sums change the rate by less than the noise.
DEFAULT_CHUNK_SIZE = 10**5
DEFAULT_JIT_COMPILE = False
DEFAULT_CHUNK_DTYPE = tf.float64
PROGRESS_LINES = 10  # progress lines of an estimate given a log_fn


def default_num_samples(gpu_samples=DEFAULT_GPU_SAMPLES, cpu_samples=DEFAULT_CPU_SAMPLES):
  """S = `gpu_samples` when a GPU is visible, else `cpu_samples` to keep CPU runs short
  (defaults: 10^10, the paper's choice, and 10^7)."""
  return gpu_samples if tf.config.list_physical_devices("GPU") else cpu_samples


def _chunk_moments(log_a, log_a_pair, dtype):
  """Sums of a and a^2 over one chunk, as float64 scalars.

  Args:
    log_a: [n] log a(z) of the chunk's draws. log_a_pair: [n] log a(-z) of their antithetic
      twins (each unit is then the pair mean (a(z) + a(-z)) / 2), or None.
    dtype: tf.float64 evaluates exp and the sums in float64 (the squares of density
      ratios r(z) of NCP, which may exceed 1 by far, overflow float32 unshifted); tf.float32
      evaluates them in float32 after shifting by the chunk's largest log a, m, so that
      exp(log a - m) <= 1 cannot overflow; the factors exp(m), exp(2 m) are applied in
      float64.

  Returns:
    (sum of units, sum of squared units), float64 scalars.
  """
  logs = [log_a] if log_a_pair is None else [log_a, log_a_pair]
  if dtype == tf.float64:
    shift = tf.constant(0.0, tf.float64)
    logs = [tf.cast(log_a, tf.float64) for log_a in logs]
  else:
    logs = [tf.cast(log_a, dtype) for log_a in logs]
    shift = tf.reduce_max([tf.reduce_max(log_a) for log_a in logs])
    shift = tf.where(tf.math.is_finite(shift), shift, tf.zeros_like(shift))
    logs = [log_a - shift for log_a in logs]
    shift = tf.cast(shift, tf.float64)
  units = tf.add_n([tf.exp(log_a) for log_a in logs]) / float(len(logs))
  total = tf.cast(tf.reduce_sum(units), tf.float64) * tf.exp(shift)
  total_sq = tf.cast(tf.reduce_sum(tf.square(units)), tf.float64) * tf.exp(2.0 * shift)
  return total, total_sq


def estimate_log_normalizer(proposal, log_acceptance_fn, num_samples=None,
                            chunk_size=DEFAULT_CHUNK_SIZE, antithetic=False, seed=None,
                            jit_compile=DEFAULT_JIT_COMPILE, chunk_dtype=DEFAULT_CHUNK_DTYPE,
                            log_fn=None):
  """Streams S proposal samples through a(z) and returns Z, log Z and standard errors.

  The sums across chunks are accumulated in float64, so S = 10^10 loses no precision; memory
  is O(chunk_size). With `antithetic=True` each chunk holds chunk_size / 2 pairs (z, -z);
  the pair means are the i.i.d. units of the standard error. Valid only for proposals
  symmetric about 0 (N(0, I)).

  Args:
    proposal: `tfd.Distribution` pi with event shape [d], or a callable (n, seed) -> n
      samples of pi in any structure `log_acceptance_fn` takes (e.g. ancestral draws
      (z2, z1) of a hierarchical prior; not with `antithetic`).
    log_acceptance_fn: callable, z [..., d] -> log a(z) [...]; any log weight works (NCP:
      log r(z), Z = E_b[r(z)]).
    num_samples: total S (rounded up to whole chunks); None picks `default_num_samples()`.
    chunk_size: samples evaluated per step (10^5 in the paper); even when antithetic.
    antithetic: whether to use antithetic pairs.
    seed: stateless seed (shape [2]), int (the same estimate on every call) or None.
    jit_compile: compile the loop with XLA.
    chunk_dtype: tf.float32 or tf.float64, the dtype of exp(log a) and of the sums within
      a chunk (see `_chunk_moments`); the sums across chunks are float64 either way.
    log_fn: None, or callable(str) receiving PROGRESS_LINES lines with the rate and the ETA
      (the chunks then run in that many calls; the estimate is the same to the bit).

  Returns:
    `NormalizerEstimate` of float64 scalars: log_normalizer (nats), normalizer Z, standard_error
    of Z, log_normalizer_standard_error (delta method, SE / Z), and num_samples actually used.

  Raises:
    ValueError: if num_samples or chunk_size < 1, chunk_size is odd with antithetic=True, a
      callable proposal with antithetic=True, or chunk_dtype is not float32 / float64.
  """
  if num_samples is None:
    num_samples = default_num_samples()
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f"num_samples and chunk_size must be >= 1, got {num_samples}, {chunk_size}.")
  if antithetic and chunk_size % 2:
    raise ValueError(f"chunk_size must be even for antithetic pairs, got {chunk_size}.")
  sample = proposal if callable(proposal) else (lambda n, s: proposal.sample(n, seed=s))
  if antithetic and callable(proposal):
    raise ValueError("antithetic pairs (z, -z) need a tfd.Distribution proposal symmetric "
                     "about 0, not a sampling function; set antithetic=False.")
  chunk_dtype = tf.as_dtype(chunk_dtype)
  if chunk_dtype not in (tf.float32, tf.float64):
    raise ValueError(f"chunk_dtype must be float32 or float64, got {chunk_dtype.name}.")
  chunk_size = int(min(chunk_size, num_samples))
  chunk_size += chunk_size % 2 if antithetic else 0
  num_chunks = int(math.ceil(num_samples / chunk_size))
  draws = chunk_size // 2 if antithetic else chunk_size
  seed = seeds.stateless_seed(seed)  # an int is a fixed seed, not a stateful draw

  @tf.function(autograph=False, jit_compile=jit_compile)
  def run(start, stop, total, total_sq):
    """Chunks start..stop-1, continuing the running sums (the same sums in blocks or not)."""
    def body(i, total, total_sq):
      chunk_seed = tf.cast(tf.random.experimental.stateless_fold_in(seed, i), tf.int32)
      z = sample(draws, chunk_seed)
      log_a_pair = log_acceptance_fn(-z) if antithetic else None
      chunk_total, chunk_total_sq = _chunk_moments(log_acceptance_fn(z), log_a_pair,
                                                   chunk_dtype)
      return i + 1, total + chunk_total, total_sq + chunk_total_sq

    _, total, total_sq = tf.while_loop(lambda i, *_: i < stop, body, (start, total, total_sq))
    return total, total_sq

  total = total_sq = tf.constant(0.0, tf.float64)
  # With log_fn, ten blocks with a progress line after each; without, one call.
  block = -(-num_chunks // PROGRESS_LINES) if log_fn else num_chunks
  start_time = time.time()
  for start in range(0, num_chunks, block):
    stop = min(start + block, num_chunks)
    total, total_sq = run(tf.constant(start, tf.int64), tf.constant(stop, tf.int64), total,
                          total_sq)
    if log_fn:
      elapsed = time.time() - start_time
      log_fn(f"log Z: {stop * chunk_size:.2g} of {num_chunks * chunk_size:.2g} proposal "
             f"samples, {stop * chunk_size / max(elapsed, 1e-9):.2g} a(z)/s, ETA "
             f"{progress.eta(stop, num_chunks, elapsed)}")
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
