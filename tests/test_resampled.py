"""Tests of tfp_priors.distributions.resampled (LARS p_inf, Eq. 3, and p_T, Eq. 4 / A.14).

References are computed independently with numpy/scipy: Z = E_pi[a] by trapezoidal quadrature
on a fine grid, densities by the mixture formula of Eq. 4 written out in numpy.
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special
from scipy import stats

from tfp_priors.distributions import resampled

tfd = tfp.distributions

# 1-D grid (N(0,1) mass outside [-10, 10] is ~1e-23) and 2-D grid.
GRID_1D = np.linspace(-10.0, 10.0, 20001)
GRID_2D = np.linspace(-8.0, 8.0, 641)


# ---- acceptance functions: log a(z) = log_sigmoid(f(z)) with a fixed, multimodal f ----------

def _f1_np(z):  # z [..., 1] -> [...]
  z = z[..., 0]
  return 4.0 * np.sin(3.0 * z) - 1.0


def _log_a1_tf(z):
  z = z[..., 0]
  return tf.math.log_sigmoid(4.0 * tf.sin(3.0 * z) - 1.0)


def _f2_np(z):  # z [..., 2] -> [...]
  z1, z2 = z[..., 0], z[..., 1]
  return 3.0 * np.sin(2.0 * z1) * np.cos(1.5 * z2) + z1 - 0.5 * z2**2


def _log_a2_tf(z):
  z1, z2 = z[..., 0], z[..., 1]
  return tf.math.log_sigmoid(3.0 * tf.sin(2.0 * z1) * tf.cos(1.5 * z2) + z1 - 0.5 * z2**2)


def _proposal(d, dtype=np.float32):
  return tfd.Independent(tfd.Normal(tf.zeros([d], dtype), tf.ones([d], dtype)), 1)


def _quad_1d(values):
  return np.trapezoid(values, GRID_1D)


def _quad_2d(values):
  return np.trapezoid(np.trapezoid(values, GRID_2D, axis=1), GRID_2D)


def _mesh_2d():
  z1, z2 = np.meshgrid(GRID_2D, GRID_2D, indexing="ij")
  return np.stack([z1, z2], axis=-1)  # [n, n, 2]


def _pi_1d():
  return stats.norm.pdf(GRID_1D)


def _a_1d():
  return special.expit(_f1_np(GRID_1D[:, None]))


def _exact_z_1d():
  return _quad_1d(_pi_1d() * _a_1d())


def _pi_2d(mesh):
  return stats.norm.pdf(mesh[..., 0]) * stats.norm.pdf(mesh[..., 1])


def _exact_z_2d(mesh):
  return _quad_2d(_pi_2d(mesh) * special.expit(_f2_np(mesh)))


def _numpy_p_t(pi, a, z, truncation):
  """Eq. 4 in numpy: p_T = (1 - alpha_T) pi a / Z + alpha_T pi, alpha_T = (1 - Z)^(T - 1)."""
  if truncation is None:
    return pi * a / z
  alpha = (1.0 - z)**(truncation - 1)
  return (1.0 - alpha) * pi * a / z + alpha * pi


# ---- normalisation by quadrature ------------------------------------------------------------

@pytest.mark.parametrize("truncation", [None, 1, 2, 5, 100])
def test_density_integrates_to_one_1d(truncation):
  z_exact = _exact_z_1d()
  assert 0.2 < z_exact < 0.6  # a nontrivial acceptance function
  dist = resampled.Resampled(_proposal(1), _log_a1_tf, truncation=truncation,
                             log_normalizer=np.log(z_exact))
  density = np.exp(dist.log_prob(GRID_1D[:, None].astype(np.float32)).numpy())
  assert density.shape == GRID_1D.shape
  np.testing.assert_allclose(_quad_1d(density), 1.0, atol=1e-3)


@pytest.mark.parametrize("truncation", [None, 2, 10])
def test_density_integrates_to_one_2d(truncation):
  mesh = _mesh_2d()
  z_exact = _exact_z_2d(mesh)
  assert 0.2 < z_exact < 0.6
  proposal = tfd.MultivariateNormalDiag(loc=tf.zeros([2]), scale_diag=tf.ones([2]))
  dist = resampled.Resampled(proposal, _log_a2_tf, truncation=truncation,
                             log_normalizer=np.log(z_exact))
  density = np.exp(dist.log_prob(mesh.astype(np.float32)).numpy())
  assert density.shape == mesh.shape[:2]
  np.testing.assert_allclose(_quad_2d(density), 1.0, atol=1e-3)


def test_density_with_wrong_normalizer_does_not_integrate_to_one():
  """Sanity check of the quadrature test's power: a 10% wrong Z is detected."""
  z_exact = _exact_z_1d()
  dist = resampled.Resampled(_proposal(1), _log_a1_tf, truncation=None,
                             log_normalizer=np.log(1.1 * z_exact))
  density = np.exp(dist.log_prob(GRID_1D[:, None].astype(np.float32)).numpy())
  assert abs(_quad_1d(density) - 1.0) > 0.05


