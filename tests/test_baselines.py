"""Tests of the mixture baselines: the mixture-of-Gaussians prior ('mog') and the VampPrior.

References are independent of the code under test: normalisation and sample frequencies by
midpoint quadrature of exp(log_prob) on a 2-D grid (helpers of test_flows / conftest), the
mixture densities written out in numpy from the encoder's outputs, TFP's generic
`tfd.MixtureSameFamily`, and tiny full training runs through the trainer with export.
"""
import json
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from scipy import special

from support import TINY_BINDINGS
from support import grid_chi_square
from tests.test_flows import CENTERS, EDGES, H, _grid_density
from tfp_priors import objectives
from tfp_priors.models import HVAE, VAE
from tfp_priors.priors import LarsPrior, MixtureOfGaussiansPrior, VampPrior, build_prior
from tfp_priors.priors import mixture
from trainers import run
from tfp_priors.training import checkpointing
from tfp_priors.training import trainer as train_lib

tfd = tfp.distributions


def _numpy_mixture_log_prob(z, log_weights, loc, scale):
  """log sum_k w_k N(z; loc_k, diag(scale_k^2)) in float64: z [..., d] -> [...]."""
  z, loc, scale = (np.asarray(a, np.float64) for a in (z, loc, scale))
  diff = (z[..., None, :] - loc) / scale  # [..., K, d]
  log_normal = (-0.5 * np.sum(diff**2, -1) - np.sum(np.log(scale), -1)
                - 0.5 * loc.shape[-1] * np.log(2 * np.pi))
  return special.logsumexp(log_normal + np.asarray(log_weights, np.float64), axis=-1)


def _check_quadrature_and_samples(prior, mean, num_samples=20000):
  """exp(log_prob) integrates to 1 on the grid of test_flows, its mean is `mean`, and samples
  follow it (chi-square on cells of 10 x 10 grid cells, 0.625 wide; sample mean)."""
  cell_mass = _grid_density(prior) * H * H
  assert cell_mass.sum() == pytest.approx(1.0, abs=1e-3)
  z1, z2 = np.meshgrid(CENTERS, CENTERS, indexing="ij")
  np.testing.assert_allclose([np.sum(cell_mass * z1), np.sum(cell_mass * z2)], mean, atol=1e-3)
  samples = tf.function(lambda: prior.distribution().sample(num_samples, seed=[5, 6]))().numpy()
  assert samples.shape == (num_samples, 2) and np.all(np.isfinite(samples))
  p_value, num_bins = grid_chi_square(samples, cell_mass, EDGES, coarse=10)
  assert num_bins > 20, num_bins  # the test has power: the mass is spread over many cells
  assert p_value > 1e-3, p_value
  np.testing.assert_allclose(samples.mean(0), mean, atol=0.06)


# ----------------------------------------------------------------------------------------------
# Mixture of Gaussians


def _mog_2d():
  """A 2-D MoG with unequal weights and scales and well separated modes."""
  prior = MixtureOfGaussiansPrior(2, num_components=3)
  prior.logits.assign([0.0, 0.5, -0.5])
  prior.loc.assign([[-3.0, 0.0], [2.0, 2.0], [1.0, -3.0]])
  prior.log_scale.assign(np.log([[1.0, 0.5], [0.7, 1.2], [0.4, 0.8]]).astype(np.float32))
  return prior


def test_mog_density_integrates_to_one_and_samples_follow_it():
  prior = _mog_2d()
  weights = special.softmax(prior.logits.numpy())
  _check_quadrature_and_samples(prior, weights @ prior.loc.numpy())


