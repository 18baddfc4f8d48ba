"""Training-time estimate of log Z with exponential smoothing and the straight-through trick.

Source: Bauer & Mnih (2019), appendix A.4, Eq. (A.20)-(A.23) and Algorithm 1.
"""
import collections

import tensorflow as tf

from tfp_priors import replicas

EmaEstimate = collections.namedtuple(
    "EmaEstimate", ["log_normalizer", "new_moving_average", "batch_normalizer"])


def ema_log_normalizer(log_acceptance_proposal, log_acceptance_posterior, log_importance_weight,
                       moving_average, epsilon):
  """Per-datapoint log Z_r of Algorithm 1 (Bauer & Mnih 2019, appendix A.4).

  Z_r,curr = (S Z_S + stop_grad(pi(z_r) / q(z_r|x_r)) a(z_r)) / (S + 1)      (Eq. A.23)
  Z_r,smooth = (1 - epsilon) <Z>_i + epsilon Z_r,curr                        (Eq. A.20)
  Z_r = Z_r,curr + stop_grad(Z_r,smooth - Z_r,curr)                         (Alg. 1, line 5)

  so the forward value of Z_r is the smoothed estimate and its gradient is that of the current
  one. The new moving average is the batch mean of stop_grad(Z_r,smooth) (Alg. 1, line 7).

  Without posterior terms (`log_acceptance_posterior=None`: LARS on discrete outputs, Sec. 5.3,
  where pi(x_r) / p_data(x_r) is unknown) Z_curr = Z_S and the result is a scalar.

  Args:
    log_acceptance_proposal: [S] float, log a(z_s) for z_s ~ pi (S = 2^10 in the paper).
      Under a tf.distribute strategy: this replica's share of them; Z_S is then taken over
      the samples of all replicas (`replicas.log_sum_exp_over_replicas`).
    log_acceptance_posterior: [R] float, log a(z_r) for z_r ~ q(z|x_r), one per datapoint; or
      None (Z_curr = Z_S).
    log_importance_weight: [R] float, log pi(z_r) - log q(z_r|x_r); no gradient flows through
      it. Ignored when log_acceptance_posterior is None.
    moving_average: scalar float, the previous moving average <Z>_i. A value <= 0 means "not yet
      initialised": the smoothed value then equals the current estimate.
    epsilon: float in (0, 1], the smoothing weight of the current estimate.

  Returns:
    `EmaEstimate(log_normalizer [R] (scalar without posterior terms), new_moving_average
    scalar, batch_normalizer scalar)`;
    `batch_normalizer` is the plain Monte Carlo estimate Z_S of this step (no gradient).

  Raises:
    ValueError: if epsilon is not in (0, 1].
  """
  if not 0.0 < float(epsilon) <= 1.0:
    raise ValueError(f"EMA epsilon must be in (0, 1], got {epsilon}.")
  log_a_s = tf.convert_to_tensor(log_acceptance_proposal)
  # log(S Z_S); under tf.distribute over the proposal samples of all replicas.
  log_sum_s, num_proposal = replicas.log_sum_exp_over_replicas(log_a_s)
  if log_acceptance_posterior is None:
    log_current = log_sum_s - tf.math.log(num_proposal)
  else:
    log_posterior_term = tf.stop_gradient(log_importance_weight) + log_acceptance_posterior
    log_current = (tf.reduce_logsumexp(
        tf.stack([tf.broadcast_to(log_sum_s, tf.shape(log_posterior_term)), log_posterior_term]),
        axis=0) - tf.math.log1p(num_proposal))
  current = tf.exp(log_current)
  moving_average = tf.cast(moving_average, current.dtype)
  previous = tf.where(moving_average > 0.0, moving_average, tf.stop_gradient(current))
  smooth = (1.0 - epsilon) * previous + epsilon * current
  normalizer = current + tf.stop_gradient(smooth - current)
  return EmaEstimate(
      log_normalizer=tf.math.log(normalizer),
      new_moving_average=tf.reduce_mean(tf.stop_gradient(smooth)),
      batch_normalizer=tf.stop_gradient(tf.exp(log_sum_s - tf.math.log(num_proposal))))