@pytest.mark.parametrize("d", [1, 2])
def test_construction_time_normalizer_estimate_is_close_to_quadrature(d):
  if d == 1:
    pi, a = _pi_1d(), _a_1d()
    z_exact, second_moment = _quad_1d(pi * a), _quad_1d(pi * a**2)
    log_a = _log_a1_tf
  else:
    mesh = _mesh_2d()
    pi, a = _pi_2d(mesh), special.expit(_f2_np(mesh))
    z_exact, second_moment = _quad_2d(pi * a), _quad_2d(pi * a**2)
    log_a = _log_a2_tf
  num = 2**16
  standard_error = np.sqrt((second_moment - z_exact**2) / num)
  dist = resampled.Resampled(_proposal(d), log_a, truncation=100, num_normalizer_samples=num)
  estimate = np.exp(dist.log_normalizer.numpy())
  assert dist.log_normalizer.dtype == tf.float32
  assert abs(estimate - z_exact) < 4.0 * standard_error, (estimate, z_exact, standard_error)
  # A different seed gives a (slightly) different estimate: it is a real MC estimate.
  other = resampled.Resampled(_proposal(d), log_a, truncation=100, num_normalizer_samples=num,
                              normalizer_seed=123)
  assert other.log_normalizer.numpy() != dist.log_normalizer.numpy()
  assert abs(np.exp(other.log_normalizer.numpy()) - z_exact) < 4.0 * standard_error


# ---- Eq. 4 pointwise ------------------------------------------------------------------------

def test_truncation_one_is_exactly_the_proposal():
  proposal = _proposal(1)
  dist = resampled.Resampled(proposal, _log_a1_tf, truncation=1, log_normalizer=np.log(0.3))
  z = np.linspace(-5.0, 5.0, 101, dtype=np.float32)[:, None]
  np.testing.assert_array_equal(dist.log_prob(z).numpy(), proposal.log_prob(z).numpy())
  # Also in 2-D with an MVN proposal.
  mvn = tfd.MultivariateNormalDiag(loc=[0.5, -1.0], scale_diag=[1.0, 2.0])
  dist2 = resampled.Resampled(mvn, _log_a2_tf, truncation=1, log_normalizer=np.log(0.4))
  z2 = np.random.RandomState(0).randn(50, 2).astype(np.float32)
  np.testing.assert_array_equal(dist2.log_prob(z2).numpy(), mvn.log_prob(z2).numpy())


def test_large_truncation_approaches_untruncated():
  z_exact = _exact_z_1d()
  z = GRID_1D[::50, None]
  p_inf = resampled.Resampled(_proposal(1, np.float64), _log_a1_tf, truncation=None,
                              log_normalizer=np.log(z_exact))
  p_big = resampled.Resampled(_proposal(1, np.float64), _log_a1_tf, truncation=10**4,
                              log_normalizer=np.log(z_exact))
  np.testing.assert_allclose(p_big.log_prob(z).numpy(), p_inf.log_prob(z).numpy(), atol=1e-10)
  # The gap to p_inf shrinks monotonically with T (alpha_T = (1 - Z)^(T - 1) decreases).
  gaps = []
  for truncation in [2, 5, 20, 100]:
    p_t = resampled.Resampled(_proposal(1, np.float64), _log_a1_tf, truncation=truncation,
                              log_normalizer=np.log(z_exact))
    gaps.append(np.max(np.abs(np.exp(p_t.log_prob(z).numpy()) - np.exp(p_inf.log_prob(z)))))
  assert all(g1 > g2 for g1, g2 in zip(gaps, gaps[1:])), gaps
  assert gaps[-1] < 1e-12


