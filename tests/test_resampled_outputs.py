"""LARS on the discrete outputs of a VAE (Bauer & Mnih 2019, Sec. 5.3 / appendix D.7).

On a 6-pixel binary problem with a 1-D latent, pi(x) = int pi(x|z) N(z) dz is computed for all
64 images by quadrature, so Z = sum_x pi(x) a(x) and p_T(x) are exact.
"""
import itertools

import numpy as np
import pytest
from scipy import stats
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import objectives
from tfp_priors import seeds
from tfp_priors.models import VAE, ResampledOutputs
from tfp_priors.models import common
from tfp_priors.priors import StandardNormalPrior

TRUNCATION = 3
PIXELS = 6


def _tiny_model(truncation=TRUNCATION, seed=0):
  tf.random.set_seed(seed)
  model = ResampledOutputs(
      base_model_fn=lambda train_mean: VAE(input_size=PIXELS, latent_size=1, hidden_sizes=(8,),
                                           train_mean=train_mean),
      hidden_sizes=(8,), truncation=truncation, num_proposal_samples=256)
  # Spread a(x) out (the default init gives a(x) ~ 0.5 everywhere).
  for v in model.acceptance_net.trainable_variables:
    v.assign(v * 4.0)
  for v in model.base.decoder.trainable_variables:
    v.assign(v * 3.0)
  return model


def _all_images():
  return np.array(list(itertools.product([0.0, 1.0], repeat=PIXELS)), np.float32)


def _exact_marginal(model, images):
  """pi(x) for every image by the midpoint rule over z in [-8, 8]."""
  z = np.linspace(-8, 8, 4001, dtype=np.float32)[:, None]
  width = 16.0 / 4000
  logits = tf.broadcast_to(model.base.decoder(z)[:, None, :], [len(z)] + list(images.shape))
  log_lik = common.bernoulli_log_likelihood(logits, images)  # [G, 64]
  log_prior = tfp.distributions.Normal(0.0, 1.0).log_prob(z)  # [G, 1]
  return np.exp(tf.reduce_logsumexp(log_lik + log_prior, axis=0).numpy()) * width


@pytest.fixture(scope="module")
def problem():
  model = _tiny_model()
  prior = StandardNormalPrior(1)
  images = _all_images()
  marginal = _exact_marginal(model, images)
  acceptance = np.exp(model.log_acceptance(images).numpy())
  normalizer = float(np.sum(marginal * acceptance))
  return model, prior, images, marginal, acceptance, normalizer


def test_problem_is_nontrivial(problem):
  _, _, _, marginal, acceptance, normalizer = problem
  assert np.sum(marginal) == pytest.approx(1.0, abs=1e-4)
  assert acceptance.min() < 0.2 and acceptance.max() > 0.8
  assert 0.05 < normalizer < 0.95


def test_density_sums_to_one_over_all_outputs(problem):
  model, _, images, marginal, _, normalizer = problem
  factor = np.exp(model.log_resampling_factor(images, tf.math.log(normalizer)).numpy())
  p_t = marginal * factor
  assert np.sum(p_t) == pytest.approx(1.0, abs=1e-5)
  # And it is not the proposal: resampling moved mass.
  assert np.abs(p_t - marginal).sum() > 0.05


def test_normalizer_estimate_on_decoded_prior_samples(problem):
  model, prior, _, _, _, normalizer = problem
  est = model.estimate_log_normalizer(prior, num_samples=200000, chunk_size=20000, seed=3)
  assert abs(float(est.normalizer) - normalizer) < 4 * float(est.standard_error)
  assert float(est.standard_error) < 0.01
  assert float(model.log_normalizer()) == pytest.approx(float(est.log_normalizer), abs=1e-6)


