"""Early stopping on the validation NLL (LARS appendix C.3, static MNIST)."""
import math
import os
import re

import numpy as np
import pytest

from tfp_priors.training.early_stopping import EarlyStopping

# Twenty good steps, then an absurd learning rate that wrecks the model: the validation NLL at
# step 20 is the best, the later ones are worse.
WRECK_LATER = ["train.learning_rate_schedule = ((0.0, 3e-3), (0.5, 0.3))",
               "train.num_steps = 40", "train.validation_every = 10",
               "train.validation_importance_samples = 5", "train.validation_max_examples = 64",
               "train.checkpoint_every = 10", "train.export = False"]


def test_update_tracks_best_and_patience():
  stopper = EarlyStopping(patience=2)
  assert stopper.update(90.0, 10) and stopper.update(85.0, 20)
  assert not stopper.update(85.5, 30) and not stopper.should_stop
  assert not stopper.update(85.0, 40) and stopper.should_stop  # equal is no improvement
  assert (float(stopper.best_nll), int(stopper.best_step)) == (85.0, 20)
  assert stopper.update(80.0, 50) and not stopper.should_stop


def test_bad_settings_and_nan():
  with pytest.raises(ValueError, match="patience"):
    EarlyStopping(patience=0)
  with pytest.raises(FloatingPointError, match="best checkpoint"):
    EarlyStopping().update(math.nan, 3)


def test_patience_needs_validation(train_tiny, tmp_path):
  with pytest.raises(ValueError, match="validation_every"):
    train_tiny(tmp_path, "vae_standard.gin", ["train.num_steps = 5",
                                             "train.early_stopping_patience = 2"])


def _validation_log(lines):
  found = [re.match(r"step (\d+): validation NLL ([\d.]+)", l) for l in lines]
  return {int(m.group(1)): float(m.group(2)) for m in found if m}


@pytest.mark.slow
def test_restores_best_validation_checkpoint(train_tiny, tmp_path):
  lines = []
  results = train_tiny(tmp_path / "run", "vae_standard.gin", WRECK_LATER,
                       print_fn=lines.append)
  log = _validation_log(lines)
  assert sorted(log) == [10, 20, 30, 40]
  assert results["best_step"] == min(log, key=log.get) == 20
  assert results["best_validation_nll"] == pytest.approx(log[20], abs=0.01)
  assert results["num_steps"] == 40 and not results["stopped_early"]
  # The weights evaluated (and kept in best_checkpoint/) are those of an identical run that
  # stopped at step 20, not the wrecked step-40 weights of checkpoints/.
  twin = train_tiny(tmp_path / "twin", "vae_standard.gin",
                    [b for b in WRECK_LATER if "validation" not in b]
                    + ["train.num_steps = 20", "train.learning_rate_schedule = ((0.0, 3e-3),)"])
  assert twin["num_steps"] == 20
  best = _variables(tmp_path / "run" / "best_checkpoint")
  last = _variables(tmp_path / "run" / "checkpoints")
  reference = _variables(tmp_path / "twin" / "checkpoints")
  for name, value in reference.items():
    np.testing.assert_allclose(best[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
  assert any(not np.allclose(last[n], reference[n]) for n in reference)
  # The test NLL is that of the best weights: far from the wrecked model's.
  assert results["nll"] == pytest.approx(twin["nll"], abs=1e-3)


def _variables(checkpoint_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(str(checkpoint_dir))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith("model/") and "OPTIMIZER_SLOT" not in k}


@pytest.mark.slow
def test_patience_stops_and_resume_does_not_train_on(train_tiny, tmp_path):
  bindings = WRECK_LATER + ["train.early_stopping_patience = 1"]
  results = train_tiny(tmp_path, "vae_standard.gin", bindings)
  assert results["stopped_early"] and results["num_steps"] == 30
  assert results["best_step"] == 20
  again = train_tiny(tmp_path, "vae_standard.gin", bindings)
  assert again["num_steps"] == 30 and again["best_step"] == 20
  assert again["nll"] == pytest.approx(results["nll"], abs=1e-4)
  assert sorted(os.listdir(tmp_path / "best_checkpoint"))[0].startswith("checkpoint")