@pytest.mark.parametrize("truncation", [None, 1, 2, 3, 7, 50, 10**4])
@pytest.mark.parametrize("normalizer", [0.05, 0.37, 0.9])
def test_log_prob_matches_numpy_mixture_formula(truncation, normalizer):
  z = GRID_1D[::100, None]  # [201, 1] float64
  dist = resampled.Resampled(_proposal(1, np.float64), _log_a1_tf, truncation=truncation,
                             log_normalizer=np.log(normalizer))
  expected = _numpy_p_t(stats.norm.pdf(z[:, 0]), special.expit(_f1_np(z)), normalizer,
                        truncation)
  np.testing.assert_allclose(np.exp(dist.log_prob(z).numpy()), expected, rtol=1e-9, atol=1e-300)


def test_log_prob_matches_numpy_mixture_formula_2d_float32():
  mesh = _mesh_2d()[::20, ::20].reshape(-1, 2)
  z_exact = 0.41
  mvn = tfd.MultivariateNormalDiag(loc=tf.zeros([2]), scale_diag=tf.ones([2]))
  dist = resampled.Resampled(mvn, _log_a2_tf, truncation=4, log_normalizer=np.log(z_exact))
  expected = _numpy_p_t(_pi_2d(mesh), special.expit(_f2_np(mesh)), z_exact, 4)
  np.testing.assert_allclose(dist.log_prob(mesh.astype(np.float32)).numpy(), np.log(expected),
                             rtol=1e-5, atol=1e-4)


def test_resampled_log_prob_function_per_datapoint_normalizer():
  """`resampled_log_prob` accepts a per-datapoint log Z (Algorithm 1's Z_r)."""
  rng = np.random.RandomState(1)
  log_pi = rng.randn(6)
  log_a = np.log(rng.uniform(0.01, 1.0, 6))
  zs = rng.uniform(0.1, 0.9, 6)
  for truncation in [None, 1, 3, 100]:
    got = resampled.resampled_log_prob(tf.constant(log_pi), tf.constant(log_a),
                                       tf.constant(np.log(zs)), truncation).numpy()
    expected = np.log(_numpy_p_t(np.exp(log_pi), np.exp(log_a), zs, truncation))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_log_prob_batch_shape():
  dist = resampled.Resampled(_proposal(2), _log_a2_tf, truncation=10, log_normalizer=-1.0)
  z = np.zeros([3, 4, 2], np.float32)
  assert dist.log_prob(z).shape == (3, 4)
  assert dist.event_shape == (2,)
  assert dist.batch_shape == ()


# ---- argument validation --------------------------------------------------------------------

@pytest.mark.parametrize("truncation", [0, -1, -5, 0.5, 1.5, 2.7])
def test_invalid_truncation_raises(truncation):
  with pytest.raises(ValueError, match="truncation"):
    resampled.validate_truncation(truncation)
  with pytest.raises(ValueError, match="truncation"):
    resampled.Resampled(_proposal(1), _log_a1_tf, truncation=truncation, log_normalizer=-1.0)


@pytest.mark.parametrize("truncation, expected", [(None, None), (float("inf"), None), (1, 1),
                                                  (3, 3), (5.0, 5), (np.int64(7), 7)])
def test_valid_truncation(truncation, expected):
  assert resampled.validate_truncation(truncation) == expected


@pytest.mark.parametrize("shape", [[5, 3], [5, 1], [4], []])
def test_wrong_latent_shape_raises(shape):
  dist = resampled.Resampled(_proposal(2), _log_a2_tf, truncation=10, log_normalizer=-1.0)
  with pytest.raises(ValueError, match=r"shape \[\.\.\., 2\]"):
    dist.log_prob(np.zeros(shape, np.float32))


def test_proposal_must_have_rank_one_event():
  scalar_event = tfd.Normal(0.0, 1.0)
  with pytest.raises(ValueError, match="rank-1 event"):
    resampled.Resampled(scalar_event, lambda z: tf.zeros_like(z), log_normalizer=0.0)
  matrix_event = tfd.Independent(tfd.Normal(tf.zeros([2, 3]), 1.0), 2)
  with pytest.raises(ValueError, match="rank-1 event"):
    resampled.Resampled(matrix_event, lambda z: tf.zeros(tf.shape(z)[:-2]), log_normalizer=0.0)
  batched = tfd.Independent(tfd.Normal(tf.zeros([4, 2]), 1.0), 1)
  with pytest.raises(ValueError, match="scalar batch"):
    resampled.Resampled(batched, _log_a2_tf, log_normalizer=0.0)


