"""Sampling-importance-resampling (SIR) from a reweighted prior p(z) proportional to base(z) r(z).

Source: Aneja et al. (2021), "A Contrastive Learning Approach for Training Variational
Autoencoder Priors" (NCP-VAE), Sec. 4.3: draw M proposals z_m ~ base, resample one with
probability proportional to w_m = r(z_m); 5,000 proposals per sample in their experiments.
Effective sample size: footnote 5, ESS = 1 / sum_m w_hat_m^2 with w_hat_m = w_m / sum_m' w_m'
(Owen 2013, "Monte Carlo theory, methods and examples", Ch. 9).

SIR is exact only as M -> infinity; for finite M the samples follow a distribution between the
base (M = 1) and the target, with an O(1/M) bias that is small when the ESS is large.
"""
import collections

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.seeds import stateless_seed

SIRResult = collections.namedtuple(
    "SIRResult", ["samples", "effective_sample_size", "log_mean_weight"])


def effective_sample_size(log_weights, axis=-1):
  """ESS = 1 / sum_m w_hat_m^2 of self-normalized importance weights, computed in log space.

  w_hat = softmax(log_weights, axis), so ESS = exp(-logsumexp(2 log w_hat)). ESS equals M for
  equal weights and 1 when a single weight carries all the mass (Aneja et al. 2021, footnote 5).
  Unnormalized log weights are fine: the result does not change when a constant is added.

  Args:
    log_weights: float tensor [..., M, ...] of log importance weights (nats); -inf marks a
      zero weight.
    axis: the axis holding the M weights.

  Returns:
    Float tensor of the shape of `log_weights` without `axis`, values in [1, M]; NaN where every
    weight along `axis` is zero (all -inf).
  """
  log_weights = tf.convert_to_tensor(log_weights)  # keeps float64 inputs in float64
  if not log_weights.dtype.is_floating:
    log_weights = tf.cast(log_weights, tf.float32)
  log_normalized = log_weights - tf.reduce_logsumexp(log_weights, axis=axis, keepdims=True)
  return tf.exp(-tf.reduce_logsumexp(2.0 * log_normalized, axis=axis))


def _static_int(value, name, minimum, message):
  """Checks an int-valued argument; raises ValueError when its value is known statically.

  Returns an int32 tensor, with a run-time assertion attached when the value is dynamic.
  """
  static = tf.get_static_value(value) if tf.is_tensor(value) else value
  if static is not None:
    static = np.asarray(static)
    if static.ndim != 0 or int(static) != static:
      raise ValueError(f"{name} must be a scalar integer; got {static!r}.")
    if int(static) < minimum:
      raise ValueError(message.format(int(static)))
    return tf.constant(int(static), tf.int32)
  value = tf.cast(value, tf.int32)
  with tf.control_dependencies([tf.debugging.assert_greater_equal(
      value, minimum, message=message.format("(see value below)"))]):
    return tf.identity(value)