def test_mog_log_prob_matches_numpy_and_tfp_with_small_scales():
  prior = MixtureOfGaussiansPrior(3, num_components=4, seed=3)
  rng = np.random.default_rng(0)
  prior.logits.assign(rng.standard_normal(4).astype(np.float32))
  # Scales from 0.02 to 3: the expanded quadratic form must not lose precision.
  prior.log_scale.assign(rng.uniform(np.log(0.02), np.log(3.0), [4, 3]).astype(np.float32))
  dist = prior.distribution()
  assert isinstance(dist, tfd.MixtureSameFamily)
  assert dist.batch_shape == [] and dist.event_shape == [3]
  near = prior.loc.numpy()[rng.integers(0, 4, 20)] + 0.05 * rng.standard_normal([20, 3])
  z = np.concatenate([near, 3 * rng.standard_normal([15, 3])]).astype(np.float32)
  z = z.reshape([5, 7, 3])
  log_prob = dist.log_prob(z).numpy()
  assert log_prob.shape == (5, 7)
  expected = _numpy_mixture_log_prob(
      z, special.log_softmax(prior.logits.numpy()), prior.loc.numpy(),
      np.exp(prior.log_scale.numpy()))
  np.testing.assert_allclose(log_prob, expected, rtol=1e-5, atol=1e-3)
  generic = tfd.MixtureSameFamily(dist.mixture_distribution, dist.components_distribution)
  np.testing.assert_allclose(log_prob, generic.log_prob(z), rtol=1e-5, atol=1e-3)


def test_mog_initialisation_registry_and_gradients():
  prior = build_prior(5, name="mog")
  assert isinstance(prior, MixtureOfGaussiansPrior) and prior.registry_name == "mog"
  assert prior.num_components == 10
  assert sorted(v.name for v in prior.trainable_variables) == [
      "loc:0", "log_scale:0", "logits:0"]
  loc = prior.loc.numpy()
  # Distinct components (seeded N(0, 1) locations), unit scales, equal weights.
  assert np.min(np.linalg.norm(loc[:, None] - loc[None], axis=-1) + np.eye(10) * 9) > 0.5
  np.testing.assert_array_equal(prior.log_scale.numpy(), 0.0)
  np.testing.assert_array_equal(prior.logits.numpy(), 0.0)
  np.testing.assert_array_equal(MixtureOfGaussiansPrior(5).loc.numpy(), loc)  # seeded
  assert not np.array_equal(MixtureOfGaussiansPrior(5, seed=1).loc.numpy(), loc)
  z = tf.random.stateless_normal([64, 5], [1, 2]) * 2.0
  with tf.GradientTape() as tape:
    loss = -tf.reduce_mean(prior.distribution().log_prob(z))
  grads = tape.gradient(loss, prior.trainable_variables)
  assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)


def test_mog_bad_arguments():
  with pytest.raises(ValueError, match="num_components >= 1"):
    MixtureOfGaussiansPrior(2, num_components=0)
  with pytest.raises(ValueError, match="init_scale"):
    MixtureOfGaussiansPrior(2, init_scale=0.0)


# ----------------------------------------------------------------------------------------------
# VampPrior


def _tiny_vae(latent_size=2, input_size=6, seed=0):
  tf_keras.utils.set_random_seed(seed)
  return VAE(input_size=input_size, latent_size=latent_size, hidden_sizes=(8,))


def _encoder_mixture(model, prior):
  """(log weights [K], loc [K, d], scale [K, d]) of the VampPrior from the encoder outputs at
  the pseudo-inputs, computed outside the prior."""
  out = model.encoder(prior.pseudo_inputs()).numpy().astype(np.float64)
  loc, log_scale = np.split(out, 2, axis=-1)
  k = prior.num_pseudo_inputs
  return np.full([k], -np.log(k)), loc, np.exp(log_scale)


@pytest.mark.parametrize("activation", ["hardtanh", "sigmoid"])
def test_vamp_log_prob_is_the_mean_of_the_encoder_posteriors(activation):
  model = _tiny_vae(latent_size=3)
  prior = VampPrior(3, model, num_pseudo_inputs=7, pseudo_input_activation=activation)
  rng = np.random.default_rng(1)
  prior.pseudo_input_weights.assign(rng.uniform(-0.5, 1.5, [7, 6]).astype(np.float32))
  dist = prior.distribution()
  assert isinstance(dist, tfd.MixtureSameFamily)
  assert dist.batch_shape == [] and dist.event_shape == [3]
  z = (2 * rng.standard_normal([4, 5, 3])).astype(np.float32)
  expected = _numpy_mixture_log_prob(z, *_encoder_mixture(model, prior))
  np.testing.assert_allclose(dist.log_prob(z), expected, rtol=1e-5, atol=1e-4)
  # The same formula on the encoder's own q(z|u_k) objects (log N per component, logsumexp).
  u = prior.pseudo_inputs()
  per_component = model.encode_top(u).log_prob(z[..., None, :])  # [4, 5, K]
  np.testing.assert_allclose(
      dist.log_prob(z), tf.reduce_logsumexp(per_component, -1) - np.log(7.0), atol=1e-4)