# ---- gradients ------------------------------------------------------------------------------

class _VariableAcceptance:
  """log a(z) = log_sigmoid(w0 sin(w1 z) + b z + c), a small variable-parameterised fn."""

  def __init__(self, dtype=tf.float32):
    self.w = tf.Variable([2.0, 1.5], dtype=dtype)
    self.b = tf.Variable(0.7, dtype=dtype)
    self.c = tf.Variable(-0.3, dtype=dtype)

  @property
  def variables(self):
    return [self.w, self.b, self.c]

  def __call__(self, z):
    z = z[..., 0]
    return tf.math.log_sigmoid(self.w[0] * tf.sin(self.w[1] * z) + self.b * z + self.c)


@pytest.mark.parametrize("truncation", [None, 2, 100])
def test_log_prob_gradients_wrt_acceptance_variables(truncation):
  acceptance = _VariableAcceptance(tf.float64)
  dist = resampled.Resampled(_proposal(1, np.float64), acceptance, truncation=truncation,
                             log_normalizer=np.log(0.4))
  z = np.linspace(-3.0, 3.0, 13)[:, None]
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(dist.log_prob(z))
  grads = tape.gradient(loss, acceptance.variables)
  assert all(g is not None for g in grads)
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  assert any(np.any(g.numpy() != 0.0) for g in grads)

  # Central finite differences of the numpy Eq. 4 reference (Z held fixed).
  def numpy_loss(w0, w1, b, c):
    a = special.expit(w0 * np.sin(w1 * z[:, 0]) + b * z[:, 0] + c)
    return np.sum(np.log(_numpy_p_t(stats.norm.pdf(z[:, 0]), a, 0.4, truncation)))

  params = np.array([2.0, 1.5, 0.7, -0.3])
  fd = []
  for i in range(4):
    step = np.zeros(4)
    step[i] = 1e-6
    fd.append((numpy_loss(*(params + step)) - numpy_loss(*(params - step))) / 2e-6)
  got = np.concatenate([grads[0].numpy(), [grads[1].numpy(), grads[2].numpy()]])
  np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-7)


def test_log_prob_gradients_float32_finite():
  acceptance = _VariableAcceptance(tf.float32)
  dist = resampled.Resampled(_proposal(1), acceptance, truncation=100)  # MC-estimated Z
  z = np.linspace(-4.0, 4.0, 9, dtype=np.float32)[:, None]
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(dist.log_prob(z))
  grads = tape.gradient(loss, acceptance.variables)
  assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)


@pytest.mark.parametrize("log_z", [-1e-6, -5.0, -20.0, -40.0])
@pytest.mark.parametrize("truncation", [2, 100])
def test_log_prob_float32_stable_for_extreme_normalizers(log_z, truncation):
  """Z -> 1 and Z -> 0 (where 1 - (1 - Z)^(T-1) ~ (T-1) Z) in float32, vs float64 numpy."""
  log_pi, log_a = np.array([-1.0, -3.0]), np.array([-0.5, -4.0])
  got = resampled.resampled_log_prob(tf.constant(log_pi, tf.float32),
                                     tf.constant(log_a, tf.float32),
                                     tf.constant(log_z, tf.float32), truncation).numpy()
  log_alpha = (truncation - 1) * np.log1p(-np.exp(log_z))
  expected = log_pi + np.log(-np.expm1(log_alpha) * np.exp(log_a - log_z) + np.exp(log_alpha))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


# ---- regressions: zero acceptance at T = 1, numpy infinity as truncation -------------------

def test_truncation_one_with_zero_acceptance_is_proposal():
  got = resampled.resampled_log_prob(tf.constant([-1.0, -2.0]), tf.constant([-np.inf, -1.0]),
                                     tf.constant(np.log(0.3), tf.float32), 1).numpy()
  np.testing.assert_array_equal(got, [-1.0, -2.0])


def test_numpy_float32_infinite_truncation_means_untruncated():
  assert resampled.validate_truncation(np.float32("inf")) is None
