"""Tests of SIR, Langevin dynamics and the Reweighted (NCP) distribution.

Source: Aneja et al. (2021), Sec. 4 / 4.3 and footnote 5. References are computed independently
in numpy/scipy (float64): target densities in closed form, normalizers and bin probabilities by
trapezoidal quadrature, tests of fit by Kolmogorov-Smirnov / chi-square with fixed seeds.
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate
from scipy import special
from scipy import stats

from tfp_priors import samplers
from tfp_priors.distributions import Reweighted
from tfp_priors.estimators import estimate_log_normalizer

tfd = tfp.distributions

GRID_1D = np.linspace(-12.0, 12.0, 24001)
GRID_2D = np.linspace(-8.0, 8.0, 641)


def _normal(loc, scale):
  loc = tf.constant(loc, tf.float32)
  return tfd.Independent(tfd.Normal(loc, tf.broadcast_to(tf.constant(scale, tf.float32),
                                                         loc.shape)), 1)


BASE_1D = _normal([0.0], 1.0)
TARGET_1D = _normal([1.5], 0.5)  # N(1.5, 0.5^2)


def _log_ratio_gaussian(z):  # log target - log base, positive near z = 2 (max ~2.19 nats)
  return TARGET_1D.log_prob(z) - BASE_1D.log_prob(z)


# ---- effective sample size (footnote 5) --------------------------------------------------------

def test_ess_flat_weights_equal_m():
  for m in (1, 7, 5000):
    np.testing.assert_allclose(samplers.effective_sample_size(tf.fill([3, m], -4.2)), m,
                               rtol=1e-4)


@pytest.mark.parametrize("off", [-np.inf, -1e9])
def test_ess_one_hot_weights_equal_one(off):
  log_w = np.full([2, 100], off, np.float32)
  log_w[0, 17] = 0.0
  log_w[1, 99] = 50.0
  np.testing.assert_allclose(samplers.effective_sample_size(log_w), 1.0, rtol=1e-6)


def test_ess_random_weights_between_one_and_m_and_matches_numpy():
  rng = np.random.default_rng(0)
  log_w = rng.normal(scale=2.0, size=[5, 1000])
  w_hat = np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True))
  expected = 1.0 / np.sum(w_hat**2, axis=-1)
  ess = samplers.effective_sample_size(log_w.astype(np.float32)).numpy()
  np.testing.assert_allclose(ess, expected, rtol=1e-4)
  assert np.all(ess > 1.0) and np.all(ess < 1000.0)
  # Invariant to the scale of the weights (adding a constant to the logs), and huge logs do
  # not overflow; `axis` selects the weights' axis.
  np.testing.assert_allclose(samplers.effective_sample_size(log_w + 500.0), expected, rtol=1e-9)
  np.testing.assert_allclose(  # float32 logs near 500 carry ~3e-5 nats of rounding
      samplers.effective_sample_size((log_w + 500.0).astype(np.float32)), expected, rtol=1e-3)
  np.testing.assert_allclose(samplers.effective_sample_size(log_w.T, axis=0), expected,
                             rtol=1e-6)


# ---- SIR -----------------------------------------------------------------------------------

def test_sir_approaches_target_as_m_grows():
  """M = 1 gives the base N(0, 1); the error to the target N(1.5, 0.5^2) falls with M."""
  n = 4000
  ks, mean_err, std_err = [], [], []
  for m in (1, 10, 1000):
    result = samplers.sampling_importance_resampling(
        BASE_1D, _log_ratio_gaussian, n, num_proposals=m, seed=11)
    x = result.samples.numpy()[:, 0]
    assert result.samples.shape == (n, 1)
    ks.append(stats.kstest(x, stats.norm(1.5, 0.5).cdf))
    mean_err.append(abs(x.mean() - 1.5))
    std_err.append(abs(x.std() - 0.5))
    if m == 1:  # plain base samples
      assert stats.kstest(x, stats.norm(0.0, 1.0).cdf).pvalue > 1e-3
      np.testing.assert_allclose(result.effective_sample_size, 1.0)
  assert ks[0].statistic > ks[1].statistic > ks[2].statistic
  assert mean_err[0] > mean_err[1] > mean_err[2]
  assert std_err[0] > std_err[1] > std_err[2]
  assert ks[2].pvalue > 1e-3  # M = 1000: indistinguishable from the target with 4000 samples
  assert ks[1].pvalue < 1e-6  # M = 10: clearly biased


def test_sir_two_component_mixture_2d_chi_square():
  """2-D target 0.3 N([-2, 0], 0.5^2 I) + 0.7 N([1.5, 1], 0.7^2 I) from base N(0, 2^2 I)."""
  weights = np.array([0.3, 0.7])
  locs = np.array([[-2.0, 0.0], [1.5, 1.0]])
  scales = np.array([0.5, 0.7])
  target = tfd.MixtureSameFamily(
      tfd.Categorical(probs=tf.constant(weights, tf.float32)),
      tfd.Independent(tfd.Normal(tf.constant(locs, tf.float32),
                                 tf.constant(scales[:, None] * np.ones([2, 2]), tf.float32)), 1))
  base = _normal([0.0, 0.0], 2.0)
  result = samplers.sampling_importance_resampling(
      base, lambda z: target.log_prob(z) - base.log_prob(z), 3000, num_proposals=2000, seed=5)
  z = result.samples.numpy()
  edges1 = np.array([-np.inf, -2.5, -2.0, -1.5, 0.0, 1.0, 1.5, 2.0, np.inf])
  edges2 = np.array([-np.inf, -0.5, 0.0, 0.5, 1.0, 1.5, np.inf])
  # Exact rectangle probabilities: the components are diagonal Gaussians.
  probs = 0.0
  for w, loc, s in zip(weights, locs, scales):
    p1 = np.diff(stats.norm(loc[0], s).cdf(edges1))
    p2 = np.diff(stats.norm(loc[1], s).cdf(edges2))
    probs = probs + w * np.outer(p1, p2)
  counts, _, _ = np.histogram2d(z[:, 0], z[:, 1], bins=[edges1, edges2])
  expected = probs.ravel() * len(z)
  keep = expected >= 5.0
  observed = np.append(counts.ravel()[keep], counts.ravel()[~keep].sum())
  expected = np.append(expected[keep], expected[~keep].sum())
  chi2 = stats.chisquare(observed, expected)
  assert chi2.pvalue > 1e-3, chi2
  # The mode weights are recovered: P(z1 < 0) = 0.3 + 0.7 * Phi(-1.5 / 0.7) under the target.
  p_left = 0.3 * stats.norm(-2, 0.5).cdf(0) + 0.7 * stats.norm(1.5, 0.7).cdf(0)
  assert abs(np.mean(z[:, 0] < 0) - p_left) < 4 * np.sqrt(p_left * (1 - p_left) / len(z))


def test_sir_log_mean_weight_estimates_normalizer():
  """exp(log_mean_weight) is unbiased for Z = E_base[r]; here r = 2 target / base, Z = 2."""
  result = samplers.sampling_importance_resampling(
      BASE_1D, lambda z: _log_ratio_gaussian(z) + np.log(2.0), 2000, num_proposals=50, seed=3)
  estimates = np.exp(result.log_mean_weight.numpy().astype(np.float64))
  se = estimates.std() / np.sqrt(len(estimates))
  assert abs(estimates.mean() - 2.0) < 4 * se
  assert result.log_mean_weight.shape == (2000,)
  ess = result.effective_sample_size.numpy()
  assert ess.shape == (2000,) and np.all(ess >= 1.0 - 1e-5) and np.all(ess <= 50.0 + 1e-3)


def test_sir_deterministic_and_chunking():
  def draw(n, seed, cap=2**20, m=10):
    return samplers.sampling_importance_resampling(
        BASE_1D, _log_ratio_gaussian, n, num_proposals=m, seed=seed,
        max_proposals_per_chunk=cap).samples.numpy()

  np.testing.assert_array_equal(draw(50, 7), draw(50, 7))
  np.testing.assert_array_equal(draw(50, [1, 2]), draw(50, tf.constant([1, 2])))
  assert not np.array_equal(draw(50, 7), draw(50, 8))
  assert draw(7, 1, cap=30).shape == (7, 1)  # chunks of 3 samples, last one partial
  assert draw(5, 1, cap=3).shape == (5, 1)  # M > cap: one sample per chunk
  assert draw(0, 1).shape == (0, 1)
  # Chunked and unchunked draws follow the same distribution (the target, at M = 500).
  chunked = draw(2000, 4, cap=50000, m=500)[:, 0]  # 20 chunks of 100
  assert stats.kstest(chunked, stats.norm(1.5, 0.5).cdf).pvalue > 1e-3


def test_sir_errors():
  with pytest.raises(ValueError, match=r"at least one proposal; got M=0\. Set num_proposals "
                     r">= 1 \(Aneja et al\. use 5,000\)"):
    samplers.sampling_importance_resampling(BASE_1D, _log_ratio_gaussian, 10, num_proposals=0)
  with pytest.raises(ValueError, match="num_samples must be >= 0"):
    samplers.sampling_importance_resampling(BASE_1D, _log_ratio_gaussian, -1)
  with pytest.raises(ValueError, match="max_proposals_per_chunk"):
    samplers.sampling_importance_resampling(BASE_1D, _log_ratio_gaussian, 1,
                                            max_proposals_per_chunk=0)

  @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
  def dynamic(n, m):
    return samplers.sampling_importance_resampling(BASE_1D, _log_ratio_gaussian, n, m,
                                                   seed=1).samples

  assert dynamic(tf.constant(4), tf.constant(3)).shape == (4, 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match="at least one proposal"):
    dynamic(tf.constant(4), tf.constant(0))
  with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be >= 0"):
    dynamic(tf.constant(-1), tf.constant(3))


# ---- Langevin dynamics (Sec. 4.3) ---------------------------------------------------------------

MU = np.array([1.0, -2.0], np.float32)
SIGMA = np.array([0.5, 1.0], np.float32)


def _gaussian_energy(z):  # E(z) = sum (z - mu)^2 / (2 sigma^2), nats
  return tf.reduce_sum(tf.square(z - MU) / (2.0 * SIGMA**2), axis=-1)


def _check_moments(z, mu, sigma, rel_var_tol):
  n = z.shape[0]
  np.testing.assert_array_less(np.abs(z.mean(0) - mu), 4.0 * sigma / np.sqrt(n))
  np.testing.assert_allclose(z.var(0), sigma**2, rtol=rel_var_tol)


@tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32), tf.TensorSpec([], tf.float32),
                              tf.TensorSpec([], tf.int32)])
def _langevin_graph(z0, step_size, num_steps):
  return samplers.langevin_dynamics(_gaussian_energy, z0, step_size, num_steps, seed=[3, 4])


def test_langevin_keeps_gaussian_target_invariant():
  """Started from N(mu, sigma^2), 100 steps with lambda = 0.01 min sigma^2 stay N(mu, sigma^2)."""
  z0 = MU + SIGMA * np.random.default_rng(0).standard_normal([10000, 2]).astype(np.float32)
  z = _langevin_graph(z0, tf.constant(0.01 * SIGMA.min()**2), tf.constant(100)).numpy()
  assert np.abs(z - z0).mean() > 0.05  # the chains did move
  # Relative SE of a variance from 10^4 samples is 1.4%; ULA's bias is lambda / (4 sigma^2).
  _check_moments(z, MU, SIGMA, rel_var_tol=0.06)


def test_langevin_converges_from_far_away():
  z0 = np.full([10000, 2], 15.0, np.float32)
  step = 0.1 * SIGMA.min()**2  # slowest direction contracts by 1 - lambda / (2 sigma^2) a step
  z = _langevin_graph(z0, tf.constant(step), tf.constant(1000)).numpy()
  # ULA's stationary variance is sigma^2 / (1 - lambda / (4 sigma^2)): at most 2.6% above.
  _check_moments(z, MU, SIGMA, rel_var_tol=0.07)


def test_langevin_step_count_determinism_and_eager():
  z0 = np.zeros([4, 2], np.float32)
  np.testing.assert_array_equal(_langevin_graph(z0, tf.constant(0.1), tf.constant(0)), z0)
  a = samplers.langevin_dynamics(_gaussian_energy, z0, 0.1, 5, seed=9)
  b = samplers.langevin_dynamics(_gaussian_energy, z0, 0.1, 5, seed=9)
  np.testing.assert_array_equal(a, b)
  # One step by hand: z1 = z0 - 0.5 lambda grad E(z0) + sqrt(lambda) eps.
  one = samplers.langevin_dynamics(_gaussian_energy, z0, 0.1, 1, seed=9).numpy()
  noise = tf.random.stateless_normal(
      [4, 2], tf.random.experimental.stateless_fold_in(tf.constant([0, 9]), 0)).numpy()
  grad = (z0 - MU) / SIGMA**2
  np.testing.assert_allclose(one, z0 - 0.05 * grad + np.sqrt(0.1) * noise, rtol=1e-5, atol=1e-6)


def test_langevin_errors():
  z0 = np.zeros([3, 2], np.float32)
  for bad in (0.0, -0.1):
    with pytest.raises(ValueError, match="Langevin dynamics needs a positive step size lambda; "
                       "got"):
      samplers.langevin_dynamics(_gaussian_energy, z0, bad, 10)
  with pytest.raises(ValueError, match="needs num_steps >= 0; got -1"):
    samplers.langevin_dynamics(_gaussian_energy, z0, 0.1, -1)
  with pytest.raises(ValueError, match="does not depend on z"):
    samplers.langevin_dynamics(lambda z: tf.zeros([3]), z0, 0.1, 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match="positive step size lambda"):
    _langevin_graph(z0, tf.constant(-0.1), tf.constant(3))
  with pytest.raises(tf.errors.InvalidArgumentError, match="num_steps >= 0"):
    _langevin_graph(z0, tf.constant(0.1), tf.constant(-2))


# ---- Reweighted distribution (NCP, Sec. 4) -------------------------------------------------------

def _log_r_1d_np(z):  # multimodal, positive and negative (up to ~2 + z nats)
  return 2.0 * np.sin(3.0 * z) + z


def _log_r_1d(z):
  z = z[..., 0]
  return 2.0 * tf.sin(3.0 * z) + z


def _log_r_2d_np(z):
  return 1.5 * np.sin(2.0 * z[..., 0]) * np.cos(z[..., 1]) + 0.5 * z[..., 0] - 0.3 * z[..., 1]**2


def _log_r_2d(z):
  return 1.5 * tf.sin(2.0 * z[..., 0]) * tf.cos(z[..., 1]) + 0.5 * z[..., 0] - 0.3 * z[..., 1]**2


def _unnormalized_1d_np(z):
  return stats.norm.pdf(z) * np.exp(_log_r_1d_np(z))


def _log_z_1d():
  return np.log(np.trapezoid(_unnormalized_1d_np(GRID_1D), GRID_1D))


def test_reweighted_log_prob_integrates_to_one_1d_and_estimator_agrees():
  log_z = _log_z_1d()
  dist = Reweighted(BASE_1D, _log_r_1d, log_normalizer=log_z)
  density = np.exp(dist.log_prob(GRID_1D[:, None].astype(np.float32)).numpy().astype(np.float64))
  np.testing.assert_allclose(np.trapezoid(density, GRID_1D), 1.0, rtol=1e-4)
  # The library's evaluation estimator handles log r > 0 (r up to ~e^5 here).
  estimate = estimate_log_normalizer(BASE_1D, _log_r_1d, num_samples=2**18, chunk_size=2**16,
                                     seed=0)
  assert abs(float(estimate.log_normalizer) - log_z) < 4 * float(
      estimate.log_normalizer_standard_error)
  # Energy: log p(z) = -E(z) - log Z.
  z = tf.constant([[-1.0], [0.3], [2.0]])
  np.testing.assert_allclose(dist.log_prob(z), -dist.energy(z) - log_z, rtol=1e-5)


def test_reweighted_log_prob_integrates_to_one_2d():
  z1, z2 = np.meshgrid(GRID_2D, GRID_2D, indexing="ij")
  mesh = np.stack([z1, z2], -1)
  unnormalized = np.prod(stats.norm.pdf(mesh), -1) * np.exp(_log_r_2d_np(mesh))
  log_z = np.log(np.trapezoid(np.trapezoid(unnormalized, GRID_2D, axis=1), GRID_2D))
  dist = Reweighted(_normal([0.0, 0.0], 1.0), _log_r_2d, log_normalizer=log_z)
  density = np.exp(dist.log_prob(mesh.astype(np.float32)).numpy().astype(np.float64))
  total = np.trapezoid(np.trapezoid(density, GRID_2D, axis=1), GRID_2D)
  np.testing.assert_allclose(total, 1.0, rtol=1e-4)


def test_reweighted_sample_follows_density_chi_square():
  log_z = _log_z_1d()
  dist = Reweighted(BASE_1D, _log_r_1d, log_normalizer=log_z, num_proposals=2000)
  z = dist.sample(4000, seed=21).numpy()[:, 0]
  edges = np.concatenate([[-np.inf], np.linspace(-3.0, 4.5, 31), [np.inf]])
  cdf = integrate.cumulative_trapezoid(_unnormalized_1d_np(GRID_1D) / np.exp(log_z), GRID_1D,
                                       initial=0.0)
  probs = np.diff(np.interp(edges, GRID_1D, cdf, left=0.0, right=1.0))
  counts, _ = np.histogram(z, edges)
  expected = probs * len(z)
  keep = expected >= 5.0
  observed = np.append(counts[keep], counts[~keep].sum())
  expected = np.append(expected[keep], expected[~keep].sum())
  chi2 = stats.chisquare(observed, expected * observed.sum() / expected.sum())
  assert chi2.pvalue > 1e-3, chi2
  # The base alone is far from it (the test has power).
  base_counts, _ = np.histogram(BASE_1D.sample(4000, seed=21).numpy()[:, 0], edges)
  assert stats.chisquare(np.append(base_counts[keep], base_counts[~keep].sum()),
                         expected * observed.sum() / expected.sum()).pvalue < 1e-10


def test_reweighted_shapes_diagnostics_and_langevin():
  dist = Reweighted(BASE_1D, _log_ratio_gaussian, num_proposals=500)
  assert dist.event_shape == [1] and dist.batch_shape == []
  assert dist.reparameterization_type == tfd.NOT_REPARAMETERIZED
  assert dist.sample([2, 3], seed=1).shape == (2, 3, 1)
  # Python int seeds are deterministic (mapped to a stateless pair), for SIR and Langevin.
  np.testing.assert_array_equal(dist.sample(5, seed=1), dist.sample(5, seed=1))
  np.testing.assert_array_equal(dist.sample_langevin(5, 0.1, 2, seed=1),
                                dist.sample_langevin(5, 0.1, 2, seed=1))
  assert dist.log_prob(tf.zeros([4, 5, 1])).shape == (4, 5)
  with pytest.raises(ValueError, match=r"shape \[\.\.\., 1\]"):
    dist.log_prob(tf.zeros([4, 2]))
  diagnostics = dist.sample_with_diagnostics(100, seed=2)
  assert diagnostics.samples.shape == (100, 1)
  # r = target / base: Z = 1, ESS well above 1.
  assert abs(np.mean(np.exp(diagnostics.log_mean_weight)) - 1.0) < 0.1
  assert np.mean(diagnostics.effective_sample_size) > 50
  # Langevin on E = -log target: from base samples to N(1.5, 0.5^2).
  z = tf.function(lambda: dist.sample_langevin(10000, 0.025, 400, seed=3))().numpy()
  _check_moments(z, np.array([1.5]), np.array([0.5]), rel_var_tol=0.07)


def test_reweighted_errors():
  with pytest.raises(ValueError, match=r"at least one proposal; got M=0\. Set num_proposals >= "
                     r"1 \(Aneja et al\. use 5,000\)"):
    Reweighted(BASE_1D, _log_ratio_gaussian, num_proposals=0)
  with pytest.raises(ValueError, match="rank-1 event shape"):
    Reweighted(tfd.Normal(0.0, 1.0), _log_ratio_gaussian)
  dist = Reweighted(BASE_1D, _log_ratio_gaussian)
  with pytest.raises(ValueError, match="positive step size lambda; got 0"):
    dist.sample_langevin(10, 0.0, 5)


def test_sampling_in_tf_function_and_saved_model(tmp_path):
  """SIR and Langevin with tensor num_samples / step_size / num_steps, through a SavedModel."""
  dist = Reweighted(BASE_1D, _log_ratio_gaussian, num_proposals=200)

  class Sampler(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def sir(self, n):
      return dist.sample(n, seed=[1, 2])

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                                  tf.TensorSpec([], tf.int32)])
    def langevin(self, n, step_size, num_steps):
      return dist.sample_langevin(n, step_size, num_steps, seed=[3, 4])

  module = Sampler()
  tf.saved_model.save(module, str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  for m in (module, loaded):
    assert m.sir(tf.constant(6)).shape == (6, 1)
    assert m.sir(tf.constant(0)).shape == (0, 1)
    assert m.langevin(tf.constant(5), tf.constant(0.01), tf.constant(3)).shape == (5, 1)
  np.testing.assert_array_equal(module.sir(tf.constant(6)), loaded.sir(tf.constant(6)))
  x = loaded.sir(tf.constant(3000)).numpy()[:, 0]
  assert stats.kstest(x, stats.norm(1.5, 0.5).cdf).pvalue > 1e-3
  with pytest.raises(tf.errors.InvalidArgumentError, match="positive step size"):
    loaded.langevin(tf.constant(5), tf.constant(-1.0), tf.constant(3))
