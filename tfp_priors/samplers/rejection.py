"""Exact (truncated) rejection sampling from a LARS resampled distribution.

Source: Bauer & Mnih (2019), "Resampled Priors for Variational Autoencoders", Sec. 2 and
appendix A.1-A.2: draw z ~ pi, accept with probability a(z); with truncation T the T-th
candidate is accepted whatever a(z) is, which yields exactly the density p_T of Eq. (4).

The coin flip accepts when log u < log a(z) with log u = log(1 - U), U uniform on [0, 1) in
float64: u lies in (0, 1] on a lattice of spacing 2^-52, so a flip is exact down to
a(z) ~ 2e-16 (a float32 uniform lies on a 2^-23 lattice that includes 0, so it accepts any
a(z) below ~1.2e-7 with probability >= 1.2e-7). Counters are int64: untruncated sampling at the
paper's Z = 2e-6 makes ~5e9 flips for 10^4 samples.
"""
import collections

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import seeds

RejectionSample = collections.namedtuple(
    "RejectionSample", ["samples", "num_proposals", "num_accepted", "acceptance_rate"])

# Budget of an untruncated draw when the caller gives none and Z is unknown: total proposals.
DEFAULT_MAX_PROPOSALS = 10**8
# Smallest budget `proposal_budget` gives, whatever Z is (cheap, and robust to a Z estimate
# that is too high).
MIN_MAX_PROPOSALS = 10**6
# Candidates per round of untruncated sampling (at least block_size per sample).
_UNTRUNCATED_CHUNK = 2**16


def proposal_budget(num_samples, normalizer):
  """A budget of proposals (all samples together) for untruncated sampling with Z known.

  n samples take a negative-binomial number of proposals, mean n / Z and standard deviation
  ~sqrt(n) / Z; the budget (2 n + 8 sqrt(n) + 20) / Z covers it for a Z estimate up to twice
  the true Z (for n = 1, P(more) = e^-28 at the true Z), with at least `MIN_MAX_PROPOSALS`.
  A Z that is not a positive finite number gives `DEFAULT_MAX_PROPOSALS`.

  Args:
    num_samples: int scalar n. normalizer: scalar Z (e.g. the prior's estimate).

  Returns:
    int64 scalar tensor.
  """
  n = tf.cast(num_samples, tf.float64)
  z = tf.cast(normalizer, tf.float64)
  fit = tf.math.ceil((2.0 * n + 8.0 * tf.sqrt(n) + 20.0) / z)
  valid = tf.logical_and(tf.math.is_finite(fit), z > 0.0)
  budget = tf.where(valid, tf.clip_by_value(fit, MIN_MAX_PROPOSALS, 2.0**62),
                    float(DEFAULT_MAX_PROPOSALS))
  return tf.cast(budget, tf.int64)


def _coin_flips(log_a, seed):
  """Bernoulli(a(z)) flips, exact in float64: log(1 - U) < log a, U ~ U[0, 1)."""
  u = tf.random.stateless_uniform(tf.shape(log_a), seed, dtype=tf.float64)
  return tf.math.log1p(-u) < tf.cast(log_a, tf.float64)


