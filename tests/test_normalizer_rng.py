"""Tests of the normal samplers of the log Z estimator (`normalizer.standard_normals`, the
`normal_sampler=` of `estimate_log_normalizer`).

References are math, not printed numbers: Kolmogorov-Smirnov against N(0, 1); E_N(mu, s^2)
[exp(w . z)] = exp(w . mu + |s w|^2 / 2); a 1-D sigmoid acceptance by trapezoidal quadrature;
the reported standard error against the spread of the estimate over 20 seeds.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special
from scipy import stats

from tfp_priors.estimators import normalizer

tfd = tfp.distributions
SAMPLERS = normalizer.NORMAL_SAMPLERS  # box_muller, normal, ndtri, proposal
DRAWS = normalizer.NORMAL_SAMPLERS[:3]
W = np.array([0.4, -0.3, 0.2, 0.1, -0.25], np.float32)  # |w|^2 = 0.3525


def _standard(d):
  return tfd.MultivariateNormalDiag(loc=tf.zeros([d]))


def _log_exp_linear(z):
  return tf.linalg.matvec(z, tf.constant(W, z.dtype))


def _log_sigmoid_1d(z):
  return tf.math.log_sigmoid(4.0 * tf.sin(3.0 * z[..., 0]) - 1.0)


def _sigmoid_1d_moments():
  grid = np.linspace(-10.0, 10.0, 20001)
  pi, a = stats.norm.pdf(grid), special.expit(4.0 * np.sin(3.0 * grid) - 1.0)
  return np.trapezoid(pi * a, grid), np.trapezoid(pi * a**2, grid)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("sampler", DRAWS)
def test_standard_normals_are_standard_normal(sampler, dtype):
  """10^5 draws pass KS against N(0, 1); Box-Muller's cos and sin halves (the same uniforms)
  are uncorrelated, also in their squares (independent, not just uncorrelated)."""
  n = 10**5
  z = normalizer.standard_normals([n // 5, 5], tf.constant([7, 11]), dtype, sampler).numpy()
  assert z.shape == (n // 5, 5) and z.dtype == dtype.as_numpy_dtype
  assert np.all(np.isfinite(z))
  assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
  flat = z.ravel()
  assert abs(flat.mean()) < 4.0 / math.sqrt(n)
  assert abs(flat.var() - 1.0) < 4.0 * math.sqrt(2.0 / n)
  first, second = flat[:n // 2], flat[n // 2:]
  for x, y in ((first, second), (first**2, second**2)):
    assert abs(np.corrcoef(x, y)[0, 1]) < 4.0 / math.sqrt(n // 2)


@pytest.mark.parametrize("shape", [[3], [7, 3], [2, 3, 5]])
def test_box_muller_odd_sizes_and_seeds(shape):
  a = normalizer.standard_normals(shape, tf.constant([1, 2]), sampler="box_muller")
  b = normalizer.standard_normals(shape, tf.constant([1, 2]), sampler="box_muller")
  c = normalizer.standard_normals(shape, tf.constant([1, 3]), sampler="box_muller")
  assert a.shape == shape
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.array_equal(a.numpy(), c.numpy())


@pytest.mark.parametrize("antithetic", [False, True])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_exp_linear_normalizer_within_4_standard_errors(sampler, antithetic):
  """a(z) = exp(w . z) under N(0, I_5): Z = exp(|w|^2 / 2)."""
  est = normalizer.estimate_log_normalizer(_standard(5), _log_exp_linear, 2 * 10**5, 5 * 10**4,
                                           antithetic=antithetic, seed=3, normal_sampler=sampler)
  z_exact = math.exp(0.5 * float(np.sum(W.astype(np.float64)**2)))
  assert abs(float(est.normalizer) - z_exact) < 4.0 * float(est.standard_error)
  if not antithetic:  # SE from Var[exp(w . z)] = exp(2 |w|^2) - exp(|w|^2)
    exact_se = math.sqrt((z_exact**4 - z_exact**2) / 2e5)
    assert float(est.standard_error) == pytest.approx(exact_se, rel=0.1)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("family", ["mvn_diag", "independent_normal"])
def test_affine_proposals_are_pushed_through_loc_and_scale(sampler, family):
  """N(mu, diag s^2) proposals: E[exp(w . z)] = exp(w . mu + |s w|^2 / 2)."""
  mu = np.array([0.5, -1.0, 0.0, 2.0, 0.3], np.float32)
  s = np.array([0.5, 2.0, 1.0, 0.7, 1.5], np.float32)
  if family == "mvn_diag":
    proposal = tfd.MultivariateNormalDiag(mu, s)
  else:
    proposal = tfd.Independent(tfd.Normal(mu, s), 1)
  est = normalizer.estimate_log_normalizer(proposal, _log_exp_linear, 2 * 10**5, 5 * 10**4,
                                           seed=4, normal_sampler=sampler)
  w = W.astype(np.float64)
  z_exact = math.exp(float(w @ mu + 0.5 * np.sum((s * w)**2)))
  assert abs(float(est.normalizer) - z_exact) < 4.0 * float(est.standard_error)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sigmoid_1d_against_quadrature(sampler):
  z_exact, second = _sigmoid_1d_moments()
  proposal = tfd.Independent(tfd.Normal(tf.zeros([1]), tf.ones([1])), 1)
  est = normalizer.estimate_log_normalizer(proposal, _log_sigmoid_1d, 2 * 10**5, 5 * 10**4,
                                           seed=5, normal_sampler=sampler)
  exact_se = math.sqrt((second - z_exact**2) / 2e5)
  assert abs(float(est.normalizer) - z_exact) < 4.0 * exact_se
  assert float(est.standard_error) == pytest.approx(exact_se, rel=0.05)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_standard_error_matches_spread_over_seeds(sampler):
  """Over 20 seeds the estimates scatter like the reported SE (antithetic units): the ratio of
  their standard deviation to the mean SE is 1 within the sampling error of a 20-draw standard
  deviation (~16%; band ~3 of those), and they centre on the quadrature Z."""
  z_exact, _ = _sigmoid_1d_moments()
  proposal = _standard(1)
  estimates, errors = [], []
  for seed in range(20):
    est = normalizer.estimate_log_normalizer(proposal, _log_sigmoid_1d, 4000, 1000,
                                             antithetic=True, seed=seed, normal_sampler=sampler)
    estimates.append(float(est.normalizer))
    errors.append(float(est.standard_error))
  ratio = np.std(estimates, ddof=1) / np.mean(errors)
  assert 0.6 < ratio < 1.5, ratio
  assert abs(np.mean(estimates) - z_exact) < 4.0 * np.mean(errors) / math.sqrt(20)


def test_normal_sampler_reproduces_proposal_sample_to_the_bit():
  """'normal' draws what tfd.MultivariateNormalDiag.sample draws, without its bijector."""
  kwargs = dict(num_samples=4 * 10**4, chunk_size=10**4, antithetic=True, seed=6)
  a = normalizer.estimate_log_normalizer(_standard(3), _log_exp_linear_3, normal_sampler="normal",
                                         **kwargs)
  b = normalizer.estimate_log_normalizer(_standard(3), _log_exp_linear_3,
                                         normal_sampler="proposal", **kwargs)
  c = normalizer.estimate_log_normalizer(_standard(3), _log_exp_linear_3, **kwargs)
  assert float(a.normalizer) == float(b.normalizer)
  assert float(a.standard_error) == float(b.standard_error)
  assert float(c.normalizer) != float(a.normalizer)  # the default draws otherwise (Box-Muller)


def _log_exp_linear_3(z):
  return tf.linalg.matvec(z, tf.constant(W[:3], z.dtype))


class _ShiftedNormal(tfd.MultivariateNormalDiag):
  """A subclass that samples otherwise: the fast path must not apply to it."""

  def _sample_n(self, n, seed=None):
    return super()._sample_n(n, seed=seed) + 10.0


@pytest.mark.parametrize("proposal", [
    _ShiftedNormal(loc=tf.zeros([3])),
    tfd.Independent(tfd.StudentT(5.0, tf.zeros([3]), 1.0), 1),
    tfd.Sample(tfd.Normal(0.0, 1.0), 3),
])
def test_other_proposals_fall_back_to_their_own_sampling(proposal):
  kwargs = dict(num_samples=10**4, chunk_size=10**4, seed=8)
  estimates = {s: float(normalizer.estimate_log_normalizer(
      proposal, _log_exp_linear_3, normal_sampler=s, **kwargs).normalizer) for s in SAMPLERS}
  assert len(set(estimates.values())) == 1, estimates


def test_sampling_function_proposal_is_used_as_is():
  calls = []

  def sample(n, seed):
    calls.append(n)
    return tf.random.stateless_normal([n, 3], seed) + 1.0
  est = normalizer.estimate_log_normalizer(sample, _log_exp_linear_3, 10**4, 10**4, seed=1,
                                           normal_sampler="box_muller")
  w = W[:3].astype(np.float64)
  z_exact = math.exp(float(w.sum() + 0.5 * w @ w))
  assert calls and abs(float(est.normalizer) - z_exact) < 4.0 * float(est.standard_error)


def test_unknown_sampler_raises():
  with pytest.raises(ValueError, match="normal_sampler"):
    normalizer.estimate_log_normalizer(_standard(1), _log_sigmoid_1d, 100, 100,
                                       normal_sampler="threefry")
  with pytest.raises(ValueError, match="unknown normal sampler"):
    normalizer.standard_normals([4], tf.constant([1, 1]), sampler="zig")