@pytest.mark.parametrize("activation", ["hardtanh", "sigmoid"])
def test_vamp_pseudo_inputs_lie_in_the_unit_interval(activation):
  model = _tiny_vae()
  prior = VampPrior(2, model, num_pseudo_inputs=50, pseudo_input_activation=activation)
  u = prior.pseudo_inputs().numpy()
  assert u.shape == (50, 6)
  # Initial pixels ~ N(0.05, 0.01) for either activation, all strictly inside (0, 1).
  assert u.min() > 0.0 and u.max() < 1.0
  assert np.mean(u) == pytest.approx(0.05, abs=2e-3)
  assert np.std(u) == pytest.approx(0.01, abs=2e-3)
  prior.pseudo_input_weights.assign(
      np.random.default_rng(0).uniform(-20, 20, [50, 6]).astype(np.float32))
  u = prior.pseudo_inputs().numpy()
  assert u.min() >= 0.0 and u.max() <= 1.0
  if activation == "hardtanh":  # min(max(w, 0), 1)
    np.testing.assert_array_equal(u, np.clip(prior.pseudo_input_weights.numpy(), 0, 1))


def test_vamp_density_integrates_to_one_and_samples_follow_it():
  model = _tiny_vae()
  # An encoder whose posteriors at different inputs are clearly apart: wider means, scales
  # around 0.5 (Glorot initialisation gives overlapping posteriors with scales up to 2.5).
  last = model.encoder.net.layers[-1]
  last.kernel.assign(last.kernel * [4.0, 4.0, 0.3, 0.3])
  last.bias.assign([0.0, 0.0, np.log(0.5), np.log(0.5)])
  prior = VampPrior(2, model, num_pseudo_inputs=5)
  prior.pseudo_input_weights.assign(
      np.random.default_rng(2).uniform(0, 1, [5, 6]).astype(np.float32))
  log_weights, loc, scale = _encoder_mixture(model, prior)
  # Components spread over several scales (a multimodal density), all well inside the
  # quadrature grid [-10, 10]^2.
  assert np.max(np.abs(loc) + 6 * scale) < 10.0
  assert np.max(np.linalg.norm(loc[:, None] - loc[None], axis=-1)) > 2.0
  _check_quadrature_and_samples(prior, np.exp(log_weights) @ loc)


def test_vamp_owns_only_its_pseudo_inputs_and_gradients_reach_the_encoder():
  model = _tiny_vae(latent_size=3)
  prior = build_prior(3, name="vamp", model=model)
  assert isinstance(prior, VampPrior) and prior.registry_name == "vamp"
  assert prior.num_pseudo_inputs == 500 and prior.pseudo_input_activation == "hardtanh"
  assert [v.name for v in prior.trainable_variables] == ["pseudo_input_weights:0"]
  assert [v.name for v in prior.variables] == ["pseudo_input_weights:0"]
  assert not prior.submodules
  model_ids = {id(v) for v in model.trainable_variables}
  assert not model_ids & {id(v) for v in prior.trainable_variables}
  # The trainer's concatenated list has no duplicates.
  trainer = train_lib.Trainer(model, prior, 0, 0)
  assert len({id(v) for v in trainer.train_variables}) == len(trainer.train_variables)
  assert len(trainer.train_variables) == len(model.trainable_variables) + 1

  x = tf.constant(np.random.default_rng(0).integers(0, 2, [16, 6]), tf.float32)
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, x, training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  grads = tape.gradient(loss, trainer.train_variables)
  assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)
  # log p(z) alone (not only through q(z|x)) reaches every encoder variable.
  encoder_variables = list(model.encoder.trainable_variables)
  with tf.GradientTape() as tape:
    log_prior = tf.reduce_mean(prior.distribution().log_prob(tf.ones([8, 3])))
  grads = tape.gradient(log_prior, encoder_variables + [prior.pseudo_input_weights])
  assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)


