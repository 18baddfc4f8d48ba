"""LARS Fig. 2 / D.4: fit a 2-D mixture of nine Gaussians by maximum likelihood (LARS Eq. 6).

RealNVP alone, LARS over N(0, I) and LARS over a jointly trained RealNVP proposal are fitted to
samples of the target q with the priors' training path (`training_log_prob`: Algorithm 1 for
LARS). The paper reports KL(q || p) = 0.68 for RealNVP alone and 0.08 for LARS over RealNVP,
whose acceptance rate Z is about double that of LARS over N(0, I) (KL(q || N(0, I)) = 1.8).
Here (2,000 Adam steps, three initialisations, before the RealNVP's log-scale was bounded):
RealNVP 0.68, LARS over N(0, I) 0.77-1.26, LARS over RealNVP 0.24-0.36; Z of the two LARS
priors 0.04-0.11, in no consistent order, so only the fit is asserted. With the bound
(`realnvp_proposal`, B = 10), the figure script's seed 0 gives RealNVP 0.60 and LARS over
RealNVP 0.27 in one session, 0.61 and 0.45 in a later one with the same code (another CPU or
unpinned package builds: the 2,000-step fit is sensitive to float rounding).
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_priors.priors import LarsPrior, StandardNormalPrior
from trainers import illustrate_2d

# The target, the fit (2,000 Adam steps), the KL estimate (20,000 target samples, LARS's Z from
# 10^6 proposal samples) and the RealNVP are those of the figure script trainers.illustrate_2d.
_realnvp = illustrate_2d.realnvp_proposal


@pytest.fixture(scope="module")
def fitted():
  tf_keras.utils.set_random_seed(0)  # initialisation of the acceptance networks
  target = illustrate_2d.nine_gaussians()
  priors = {
      "realnvp": _realnvp(),
      "lars_normal": LarsPrior(2, hidden_sizes=(10, 10), num_proposal_samples=256),
      "lars_realnvp": LarsPrior(2, proposal=_realnvp(), hidden_sizes=(10, 10),
                                num_proposal_samples=256),
  }
  for prior in priors.values():
    illustrate_2d.fit_maximum_likelihood(prior, target)
  kl = {name: illustrate_2d.kl_divergence(target, prior) for name, prior in priors.items()}
  kl["normal"] = illustrate_2d.kl_divergence(target, StandardNormalPrior(2))
  return priors, kl


def test_lars_over_realnvp_fits_better_than_realnvp_alone(fitted):
  _, kl = fitted
  assert kl["normal"] == pytest.approx(1.87, abs=0.05)  # the paper's reference: 1.8
  # Every learned prior improves on its proposal; resampling a RealNVP beats the RealNVP.
  assert kl["realnvp"] < kl["normal"] - 0.5
  assert kl["lars_normal"] < kl["normal"] - 0.5
  # Measured 0.27 vs 0.60 (seed 0) in one session, 0.45 vs 0.61 in a later one with the same
  # code (float rounding moves this 2,000-step fit), so the margin allows for that spread.
  assert kl["lars_realnvp"] < 0.8 * kl["realnvp"], kl
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
