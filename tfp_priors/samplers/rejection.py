"""Exact (truncated) rejection sampling from a LARS resampled distribution.

Source: Bauer & Mnih (2019), "Resampled Priors for Variational Autoencoders", Sec. 2 and
appendix A.1-A.2: draw z ~ pi, accept with probability a(z); with truncation T the T-th
candidate is accepted whatever a(z) is, which yields exactly the density p_T of Eq. (4).
"""
import collections

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import seeds

RejectionSample = collections.namedtuple(
    "RejectionSample", ["samples", "num_proposals", "num_accepted", "acceptance_rate"])


def truncated_rejection_sample(proposal, log_acceptance_fn, num_samples, truncation=100,
                               seed=None, block_size=16, max_proposals=None):
  """Draws exact samples of p_T (or p_inf) by batched rejection sampling.

  All `num_samples` chains run in parallel: each round draws `block_size` candidates for every
  chain, keeps the first accepted one of still-pending chains, and stops when every chain has
  accepted. With truncation T, the T-th candidate of a chain is accepted unconditionally.

  Args:
    proposal: `tfd.Distribution` pi with scalar batch shape and event shape [d].
    log_acceptance_fn: callable mapping z of shape [..., d] to log a(z) of shape [...], with
      log a(z) <= 0.
    num_samples: scalar int, number of samples n >= 1.
    truncation: int T >= 1, or None for untruncated resampling (p_inf, Eq. 3).
    seed: stateless seed (shape [2] int tensor), Python int or None.
    block_size: candidates drawn per chain per round (a speed knob; the result's distribution
      does not depend on it).
    max_proposals: for `truncation=None` only, a cap on candidates per chain (default 10^6) so a
      near-zero acceptance function cannot loop forever; chains still pending at the cap raise.

  Returns:
    `RejectionSample(samples [n, d], num_proposals, num_accepted, acceptance_rate)`: the counts
    are over the coin flips actually made (the forced T-th acceptances are excluded), so that
    `acceptance_rate` is an unbiased, consistent estimate of Z = E_pi[a(z)].

  Raises:
    ValueError: if `truncation` < 1 or `block_size` < 1.
    tf.errors.InvalidArgumentError: if `num_samples` < 1, or untruncated chains hit the cap.
  """
  if truncation is not None and int(truncation) < 1:
    raise ValueError(f"truncation T must be >= 1 (or None for untruncated), got {truncation}.")
  if block_size < 1:
    raise ValueError(f"block_size must be >= 1, got {block_size}.")
  num_samples = tf.convert_to_tensor(num_samples, tf.int32)
  tf.debugging.assert_positive(
      num_samples, message="num_samples must be a positive number of samples to draw")
  limit = int(truncation) if truncation is not None else int(max_proposals or 10**6)
  seed = seeds.stateless_seed(seed)  # an int is a fixed seed, not a stateful draw
  event_shape = proposal.event_shape
  dtype = proposal.dtype

  def cond(step, done, *_):
    return tf.logical_and(step < limit, tf.logical_not(tf.reduce_all(done)))

  def body(step, done, samples, num_proposals, num_accepted, seed):
    seed, sample_seed, uniform_seed = tfp.random.split_seed(seed, 3)
    z = proposal.sample([block_size, num_samples], seed=sample_seed)  # [m, n, d]
    log_a = log_acceptance_fn(z)  # [m, n]
    log_u = tf.math.log(tf.random.stateless_uniform(tf.shape(log_a), uniform_seed, dtype=dtype))
    position = step + tf.range(block_size)[:, tf.newaxis]  # 0-based candidate index [m, 1]
    # Coin flips happen at candidates 0..T-2; candidate T-1 is accepted unconditionally.
    last_flip = limit - 1 if truncation is not None else limit
    coin = tf.logical_and(log_u < log_a, position < last_flip)
    forced = tf.equal(position, limit - 1) if truncation is not None else tf.zeros_like(coin)
    accept = tf.logical_or(coin, tf.broadcast_to(forced, tf.shape(coin)))
    # First accepted candidate of each chain in this block (block_size if none).
    first = tf.argmax(tf.cast(accept, tf.int32), axis=0, output_type=tf.int32)
    any_accept = tf.reduce_any(accept, axis=0)
    pending = tf.logical_not(done)
    take = tf.logical_and(pending, any_accept)
    chosen = tf.gather(tf.transpose(z, [1, 0, 2]), first, batch_dims=1)  # [n, d]
    samples = tf.where(take[:, tf.newaxis], chosen, samples)
    # Coin flips made by pending chains: up to and including the accepted one; the forced
    # T-th candidate is not a coin flip.
    used = tf.where(any_accept, first + 1, block_size)
    flips = tf.minimum(used, tf.maximum(last_flip - step, 0))
    pending_i = tf.cast(pending, tf.int32)
    num_proposals += tf.reduce_sum(pending_i * flips)
    coin_first = tf.gather(tf.transpose(coin), first, batch_dims=1)
    num_accepted += tf.reduce_sum(tf.cast(tf.logical_and(take, coin_first), tf.int32))
    return step + block_size, tf.logical_or(done, take), samples, num_proposals, num_accepted, seed

  init = (tf.constant(0), tf.zeros([num_samples], tf.bool),
          tf.zeros(tf.concat([[num_samples], event_shape], 0), dtype), tf.constant(0),
          tf.constant(0), seed)
  _, done, samples, num_proposals, num_accepted, _ = tf.while_loop(cond, body, init)
  if truncation is None:
    tf.debugging.assert_equal(
        tf.reduce_all(done), True,
        message=f"untruncated rejection sampling drew {limit} candidates without accepting; "
        "a(z) is near zero everywhere: use a finite truncation T or raise max_proposals")
  rate = tf.cast(num_accepted, dtype) / tf.cast(tf.maximum(num_proposals, 1), dtype)
  return RejectionSample(samples, num_proposals, num_accepted, rate)
