"""LARS Fig. 2 / D.4: fit a 2-D mixture of nine Gaussians by maximum likelihood (LARS Eq. 6).

RealNVP alone, LARS over N(0, I) and LARS over a jointly trained RealNVP proposal are fitted to
samples of the target q with the priors' training path (`training_log_prob`: Algorithm 1 for
LARS). The paper reports KL(q || p) = 0.68 for RealNVP alone and 0.08 for LARS over RealNVP,
whose acceptance rate Z is about double that of LARS over N(0, I) (KL(q || N(0, I)) = 1.8).
Here (2,000 Adam steps, three initialisations): RealNVP 0.68, LARS over N(0, I) 0.77-1.26,
LARS over RealNVP 0.24-0.36; Z of the two LARS priors 0.04-0.11, in no consistent order, so
only the fit is asserted.
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_priors.priors import LarsPrior, RealNVPPrior, StandardNormalPrior

tfd = tfp.distributions
STEPS = 2000


def _target():
  grid = np.array([-1.2, 0.0, 1.2], np.float32)
  locs = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
  return tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros(9)),
                               tfd.MultivariateNormalDiag(locs, tf.fill([9, 2], 0.13)))


def _fit(prior, target, steps=STEPS, learning_rate=3e-3, batch=256):
  """Maximises E_q[log p(z)] by Adam; returns the last loss."""
  optimizer = tf_keras.optimizers.Adam(learning_rate)
  variables = prior.trainable_variables

  @tf.function
  def step(seed):
    seed_q, seed_p = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    z = target.sample(batch, seed=seed_q)
    with tf.GradientTape() as tape:
      log_p, _ = prior.training_log_prob(z, target.log_prob(z), seed=seed_p)
      loss = -tf.reduce_mean(log_p)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  for i in range(steps):
    loss = step(tf.constant([0, i]))
  return float(loss)


def _kl(target, prior):
  """KL(q || p) in nats from 20,000 target samples; LARS's Z from 10^6 proposal samples."""
  if hasattr(prior, "estimate_log_normalizer"):
    prior.estimate_log_normalizer(num_samples=10**6, seed=1)
  z = target.sample(20000, seed=[5, 5])
  return float(tf.reduce_mean(target.log_prob(z) - prior.distribution().log_prob(z)))


def _realnvp():
  # output_scale 0.3: a flow started at the identity sits on a saddle for this symmetric
  # target (N(0, I) matches its mean and covariance), so it starts a little off it.
  return RealNVPPrior(2, hidden_sizes=(32, 32), output_scale=0.3, seed=0)


@pytest.fixture(scope="module")
def fitted():
  tf_keras.utils.set_random_seed(0)  # initialisation of the acceptance networks
  target = _target()
  priors = {
      "realnvp": _realnvp(),
      "lars_normal": LarsPrior(2, hidden_sizes=(10, 10), num_proposal_samples=256),
      "lars_realnvp": LarsPrior(2, proposal=_realnvp(), hidden_sizes=(10, 10),
                                num_proposal_samples=256),
  }
  for prior in priors.values():
    _fit(prior, target)
  kl = {name: _kl(target, prior) for name, prior in priors.items()}
  kl["normal"] = _kl(target, StandardNormalPrior(2))
  return priors, kl


def test_lars_over_realnvp_fits_better_than_realnvp_alone(fitted):
  _, kl = fitted
  assert kl["normal"] == pytest.approx(1.87, abs=0.05)  # the paper's reference: 1.8
  # Every learned prior improves on its proposal; resampling a RealNVP beats the RealNVP.
  assert kl["realnvp"] < kl["normal"] - 0.5
  assert kl["lars_normal"] < kl["normal"] - 0.5
  assert kl["lars_realnvp"] < 0.7 * kl["realnvp"], kl  # measured 0.24-0.36 vs 0.68
  assert kl["lars_realnvp"] < kl["lars_normal"], kl


def test_exact_sampling_over_a_flow_proposal_accepts_at_rate_z(fitted):
  priors, _ = fitted
  z_realnvp = float(tf.exp(priors["lars_realnvp"].log_normalizer()))
  # The exact sampler's acceptance rate is Z (LARS Alg. 2), here for the flow proposal too.
  sample = priors["lars_realnvp"].rejection_sample(4000, seed=[3, 4])
  assert sample.samples.shape == (4000, 2)
  assert float(sample.acceptance_rate) == pytest.approx(z_realnvp, rel=0.15)


def test_the_jointly_trained_proposal_moved(fitted):
  priors, _ = fitted
  fresh = _realnvp()
  trained = priors["lars_realnvp"].proposal
  changed = [not np.allclose(a.numpy(), b.numpy())
             for a, b in zip(fresh.trainable_variables, trained.trainable_variables)]
  assert changed and all(changed)
