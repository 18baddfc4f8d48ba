"""Models, priors and objectives: gradients reach every variable; IWAE bound behaviour."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from support import SLICE_DIR
from tfp_priors import objectives
from tfp_priors.data import pipelines
from tfp_priors.models import HVAE, VAE
from tfp_priors.priors import LarsPrior, StandardNormalPrior, build_prior


def _batch(n=16):
  data = pipelines.make_datasets(data_dir=SLICE_DIR, allow_download=False, batch_size=n)
  return next(iter(data.train)), data


@pytest.mark.parametrize("model_cls", [VAE, HVAE])
@pytest.mark.parametrize("prior_name", ["normal", "lars"])
def test_every_trainable_variable_gets_a_gradient(model_cls, prior_name):
  x, _ = _batch()
  model = model_cls(latent_size=5)
  prior = build_prior(5, name=prior_name)
  variables = model.trainable_variables + prior.trainable_variables
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, x, training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  grads = tape.gradient(loss, variables)
  # Kernel + bias per dense layer: VAE 2 x 3 layers; HVAE q(z2|x) 3, q(z1|x,z2) 4, p(z1|z2) 3,
  # p(x|z1,z2) 4 layers (LARS C.2).
  expected = 2 * (6 if model_cls is VAE else 14)
  assert len(model.trainable_variables) == expected
  if prior_name == "lars":
    assert len(prior.trainable_variables) == 6  # a(z): MLP[d-100-100-1]
  for v, g in zip(variables, grads):
    assert g is not None, v.name
    assert np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0), v.name


def test_lars_training_log_prob_updates_the_moving_average_and_uses_per_datapoint_z():
  prior = LarsPrior(3, hidden_sizes=(8,), num_proposal_samples=256, ema_epsilon=0.5)
  z = tf.random.stateless_normal([10, 3], [0, 1])
  log_q = tf.fill([10], -3.0)
  before = float(prior.moving_average)
  log_p, stats = prior.training_log_prob(z, log_q, seed=[3, 4])
  assert log_p.shape == (10,)
  assert float(prior.moving_average) != before
  assert float(stats["normalizer"]) == pytest.approx(float(prior.moving_average))
  # With the evaluation estimate set, distribution() uses it instead of the EMA.
  est = prior.estimate_log_normalizer(num_samples=20000, chunk_size=5000)
  assert float(prior.log_normalizer()) == pytest.approx(float(est.log_normalizer), rel=1e-6)
  assert 0.0 < float(est.normalizer) <= 1.0


def test_hvae_shapes_and_input_check():
  x, _ = _batch(4)
  model = HVAE(latent_size=3, hidden_size=16)
  f = model.forward(x, num_samples=5, seed=[0, 1])
  assert f.z_top.shape == (5, 4, 3)
  for t in (f.log_posterior_top, f.log_likelihood, f.log_posterior_rest, f.log_prior_rest):
    assert t.shape == (5, 4)
  assert model.decode(tf.zeros([2, 3]), seed=[0, 0]).shape == (2, 784)
  with pytest.raises(ValueError, match=r"\[batch, 784\]"):
    model.forward(tf.zeros([4, 28, 28]))


def test_iwae_bound_above_elbo_and_increasing_in_k_on_a_trained_model():
  _, data = _batch()
  model = VAE(latent_size=4, hidden_sizes=(64,), train_mean=data.train_mean)
  prior = StandardNormalPrior(4)
  opt = tf_keras.optimizers.Adam(1e-3)

  @tf.function
  def step(x, seed):
    with tf.GradientTape() as tape:
      terms, _ = objectives.elbo(model, prior, x, training=True, seed=seed)
      loss = -tf.reduce_mean(terms.elbo)
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                            model.trainable_variables))
    return loss

  for i, x in enumerate(data.train.take(300)):
    loss = step(x, tf.constant([i, 0]))
  assert float(loss) < 200.0  # it trained (untrained: ~540 nats)
  x = tf.concat(list(data.test.take(4)), 0)[:200]
  dist = prior.distribution()
  bounds = {k: float(tf.reduce_mean(objectives.iwae_bound(model, dist, x, k, seed=[k, 7])))
            for k in (1, 10, 100)}
  elbo = np.mean([float(tf.reduce_mean(objectives.elbo(model, prior, x, seed=[s, 9])[0].elbo))
                  for s in range(5)])
  assert bounds[1] == pytest.approx(elbo, abs=1.0)  # K = 1 is the ELBO
  assert bounds[10] > elbo + 0.5
  assert bounds[100] > bounds[10] + 0.1


def test_build_prior_rejects_unknown_name():
  with pytest.raises(ValueError, match="registered priors"):
    build_prior(4, name="no_such_prior")
