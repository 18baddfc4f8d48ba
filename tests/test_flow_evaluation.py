"""Tests of the fused flow log-density `FlowPrior.log_prob` (issue 17, fast flow evaluation).

References are independent of the fused pass: TFP's `tfd.TransformedDistribution` over the
prior's bijector (its own inverse and log-determinant code), the bijector's inverse for w, and
log |det dw/dz| from the numerical Jacobian (`tf.GradientTape.batch_jacobian`, numpy slogdet).
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import objectives
from tfp_priors.models import VAE
from tfp_priors.priors import MAFPrior, RealNVPPrior, XuRealNVPPrior

tfd = tfp.distributions

D = 5  # odd, so that the coupling halves differ in size
CASES = ["realnvp", "realnvp_bounded", "xu_realnvp", "maf"]


def _make(case, latent_size=D):
  """A small flow prior moved away from its near-identity start (every variable perturbed)."""
  if case == "xu_realnvp":
    prior = XuRealNVPPrior(latent_size, flow_depth=3, hidden_size=16, seed=1)
    prior.initialize(tf.random.stateless_normal([256, latent_size], [3, 3]) * 2.0 + 1.0)
  elif case == "maf":
    prior = MAFPrior(latent_size, num_blocks=3, hidden_sizes=(16, 16), seed=1)
  else:
    bound = 2.0 if case == "realnvp_bounded" else None
    prior = RealNVPPrior(latent_size, num_couplings=3, hidden_sizes=(16,), seed=1,
                         log_scale_bound=bound)
  rng = np.random.default_rng(0)
  for v in prior.trainable_variables:
    noise = rng.standard_normal(v.shape).astype(np.float32) * 0.1
    if case == "maf":  # keep MADE's masked kernel entries at zero
      noise *= (v.numpy() != 0)
    v.assign_add(noise)
  return prior


def _reference_log_prob(prior, z):
  """log p(z) of TFP's TransformedDistribution(N(0, I), prior.bijector)."""
  base = tfd.MultivariateNormalDiag(loc=tf.zeros([prior.latent_size]))
  return tfd.TransformedDistribution(base, prior.bijector).log_prob(z)


def _latents(shape, seed=(0, 1)):
  return tf.random.stateless_normal(shape, seed) * 1.5 + 0.3


@pytest.mark.parametrize("case", CASES)
def test_fused_log_prob_equals_transformed_distribution(case):
  prior = _make(case)
  z = _latents([7, 3, D])
  fused = prior.log_prob(z).numpy()
  assert fused.shape == (7, 3)
  np.testing.assert_allclose(fused, _reference_log_prob(prior, z).numpy(), rtol=1e-5, atol=1e-5)
  # In a graph too, with an unknown leading shape.
  graph = tf.function(prior.log_prob, input_signature=[tf.TensorSpec([None, D])])
  np.testing.assert_allclose(graph(tf.reshape(z, [-1, D])).numpy().reshape(7, 3), fused,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_fused_pass_is_the_inverse_and_its_log_det_the_jacobian(case):
  """w = g^{-1}(z) of the bijector, log_det = log |det dw/dz| of the numerical Jacobian."""
  prior = _make(case)
  z = _latents([16, D], seed=(2, 3))
  with tf.GradientTape() as tape:
    tape.watch(z)
    w, log_det = prior.flow_to_base(z)
  jacobian = tape.batch_jacobian(w, z).numpy().astype(np.float64)
  sign, log_abs_det = np.linalg.slogdet(jacobian)
  assert np.all(sign != 0)
  np.testing.assert_allclose(log_det.numpy(), log_abs_det, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(w.numpy(), prior.bijector.inverse(z + 0.0).numpy(), rtol=1e-4,
                             atol=1e-5)
  normal = -0.5 * (D * np.log(2 * np.pi) + np.sum(w.numpy().astype(np.float64)**2, -1))
  np.testing.assert_allclose(prior.log_prob(z).numpy(), normal + log_abs_det, rtol=1e-4,
                             atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_gradients_reach_every_variable_and_match_the_reference(case):
  prior = _make(case)
  z = _latents([32, D], seed=(4, 5))
  variables = prior.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    fused = -tf.reduce_mean(prior.log_prob(z))
    reference = -tf.reduce_mean(_reference_log_prob(prior, z))
  for v, g, r in zip(variables, tape.gradient(fused, variables),
                     tape.gradient(reference, variables)):
    assert g is not None, v.name
    g, r = tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(r).numpy()
    assert np.all(np.isfinite(g)) and np.any(g != 0), v.name
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * np.max(np.abs(r)), err_msg=v.name)


@pytest.mark.parametrize("case", CASES)
def test_training_and_evaluation_use_the_fused_density_through_the_model(case):
  """latent_log_prob / training_log_prob equal the reference density; the ELBO step's gradient
  reaches every variable of the model and the prior."""
  prior = _make(case)
  model = VAE(input_size=12, latent_size=D, hidden_sizes=(8,))
  x = tf.cast(tf.random.stateless_uniform([6, 12], [6, 7]) < 0.4, tf.float32)
  f = model.forward(x, 4, seed=[1, 2])
  np.testing.assert_allclose(prior.latent_log_prob(f).numpy(),
                             _reference_log_prob(prior, f.z_top).numpy(), rtol=1e-5, atol=1e-5)
  log_p, stats = prior.training_log_prob(f.z_top[0], f.log_posterior_top[0])
  np.testing.assert_allclose(log_p.numpy(), _reference_log_prob(prior, f.z_top[0]).numpy(),
                             rtol=1e-5, atol=1e-5)
  assert stats == {}
  # The IWAE bound of the fused path equals the one of TFP's distribution on the same samples.
  fused = objectives.iwae_bounds(model, {"nll": prior.latent_log_prob}, x, 4, [1, 2])["nll"]
  reference = objectives.iwae_bound(model, prior.distribution(), x, 4, [1, 2])
  np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-5)

  variables = model.trainable_variables + prior.trainable_variables
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, x, training=True, seed=[3, 4])
    loss = -tf.reduce_mean(terms.elbo)
  for v, g in zip(variables, tape.gradient(loss, variables)):
    assert g is not None, v.name
    assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), v.name


@pytest.mark.parametrize("case", CASES)
def test_no_stale_result_after_a_variable_update(case):
  """The same z tensor, eagerly and in one traced function, after every variable changed."""
  prior = _make(case)
  z = _latents([9, D], seed=(8, 9))
  graph = tf.function(prior.log_prob)
  before, before_graph = prior.log_prob(z).numpy(), graph(z).numpy()
  for v in prior.trainable_variables:
    v.assign(v * 1.1 + 0.05 * tf.cast(tf.not_equal(v, 0.0), v.dtype))
  after, after_graph = prior.log_prob(z).numpy(), graph(z).numpy()
  assert np.all(np.abs(after - before) > 1e-3)
  expected = _reference_log_prob(prior, z + 0.0).numpy()
  np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(after_graph, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(before_graph, before, rtol=1e-5, atol=1e-5)