def truncated_rejection_sample(proposal, log_acceptance_fn, num_samples, truncation=100,
                               seed=None, block_size=16, max_proposals=None):
  """Draws exact samples of p_T (or p_inf) by batched rejection sampling.

  Truncated (T finite): all `num_samples` chains run in parallel; each round draws
  `block_size` candidates for every chain, keeps the first accepted one of still-pending
  chains, and stops when every chain has accepted; the T-th candidate of a chain is accepted
  unconditionally. Untruncated (T None): candidates are drawn in rounds of
  max(block_size * n, 2^16) and the first n accepted ones, in order, are the samples (i.i.d.
  p_inf, as n independent chains would give, without drawing for finished ones).

  Args:
    proposal: `tfd.Distribution` pi with scalar batch shape and event shape [d].
    log_acceptance_fn: callable mapping z of shape [..., d] to log a(z) of shape [...], with
      log a(z) <= 0.
    num_samples: scalar int, number of samples n >= 1.
    truncation: int T >= 1, or None for untruncated resampling (p_inf, Eq. 3).
    seed: stateless seed (shape [2] int tensor), Python int or None.
    block_size: candidates drawn per chain per round (a speed knob; the result's distribution
      does not depend on it).
    max_proposals: for `truncation=None` only: the budget, in proposals drawn for all n
      samples together (int or int64 tensor), so that an a(z) near zero cannot loop forever.
      Each sample needs 1/Z proposals on average: see `proposal_budget` for one that fits a
      known Z. Default `DEFAULT_MAX_PROPOSALS` (10^8).

  Returns:
    `RejectionSample(samples [n, d], num_proposals, num_accepted (int64), acceptance_rate)`:
    the counts are over the coin flips actually made (the forced T-th acceptances are
    excluded; untruncated: up to the n-th acceptance). `acceptance_rate` = accepted / flips
    is a consistent estimate of Z = E_pi[a(z)], biased by O(1/n) because sampling stops on
    acceptances (untruncated, (accepted - 1) / (flips - 1) would be unbiased: Haldane 1945).

  Raises:
    ValueError: if `truncation` < 1, `block_size` < 1 or `max_proposals` < 1.
    tf.errors.InvalidArgumentError: if `num_samples` < 1, or an untruncated draw used up
      `max_proposals` before n acceptances; the message gives the accepted count, the
      proposals drawn, the acceptance rate so far (an estimate of Z), the expected proposals
      per sample 1/Z, and the ways out (a larger max_proposals, or a finite truncation T).
  """
  if truncation is not None and int(truncation) < 1:
    raise ValueError(f"truncation T must be >= 1 (or None for untruncated), got {truncation}.")
  if block_size < 1:
    raise ValueError(f"block_size must be >= 1, got {block_size}.")
  if isinstance(max_proposals, int) and max_proposals < 1:
    raise ValueError(f"max_proposals must be >= 1 proposals, got {max_proposals}.")
  num_samples = tf.convert_to_tensor(num_samples, tf.int32)
  tf.debugging.assert_positive(
      num_samples, message="num_samples must be a positive number of samples to draw")
  seed = seeds.stateless_seed(seed)  # an int is a fixed seed, not a stateful draw
  if truncation is None:
    budget = DEFAULT_MAX_PROPOSALS if max_proposals is None else max_proposals
    return _untruncated(proposal, log_acceptance_fn, num_samples, seed, block_size,
                        tf.cast(budget, tf.int64))
  return _truncated(proposal, log_acceptance_fn, num_samples, int(truncation), seed,
                    block_size)


def _truncated(proposal, log_acceptance_fn, num_samples, truncation, seed, block_size):
  """n parallel chains of at most T candidates each (see `truncated_rejection_sample`)."""
  last_flip = truncation - 1  # flips at candidates 0..T-2; candidate T-1 is forced

  def cond(step, done, *_):
    return tf.logical_and(step < truncation, tf.logical_not(tf.reduce_all(done)))

  def body(step, done, samples, num_proposals, num_accepted, seed):
    seed, sample_seed, uniform_seed = tfp.random.split_seed(seed, 3)
    z = proposal.sample([block_size, num_samples], seed=sample_seed)  # [m, n, d]
    position = step + tf.range(block_size, dtype=tf.int64)[:, tf.newaxis]  # 0-based [m, 1]
    coin = tf.logical_and(_coin_flips(log_acceptance_fn(z), uniform_seed), position < last_flip)
    accept = tf.logical_or(coin, tf.equal(position, truncation - 1))
    # First accepted candidate of each chain in this block (block_size if none).
    first = tf.argmax(tf.cast(accept, tf.int32), axis=0, output_type=tf.int32)
    any_accept = tf.reduce_any(accept, axis=0)
    pending = tf.logical_not(done)
    take = tf.logical_and(pending, any_accept)
    chosen = tf.gather(tf.transpose(z, [1, 0, 2]), first, batch_dims=1)  # [n, d]
    samples = tf.where(take[:, tf.newaxis], chosen, samples)
    # Coin flips made by pending chains: up to and including the accepted one; the forced
    # T-th candidate is not a coin flip.
    used = tf.cast(tf.where(any_accept, first + 1, block_size), tf.int64)
    flips = tf.minimum(used, tf.maximum(last_flip - step, 0))
    num_proposals += tf.reduce_sum(tf.where(pending, flips, 0))
    coin_first = tf.gather(tf.transpose(coin), first, batch_dims=1)
    num_accepted += tf.reduce_sum(tf.cast(tf.logical_and(take, coin_first), tf.int64))
    return step + block_size, tf.logical_or(done, take), samples, num_proposals, num_accepted, seed

  zero = tf.constant(0, tf.int64)
  init = (zero, tf.zeros([num_samples], tf.bool),
          tf.zeros(tf.concat([[num_samples], proposal.event_shape], 0), proposal.dtype),
          zero, zero, seed)
  _, _, samples, num_proposals, num_accepted, _ = tf.while_loop(cond, body, init)
  return _result(samples, num_proposals, num_accepted, proposal.dtype)


