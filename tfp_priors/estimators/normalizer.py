"""Evaluation-time Monte Carlo estimate of Z = E_pi[a(z)] with its standard error.

Source: Bauer & Mnih (2019), appendix A.4, Eq. (A.17): S = 10^10 proposal samples in chunks of
10^5, antithetic pairs (z, -z) for proposals symmetric about the origin.
"""
import collections
import math
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import progress
from tfp_priors import seeds

tfd = tfp.distributions

NormalizerEstimate = collections.namedtuple(
    "NormalizerEstimate",
    ["log_normalizer", "normalizer", "standard_error", "log_normalizer_standard_error",
     "num_samples"])

DEFAULT_GPU_SAMPLES = 10**10
DEFAULT_CPU_SAMPLES = 10**7
# Speed settings of the loop, measured by `python -m benchmarks.log_normalizer_throughput`
# (README, Benchmarks): on CPU XLA is ~6x slower with TF's normals (XLA's random normals are
# slow; 0.3x-1.0x with the Box-Muller draws, `DEFAULT_NORMAL_SAMPLER`) and chunks of
# 16k-1M samples or float32 chunk sums change the rate by less than the noise.
DEFAULT_CHUNK_SIZE = 10**5
DEFAULT_JIT_COMPILE = False
DEFAULT_CHUNK_DTYPE = tf.float64
PROGRESS_LINES = 10  # progress lines of an estimate given a log_fn
# How the N(0, 1) draws of a Normal-family proposal are made (`standard_normals`; other
# proposals always use proposal.sample). Measured by the same benchmark, interleaved, on the
# 2-core CPU (docs/benchmarks.md, "Log Z estimator"): near idle TF's Philox normal kernel draws
# 1.3e8 normals/s (0.4x its uniforms, 3.2e8/s), Box-Muller from those uniforms 2.1e8/s (1.6x;
# 2.4x-2.6x under load), ndtri 1.5e8/s, tf.random.Generator 1.4e8/s (the same kernel);
# 'auto_select' is Philox on CPU and ThreeFry fails in stateless ops on CPU (TF 2.21: "counter
# must be a vector with length at least 2"). The whole estimator with Box-Muller: 0.99x-1.7x
# of proposal.sample's rate, median 1.3x over 8 interleaved runs.
NORMAL_SAMPLERS = ("box_muller", "normal", "ndtri", "proposal")
DEFAULT_NORMAL_SAMPLER = "box_muller"


def default_num_samples(gpu_samples=DEFAULT_GPU_SAMPLES, cpu_samples=DEFAULT_CPU_SAMPLES):
  """S = `gpu_samples` when a GPU is visible, else `cpu_samples` to keep CPU runs short
  (defaults: 10^10, the paper's choice, and 10^7)."""
  return gpu_samples if tf.config.list_physical_devices("GPU") else cpu_samples


def standard_normals(shape, seed, dtype=tf.float32, sampler=DEFAULT_NORMAL_SAMPLER):
  """Exact i.i.d. N(0, 1) draws from a stateless seed (the same seed, the same draws).

  Args:
    shape: list of ints, the shape of the draws.
    seed: stateless seed, int32 [2].
    dtype: tf.float32 or tf.float64.
    sampler: 'normal': `tf.random.stateless_normal` (Philox; what `proposal.sample` uses);
      'box_muller': n / 2 pairs of Philox uniforms (u1, u2) in [0, 1), each pair giving the two
      independent normals r cos(2 pi u2), r sin(2 pi u2) with r = sqrt(-2 log(1 - u1))
      (Box & Muller, 1958; the transform of TF's own normal kernel, `BoxMullerFloat`, here as
      vectorized ops); 'ndtri': the inverse normal CDF of Philox uniforms moved to the
      midpoints u + eps / 2 of their grid (eps = 2^-23 in float32), which are never 0 or 1.
      Uniforms have 23 (float32) / 52 (float64) random bits, so Box-Muller radii stop at
      sqrt(46 log 2) = 5.65 (probability 2^-23 beyond, as in TF's kernel) and ndtri at |z| =
      5.3 (float32); both well beyond what the sums of a bounded a(z) can resolve.

  Returns:
    [*shape] tensor of `dtype`.

  Raises:
    ValueError: an unknown sampler.
  """
  dtype = tf.as_dtype(dtype)
  if sampler == "normal":
    return tf.random.stateless_normal(shape, seed, dtype=dtype, alg="philox")
  if sampler == "ndtri":
    u = tf.random.stateless_uniform(shape, seed, dtype=dtype, alg="philox")
    return tf.math.ndtri(u + 0.5 * np.finfo(dtype.as_numpy_dtype).eps)
  if sampler != "box_muller":
    raise ValueError(f"unknown normal sampler {sampler!r}; use one of {NORMAL_SAMPLERS[:3]}.")
  size = int(np.prod(shape, dtype=np.int64))
  half = (size + 1) // 2
  u = tf.random.stateless_uniform([2, half], seed, dtype=dtype, alg="philox")
  radius = tf.sqrt(-2.0 * tf.math.log(1.0 - u[0]))  # 1 - u in (0, 1]: finite
  angle = (2.0 * math.pi) * u[1]
  z = tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], 0)
  return tf.reshape(z if size == 2 * half else z[:size], shape)


