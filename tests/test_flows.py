"""Tests of the flow priors (realnvp, xu_realnvp, maf) and the bijectors ActNorm / invertible_dense.

References are independent of the code under test: normalisation and sample frequencies by
midpoint quadrature of exp(log_prob) on a fine 2-D grid, log-determinants from numerical
Jacobians (tf.GradientTape.batch_jacobian), moments computed with numpy.
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from scipy import stats

from tfp_priors import bijectors
from tfp_priors import objectives
from tfp_priors.models import VAE
from tfp_priors.priors import FlowPrior, MAFPrior, RealNVPPrior, XuRealNVPPrior, build_prior

tfd = tfp.distributions

NAMES = ["realnvp", "xu_realnvp", "maf"]

# Midpoint rule on [-L, L]^2 with n x n cells of width h; coarse cells of K x K fine cells.
L, N_FINE, K_COARSE = 10.0, 320, 20
H = 2 * L / N_FINE
EDGES = np.linspace(-L, L, N_FINE + 1)
CENTERS = 0.5 * (EDGES[1:] + EDGES[:-1])


def _make(name, latent_size=2, seed=0):
  """A flow prior; xu_realnvp with a small flow depth to keep the tests fast."""
  if name == "xu_realnvp":
    return XuRealNVPPrior(latent_size, flow_depth=3, seed=seed)
  if name == "realnvp":
    return RealNVPPrior(latent_size, seed=seed)
  return MAFPrior(latent_size, seed=seed)


def _skewed_sample(n=2048, seed=0):
  """A non-standard, skewed (banana-shaped) 2-D sample: [n, 2] float32."""
  e = np.random.default_rng(seed).standard_normal([n, 2])
  z = np.stack([1.5 * e[:, 0] + 1.0, 0.4 * e[:, 0]**2 + 0.5 * e[:, 1] - 1.5], axis=-1)
  return tf.constant(z, tf.float32)


def _nll(prior, z):
  return -tf.reduce_mean(prior.distribution().log_prob(z))


def _fit(prior, z, num_steps=30, learning_rate=1e-2, eager=False):
  """Maximum likelihood with Adam; returns (NLL before, NLL after) in nats."""
  optimizer = tf_keras.optimizers.Adam(learning_rate)
  variables = prior.trainable_variables

  def step():
    with tf.GradientTape() as tape:
      loss = _nll(prior, z)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  if not eager:
    step = tf.function(step, autograph=False)
  losses = [float(step()) for _ in range(num_steps + 1)]  # each at the pre-update variables
  return losses[0], losses[-1]


def _perturbed(name, seed=0):
  """A 2-D flow prior trained away from its near-identity start on the skewed sample."""
  prior = _make(name, seed=seed)
  data = _skewed_sample()
  if name == "xu_realnvp":
    prior.initialize(data)
  before, after = _fit(prior, data)
  # It moved: the fitted density explains the skewed sample clearly better than at the start.
  assert after < before - 0.2, (before, after)
  return prior


def _grid_density(prior):
  """p(z) at the centres of the fine grid: [n, n] (first index z1)."""
  z1, z2 = np.meshgrid(CENTERS, CENTERS, indexing="ij")
  z = tf.constant(np.stack([z1, z2], -1).reshape([-1, 2]), tf.float32)
  log_prob = tf.function(lambda z: prior.distribution().log_prob(z))(z)
  return np.exp(log_prob.numpy().astype(np.float64)).reshape([N_FINE, N_FINE])


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one_and_samples_follow_it(name):
  prior = _perturbed(name)
  cell_mass = _grid_density(prior) * H * H
  assert cell_mass.sum() == pytest.approx(1.0, abs=1e-2)

  # Chi-square: sample counts in coarse cells vs the quadrature's cell probabilities.
  num_samples = 20000
  samples = tf.function(lambda: prior.distribution().sample(num_samples, seed=[5, 6]))().numpy()
  assert np.all(np.isfinite(samples))
  coarse_edges = EDGES[::K_COARSE]
  counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[coarse_edges] * 2)
  n_coarse = N_FINE // K_COARSE
  probs = cell_mass.reshape(n_coarse, K_COARSE, n_coarse, K_COARSE).sum(axis=(1, 3))
  counts, probs = counts.ravel(), probs.ravel()
  outside_count = num_samples - counts.sum()
  outside_prob = max(1.0 - probs.sum(), 0.0)
  # Cells with fewer than 5 expected samples are pooled with the outside of the grid.
  small = probs * num_samples < 5
  observed = np.append(counts[~small], counts[small].sum() + outside_count)
  expected = np.append(probs[~small], probs[small].sum() + outside_prob)
  expected = expected / expected.sum() * num_samples
  assert len(observed) > 10  # the test has power: the mass is spread over many cells
  _, p_value = stats.chisquare(observed, expected)
  assert p_value > 1e-3, p_value

  # Moments of the samples agree with those of the quadrature.
  z1, z2 = np.meshgrid(CENTERS, CENTERS, indexing="ij")
  mean = np.array([np.sum(cell_mass * z1), np.sum(cell_mass * z2)]) / cell_mass.sum()
  np.testing.assert_allclose(samples.mean(0), mean, atol=0.05)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_with_an_odd_latent_size(name):
  # (Inside tf.function: the quadrature test and `_fit` run log_prob and sample there.)
  prior = _make(name, latent_size=5)
  dist = prior.distribution()
  z = dist.sample(7, seed=[1, 2])
  assert z.shape == (7, 5)
  assert dist.log_prob(z).shape == (7,)
  assert dist.log_prob(tf.zeros([3, 4, 5])).shape == (3, 4)
  assert dist.event_shape == [5]


def _while_loops(fn, *args):
  graph = tf.function(fn).get_concrete_function(*args).graph
  return [op.type for op in graph.get_operations() if "While" in op.type]


@pytest.mark.parametrize("name", ["realnvp", "maf"])
def test_flows_start_near_the_identity(name):
  prior = _make(name, latent_size=4)
  z = tf.random.stateless_normal([200, 4], [6, 1])
  standard = tfd.MultivariateNormalDiag(tf.zeros(4)).log_prob(z)
  np.testing.assert_allclose(prior.distribution().log_prob(z), standard, atol=0.2)


def test_maf_log_prob_is_single_pass_and_sampling_is_sequential():
  dist = MAFPrior(4, num_blocks=2).distribution()
  assert not _while_loops(dist.log_prob, tf.TensorSpec([None, 4]))
  assert _while_loops(lambda: dist.sample(3, seed=[1, 2]))


@pytest.mark.parametrize("name", NAMES)
def test_every_variable_is_collected_and_gets_a_finite_nonzero_gradient(name):
  prior = _make(name, latent_size=5)
  # Count the variables from the components, independently of tf.Module's collection.
  if name == "realnvp":
    parts = [v for net in prior.nets for v in net.mlp.net.trainable_variables]
    assert len(parts) == 4 * 3 * 2  # 4 couplings x MLP[2 - 100 - 100 - 6] kernels + biases
  elif name == "maf":
    parts = [v for made in prior.made_networks for v in made.trainable_variables]
    assert len(parts) == 5 * 3 * 2  # 5 MADEs x 3 dense layers (Keras's own collection)
  else:
    parts = []
    for dense, coupling, act_norm in prior.blocks:
      del coupling
      parts += [dense.lower_upper, act_norm.bias, act_norm.log_scale]
    parts += [v for net in prior.coupling_nets for v in net.mlp.net.trainable_variables]
    assert len(parts) == 3 * (1 + 2 + 4)
  collected = {id(v) for v in prior.trainable_variables}
  assert collected == {id(v) for v in parts}
  assert all(isinstance(v, tf.Variable) for v in prior.variables)

  if name == "xu_realnvp":
    prior.initialize(tf.random.stateless_normal([256, 5], [3, 3]) * 2.0 + 1.0)
  z = tf.random.stateless_normal([64, 5], [0, 1]) * 1.5
  with tf.GradientTape() as tape:
    loss = -tf.reduce_mean(prior.distribution().log_prob(z))
  grads = tape.gradient(loss, prior.trainable_variables)
  for v, g in zip(prior.trainable_variables, grads):
    assert g is not None, v.name
    g = tf.convert_to_tensor(g).numpy()
    assert np.all(np.isfinite(g)) and np.any(g != 0), v.name


@pytest.mark.parametrize("name", NAMES)
def test_one_joint_elbo_step_changes_every_variable(name):
  x = tf.cast(tf.random.stateless_uniform([16, 784], [4, 2]) < 0.3, tf.float32)
  model = VAE(latent_size=2, hidden_sizes=(8,))
  prior = _make(name)
  if name == "xu_realnvp":
    prior.initialize(tf.random.stateless_normal([256, 2], [3, 3]))
  variables = model.trainable_variables + prior.trainable_variables
  before = [v.numpy().copy() for v in variables]
  optimizer = tf_keras.optimizers.Adam(1e-3)
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, x, training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
  for v, old in zip(variables, before):
    assert np.any(v.numpy() != old), v.name


def test_maf_stays_autoregressive_after_training():
  """tf_keras optimizers re-apply the MADE masks: the Jacobian dz/dw stays triangular."""
  prior = MAFPrior(3, num_blocks=1)
  _fit(prior, tf.random.stateless_normal([256, 3], [1, 1]) * 2.0 + 1.0, num_steps=3, eager=True)
  made = prior.made_networks[0]
  w = tf.random.stateless_normal([8, 3], [2, 2])
  with tf.GradientTape() as tape:
    tape.watch(w)
    params = made(w)  # [8, 3, 2]: output i may depend on w_{<i} only
  jac = tape.batch_jacobian(params, w).numpy()  # [8, 3, 2, 3]
  for i in range(3):
    assert np.all(jac[:, i, :, i:] == 0.0)
  assert np.any(jac[:, 2, :, :2] != 0.0)


def test_xu_initialize_standardises_every_actnorm_output_once():
  prior = XuRealNVPPrior(4, flow_depth=3, seed=1)
  rng = np.random.default_rng(0)
  z = tf.constant(rng.standard_normal([1000, 4]) * [3.0, 0.5, 1.0, 5.0] + [2.0, -1.0, 0.0, 4.0],
                  tf.float32)
  prior.initialize(z)
  h = z
  for dense, coupling, act_norm in prior.blocks:
    assert bool(act_norm.initialized)
    h = act_norm.forward(coupling.forward(dense.forward(h)))
    np.testing.assert_allclose(np.mean(h.numpy(), 0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.std(h.numpy(), 0), 1.0, atol=1e-3)
  # w = f(z) is the last ActNorm's output.
  np.testing.assert_allclose(prior.encoder_flow.forward(z).numpy(), h.numpy(), atol=1e-5)
  # A second call (e.g. a resumed run) leaves initialised ActNorms alone.
  values = [v.numpy().copy() for v in prior.trainable_variables]
  prior.initialize(z * 10.0)
  for v, old in zip(prior.trainable_variables, values):
    np.testing.assert_array_equal(v.numpy(), old)


def test_xu_rejects_bad_flow_depth_and_coupling_flows_need_two_dims():
  with pytest.raises(ValueError, match="flow_depth"):
    XuRealNVPPrior(2, flow_depth=0)
  with pytest.raises(ValueError, match="latent_size >= 2"):
    RealNVPPrior(1)
  with pytest.raises(ValueError, match="num_couplings"):
    RealNVPPrior(2, num_couplings=0)
  with pytest.raises(ValueError, match="num_blocks"):
    MAFPrior(2, num_blocks=0)


@pytest.mark.parametrize("name", NAMES)
def test_build_prior_by_name(name):
  prior = build_prior(2, name=name)
  assert isinstance(prior, FlowPrior)
  assert prior.registry_name == name
  assert prior.distribution().event_shape == [2]


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_into_a_fresh_prior(name, tmp_path):
  prior = _make(name, seed=1)
  if name == "xu_realnvp":
    prior.initialize(_skewed_sample(256))
  for v in prior.trainable_variables:  # away from the initial values
    v.assign(v * 1.2 + 0.01)
  path = tf.train.Checkpoint(prior=prior).save(str(tmp_path / "ckpt"))
  # Another seed: other initial weights and permutations, all overwritten by the restore.
  fresh = _make(name, seed=2)
  z = tf.random.stateless_normal([50, 2], [7, 7]) * 2.0
  assert not np.allclose(fresh.distribution().log_prob(z), prior.distribution().log_prob(z))
  tf.train.Checkpoint(prior=fresh).restore(path).assert_consumed()
  np.testing.assert_array_equal(fresh.distribution().log_prob(z).numpy(),
                                prior.distribution().log_prob(z).numpy())
  np.testing.assert_array_equal(fresh.distribution().sample(5, seed=[3, 3]).numpy(),
                                prior.distribution().sample(5, seed=[3, 3]).numpy())


@pytest.mark.parametrize("name", NAMES)
def test_distribution_reflects_variable_updates_for_a_tensor_seen_before(name):
  """TFP caches bijector results by input tensor; distribution() must not serve stale ones."""
  prior = _make(name, latent_size=3)
  z = tf.random.stateless_normal([5, 3], [8, 8])
  before = prior.distribution().log_prob(z).numpy()
  for v in prior.trainable_variables:
    v.assign(v * 1.5 + 0.05)
  after = prior.distribution().log_prob(z).numpy()
  assert not np.allclose(after, before)
  np.testing.assert_allclose(after, prior.distribution().log_prob(z + 0.0).numpy(), rtol=1e-5)


def test_same_seed_same_prior():
  for name in NAMES:
    a, b = _make(name, seed=3), _make(name, seed=3)
    for u, v in zip(a.variables, b.variables):
      np.testing.assert_array_equal(u.numpy(), v.numpy())


# ---- bijectors ---------------------------------------------------------------------------

def _numerical_log_det(bijector, x):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = bijector.forward(x)
  return np.linalg.slogdet(tape.batch_jacobian(y, x).numpy().astype(np.float64))[1]


def test_actnorm_data_dependent_init():
  rng = np.random.default_rng(1)
  x = tf.constant(rng.gamma(2.0, size=[2000, 3]) * [3.0, 0.2, 10.0] + [5.0, -2.0, 0.0],
                  tf.float32)
  act_norm = bijectors.ActNorm(3)
  assert not bool(act_norm.initialized)
  y_before = act_norm.forward(x)  # kept alive: TFP's cache would serve it after the init
  np.testing.assert_array_equal(y_before.numpy(), x.numpy())  # identity at first
  y = act_norm.initialize(x)
  assert bool(act_norm.initialized)
  np.testing.assert_allclose(np.mean(y.numpy(), 0), 0.0, atol=1e-4)
  np.testing.assert_allclose(np.std(y.numpy(), 0), 1.0, atol=1e-3)
  np.testing.assert_allclose(act_norm.forward(x).numpy(), y.numpy(), atol=1e-6)
  with pytest.raises(ValueError, match="batch"):
    act_norm.initialize(x[0])
  # overwrite=False keeps an initialised ActNorm; the default re-initialises.
  act_norm.initialize(x * 3.0, overwrite=False)
  np.testing.assert_allclose(np.std(act_norm.forward(x).numpy(), 0), 1.0, atol=1e-3)
  act_norm.initialize(x * 3.0)
  np.testing.assert_allclose(np.std(act_norm.forward(x * 3.0).numpy(), 0), 1.0, atol=1e-3)
  assert {v.name for v in act_norm.trainable_variables} == {"bias:0", "log_scale:0"}


def test_actnorm_inverse_and_log_det():
  act_norm = bijectors.ActNorm(4)
  act_norm.bias.assign([0.5, -1.0, 2.0, 0.0])
  act_norm.log_scale.assign([0.3, -0.7, 1.1, 0.05])
  x = tf.random.stateless_normal([6, 4], [1, 2])
  np.testing.assert_allclose(act_norm.inverse(act_norm.forward(x) + 0.0).numpy(), x.numpy(),
                             atol=1e-5)
  fldj = act_norm.forward_log_det_jacobian(x, event_ndims=1)
  np.testing.assert_allclose(np.broadcast_to(fldj, [6]), _numerical_log_det(act_norm, x),
                             atol=1e-5)
  ildj = act_norm.inverse_log_det_jacobian(x, event_ndims=1)
  np.testing.assert_allclose(ildj, -fldj, atol=1e-6)
  # As a flow over a batch: log_prob broadcasts the constant log-det against the batch shape.
  dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(4)), act_norm)
  assert dist.log_prob(tf.zeros([3, 2, 4])).shape == (3, 2)


def test_invertible_dense():
  layer = bijectors.invertible_dense(4, seed=3)
  x = tf.random.stateless_normal([6, 4], [2, 3])
  # Starts as a rotation: W^T W = I, log |det W| = 0.
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer.forward(x)
  w = tape.batch_jacobian(y, x)[0].numpy()
  np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)
  np.testing.assert_allclose(layer.forward_log_det_jacobian(x, event_ndims=1), 0.0, atol=1e-5)
  # Deterministic given the seed.
  np.testing.assert_array_equal(bijectors.invertible_dense(4, seed=3).lower_upper.numpy(),
                                layer.lower_upper.numpy())
  assert not np.allclose(bijectors.invertible_dense(4, seed=4).lower_upper.numpy(),
                         layer.lower_upper.numpy())
  # Away from a rotation: still inverts, log-det matches the numerical one. (A new x: TFP's
  # cache would return forward(x) as computed before the update.)
  layer.lower_upper.assign_add(tf.random.stateless_normal([4, 4], [5, 5]) * 0.3)
  x = tf.random.stateless_normal([6, 4], [2, 4])
  assert [id(v) for v in layer.trainable_variables] == [id(layer.lower_upper)]
  np.testing.assert_allclose(layer.inverse(layer.forward(x) + 0.0).numpy(), x.numpy(), atol=1e-4)
  fldj = np.broadcast_to(layer.forward_log_det_jacobian(x, event_ndims=1), [6])
  numerical = _numerical_log_det(layer, x)
  assert abs(numerical[0]) > 0.05  # not volume preserving any more
  np.testing.assert_allclose(fldj, numerical, atol=1e-4)


def test_realnvp_log_scale_bound_keeps_far_samples_finite():
  """log_scale_bound B: every coupling's log-scale is B tanh(s / B), so a flow whose nets give
  huge log-scales far from the data (as LARS's jointly trained proposal did in the 2-D fit)
  still maps base noise to finite samples, with |log det| <= K B; unbounded, it overflows."""
  w = tf.constant([[4.0, -4.0], [0.5, 0.3]])
  flows = {}
  for bound in (None, 2.0):
    prior = RealNVPPrior(2, hidden_sizes=(8,), log_scale_bound=bound, seed=0)
    for net in prior.nets:  # no shift; log-scale 10 * sum of the ReLUs, growing with |x|
      net.mlp.net.layers[-1].kernel.assign(np.tile([[0.0, 10.0]], [8, 1]).astype(np.float32))
    flows[bound] = prior
  assert not np.all(np.isfinite(flows[None].bijector.forward(w)))
  bounded = flows[2.0]
  z = bounded.bijector.forward(w)
  assert np.all(np.isfinite(z))
  log_det = bounded.bijector.forward_log_det_jacobian(w, event_ndims=1)
  assert np.all(np.abs(log_det) <= 4 * 2.0 + 1e-4)
  np.testing.assert_allclose(bounded.bijector.inverse(z)[1], w[1], rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="log_scale_bound"):
    RealNVPPrior(2, log_scale_bound=0.0)
