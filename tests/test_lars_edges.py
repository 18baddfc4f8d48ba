"""LARS at its numerical edges: Z_r >= 1 in Algorithm 1, untruncated sampling at a tiny Z,
and the validation NLL's log Z (Bauer & Mnih 2019, Eq. 4 / A.14, Algorithm 1, Table 6)."""
import functools
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_priors.distributions import resampled
from tfp_priors.evaluation import metrics
from tfp_priors.models import VAE
from tfp_priors.priors import LarsPrior
from tfp_priors.training import runner as runner_lib
from tfp_priors.training import early_stopping as early_stopping_lib


@pytest.mark.parametrize("truncation", [2, 100])
@pytest.mark.parametrize("normalizer", [1.0, 1.5, 40.0])
def test_truncated_density_at_z_of_one_or_more_is_the_untruncated_limit_with_finite_gradient(
    truncation, normalizer):
  # alpha_T = (1 - Z)^(T - 1) -> 0 as Z -> 1, so p_T -> pi a / Z; Z_r > 1 keeps that form.
  log_pi, log_a = tf.constant([-1.0, -3.0]), tf.Variable([-0.5, -4.0])
  log_z = tf.Variable(math.log(normalizer))
  with tf.GradientTape() as tape:
    log_p = resampled.resampled_log_prob(log_pi, log_a, log_z, truncation)
    total = tf.reduce_sum(log_p)
  grad_a, grad_z = tape.gradient(total, [log_a, log_z])
  np.testing.assert_allclose(log_p, log_pi.numpy() + log_a.numpy() - math.log(normalizer),
                             rtol=1e-6)
  np.testing.assert_allclose(grad_a, [1.0, 1.0], rtol=1e-6)
  assert float(grad_z) == pytest.approx(-2.0)  # d/dlog Z of -log Z, summed over two points


@pytest.mark.parametrize("truncation", [2, 100])
def test_density_is_continuous_as_z_approaches_one_from_below(truncation):
  log_pi, log_a = np.array([-1.0, -3.0]), np.array([-0.5, -4.0])
  for normalizer in (1 - 1e-3, 1 - 1e-5):
    log_z = tf.Variable(math.log(normalizer))
    with tf.GradientTape() as tape:
      log_p = resampled.resampled_log_prob(tf.constant(log_pi, tf.float32),
                                           tf.constant(log_a, tf.float32), log_z, truncation)
      total = tf.reduce_sum(log_p)
    alpha = (1 - normalizer) ** (truncation - 1)
    expected = log_pi + np.log((1 - alpha) * np.exp(log_a) / normalizer + alpha)
    np.testing.assert_allclose(log_p, expected, rtol=1e-5)
    assert np.isfinite(float(tape.gradient(total, log_z)))


