"""Hierarchical NCP's likelihood (Aneja et al. 2021, Sec. 4.4): p(z1, z2) = r_2(z2) N(z2)
r_1(z1|z2) p(z1|z2) / Z with one joint Z; checked by quadrature and by how the NLL responds
to the lower classifier."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_priors.evaluation import metrics
from tfp_priors.models import HVAE
from tfp_priors.models import common as model_common
from tfp_priors.priors import HierarchicalNCPPrior


def _scale_weights(mlp, factor):
  for v in mlp.trainable_variables:
    v.assign(v * factor)


def _prior(latent_size, input_size=6, seed=0):
  tf_keras.utils.set_random_seed(seed)
  model = HVAE(input_size=input_size, latent_size=latent_size, hidden_size=8)
  prior = HierarchicalNCPPrior(latent_size, model=model, hidden_sizes=(8,), num_proposals=50,
                               lower_num_proposals=20)
  # Classifiers far from r = 1, so that both groups reweight by several nats.
  _scale_weights(prior.classifier, 3.0)
  _scale_weights(prior.lower_classifier, 3.0)
  return model, prior


def test_joint_density_with_its_estimated_z_integrates_to_one_on_two_one_dimensional_groups():
  model, prior = _prior(latent_size=1)
  estimate = prior.refresh_log_normalizer(num_samples=10**6, seed=1)  # Z_2 and the joint Z
  u = np.linspace(-9.0, 9.0, 361, dtype=np.float32)
  z2, z1 = (g.reshape(-1, 1, 1) for g in np.meshgrid(u, u, indexing="ij"))
  zeros = tf.zeros(z2.shape[:2])
  forward = model_common.Forward(
      z_top=z2, log_posterior_top=zeros, log_likelihood=zeros, log_posterior_rest=zeros,
      log_prior_rest=model.conditional_prior(z2).log_prob(z1), z_rest=z1)
  density = np.exp(prior.latent_log_prob(forward).numpy().astype(np.float64))
  mass = density.sum() * (u[1] - u[0]) ** 2
  relative_error = float(estimate.log_normalizer_standard_error)
  assert relative_error < 0.01
  assert mass == pytest.approx(1.0, abs=0.005 + 4 * relative_error)
  # The top group alone is not that density: r_1 changes it by far more than the tolerance.
  top_only = np.exp(prior.extra_evaluation_densities()["top_group_only"](forward).numpy())
  assert np.max(np.abs(top_only - density)) > 0.05 * np.max(density)


@pytest.fixture
def evaluation_problem():
  model, prior = _prior(latent_size=2, seed=2)
  x = np.random.RandomState(3).binomial(1, 0.5, (16, 6)).astype(np.float32)
  dataset = tf.data.Dataset.from_tensor_slices(x).batch(8)
  return model, prior, dataset


def _evaluate(model, prior, dataset):
  prior.refresh_log_normalizer(num_samples=2 * 10**5, seed=4)
  return metrics.evaluate(model, prior, dataset, num_importance_samples=64, seed=5)


def test_test_nll_uses_the_lower_classifier_and_the_joint_normalizer(evaluation_problem):
  model, prior, dataset = evaluation_problem
  before = _evaluate(model, prior, dataset)
  # A constant added to T_1 multiplies r_1 and the joint Z alike: the density is unchanged.
  bias = prior.lower_classifier.net.layers[-1].bias
  bias.assign_add(tf.fill(bias.shape, 0.7))
  shifted = _evaluate(model, prior, dataset)
  assert shifted["nll"] == pytest.approx(before["nll"], abs=1e-3)
  # Any other change of r_1 changes the test NLL; the top-group-only figure ignores r_1.
  kernel = prior.lower_classifier.net.layers[0].kernel
  kernel.assign(-kernel)
  changed = _evaluate(model, prior, dataset)
  assert abs(changed["nll"] - before["nll"]) > 0.05
  assert changed["nll_top_group_only"] == pytest.approx(before["nll_top_group_only"], abs=1e-4)
  # The ELBO's KL is taken against the same joint density.
  assert abs(changed["kl"] - before["kl"]) > 0.05


def test_a_forward_without_lower_latents_is_refused(evaluation_problem):
  _, prior, _ = evaluation_problem
  zeros = tf.zeros([1, 3])
  flat = model_common.Forward(tf.zeros([1, 3, 2]), zeros, zeros, zeros, zeros)
  with pytest.raises(ValueError, match="no z_rest"):
    prior.latent_log_prob(flat)