def test_vamp_checkpoint_round_trip_and_trainer_restore(tmp_path):
  model = _tiny_vae(latent_size=3)
  prior = VampPrior(3, model, num_pseudo_inputs=9)
  prior.pseudo_input_weights.assign(
      np.random.default_rng(3).uniform(0, 1, [9, 6]).astype(np.float32))
  z = tf.random.stateless_normal([11, 3], [4, 5])
  expected = prior.distribution().log_prob(z)
  path = tf.train.Checkpoint(model=model, prior=prior).save(str(tmp_path / "plain" / "ckpt"))

  fresh_model = _tiny_vae(latent_size=3, seed=7)
  fresh = VampPrior(3, fresh_model, num_pseudo_inputs=9, seed=7)
  assert not np.allclose(fresh.distribution().log_prob(z), expected)
  tf.train.Checkpoint(model=fresh_model, prior=fresh).restore(path).assert_consumed()
  np.testing.assert_allclose(fresh.distribution().log_prob(z), expected, rtol=1e-6)

  # The trainer's checkpoint and its restore (assert_existing_objects_matched).
  trainer = train_lib.Trainer(model, prior, 0, 0)
  manager = tf.train.CheckpointManager(trainer.checkpoint, str(tmp_path / "trainer"), 1)
  manager.save()
  other_model = _tiny_vae(latent_size=3, seed=8)
  other = train_lib.Trainer(other_model, VampPrior(3, other_model, 9, seed=8), 0, 0)
  assert checkpointing.restore(other, manager)  # pylint: disable=protected-access
  np.testing.assert_allclose(other.prior.distribution().log_prob(z), expected, rtol=1e-6)
  # A checkpoint with a different number of pseudo-inputs is refused with the trainer's error.
  third_model = _tiny_vae(latent_size=3, seed=9)
  third = train_lib.Trainer(third_model, VampPrior(3, third_model, 4), 0, 0)
  with pytest.raises(checkpointing.IncompatibleCheckpointError):
    checkpointing.restore(third, manager)  # pylint: disable=protected-access


def test_vamp_with_the_hvae_encodes_the_top_latent():
  tf_keras.utils.set_random_seed(0)
  model = HVAE(input_size=6, latent_size=2, hidden_size=8)
  prior = VampPrior(2, model, num_pseudo_inputs=4)
  q = model.encode_top(prior.pseudo_inputs())  # q(z2 | u_k)
  z = tf.random.stateless_normal([3, 2], [0, 1])
  expected = tf.reduce_logsumexp(q.log_prob(z[:, None, :]), -1) - np.log(4.0)
  np.testing.assert_allclose(prior.distribution().log_prob(z), expected, atol=1e-5)


def test_lars_over_a_vamp_proposal():
  model = _tiny_vae()
  # By name LarsPrior cannot pass the model on: build_prior's clear error.
  with pytest.raises(ValueError, match="built from the model's encoder.*model=model"):
    LarsPrior(2, proposal="vamp", hidden_sizes=(8,))
  with pytest.raises(ValueError, match="model=model"):
    build_prior(2, name="vamp")
  # As an instance it works, and LARS collects the encoder's variables no more than Vamp does.
  lars = LarsPrior(2, proposal=VampPrior(2, model, num_pseudo_inputs=5), hidden_sizes=(8,))
  model_ids = {id(v) for v in model.trainable_variables}
  assert not model_ids & {id(v) for v in lars.trainable_variables}
  assert np.all(np.isfinite(lars.distribution().log_prob(tf.zeros([3, 2]))))


def test_vamp_bad_arguments():
  model = _tiny_vae()
  with pytest.raises(ValueError, match=r"pseudo_input_size = 784 .* model.input_size = 6"):
    VampPrior(2, model, pseudo_input_size=784)
  VampPrior(2, model, num_pseudo_inputs=2, pseudo_input_size=6)  # matching size is fine

  class NoEncoder:
    input_size = 6

  with pytest.raises(ValueError, match="encode_top"):
    VampPrior(2, NoEncoder())
  with pytest.raises(ValueError, match="encode_top"):
    VampPrior(2, None)
  with pytest.raises(ValueError, match="latents of size 2.*latent_size = 3"):
    VampPrior(3, model)
  with pytest.raises(ValueError, match="num_pseudo_inputs"):
    VampPrior(2, model, num_pseudo_inputs=0)
  with pytest.raises(ValueError, match="hardtanh"):
    VampPrior(2, model, pseudo_input_activation="relu")
  with pytest.raises(ValueError, match=r"init_mean must be in \(0, 1\)"):
    VampPrior(2, model, pseudo_input_init_mean=-0.05)


