"""The SNIS distribution and prior (Lawson et al. 2019, Sec. 3) against quadrature in 1-D.

For a proposal pi = N(0, 1) and a bounded energy E, the selection of one of K proposals has
the density p_K(z) = K pi(z) c E[1 / (c + S)], c = exp E(z), S = sum of K - 1 iid
w_j = exp E(z_j), z_j ~ pi, and the expected bound is log pi(z) + E(z) + log K - E[log(c + S)].
Both expectations are one-dimensional integrals of the Laplace transform
phi(t) = E_pi[exp(-t w)] of w (computed by Gauss-Hermite quadrature):

  E[1 / (c + S)] = int_0^inf exp(-t c) phi(t)^(K-1) dt,
  E[log(c + S)] = int_0^inf (exp(-t) - exp(-t c) phi(t)^(K-1)) / t dt   (Frullani),

so the references below never sample and never call the code under test.
"""
import json

import numpy as np
import pytest
from scipy import integrate
from scipy import stats
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.distributions import SelfNormalizedImportanceSampling
from tfp_priors.priors import SnisPrior
from tfp_priors.priors import build_prior

tfd = tfp.distributions

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(200)
_WEIGHTS = _WEIGHTS / np.sqrt(2 * np.pi)  # E_N(0,1)[f] = sum w f(x)


def energy_np(z):
  return 2.0 * np.sin(2.0 * z)


def energy_tf(z):
  return 2.0 * tf.sin(2.0 * z[..., 0])


def laplace_transform(t):
  """phi(t) = E_pi[exp(-t exp E(z))] for t [...] (Gauss-Hermite over z ~ N(0, 1))."""
  w = np.exp(energy_np(_NODES))
  return np.exp(-np.multiply.outer(t, w)) @ _WEIGHTS


def exact_log_density(z, k):
  """log p_K(z) [n] for z [n] (module docstring), by quadrature over t."""
  c = np.exp(energy_np(z))
  mean_reciprocal, _ = integrate.quad_vec(
      lambda t: np.exp(-t * c) * laplace_transform(t) ** (k - 1), 0, np.inf, epsrel=1e-10)
  return stats.norm.logpdf(z) + energy_np(z) + np.log(k) + np.log(mean_reciprocal)


def expected_bound(z, k):
  """E over the K - 1 proposals of the bound log pi + E + log K - log(c + S), [n]."""
  c = np.exp(energy_np(z))
  mean_log, _ = integrate.quad_vec(
      lambda t: (np.exp(-t) - np.exp(-t * c) * laplace_transform(t) ** (k - 1)) / t,
      0, np.inf, epsrel=1e-10)
  return stats.norm.logpdf(z) + energy_np(z) + np.log(k) - mean_log


def snis(k, m=1):
  return SelfNormalizedImportanceSampling(tfd.Independent(tfd.Normal([0.0], 1.0), 1),
                                          energy_tf, num_proposals=k, num_bound_samples=m)


Z = np.array([-1.5, -0.7, 0.0, 0.4, 1.2])


def test_the_quadrature_density_integrates_to_one():
  grid = np.linspace(-8, 8, 4001)
  for k in (1, 3, 50):
    assert integrate.trapezoid(np.exp(exact_log_density(grid, k)), grid) == pytest.approx(
        1.0, abs=1e-6)


def test_the_bound_is_below_the_log_density_and_tightens_as_k_grows():
  # K = 1 is the proposal itself (gap 0); the gap then rises (at z of high energy up to
  # K ~ 8 here) and shrinks towards 0 as the K - 1 others concentrate Z_m.
  np.testing.assert_allclose(expected_bound(Z, 1), exact_log_density(Z, 1), atol=1e-7)
  gaps = np.stack([exact_log_density(Z, k) - expected_bound(Z, k) for k in (2, 8, 64, 512)])
  assert np.all(gaps > 0), gaps
  assert np.all(np.diff(gaps[1:], axis=0) < 0), gaps  # from K = 8 on it shrinks at every z
  assert np.all(gaps[-1] < 0.01), gaps