def test_exact_sampler_follows_truncated_density(problem):
  model, prior, images, marginal, _, normalizer = problem
  model.evaluation_log_normalizer.assign(np.log(normalizer))
  samples, latents, rate = model.sample_outputs(prior, 20000, seed=[1, 2])
  samples = samples.numpy()
  assert set(np.unique(samples)) <= {0.0, 1.0} and latents.shape == (20000, 1)
  index = samples.dot(2 ** np.arange(PIXELS)[::-1]).astype(int)
  counts = np.bincount(index, minlength=2**PIXELS)
  factor = np.exp(model.log_resampling_factor(images, tf.math.log(normalizer)).numpy())
  expected = (marginal * factor).astype(np.float64)
  expected *= len(samples) / expected.sum()
  big = expected > 5  # pool the rare images into one cell
  observed = counts[big].astype(np.float64)
  if not big.all():
    observed = np.append(observed, counts[~big].sum())
    expected = np.append(expected[big], expected[~big].sum())
  expected *= observed.sum() / expected.sum()
  assert stats.chisquare(observed, expected).pvalue > 1e-3
  assert float(rate) == pytest.approx(normalizer, abs=0.02)


def test_iwae_bound_is_a_bound_on_the_resampled_density(problem):
  model, prior, images, _, _, normalizer = problem
  model.evaluation_log_normalizer.assign(np.log(normalizer))
  factor = model.log_resampling_factor(images, tf.math.log(normalizer)).numpy()
  x = tf.constant(images)
  bound = objectives.iwae_bound(model, prior.distribution(), x, 2000, seed=[0, 1]).numpy()
  base_bound = objectives.iwae_bound(model.base, prior.distribution(), x, 2000,
                                     seed=[0, 1]).numpy()
  # Any bound on log pi(x) plus the resampling factor is a bound on log p_T(x) (Eq. 11):
  # the evaluated NLL is that of p_T. (The bound itself is not compared with the exact log
  # p_T(x): with an untrained encoder its importance weights are too heavy-tailed.)
  np.testing.assert_allclose(bound - base_bound, factor, atol=1e-4)
  assert np.abs(factor).max() > 0.1


def test_fresh_model_has_no_normalizer():
  assert np.isnan(float(_tiny_model().log_normalizer()))


def test_training_gradients_and_ignored_log_normalizer_gradient():
  model = _tiny_model(truncation=100)
  prior = StandardNormalPrior(1)
  x = tf.constant(_all_images()[::3])
  seed = tf.constant([4, 5])
  variables = model.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    terms, stats_ = objectives.elbo(model, prior, x, training=True, seed=seed)
    loss = -tf.reduce_mean(terms.elbo)
    f, _ = model.training_forward(x, prior, seed=seeds.split_seed(seed)[0])
    with_factor = tf.reduce_sum(f.log_likelihood)
    without = tf.reduce_sum(model.base.forward(
        x, 1, seed=seeds.split_seed(seeds.split_seed(seed)[0])[0]).log_likelihood)
  grads = tape.gradient(loss, variables)
  assert all(g is not None for g in grads), [v.name for v, g in zip(variables, grads) if g is None]
  assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
  assert float(model.moving_average) > 0 and "output_normalizer" in stats_
  # log Z (on binary decoded samples) sends no gradient to the decoder: its gradient is that of
  # log pi(x|z) alone.
  decoder = model.base.decoder.trainable_variables
  for a, b in zip(tape.gradient(with_factor, decoder), tape.gradient(without, decoder)):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
  acceptance = tape.gradient(with_factor, model.acceptance_net.trainable_variables)
  assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in acceptance)


@pytest.mark.slow
def test_trains_evaluates_and_exports(train_tiny, tmp_path):
  results = train_tiny(tmp_path, "lars_outputs_vae.gin", [
      "train.num_steps = 20", "ResampledOutputs.hidden_sizes = (16,)",
      "ResampledOutputs.num_proposal_samples = 64",
      "ResampledOutputs.normalizer_samples = 20000"])
  assert np.isfinite(results["nll"]) and np.isfinite(results["output_log_normalizer"])
  assert 0 < results["output_normalizer"] <= 1
  assert 0 <= results["output_sampler_acceptance_rate"] <= 1
  loaded = tf.saved_model.load(str(tmp_path / "export"))
  out = loaded.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(0))
  assert out["images"].shape == (5, 28, 28, 1) and out["latents"].shape == (5, 4)
  assert set(np.unique(out["images"].numpy())) <= {0.0, 1.0}