def test_algorithm_1_with_a_posterior_weight_above_one_gives_finite_gradients():
  # log q(z_r|x_r) far below log pi(z_r): the posterior term pi/q a of Eq. A.23 makes Z_r > 1.
  tf_keras.utils.set_random_seed(0)
  prior = LarsPrior(2, hidden_sizes=(8,), num_proposal_samples=16, ema_epsilon=1.0)
  z = tf.constant([[0.1, -0.2], [0.5, 0.3]])
  with tf.GradientTape() as tape:
    log_p, stats = prior.training_log_prob(z, log_posterior=tf.constant([-10.0, -10.0]),
                                           seed=[1, 2])
    total = tf.reduce_sum(log_p)
  grads = tape.gradient(total, prior.trainable_variables)
  assert float(stats["normalizer"]) > 1.0
  assert np.all(np.isfinite(log_p.numpy()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def _untruncated_lars_at(normalizer):
  """LARS over N(0, I) with a(z) = `normalizer` everywhere (so Z is exactly that)."""
  prior = LarsPrior(2, hidden_sizes=(4,), truncation=None)
  output = prior.acceptance_net.net.layers[-1]
  output.kernel.assign(tf.zeros_like(output.kernel))
  output.bias.assign([math.log(normalizer) - math.log1p(-normalizer)])  # logit of a
  prior.estimate_log_normalizer(num_samples=10**4, seed=0)
  return prior


def test_untruncated_lars_at_the_papers_z_skips_its_checks_instead_of_failing(caplog):
  # LARS Table 6's untruncated row: Z = 2e-6, i.e. 5e5 proposals per sample.
  prior = _untruncated_lars_at(2e-6)
  assert float(tf.exp(prior.log_normalizer())) == pytest.approx(2e-6, rel=1e-4)
  messages = []
  # finalize's 10,000-sample acceptance check (~5e9 proposals) is skipped, with the reason.
  assert prior.acceptance_check(10000, log_fn=messages.append, max_seconds=1.0) is None
  assert "expected to take" in messages[-1] and "Z = 2e-06" in messages[-1]
  # A draw that uses up its budget names Z, the proposals per sample and the way out...
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"(?s)budget of.*1/Z.*finite truncation T"):
    prior.rejection_sample(64, seed=[0, 1], max_proposals=10**5)
  assert prior.acceptance_check(64, log_fn=messages.append, max_proposals=10**5) is None
  assert "budget" in messages[-1]
  # ... and the TensorBoard sample grid skips it rather than ending the run.
  prior.rejection_sample = functools.partial(prior.rejection_sample, max_proposals=10**5)
  model = VAE(input_size=6, latent_size=2, hidden_sizes=(8,))
  with caplog.at_level("WARNING"), tf.summary.create_noop_writer().as_default():
    runner_lib._sample_summary(model, prior, (2, 3, 1), step=10)  # pylint: disable=protected-access
  assert any("step 10: no sample grid" in r.getMessage() and "budget" in r.getMessage()
             for r in caplog.records)


def test_untruncated_lars_with_a_moderate_z_samples_within_its_default_budget():
  prior = _untruncated_lars_at(1e-3)
  result = prior.rejection_sample(50, seed=[3, 4])
  assert int(result.num_accepted) == 50
  assert float(result.acceptance_rate) == pytest.approx(1e-3, rel=0.5)


def test_validation_nll_uses_a_fresh_log_z_not_the_training_ema(tmp_path):
  tf_keras.utils.set_random_seed(1)
  model = VAE(input_size=6, latent_size=2, hidden_sizes=(8,))
  prior = LarsPrior(2, hidden_sizes=(8,))
  for v in prior.acceptance_net.trainable_variables:
    v.assign(3.0 * v)
  prior.moving_average.assign(0.05)  # a stale training EMA, far from Z
  # Z = E_N[a] by quadrature on a grid, independent of the estimator.
  u = np.linspace(-8.0, 8.0, 801, dtype=np.float32)
  grid = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
  density = np.exp(-0.5 * np.sum(grid**2, -1)) / (2 * np.pi)
  z_quadrature = np.sum(density * np.exp(prior.log_acceptance(grid).numpy())) * (u[1] - u[0])**2
  assert abs(math.log(z_quadrature / 0.05)) > 0.5
  x = np.random.RandomState(2).binomial(1, 0.5, (40, 6)).astype(np.float32)
  dataset = tf.data.Dataset.from_tensor_slices(x).batch(20)
  stopper = early_stopping_lib.EarlyStopping(None)
  checkpoint = tf.train.Checkpoint(model=model, prior=prior)
  best = tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=1)
  runner_lib._validate(model, prior, dataset, stopper, best, step=7,  # pylint: disable=protected-access
                      num_importance_samples=20, max_examples=None, normalizer_samples=10**6,
                      seed=0, print_fn=lambda _: None)
  assert float(tf.exp(prior.log_normalizer())) == pytest.approx(z_quadrature, rel=0.01)
  fresh = metrics.evaluate(model, prior, dataset, 20, seed=0)["nll"]
  assert float(stopper.best_nll) == pytest.approx(fresh, abs=1e-4)
  prior.evaluation_log_normalizer.assign(math.nan)  # back to the EMA
  stale = metrics.evaluate(model, prior, dataset, 20, seed=0)["nll"]
  assert abs(stale - fresh) > 0.05