def _untruncated(proposal, log_acceptance_fn, num_samples, seed, block_size, budget):
  """The first n accepted candidates of one stream (see `truncated_rejection_sample`)."""
  chunk = tf.maximum(tf.cast(num_samples, tf.int64) * block_size, _UNTRUNCATED_CHUNK)
  n = tf.cast(num_samples, tf.int64)

  def cond(count, drawn, *_):
    return tf.logical_and(count < n, drawn < budget)

  def body(count, drawn, samples, seed):
    seed, sample_seed, uniform_seed = tfp.random.split_seed(seed, 3)
    m = tf.minimum(chunk, budget - drawn)
    z = proposal.sample(tf.cast(m, tf.int32), seed=sample_seed)  # [m, d]
    accept = _coin_flips(log_acceptance_fn(z), uniform_seed)
    rank = count + tf.cumsum(tf.cast(accept, tf.int64)) - 1  # sample index of each acceptance
    keep = tf.logical_and(accept, rank < n)
    samples = tf.tensor_scatter_nd_update(samples, tf.boolean_mask(rank, keep)[:, tf.newaxis],
                                          tf.boolean_mask(z, keep))
    accepted = tf.reduce_sum(tf.cast(keep, tf.int64))
    # Flips up to and including the n-th acceptance (all m if it is not in this round).
    last = tf.reduce_max(tf.where(keep, tf.range(m), -1)) + 1
    flips = tf.where(count + accepted >= n, last, m)
    return count + accepted, drawn + flips, samples, seed

  zero = tf.constant(0, tf.int64)
  init = (zero, zero, tf.zeros(tf.concat([[num_samples], proposal.event_shape], 0),
                               proposal.dtype), seed)
  count, drawn, samples, _ = tf.while_loop(cond, body, init)
  rate = tf.cast(count, tf.float64) / tf.cast(tf.maximum(drawn, 1), tf.float64)
  tf.debugging.Assert(count >= n, [
      "untruncated rejection sampling used up its budget of", budget, "proposals "
      "(max_proposals) with", count, "of", n, "samples accepted; the acceptance rate so far, "
      "an estimate of Z, is", rate, "so each sample needs 1/Z =", 1.0 / rate,
      "proposals on average. Raise max_proposals to about (2 n + 8 sqrt(n) + 20) / Z "
      "(samplers.rejection.proposal_budget), or use a finite truncation T "
      "(e.g. LarsPrior.truncation = 100)"], summarize=1)
  return _result(samples, drawn, count, proposal.dtype)


def _result(samples, num_proposals, num_accepted, dtype):
  rate = tf.cast(num_accepted, dtype) / tf.cast(tf.maximum(num_proposals, 1), dtype)
  return RejectionSample(samples, num_proposals, num_accepted, rate)