@pytest.mark.parametrize("k", [2, 16])
def test_log_prob_is_the_bound_and_an_unbiased_density_estimate(k):
  z = tf.constant(Z[:, None], tf.float32)
  dist = snis(k)
  bound = tf.function(lambda seed: dist.log_prob(z, seed=seed))
  draws = np.stack([bound(tf.constant([s, 7])) for s in range(400)])  # [400, n]
  mean, sem = draws.mean(0), draws.std(0) / np.sqrt(len(draws))
  np.testing.assert_array_less(np.abs(mean - expected_bound(Z, k)), 4 * sem + 1e-4)
  # exp(bound) is unbiased for p_K(z) (Lawson et al. Sec. 3), so many bound samples M give
  # the density itself.
  tight = snis(k, m=20000).log_prob(z, seed=[3, 4]).numpy()
  np.testing.assert_allclose(tight, exact_log_density(Z, k), atol=0.01)
  assert np.all(draws.mean(0) < exact_log_density(Z, k))


def test_samples_follow_the_k_sample_selection_density():
  k, n = 4, 20000
  samples = snis(k).sample(n, seed=[5, 6]).numpy()[:, 0]
  edges = np.linspace(-3.5, 3.5, 36)
  fine = np.linspace(-8, 8, 16001)
  densities = {"p_K": np.exp(exact_log_density(fine, k)), "pi": stats.norm.pdf(fine)}
  p_inf = stats.norm.pdf(fine) * np.exp(energy_np(fine))
  densities["p_inf"] = p_inf / integrate.trapezoid(p_inf, fine)
  observed = np.histogram(samples, np.concatenate([[-np.inf], edges, [np.inf]]))[0]
  p_values = {}
  for name, density in densities.items():
    cdf = integrate.cumulative_trapezoid(density, fine, initial=0.0)
    masses = np.diff(np.concatenate([[0.0], np.interp(edges, fine, cdf), [1.0]]))
    p_values[name] = stats.chisquare(observed, masses * n / masses.sum()).pvalue
  assert p_values["p_K"] > 1e-3, p_values
  assert p_values["pi"] < 1e-10 and p_values["p_inf"] < 1e-10, p_values  # the test has power


def test_every_variable_gets_a_gradient():
  prior = SnisPrior(latent_size=3, proposal=build_prior(3, name="realnvp"), hidden_sizes=(8,),
                    num_proposals=32)
  z = tf.Variable(tf.random.stateless_normal([5, 3], seed=[0, 1]))
  with tf.GradientTape() as tape:
    log_p, statistics = prior.training_log_prob(z, tf.zeros([5]), seed=[1, 2])
    loss = -tf.reduce_mean(log_p)
  variables = prior.trainable_variables + (z,)
  assert prior.proposal.trainable_variables and statistics == {}
  # The selection and the bound are invariant to E -> E + c: the gradient of E's output bias
  # is 0 (log pi + E - log((1/K) sum exp E) does not change with c).
  output_bias = [v for v in prior.energy_net.trainable_variables if v.shape == (1,)]
  assert len(output_bias) == 1
  for v, g in zip(variables, tape.gradient(loss, variables)):
    assert g is not None, v.name
    largest = float(tf.reduce_max(tf.abs(g)))
    if v is output_bias[0]:
      assert largest < 1e-5, largest
    else:
      assert largest > 0.0, v.name


def test_bad_settings_raise_at_construction():
  with pytest.raises(ValueError, match="num_proposals K must be an integer >= 1"):
    SnisPrior(latent_size=2, num_proposals=0)
  with pytest.raises(ValueError, match="num_bound_samples M"):
    SnisPrior(latent_size=2, num_bound_samples=1.5)
  with pytest.raises(ValueError, match="proposal latent size 3 != 2"):
    SnisPrior(latent_size=2, proposal=build_prior(3, name="normal"))
  with pytest.raises(ValueError, match=r"shape \[\.\.\., 1\]"):
    snis(4).log_prob(tf.zeros([3, 2]))


@pytest.mark.slow
def test_snis_vae_trains_evaluates_and_exports_the_bound(tmp_path, train_tiny):
  results = train_tiny(tmp_path, "snis_vae", ["train.num_steps = 6",
                                              "SnisPrior.hidden_sizes = (16,)",
                                              "SnisPrior.num_proposals = 64"])
  with open(tmp_path / "metrics.json") as f:
    metrics = json.load(f)
  assert metrics["prior"] == "snis" and np.isfinite(metrics["nll"])
  assert metrics == pytest.approx(results)
  loaded = tf.saved_model.load(str(tmp_path / "export"))
  out = loaded.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(1))
  assert out["latents"].shape == (5, 4) and out["images"].shape == (5, 28, 28, 1)
  bound = loaded.signatures["log_prob"](z=out["latents"])
  assert list(bound) == ["log_prob_lower_bound"]
  assert bool(tf.reduce_all(tf.math.is_finite(bound["log_prob_lower_bound"])))