def _normal_affine(proposal):
  """(loc, scale) with proposal.sample = loc + scale * eps, eps ~ N(0, I) elementwise, for the
  exact types tfd.Normal, tfd.MultivariateNormalDiag (diagonal or identity scale) and
  tfd.Independent of those (subclasses may sample otherwise: None); loc / scale are None where
  they are exactly 0 / 1 when checked eagerly (no op then; the same values to the bit). None
  for any other proposal or a dtype other than float32 / float64."""
  base = proposal.distribution if type(proposal) is tfd.Independent else proposal
  if proposal.dtype not in (tf.float32, tf.float64):
    return None
  if type(base) is tfd.Normal:
    loc, scale = base.loc, base.scale
  elif type(base) is tfd.MultivariateNormalDiag:
    if not isinstance(base.scale, (tf.linalg.LinearOperatorDiag,
                                   tf.linalg.LinearOperatorIdentity)):
      return None
    loc = base.loc
    scale = None if isinstance(base.scale, tf.linalg.LinearOperatorIdentity) else base.scale.diag
  else:
    return None
  loc = None if loc is None else tf.convert_to_tensor(loc, proposal.dtype)
  scale = None if scale is None else tf.convert_to_tensor(scale, proposal.dtype)
  if tf.executing_eagerly():
    loc = None if loc is None or bool(tf.reduce_all(loc == 0.0)) else loc
    scale = None if scale is None or bool(tf.reduce_all(scale == 1.0)) else scale
  return loc, scale


def _distribution_sampler(proposal, normal_sampler):
  """The chunk's draw from a `tfd.Distribution` proposal: callable (n, seed) -> n samples."""
  affine = None if normal_sampler == "proposal" else _normal_affine(proposal)
  if affine is None:  # also any object with `sample(n, seed)` (a model's decoded prior)
    return lambda n, s: proposal.sample(n, seed=s)
  shape = proposal.batch_shape + proposal.event_shape
  if not shape.is_fully_defined():
    return lambda n, s: proposal.sample(n, seed=s)
  loc, scale = affine

  def sample(n, seed):
    z = standard_normals([n] + shape.as_list(), seed, proposal.dtype, normal_sampler)
    z = z if scale is None else z * scale
    return z if loc is None else z + loc
  return sample


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
                            log_fn=None, normal_sampler=DEFAULT_NORMAL_SAMPLER):
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
    normal_sampler: how the N(0, 1) draws of a tfd.Normal / tfd.MultivariateNormalDiag (or
      tfd.Independent of one) proposal are made, z = loc + scale * eps: 'box_muller' (default,
      `DEFAULT_NORMAL_SAMPLER`, the fastest measured), 'normal' or 'ndtri' (see
      `standard_normals`); 'proposal' uses proposal.sample. Other proposals and sampling
      functions always use their own sampling. Each gives exact N(0, I) draws, so an unbiased
      estimate with a valid standard error; the draws (hence the estimate) differ between
      samplers.

  Returns:
    `NormalizerEstimate` of float64 scalars: log_normalizer (nats), normalizer Z, standard_error
    of Z, log_normalizer_standard_error (delta method, SE / Z), and num_samples actually used.

  Raises:
    ValueError: if num_samples or chunk_size < 1, chunk_size is odd with antithetic=True, a
      callable proposal with antithetic=True, chunk_dtype is not float32 / float64, or an
      unknown normal_sampler.
  """
  if num_samples is None:
    num_samples = default_num_samples()
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f"num_samples and chunk_size must be >= 1, got {num_samples}, {chunk_size}.")
  if antithetic and chunk_size % 2:
    raise ValueError(f"chunk_size must be even for antithetic pairs, got {chunk_size}.")
  if normal_sampler not in NORMAL_SAMPLERS:
    raise ValueError(f"normal_sampler must be one of {NORMAL_SAMPLERS}, got {normal_sampler!r}.")
  is_function = callable(proposal) and not isinstance(proposal, tfd.Distribution)
  sample = proposal if is_function else _distribution_sampler(proposal, normal_sampler)
  if antithetic and is_function:
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
