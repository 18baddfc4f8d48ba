"""Per-example random draws that do not depend on how a batch is split across replicas.

Under a `tf.distribute` strategy with n replicas in sync, each replica holds B = B_global / n
consecutive examples of the global batch. If every replica drew its own noise, a 2-replica
run would see other random numbers than a single device with the same seed, and the two loss
trajectories would differ. Here a replica draws the noise of the whole global batch from the
shared seed and keeps its own rows, so the draws, and hence the losses, are those of a
single device up to float summation order. The extra draws cost (n - 1) x the noise of one
replica, a vanishing fraction of a step.
"""
import tensorflow as tf


def replica_position():
  """(replica id, number of replicas in sync): (0, 1) outside a replica context."""
  context = tf.distribute.get_replica_context()
  if context is None:  # cross-replica context: one global computation
    return 0, 1
  return context.replica_id_in_sync_group, context.num_replicas_in_sync


def replica_rows(draw, num_rows, axis=0):
  """This replica's rows of a draw over the global batch.

  Args:
    draw: callable, m -> a draw with m examples along `axis` (a Python int or scalar tensor m);
      it must use a stateless seed shared by the replicas.
    num_rows: examples on this replica (int or scalar int32 tensor).
    axis: the example axis of the draw.

  Returns:
    `draw(num_rows)` on one replica; otherwise rows [r * num_rows, (r + 1) * num_rows) of
    `draw(n * num_rows)` along `axis` on replica r.
  """
  replica, count = replica_position()
  if count == 1:
    return draw(num_rows)
  start = tf.cast(replica, tf.int32) * tf.cast(num_rows, tf.int32)
  return tf.gather(draw(count * num_rows), tf.range(start, start + num_rows), axis=axis)


def standard_normal(shape, seed, dtype=tf.float32):
  """N(0, 1) noise of `shape`: stateless when seed is given, from the global RNG otherwise."""
  if seed is None:
    return tf.random.normal(shape, dtype=dtype)
  return tf.random.stateless_normal(shape, seed, dtype=dtype)


def sample_diagonal_normal(distribution, seed, num_samples=None):
  """Reparameterised samples loc + scale * eps of a batch of diagonal Normals, eps drawn per
  example as a single device would (`replica_rows` over the example axis).

  Args:
    distribution: a diagonal Normal (`tfd.MultivariateNormalDiag` or `tfd.Normal`) with
      parameters [..., B, d]: B examples on the second-to-last axis.
    seed: stateless seed [2] shared by the replicas, or None.
    num_samples: K (an int or an int32 scalar tensor), or None for one sample without a
      sample axis.

  Returns:
    [K, ..., B, d] (or [..., B, d]) samples; gradients flow to loc and scale.
  """
  loc, scale = distribution.mean(), distribution.stddev()
  shape = tf.shape(loc)
  prefix = [] if num_samples is None else [num_samples]
  axis = len(prefix) + loc.shape.rank - 2

  def draw(rows):
    rows = tf.reshape(tf.cast(rows, tf.int32), [1])
    leading = tf.reshape(tf.cast(prefix, tf.int32), [-1])  # K may be a tensor (the export)
    return standard_normal(tf.concat([leading, shape[:-2], rows, shape[-1:]], 0), seed,
                           loc.dtype)
  return loc + scale * replica_rows(draw, shape[-2], axis=axis)


def replica_share(draw, num_draws):
  """This replica's share of `num_draws` shared draws (e.g. the S proposal samples of a Z
  estimate): rows [r * num_draws / n, (r + 1) * num_draws / n) of `draw(num_draws)` when n
  divides num_draws, else all of them (each replica then repeats the whole draw).

  Args:
    draw: callable, m -> m draws along axis 0 from a seed shared by the replicas.
    num_draws: Python int.
  """
  _, count = replica_position()
  if count == 1 or num_draws % count:
    return draw(num_draws)
  return replica_rows(draw, num_draws // count)


def log_sum_exp_over_replicas(values):
  """(log sum_i exp(values_i), number of values) over the values [m] of all replicas in sync.

  Differentiable: the gradient reaches each replica's own values (the all-reduce's gradient is
  an all-reduce). The sum is taken in float64, so values down to about -700 do not underflow.
  With one replica it is (tf.reduce_logsumexp(values), m).
  """
  count = tf.cast(tf.shape(values)[0], values.dtype)
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return tf.reduce_logsumexp(values), count
  local = tf.stack([tf.exp(tf.cast(tf.reduce_logsumexp(values), tf.float64)),
                   tf.cast(count, tf.float64)])
  total = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
  return tf.cast(tf.math.log(total[0]), values.dtype), tf.cast(total[1], values.dtype)
