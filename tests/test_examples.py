"""examples/ runs: each example on a tiny budget (the MNIST slice of tests/data)."""
import importlib.util
import os

import numpy as np
import pytest

import support

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _example(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
def test_own_keras_model_with_a_lars_prior(monkeypatch):
  monkeypatch.setenv("TFP_PRIORS_DATA_DIR", support.SLICE_DIR)
  lines = []
  elbo = _example("own_model").train(steps=30, latent_size=4, print_fn=lines.append)
  assert np.isfinite(elbo) and elbo < 0 and lines[-1].startswith("test ELBO")


@pytest.mark.slow
def test_post_hoc_prior_and_scoring_an_export(train_tiny, tmp_path, monkeypatch):
  train_tiny(tmp_path, config="vae_standard", bindings=["train.num_steps = 20"])
  monkeypatch.setenv("TFP_PRIORS_DATA_DIR", support.SLICE_DIR)
  nll = _example("post_hoc_prior").fit(str(tmp_path), steps=20, importance_samples=5,
                                       max_examples=50, print_fn=lambda _: None)
  assert set(nll) == {"standard", "realnvp"} and all(np.isfinite(v) for v in nll.values())
  log_px = _example("score_images").score(str(tmp_path / "export"), num_images=30,
                                          importance_samples=10, print_fn=lambda _: None)
  assert log_px.shape == (30,) and np.all(log_px < 0)
