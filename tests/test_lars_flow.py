"""LARS over flow proposals (LARS Table D.4 "Lars RealNVP"): joint gradients, data-dependent
initialisation through LARS, the sampling-cost warning of a MAF proposal, and a full run."""
import json
import warnings

import gin
import numpy as np
import pytest
import tensorflow as tf

from support import TINY_BINDINGS
from tfp_priors import objectives
from tfp_priors.models import VAE
from tfp_priors.priors import LarsPrior, MAFPrior, XuRealNVPPrior, build_prior
from trainers import run
from tfp_priors.training import runner as runner_lib

FLOWS = ["realnvp", "xu_realnvp", "maf"]


@pytest.mark.parametrize("proposal", FLOWS)
def test_every_variable_of_lars_and_its_flow_proposal_gets_a_gradient(proposal):
  x = tf.cast(tf.random.stateless_uniform([16, 784], seed=[0, 1]) < 0.3, tf.float32)
  model = VAE(latent_size=4, hidden_sizes=(16,))
  prior = LarsPrior(4, proposal=build_prior(4, name=proposal), hidden_sizes=(8,),
                    num_proposal_samples=32)
  prior.initialize(model.forward(x, 1, seed=[0, 0]).z_top[0])
  variables = prior.trainable_variables
  own = len(prior.acceptance_net.trainable_variables)
  assert len(variables) == own + len(prior.proposal.trainable_variables) > own
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, x, training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  for v, g in zip(variables, tape.gradient(loss, variables)):
    assert g is not None and np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0), v.name


def test_lars_initialize_initialises_the_proposal_and_restarts_the_ema():
  z = tf.random.stateless_normal([512, 3], seed=[2, 3]) * 3.0 + 5.0
  prior = LarsPrior(3, proposal=XuRealNVPPrior(3, flow_depth=2), hidden_sizes=(8,))
  before = float(prior.moving_average)
  prior.initialize(z)
  assert all(bool(a.initialized) for _, _, a in prior.proposal.blocks)
  # The EMA restarts from Z of the initialised proposal (a 2^14-sample estimate).
  assert float(prior.moving_average) == pytest.approx(prior._initial_normalizer(), rel=1e-2)
  assert float(prior.moving_average) != pytest.approx(before, rel=1e-2)


def test_exact_sampling_over_a_maf_proposal_warns_with_its_expected_cost():
  prior = LarsPrior(4, proposal=MAFPrior(4, hidden_sizes=(8,)), hidden_sizes=(8,))
  seconds = prior.expected_sampling_seconds(100)
  assert seconds > 0
  # Proportional to the number of samples, at the truncated sampler's E[min(G, T)] / sample.
  assert prior.expected_sampling_seconds(1000) == pytest.approx(10 * seconds)
  with pytest.warns(UserWarning, match=r"'maf' proposal is expected to take about .* minutes"):
    prior.rejection_sample(10, seed=[0, 1], warn_after_seconds=0.0)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    out = prior.rejection_sample(10, seed=[0, 1], warn_after_seconds=3600.0)
  assert out.samples.shape == (10, 4)


@pytest.mark.slow
def test_lars_over_realnvp_trains_evaluates_and_exports(tmp_path):
  gin.clear_config()
  run.parse_config(["lars_realnvp_vae"], TINY_BINDINGS + [
      "train.num_steps = 6", "RealNVPPrior.hidden_sizes = (8,)"])
  results = runner_lib.train(str(tmp_path))
  with open(tmp_path / "metrics.json") as f:
    metrics = json.load(f)
  assert metrics["prior"] == "lars" and 0.0 < metrics["normalizer"] <= 1.0
  assert np.isfinite(metrics["nll"]) and metrics == pytest.approx(results)
  loaded = tf.saved_model.load(str(tmp_path / "export"))
  out = loaded.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(1))
  assert out["latents"].shape == (5, 4)
  log_prob = loaded.signatures["log_prob"](z=out["latents"])["log_prob"]
  assert bool(tf.reduce_all(tf.math.is_finite(log_prob)))