def test_diagonal_mixture_falls_back_to_tfp_for_other_layouts():
  # A batch of mixtures (components batch [2, K]) is not the fast layout: TFP's code runs.
  components = tfd.MultivariateNormalDiag(tf.zeros([2, 3, 2]), tf.ones([2, 3, 2]))
  dist = mixture.DiagonalGaussianMixture(tfd.Categorical(logits=tf.zeros([2, 3])), components)
  assert dist.log_prob(tf.zeros([2, 2])).shape == (2,)
  assert dist.sample(4, seed=[1, 2]).shape == (4, 2, 2)
  np.testing.assert_allclose(dist.log_prob(tf.zeros([2, 2])), -np.log(2 * np.pi), rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Tiny full runs: train, evaluate, export, reload


RUNS = {"mog_vae": ["MixtureOfGaussiansPrior.num_components = 5"],
        "vamp_vae": ["VampPrior.num_pseudo_inputs = 20"]}

# Loads each export in a process that imports no project code (one process for all runs).
_LOAD_SCRIPT = """
import json, sys, tensorflow as tf
results = {}
for path in sys.argv[1:]:
  m = tf.saved_model.load(path)
  out = m.signatures['sample'](num_samples=tf.constant(7), seed=tf.constant(3))
  again = m.signatures['sample'](num_samples=tf.constant(7), seed=tf.constant(3))
  lp = m.signatures['log_prob'](z=out['latents'])['log_prob']
  images = out['images']
  results[path] = {
      'images': list(images.shape), 'latents': out['latents'].numpy().tolist(),
      'again': again['latents'].numpy().tolist(), 'log_prob': lp.numpy().tolist(),
      'pixel_range': [float(tf.reduce_min(images)), float(tf.reduce_max(images))]}
assert not any(k.startswith(('tfp_priors', 'trainers')) for k in sys.modules)
print(json.dumps(results))
"""


@pytest.mark.slow
def test_tiny_runs_evaluate_and_export(train_tiny, tmp_path):
  for config, bindings in RUNS.items():
    results = train_tiny(tmp_path / config, config, bindings + ["train.num_steps = 6"])
    assert results["prior"] == config.split("_")[0] and results["num_steps"] == 6
    for key in ("nll", "elbo", "kl", "reconstruction"):
      assert np.isfinite(results[key]), (config, key)
    assert results["nll"] <= -results["elbo"] + 5.0, config

  exports = [str(tmp_path / config / "export") for config in RUNS]
  proc = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, *exports], capture_output=True,
                        text=True, cwd=str(tmp_path), timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  loaded = json.loads(proc.stdout.strip().splitlines()[-1])

  for config, bindings in RUNS.items():
    exported = loaded[str(tmp_path / config / "export")]
    assert exported["images"] == [7, 28, 28, 1]
    assert 0.0 <= exported["pixel_range"][0] <= exported["pixel_range"][1] <= 1.0
    latents = np.array(exported["latents"], np.float32)
    assert latents.shape == (7, 4) and np.all(np.isfinite(latents))
    np.testing.assert_array_equal(exported["again"], latents)  # seeded
    log_prob = np.array(exported["log_prob"])
    assert log_prob.shape == (7,) and np.all(np.isfinite(log_prob))

    # The exported density is the trained prior's: rebuild the model and prior from the
    # config, restore the run's checkpoint through the trainer, and compare.
    gin.clear_config()
    run.parse_config([config], TINY_BINDINGS + bindings)
    model = VAE()
    prior = build_prior(model.latent_size, model=model)
    trainer = train_lib.Trainer(model, prior, 0, 0)
    manager = tf.train.CheckpointManager(trainer.checkpoint,
                                         str(tmp_path / config / "checkpoints"), 3)
    assert checkpointing.restore(trainer, manager)  # pylint: disable=protected-access
    np.testing.assert_allclose(log_prob, prior.distribution().log_prob(latents),
                               rtol=1e-5, atol=1e-5, err_msg=config)
