"""trainers.learning_curves: validation curves read back from TensorBoard events, the power-law
fit and its extrapolation checked on curves of known parameters."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainers import learning_curves

STEPS = np.arange(4000, 40001, 4000)


def _curve(asymptote, scale, exponent, noise, seed):
  values = asymptote + scale * STEPS.astype(float) ** -exponent
  return values + np.random.default_rng(seed).normal(0.0, noise, len(STEPS))


def _write_run(workdir, values, test_nll=None, resumed_from=None):
  """A run directory with `valid/nll` events (a second event file repeating steps after
  `resumed_from`, as a resumed run writes) and optionally metrics.json."""
  os.makedirs(os.path.join(workdir, "train"), exist_ok=True)
  parts = [(STEPS, values)]
  if resumed_from is not None:  # the first file's values from `resumed_from` on were redone
    later = STEPS >= resumed_from
    parts = [(STEPS, np.where(later, values + 50.0, values)), (STEPS[later], values[later])]
  for i, (steps, vals) in enumerate(parts):
    writer = tf.summary.create_file_writer(os.path.join(workdir, "train"),
                                           filename_suffix=f".{i}")
    with writer.as_default():
      for step, value in zip(steps, vals):
        tf.summary.scalar("valid/nll", value, step=int(step))
    writer.close()
  if test_nll is not None:
    with open(os.path.join(workdir, "metrics.json"), "w") as f:
      json.dump({"nll": test_nll, "num_importance_samples": 1000}, f)
  return str(workdir)


def test_curve_is_read_back_and_a_resumed_step_keeps_its_later_value(tmp_path):
  values = _curve(85.0, 300.0, 0.4, 0.0, 0)
  workdir = _write_run(tmp_path / "run", values, resumed_from=20000)
  steps, read = learning_curves.validation_curve(workdir)
  np.testing.assert_array_equal(steps, STEPS)
  np.testing.assert_allclose(read, values, rtol=1e-6)
  with pytest.raises(ValueError, match="validation_every"):
    learning_curves.validation_curve(str(tmp_path / "empty"))


def test_fit_recovers_a_known_power_law_and_its_extrapolation():
  truth = (85.0, 300.0, 0.4)
  values = _curve(*truth, noise=0.02, seed=1)
  params, covariance = learning_curves.fit_power_law(STEPS, values)
  errors = np.sqrt(np.diag(covariance))
  assert np.all(np.abs(params - truth) < 4 * errors + 1e-6), (params, errors)
  draws = learning_curves.parameter_draws(params, covariance)
  at_target = learning_curves.interval(learning_curves.power_law(1e7, *draws.T))
  true_target = learning_curves.power_law(1e7, *truth)
  width = at_target["high"] - at_target["low"]
  assert at_target["low"] - width <= true_target <= at_target["high"] + width
  with pytest.raises(ValueError, match=">= 4 points"):
    learning_curves.fit_power_law(STEPS[:3], values[:3])


def test_holdout_error_is_the_noise_for_a_power_law_and_large_for_a_kink():
  smooth = _curve(85.0, 300.0, 0.4, 0.01, 2)
  assert learning_curves.holdout_error(STEPS, smooth, 3) < 0.1
  kinked = smooth.copy()
  kinked[-3:] -= 2.0  # the curve drops off its trend at the end
  assert learning_curves.holdout_error(STEPS, kinked, 3) > 1.0


@pytest.mark.slow
def test_command_writes_the_figure_and_the_gains(tmp_path):
  base = _curve(86.0, 400.0, 0.4, 0.01, 3)
  lars = _curve(84.0, 400.0, 0.4, 0.01, 4)
  dirs = [_write_run(tmp_path / "standard", base, test_nll=base[-1] + 0.1),
          _write_run(tmp_path / "lars", lars, test_nll=lars[-1] + 0.1)]
  png, out = tmp_path / "curves.png", tmp_path / "curves.json"
  subprocess.run([sys.executable, "-m", "trainers.learning_curves", f"--workdirs={','.join(dirs)}",
                  "--labels=N(0, I);LARS", "--paper=84.97,83.03", f"--output_png={png}",
                  f"--output_json={out}"], check=True, capture_output=True, timeout=300)
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  with open(out) as f:
    runs = json.load(f)["runs"]
  np.testing.assert_allclose(runs[1]["validation"]["gain"], base - lars, rtol=1e-5)
  assert runs[1]["test_gain"] == pytest.approx(base[-1] - lars[-1], abs=1e-4)
  gain = runs[1]["validation"]["extrapolated_gain"]
  assert gain["low"] <= gain["median"] <= gain["high"]
  assert abs(gain["median"] - 2.0) < 3 * (gain["high"] - gain["low"]) + 0.2  # truth: 86 - 84
  # A run without validation events: one line naming the fix, exit 1, nothing written.
  os.makedirs(tmp_path / "no_validation")
  png.unlink()
  proc = subprocess.run([sys.executable, "-m", "trainers.learning_curves",
                         f"--workdirs={dirs[0]},{tmp_path / 'no_validation'}",
                         f"--output_png={png}"], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1 and not png.exists()
  assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "train.validation_every" in proc.stderr


def test_budget_patterns_that_match_nothing_are_refused(tmp_path):
  for name in ("a_5k", "a_10k", "b_5k"):
    os.makedirs(tmp_path / name)
  groups = learning_curves.budget_groups(f"{tmp_path}/a_*;{tmp_path}/b_5k", 2)
  assert groups == [[str(tmp_path / "a_10k"), str(tmp_path / "a_5k")], [str(tmp_path / "b_5k")]]
  assert learning_curves.budget_groups("", 2) == [[], []]
  with pytest.raises(ValueError, match="matches no directory"):
    learning_curves.budget_groups(f"{tmp_path}/a_*,{tmp_path}/c_*", 1)
