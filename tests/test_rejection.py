"""Tests of tfp_priors.samplers.rejection (exact truncated rejection sampling of p_T, Eq. 4).

The reference CDF of p_T is computed independently by cumulative trapezoidal quadrature of the
numpy mixture formula p_T = (1 - alpha_T) pi a / Z + alpha_T pi, alpha_T = (1 - Z)^(T - 1),
with Z = E_pi[a] itself from quadrature.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate
from scipy import special
from scipy import stats

from tfp_priors.distributions import resampled
from tfp_priors.samplers import rejection

tfd = tfp.distributions

GRID = np.linspace(-10.0, 10.0, 40001)
NUM_KS = 5000
KS_P_VALUE = 1e-3


def _f_np(z):
  return 4.0 * np.sin(3.0 * z) - 1.0


def _log_a_tf(z):  # z [..., 1] -> [...]
  return tf.math.log_sigmoid(4.0 * tf.sin(3.0 * z[..., 0]) - 1.0)


def _proposal():
  return tfd.Independent(tfd.Normal(tf.zeros([1]), tf.ones([1])), 1)


def _exact_z():
  return np.trapezoid(stats.norm.pdf(GRID) * special.expit(_f_np(GRID)), GRID)


def _cdf(truncation, z_exact=None):
  """CDF of p_T (or p_inf for truncation None) on GRID, as a callable for scipy.stats.kstest."""
  z_exact = _exact_z() if z_exact is None else z_exact
  pi, a = stats.norm.pdf(GRID), special.expit(_f_np(GRID))
  if truncation is None:
    density = pi * a / z_exact
  else:
    alpha = (1.0 - z_exact)**(truncation - 1)
    density = (1.0 - alpha) * pi * a / z_exact + alpha * pi
  cdf = integrate.cumulative_trapezoid(density, GRID, initial=0.0)
  assert abs(cdf[-1] - 1.0) < 1e-6
  return lambda x: np.interp(x, GRID, cdf)


def _sample(truncation, num=NUM_KS, seed=(1, 2), block_size=16, log_a=_log_a_tf, **kwargs):
  return rejection.truncated_rejection_sample(
      _proposal(), log_a, num, truncation, seed=tf.constant(seed, tf.int32),
      block_size=block_size, **kwargs)


def test_acceptance_function_is_in_the_fast_regime():
  assert 0.2 < _exact_z() < 0.5


@pytest.mark.parametrize("truncation", [2, 5, None])
def test_samples_follow_p_t_ks(truncation):
  result = _sample(truncation)
  samples = result.samples.numpy()
  assert samples.shape == (NUM_KS, 1)
  assert np.all(np.isfinite(samples))
  p_value = stats.kstest(samples[:, 0], _cdf(truncation)).pvalue
  assert p_value > KS_P_VALUE, p_value


def test_ks_has_power_to_tell_truncations_apart():
  """Samples of p_2 are rejected against p_inf and against the proposal, so the KS test above
  really distinguishes the truncation levels."""
  samples = _sample(2).samples.numpy()[:, 0]
  assert stats.kstest(samples, _cdf(None)).pvalue < KS_P_VALUE
  assert stats.kstest(samples, stats.norm.cdf).pvalue < KS_P_VALUE
  untruncated = _sample(None).samples.numpy()[:, 0]
  assert stats.kstest(untruncated, stats.norm.cdf).pvalue < KS_P_VALUE


def test_truncation_one_samples_the_proposal():
  result = _sample(1)
  assert stats.kstest(result.samples.numpy()[:, 0], stats.norm.cdf).pvalue > KS_P_VALUE
  assert int(result.num_proposals) == 0  # no coin is flipped, the 1st candidate is forced
  assert int(result.num_accepted) == 0


@pytest.mark.parametrize("truncation", [5, None])
def test_acceptance_rate_matches_quadrature_normalizer(truncation):
  z_exact = _exact_z()
  result = _sample(truncation, num=20000, seed=(7, 8))
  num_proposals, num_accepted = int(result.num_proposals), int(result.num_accepted)
  rate = float(result.acceptance_rate)
  assert rate == pytest.approx(num_accepted / num_proposals)
  standard_error = np.sqrt(z_exact * (1.0 - z_exact) / num_proposals)
  assert abs(rate - z_exact) < 4.0 * standard_error, (rate, z_exact, standard_error)
  if truncation is None:
    assert num_accepted == 20000  # every chain accepts by a coin flip
  else:
    assert num_accepted < 20000
    assert num_proposals <= (truncation - 1) * 20000


def test_truncation_two_makes_exactly_one_coin_flip_per_chain():
  z_exact = _exact_z()
  num = 20000
  result = _sample(2, num=num, seed=(3, 4))
  assert int(result.num_proposals) == num
  accepted = int(result.num_accepted)
  # num_accepted ~ Binomial(num, Z).
  assert abs(accepted - num * z_exact) < 4.0 * np.sqrt(num * z_exact * (1 - z_exact))


@pytest.mark.parametrize("truncation", [2, 5, 33])
@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_num_proposals_counts_only_coin_flips(truncation, block_size):
  num = 300
  # a(z) = 0: every coin flip fails and the T-th candidate is forced.
  never = _sample(truncation, num=num, block_size=block_size,
                  log_a=lambda z: tf.fill(tf.shape(z)[:-1], -np.inf))
  assert int(never.num_proposals) == (truncation - 1) * num
  assert int(never.num_accepted) == 0
  assert float(never.acceptance_rate) == 0.0
  # a(z) = 1: the first coin flip of every chain succeeds.
  always = _sample(truncation, num=num, block_size=block_size,
                   log_a=lambda z: tf.zeros(tf.shape(z)[:-1]))
  assert int(always.num_proposals) == num
  assert int(always.num_accepted) == num
  assert float(always.acceptance_rate) == 1.0


def test_forced_candidates_follow_the_proposal():
  """With a(z) = 0 every sample is the forced T-th candidate, so it is distributed as pi."""
  samples = _sample(5, log_a=lambda z: tf.fill(tf.shape(z)[:-1], -np.inf)).samples.numpy()
  assert stats.kstest(samples[:, 0], stats.norm.cdf).pvalue > KS_P_VALUE


def test_same_seed_is_deterministic_and_different_seeds_differ():
  first = _sample(5, num=500, seed=(11, 12))
  second = _sample(5, num=500, seed=(11, 12))
  np.testing.assert_array_equal(first.samples.numpy(), second.samples.numpy())
  assert int(first.num_proposals) == int(second.num_proposals)
  assert int(first.num_accepted) == int(second.num_accepted)
  other = _sample(5, num=500, seed=(11, 13))
  assert not np.array_equal(first.samples.numpy(), other.samples.numpy())
  # A Python int is a fixed stateless seed too.
  def int_seeded():
    return rejection.truncated_rejection_sample(_proposal(), _log_a_tf, 50, 5, seed=3).samples
  np.testing.assert_array_equal(int_seeded().numpy(), int_seeded().numpy())


@pytest.mark.parametrize("truncation", [5, None])
@pytest.mark.parametrize("block_size", [1, 16])
def test_block_size_does_not_change_the_distribution(truncation, block_size):
  result = _sample(truncation, num=3000, seed=(21, 22), block_size=block_size)
  p_value = stats.kstest(result.samples.numpy()[:, 0], _cdf(truncation)).pvalue
  assert p_value > KS_P_VALUE, p_value


def test_resampled_distribution_sample_follows_p_t():
  dist = resampled.Resampled(_proposal(), _log_a_tf, truncation=3, log_normalizer=0.0)
  samples = dist.sample(NUM_KS, seed=tf.constant([5, 6], tf.int32)).numpy()
  assert samples.shape == (NUM_KS, 1)
  assert stats.kstest(samples[:, 0], _cdf(3)).pvalue > KS_P_VALUE
  stats_result = dist.sample_with_acceptance_rate(2000, seed=tf.constant([5, 7], tf.int32))
  assert stats_result.samples.shape == (2000, 1)
  assert 0.0 < float(stats_result.acceptance_rate) < 1.0


def test_two_dimensional_samples_have_the_right_shape():
  mvn = tfd.MultivariateNormalDiag(loc=tf.zeros([2]), scale_diag=tf.ones([2]))
  result = rejection.truncated_rejection_sample(
      mvn, lambda z: tf.math.log_sigmoid(3.0 * z[..., 0] - z[..., 1]), 64, 10, seed=1)
  assert result.samples.shape == (64, 2)
  assert np.all(np.isfinite(result.samples.numpy()))


@pytest.mark.parametrize("num_samples", [0, -3])
def test_non_positive_num_samples_raises(num_samples):
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="num_samples"):
    _sample(5, num=num_samples)


def test_invalid_truncation_and_block_size_raise():
  with pytest.raises(ValueError, match="truncation"):
    _sample(0)
  with pytest.raises(ValueError, match="block_size"):
    _sample(5, block_size=0)


def _constant_log_a(value):
  return lambda z: tf.fill(tf.shape(z)[:-1], tf.math.log(tf.constant(value, z.dtype)))


def test_untruncated_with_zero_acceptance_uses_up_its_budget_and_says_what_to_do():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"(?s)budget of.*64.*1/Z.*max_proposals.*finite truncation T"):
    _sample(None, num=10, log_a=lambda z: tf.fill(tf.shape(z)[:-1], -1e4), max_proposals=64)
  with pytest.raises(ValueError, match="max_proposals"):
    _sample(None, num=10, max_proposals=0)


def test_coin_flips_are_exact_for_a_tiny_acceptance_probability():
  # a = 1e-10 everywhere: 3.2e7 flips accept Poisson(0.0032) times, i.e. none (P = 0.997).
  # A float32 uniform (2^-23 lattice, hits 0) accepts with probability 2^-23 = 1.2e-7 per
  # flip: ~3.8 acceptances expected here.
  result = _sample(2 * 10**6 + 1, num=16, block_size=2**15, log_a=_constant_log_a(1e-10))
  assert int(result.num_proposals) == 16 * 2 * 10**6  # no chain stopped early
  assert int(result.num_accepted) == 0


def test_counters_are_int64_and_untruncated_rates_match_a_known_z():
  # a = 0.05 everywhere, so Z = 0.05 exactly; n samples take NegBin(n, Z) flips in all.
  n, z = 4000, 0.05
  result = _sample(None, num=n, seed=(7, 8), log_a=_constant_log_a(z))
  assert result.num_proposals.dtype == tf.int64 and result.num_accepted.dtype == tf.int64
  assert int(result.num_accepted) == n
  mean, sd = n / z, math.sqrt(n * (1 - z)) / z
  assert abs(int(result.num_proposals) - mean) < 4 * sd
  assert result.samples.shape == (n, 1)
  # The samples are proposal samples (a is constant): standard Normal.
  assert stats.kstest(result.samples.numpy()[:, 0], stats.norm.cdf).pvalue > KS_P_VALUE


def test_the_default_budget_fits_the_expected_proposals_per_sample():
  for n, z in [(1, 2e-6), (64, 2e-6), (10**4, 0.015)]:
    budget = int(rejection.proposal_budget(n, z))
    mean, sd = n / z, math.sqrt(n * (1 - z)) / z
    assert budget > mean + 8 * sd  # a draw at the true Z fits
    assert budget < 3 * mean + 30 / z  # and the budget is a few times the expected cost
    assert int(rejection.proposal_budget(n, 2 * z)) > mean  # even for Z overestimated 2x
  assert int(rejection.proposal_budget(5, float("nan"))) == rejection.DEFAULT_MAX_PROPOSALS
  # Resampled picks that budget from its own Z: 200 samples at Z = 1e-4 need ~2e6 proposals,
  # more than the sampler's floor of 1e6, and do not hit it.
  dist = resampled.Resampled(_proposal(), _constant_log_a(1e-4), truncation=None,
                             log_normalizer=math.log(1e-4))
  result = dist.sample_with_acceptance_rate(200, seed=[1, 1])
  assert int(result.num_accepted) == 200 and int(result.num_proposals) > 10**6
