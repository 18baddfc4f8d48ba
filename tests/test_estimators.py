"""Tests of tfp_priors.estimators: Algorithm 1 (EMA + straight-through, appendix A.4) and the
evaluation-time Monte Carlo estimator of Z (Eq. A.17).

References are independent: Algorithm 1 and its gradient are written out in numpy (with the
analytic derivative of the sigmoid acceptance), Z and Var_pi[a] come from trapezoidal quadrature.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special
from scipy import stats

from tfp_priors.estimators import ema
from tfp_priors.estimators import normalizer

tfd = tfp.distributions

# ---- Algorithm 1 ----------------------------------------------------------------------------

S, R = 64, 8
THETA = np.array([1.3, -0.8, 0.4])


def _features(z):
  """f(z; theta) = theta . g(z), g(z) = [sin z, z, 1]."""
  return np.stack([np.sin(z), z, np.ones_like(z)], axis=-1)


def _alg1_inputs(seed=0):
  rng = np.random.RandomState(seed)
  z_s = rng.randn(S)  # proposal samples
  z_r = 0.5 + 0.7 * rng.randn(R)  # "posterior" samples
  log_iw = 0.3 * rng.randn(R)  # log pi(z_r) - log q(z_r | x_r)
  return z_s, z_r, log_iw


def _numpy_alg1(theta, z_s, z_r, log_iw, moving_average, epsilon):
  """Returns Z_curr [R], Z_smooth [R], dZ_curr/dtheta [R, 3] from Eq. A.23 / A.20."""
  a_s = special.expit(_features(z_s) @ theta)
  a_r = special.expit(_features(z_r) @ theta)
  w = np.exp(log_iw)
  z_s_mean = a_s.mean()
  current = (S * z_s_mean + w * a_r) / (S + 1)
  previous = moving_average if moving_average > 0 else current
  smooth = (1.0 - epsilon) * previous + epsilon * current
  da_s = (a_s * (1 - a_s))[:, None] * _features(z_s)  # [S, 3]
  da_r = (a_r * (1 - a_r))[:, None] * _features(z_r)  # [R, 3]
  d_current = (da_s.sum(0)[None, :] + w[:, None] * da_r) / (S + 1)
  return current, smooth, d_current, z_s_mean


def _run_alg1(z_s, z_r, log_iw, moving_average, epsilon, weights):
  theta = tf.Variable(THETA, dtype=tf.float64)
  log_iw_var = tf.Variable(log_iw, dtype=tf.float64)
  ma_var = tf.Variable(moving_average, dtype=tf.float64)
  with tf.GradientTape(persistent=True) as tape:
    log_a_s = tf.math.log_sigmoid(tf.linalg.matvec(tf.constant(_features(z_s)), theta))
    log_a_r = tf.math.log_sigmoid(tf.linalg.matvec(tf.constant(_features(z_r)), theta))
    result = ema.ema_log_normalizer(log_a_s, log_a_r, log_iw_var, ma_var, epsilon)
    loss = tf.reduce_sum(weights * result.log_normalizer)
    new_ma = result.new_moving_average
  grads = {
      "theta": tape.gradient(loss, theta),
      "log_iw": tape.gradient(loss, log_iw_var),
      "moving_average": tape.gradient(loss, ma_var),
      "new_ma_theta": tape.gradient(new_ma, theta),
  }
  return result, grads


@pytest.mark.parametrize("epsilon", [0.1, 0.01, 0.5, 1.0])
@pytest.mark.parametrize("moving_average", [0.37, 0.05])
def test_alg1_forward_gradient_and_moving_average(epsilon, moving_average):
  z_s, z_r, log_iw = _alg1_inputs()
  weights = np.random.RandomState(1).uniform(0.5, 2.0, R)
  current, smooth, d_current, z_s_mean = _numpy_alg1(THETA, z_s, z_r, log_iw, moving_average,
                                                     epsilon)
  result, grads = _run_alg1(z_s, z_r, log_iw, moving_average, epsilon, weights)

  # Forward: Z_r = Z_r,smooth = (1 - eps) <Z>_i + eps Z_r,curr (Alg. 1 lines 3-5).
  assert result.log_normalizer.shape == (R,)
  np.testing.assert_allclose(np.exp(result.log_normalizer.numpy()), smooth, rtol=1e-12)
  np.testing.assert_allclose(np.exp(result.log_normalizer.numpy()),
                             (1 - epsilon) * moving_average + epsilon * current, rtol=1e-12)
  # New moving average: batch mean of Z_r,smooth (Alg. 1 line 7, Eq. A.20); no gradient.
  np.testing.assert_allclose(result.new_moving_average.numpy(), smooth.mean(), rtol=1e-12)
  assert grads["new_ma_theta"] is None
  np.testing.assert_allclose(result.batch_normalizer.numpy(), z_s_mean, rtol=1e-12)

  # Backward (straight-through): d log Z_r = dZ_r,curr / Z_r,smooth (not d log Z_r,smooth,
  # which would carry an extra factor eps).
  expected = (weights[:, None] * d_current / smooth[:, None]).sum(0)
  np.testing.assert_allclose(grads["theta"].numpy(), expected, rtol=1e-9)
  if epsilon < 1.0:
    wrong = (weights[:, None] * epsilon * d_current / smooth[:, None]).sum(0)
    assert not np.allclose(grads["theta"].numpy(), wrong, rtol=1e-3)

  # No gradient through the importance weight pi(z_r) / q(z_r | x_r), nor the moving average.
  assert grads["log_iw"] is None or np.all(grads["log_iw"].numpy() == 0.0)
  assert grads["moving_average"] is None or np.all(grads["moving_average"].numpy() == 0.0)


@pytest.mark.parametrize("moving_average", [0.0, -1.0])
def test_alg1_uninitialised_moving_average_uses_current_estimate(moving_average):
  z_s, z_r, log_iw = _alg1_inputs(seed=2)
  weights = np.ones(R)
  epsilon = 0.1
  current, smooth, d_current, _ = _numpy_alg1(THETA, z_s, z_r, log_iw, moving_average, epsilon)
  np.testing.assert_allclose(smooth, current)  # reference sanity
  result, grads = _run_alg1(z_s, z_r, log_iw, moving_average, epsilon, weights)
  np.testing.assert_allclose(np.exp(result.log_normalizer.numpy()), current, rtol=1e-12)
  np.testing.assert_allclose(result.new_moving_average.numpy(), current.mean(), rtol=1e-12)
  # Then the gradient is that of log Z_r,curr exactly.
  np.testing.assert_allclose(grads["theta"].numpy(), (d_current / current[:, None]).sum(0),
                             rtol=1e-9)


def test_alg1_current_estimate_equals_eq_a23():
  """epsilon = 1: the forward value is Z_r,curr of Eq. A.23, with the posterior sample
  reweighted by pi / q; checked for large |log a| (log-space stability)."""
  rng = np.random.RandomState(3)
  log_a_s = np.log(rng.uniform(1e-6, 1.0, S))
  log_a_r = np.array([-30.0, -5.0, -0.1, 0.0, -1.0, -2.0, -60.0, -0.5])
  log_iw = np.array([2.0, -3.0, 0.0, 1.0, 10.0, -10.0, 40.0, 0.5])
  result = ema.ema_log_normalizer(tf.constant(log_a_s), tf.constant(log_a_r),
                                  tf.constant(log_iw), 0.2, 1.0)
  expected = (np.exp(log_a_s).sum() + np.exp(log_iw + log_a_r)) / (S + 1)
  np.testing.assert_allclose(np.exp(result.log_normalizer.numpy()), expected, rtol=1e-12)


def test_alg1_float32():
  z_s, z_r, log_iw = _alg1_inputs()
  current, smooth, _, _ = _numpy_alg1(THETA, z_s, z_r, log_iw, 0.3, 0.1)
  log_a_s = np.log(special.expit(_features(z_s) @ THETA)).astype(np.float32)
  log_a_r = np.log(special.expit(_features(z_r) @ THETA)).astype(np.float32)
  result = ema.ema_log_normalizer(log_a_s, log_a_r, log_iw.astype(np.float32), 0.3, 0.1)
  assert result.log_normalizer.dtype == tf.float32
  np.testing.assert_allclose(np.exp(result.log_normalizer.numpy()), smooth, rtol=1e-5)


@pytest.mark.parametrize("epsilon", [0.0, -0.1, 1.5, 2.0])
def test_alg1_epsilon_outside_unit_interval_raises(epsilon):
  z_s, z_r, log_iw = _alg1_inputs()
  with pytest.raises(ValueError, match="epsilon"):
    ema.ema_log_normalizer(tf.constant(np.log(special.expit(z_s))),
                           tf.constant(np.log(special.expit(z_r))), tf.constant(log_iw), 0.3,
                           epsilon)


# ---- evaluation estimator (Eq. A.17) --------------------------------------------------------

GRID_1D = np.linspace(-10.0, 10.0, 20001)
GRID_2D = np.linspace(-8.0, 8.0, 641)


def _proposal(d):
  return tfd.Independent(tfd.Normal(tf.zeros([d]), tf.ones([d])), 1)


def _log_a1(z):
  return tf.math.log_sigmoid(4.0 * tf.sin(3.0 * z[..., 0]) - 1.0)


def _log_a2(z):
  z1, z2 = z[..., 0], z[..., 1]
  return tf.math.log_sigmoid(3.0 * tf.sin(2.0 * z1) * tf.cos(1.5 * z2) + z1 - 0.5 * z2**2)


def _log_a2_near_odd(z):
  """Logits odd in z plus a small even term: a(z) + a(-z) is nearly constant."""
  z1, z2 = z[..., 0], z[..., 1]
  return tf.math.log_sigmoid(2.0 * z1 - z2 + 0.5 * tf.sin(z1 * z2) + 0.3 * tf.cos(z2))


def _quad_moments_1d(f):
  pi, a = stats.norm.pdf(GRID_1D), special.expit(f(GRID_1D))
  return np.trapezoid(pi * a, GRID_1D), np.trapezoid(pi * a**2, GRID_1D)


def _quad_moments_2d(f):
  z1, z2 = np.meshgrid(GRID_2D, GRID_2D, indexing="ij")
  pi, a = stats.norm.pdf(z1) * stats.norm.pdf(z2), special.expit(f(z1, z2))

  def quad(v):
    return np.trapezoid(np.trapezoid(v, GRID_2D, axis=1), GRID_2D)
  return quad(pi * a), quad(pi * a**2)


F1 = lambda z: 4.0 * np.sin(3.0 * z) - 1.0  # noqa: E731
F2 = lambda z1, z2: 3.0 * np.sin(2.0 * z1) * np.cos(1.5 * z2) + z1 - 0.5 * z2**2  # noqa: E731
F2_NEAR_ODD = lambda z1, z2: 2.0 * z1 - z2 + 0.5 * np.sin(z1 * z2) + 0.3 * np.cos(z2)  # noqa


@pytest.mark.parametrize("d", [1, 2])
def test_estimate_agrees_with_quadrature(d):
  num = 2 * 10**5
  if d == 1:
    z_exact, second = _quad_moments_1d(F1)
    log_a = _log_a1
  else:
    z_exact, second = _quad_moments_2d(F2)
    log_a = _log_a2
  result = normalizer.estimate_log_normalizer(_proposal(d), log_a, num, chunk_size=5 * 10**4,
                                              seed=tf.constant([3, 4], tf.int32))
  for field in ("log_normalizer", "normalizer", "standard_error",
                "log_normalizer_standard_error"):
    assert getattr(result, field).dtype == tf.float64, field
    assert getattr(result, field).shape == ()
  assert int(result.num_samples) == num
  estimate, se = float(result.normalizer), float(result.standard_error)
  exact_se = math.sqrt((second - z_exact**2) / num)
  assert abs(estimate - z_exact) < 4.0 * exact_se, (estimate, z_exact, exact_se)
  assert se == pytest.approx(exact_se, rel=0.05)
  assert float(result.log_normalizer) == pytest.approx(math.log(estimate), rel=1e-12)
  assert float(result.log_normalizer_standard_error) == pytest.approx(se / estimate, rel=1e-12)


def test_antithetic_exact_for_sigmoid_of_linear():
  """a(z) = sigmoid(z): a(z) + a(-z) = 1, so every antithetic pair averages to exactly Z = 1/2."""
  log_a = lambda z: tf.math.log_sigmoid(z[..., 0])  # noqa: E731
  anti = normalizer.estimate_log_normalizer(_proposal(1), log_a, 10**5, chunk_size=2 * 10**4,
                                            antithetic=True, seed=tf.constant([1, 1], tf.int32))
  plain = normalizer.estimate_log_normalizer(_proposal(1), log_a, 10**5, chunk_size=2 * 10**4,
                                             seed=tf.constant([1, 1], tf.int32))
  assert float(anti.normalizer) == pytest.approx(0.5, abs=1e-6)
  assert float(anti.standard_error) < 1e-6
  assert float(plain.standard_error) > 1e-4
  assert abs(float(plain.normalizer) - 0.5) < 4.0 * float(plain.standard_error)
  assert int(anti.num_samples) == 10**5


def test_antithetic_reduces_standard_error_and_stays_unbiased():
  z_exact, second = _quad_moments_2d(F2_NEAR_ODD)
  num = 2 * 10**5
  kwargs = dict(num_samples=num, chunk_size=5 * 10**4, seed=tf.constant([9, 9], tf.int32))
  plain = normalizer.estimate_log_normalizer(_proposal(2), _log_a2_near_odd, **kwargs)
  anti = normalizer.estimate_log_normalizer(_proposal(2), _log_a2_near_odd, antithetic=True,
                                            **kwargs)
  assert anti.normalizer.dtype == tf.float64
  assert int(anti.num_samples) == num  # counts z and -z
  assert float(anti.standard_error) < 0.5 * float(plain.standard_error)
  assert abs(float(anti.normalizer) - z_exact) < 4.0 * float(anti.standard_error)
  assert abs(float(plain.normalizer) - z_exact) < 4.0 * math.sqrt((second - z_exact**2) / num)


@pytest.mark.parametrize("antithetic", [False, True])
@pytest.mark.parametrize("num_samples, chunk_size, expected_used", [
    (10**5 + 1, 3 * 10**4, 4 * 3 * 10**4),  # rounded up to whole chunks
    (7, 10**5, 8),  # chunk clipped to num_samples (rounded up to even when antithetic)
    (5 * 10**4, 2 * 10**4, 6 * 10**4),
])
def test_num_samples_not_a_multiple_of_chunk_size(num_samples, chunk_size, expected_used,
                                                  antithetic):
  if not antithetic and num_samples == 7:
    expected_used = 7
  result = normalizer.estimate_log_normalizer(_proposal(1), _log_a1, num_samples, chunk_size,
                                              antithetic=antithetic, seed=tf.constant([5, 5]))
  used = int(result.num_samples)
  assert used == expected_used
  assert used >= num_samples
  z_exact, second = _quad_moments_1d(F1)
  assert 0.0 < float(result.normalizer) <= 1.0
  if used > 1000:
    bound = 5.0 * math.sqrt((second - z_exact**2) / used) * (1.0 if not antithetic else 1.5)
    assert abs(float(result.normalizer) - z_exact) < bound


def test_same_seed_is_deterministic():
  kwargs = dict(num_samples=4 * 10**4, chunk_size=10**4)
  a = normalizer.estimate_log_normalizer(_proposal(1), _log_a1, seed=tf.constant([1, 2]),
                                         **kwargs)
  b = normalizer.estimate_log_normalizer(_proposal(1), _log_a1, seed=tf.constant([1, 2]),
                                         **kwargs)
  c = normalizer.estimate_log_normalizer(_proposal(1), _log_a1, seed=tf.constant([1, 3]),
                                         **kwargs)
  assert float(a.normalizer) == float(b.normalizer)
  assert float(a.normalizer) != float(c.normalizer)


def test_chunks_are_independent():
  """The streaming estimate over k chunks has the SE of k * chunk i.i.d. draws: if every chunk
  reused the same samples, the spread of the estimate across seeds would not shrink with k."""
  estimates = []
  for seed in range(12):
    r = normalizer.estimate_log_normalizer(_proposal(1), _log_a1, 8 * 500, chunk_size=500,
                                           seed=tf.constant([seed, 17]))
    estimates.append(float(r.normalizer))
  z_exact, second = _quad_moments_1d(F1)
  se_all = math.sqrt((second - z_exact**2) / 4000)
  se_one_chunk = math.sqrt((second - z_exact**2) / 500)
  spread = np.std(estimates, ddof=1)
  assert spread < 0.5 * (se_all + se_one_chunk), (spread, se_all, se_one_chunk)


@pytest.mark.parametrize("kwargs", [
    dict(num_samples=0), dict(num_samples=-10), dict(num_samples=100, chunk_size=0),
    dict(num_samples=100, chunk_size=-4), dict(num_samples=100, chunk_size=11, antithetic=True),
])
def test_bad_arguments_raise(kwargs):
  with pytest.raises(ValueError):
    normalizer.estimate_log_normalizer(_proposal(1), _log_a1, seed=tf.constant([1, 1]), **kwargs)


def test_progress_lines_leave_the_estimate_identical_to_the_bit():
  """With log_fn the chunks run in PROGRESS_LINES calls continuing one running sum, so the
  float64 sums are added in the same order as in one call."""
  proposal = tfd.MultivariateNormalDiag(tf.zeros(2))
  log_a = lambda z: -0.5 * tf.reduce_sum(tf.square(z - 1.0), -1)
  lines = []
  logged = normalizer.estimate_log_normalizer(proposal, log_a, 20000, chunk_size=1000, seed=3,
                                              log_fn=lines.append)
  plain = normalizer.estimate_log_normalizer(proposal, log_a, 20000, chunk_size=1000, seed=3)
  assert float(logged.normalizer) == float(plain.normalizer)
  assert float(logged.standard_error) == float(plain.standard_error)
  assert len(lines) == normalizer.PROGRESS_LINES and "ETA" in lines[-1]
  assert lines[-1].startswith("log Z: 2e+04 of 2e+04 proposal samples")
  pairs = []  # antithetic: a chunk of 1,000 is 500 pairs, 1,000 evaluations of a(z)
  normalizer.estimate_log_normalizer(proposal, log_a, 20000, chunk_size=1000, seed=3,
                                     antithetic=True, log_fn=pairs.append)
  assert pairs[-1].startswith("log Z: 2e+04 of 2e+04 proposal samples")