def sampling_importance_resampling(proposal, log_weight_fn, num_samples, num_proposals=5000,
                                   seed=None, max_proposals_per_chunk=2**20):
  """Draws `num_samples` SIR samples, each resampled from its own `num_proposals` proposals.

  For every output sample n: z_{n,1..M} ~ proposal, log w_{n,m} = log_weight_fn(z_{n,m}),
  index ~ Categorical(logits=log w_{n,:}) (drawn by the Gumbel-max trick), sample = z_{n,index}.
  All samples are drawn in parallel; the N samples are processed in chunks of
  max(1, max_proposals_per_chunk // M) samples inside a `tf.while_loop`, so at most
  `max_proposals_per_chunk` proposals (or M, if M is larger) are in memory at once. Works eagerly,
  inside `tf.function` and in a SavedModel signature (num_samples may be a scalar tensor).

  Deterministic for a given seed (and chunk size): chunk i uses
  `stateless_fold_in(seed, i)` for its proposals and its resampling noise.

  Args:
    proposal: `tfd.Distribution` with scalar batch shape and event shape [d] (for NCP, the base
      prior p(z)).
    log_weight_fn: callable z [..., d] -> log w(z) [...] in nats (for NCP, log r(z)); it is
      called on proposals of shape [chunk, M, d]. Values need not be normalized; -inf is a zero
      weight.
    num_samples: N >= 0, Python int or scalar int tensor.
    num_proposals: M >= 1, Python int or scalar int tensor (Aneja et al. use 5,000). M = 1
      returns plain proposal samples.
    seed: stateless seed (shape [2] int tensor), Python int (deterministic, see
      `stateless_seed`), or None for a random one.
    max_proposals_per_chunk: memory cap (number of proposals) per chunk, >= 1.

  Returns:
    `SIRResult`:
      samples: [N, d] tensor of the proposal's dtype.
      effective_sample_size: [N] ESS of each sample's M weights (in [1, M]; footnote 5).
      log_mean_weight: [N] log((1/M) sum_m w_m) = logsumexp(log w) - log M, an unbiased estimate
        of the normalizer Z = E_proposal[w] on the linear scale (one per sample), in nats.

  Raises:
    ValueError: if num_proposals < 1, num_samples < 0 (when their values are known statically,
      e.g. Python ints) or max_proposals_per_chunk < 1.
    tf.errors.InvalidArgumentError: for the same conditions on dynamic tensor values.
  """
  if int(max_proposals_per_chunk) < 1:
    raise ValueError(f"max_proposals_per_chunk must be >= 1; got {max_proposals_per_chunk}.")
  num_proposals = _static_int(
      num_proposals, "num_proposals", 1,
      "SIR needs at least one proposal; got M={}. Set num_proposals >= 1 "
      "(Aneja et al. use 5,000).")
  num_samples = _static_int(
      num_samples, "num_samples", 0,
      "SIR num_samples must be >= 0; got num_samples={}. Ask for a non-negative number of "
      "samples.")
  seed = stateless_seed(seed)
  dtype = proposal.dtype

  chunk_size = tf.maximum(tf.constant(int(max_proposals_per_chunk), tf.int32) // num_proposals, 1)
  chunk_size = tf.minimum(chunk_size, tf.maximum(num_samples, 1))
  # At least one chunk, so that N = 0 still yields correctly shaped (empty) outputs.
  num_chunks = tf.maximum((num_samples + chunk_size - 1) // chunk_size, 1)
  log_m = tf.math.log(tf.cast(num_proposals, dtype))

  def body(i, samples_ta, ess_ta, log_mean_ta):
    chunk_seed = tf.random.experimental.stateless_fold_in(seed, i)
    sample_seed, gumbel_seed = tfp.random.split_seed(chunk_seed, 2)
    z = proposal.sample([chunk_size, num_proposals], seed=sample_seed)  # [c, M, d]
    log_w = tf.cast(log_weight_fn(z), dtype)
    log_w = tf.broadcast_to(log_w, tf.shape(z)[:2])  # [c, M]
    # Gumbel-max: argmax(log w + Gumbel) ~ Categorical(logits=log w); rows of all -inf pick 0.
    uniform = tf.random.stateless_uniform(
        tf.shape(log_w), gumbel_seed, minval=np.finfo(dtype.as_numpy_dtype).tiny, maxval=1.0,
        dtype=dtype)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    index = tf.argmax(log_w + gumbel, axis=-1, output_type=tf.int32)  # [c]
    chosen = tf.gather(z, index, axis=1, batch_dims=1)  # [c, d]
    return (i + 1, samples_ta.write(i, chosen),
            ess_ta.write(i, effective_sample_size(log_w, axis=-1)),
            log_mean_ta.write(i, tf.reduce_logsumexp(log_w, axis=-1) - log_m))

  def array():
    return tf.TensorArray(dtype, size=num_chunks, infer_shape=False)

  _, samples_ta, ess_ta, log_mean_ta = tf.while_loop(
      lambda i, *_: i < num_chunks, body, (tf.constant(0, tf.int32), array(), array(), array()),
      parallel_iterations=1)  # one chunk at a time: that is the memory cap
  # concat (not stack): chunks are [c, ...]; the output is cut to the N samples asked for.
  samples = samples_ta.concat()[:num_samples]
  samples = tf.ensure_shape(samples, [None] + proposal.event_shape.as_list())
  return SIRResult(samples=samples,
                   effective_sample_size=ess_ta.concat()[:num_samples],
                   log_mean_weight=log_mean_ta.concat()[:num_samples])
