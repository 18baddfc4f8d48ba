"""End-to-end behaviour of the trainer: resume, export, bad input (tiny models, real MNIST slice)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfp_priors.data import pipelines
from trainers import run
from tfp_priors.training import checkpointing
from tfp_priors.training import runner as runner_lib
from tfp_priors.training import strategies as strategies_lib
from tfp_priors.training import trainer as train_lib


def _variables(workdir):
  reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if "model" in k or "prior" in k}


def test_resumed_run_equals_uninterrupted_run(train_tiny, tmp_path):
  # Decay and warm-up fixed, so that stopping at step 6 changes nothing but the stopping point.
  schedule = ["train.checkpoint_every = 6", "train.decay_step = 8", "train.warmup_steps = 4"]
  common = schedule + ["train.num_steps = 12"]
  train_tiny(tmp_path / "a", bindings=common, evaluate=False, export=False)
  # Interrupted after 6 steps, then resumed in the same workdir up to 12.
  train_tiny(tmp_path / "b", bindings=schedule + ["train.num_steps = 6"], evaluate=False,
         export=False)
  b_mid = _variables(tmp_path / "b")
  results = train_tiny(tmp_path / "b", bindings=common, evaluate=False, export=False)
  assert results["num_steps"] == 12
  a, b = _variables(tmp_path / "a"), _variables(tmp_path / "b")
  assert a.keys() == b.keys() and len(a) > 10
  assert any(not np.array_equal(b_mid[k], b[k]) for k in b)  # it did train after resuming
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=k)


@pytest.mark.slow
def test_main_job_writes_metrics_and_an_export_that_loads_without_the_project(train_tiny, tmp_path):
  results = train_tiny(tmp_path, config="lars_hvae", bindings=["train.num_steps = 10"])
  with open(tmp_path / "metrics.json") as f:
    metrics = json.load(f)
  assert metrics == pytest.approx(results)
  for key in ("nll", "elbo", "reconstruction", "kl", "kl_posterior", "log_normalizer",
              "normalizer", "normalizer_standard_error", "active_units",
              "sampler_acceptance_rate"):
    assert key in metrics and np.isfinite(metrics[key]), key
  assert metrics["nll"] <= -metrics["elbo"] + 5.0  # IWAE bound is (stochastically) tighter
  assert 0.0 < metrics["normalizer"] <= 1.0
  script = textwrap.dedent(f"""
      import sys, tensorflow as tf
      m = tf.saved_model.load({str(tmp_path / 'export')!r})
      out = m.signatures['sample'](num_samples=tf.constant(7), seed=tf.constant(3))
      assert out['images'].shape == (7, 28, 28, 1), out['images'].shape
      assert out['latents'].shape == (7, 4)
      lp = m.signatures['log_prob'](z=out['latents'])['log_prob']
      assert lp.shape == (7,) and bool(tf.reduce_all(tf.math.is_finite(lp)))
      again = m.signatures['sample'](num_samples=tf.constant(7), seed=tf.constant(3))
      assert bool(tf.reduce_all(again['latents'] == out['latents']))
      try:
        m.signatures['sample'](num_samples=tf.constant(0), seed=tf.constant(0))
        raise SystemExit('non-positive num_samples was accepted')
      except tf.errors.InvalidArgumentError as e:
        assert 'num_samples must be a positive' in str(e)
      assert not any(k.startswith(('tfp_priors', 'trainers')) for k in sys.modules)
      print('OK')
  """)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        cwd=str(tmp_path), timeout=300)
  assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-2000:]


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(train_tiny, tmp_path, monkeypatch):
  make = pipelines.make_datasets

  def poisoned(**kwargs):
    ds = make(**kwargs)
    start = kwargs.get("start_step", 0)
    bad = ds.train.enumerate(start=start).map(
        lambda i, x: x * tf.where(i >= 5, float("nan"), 1.0))
    return ds._replace(train=bad)

  monkeypatch.setattr(pipelines, "make_datasets", poisoned)
  with pytest.raises(train_lib.NonFiniteLossError, match="3 steps in a row.*last good checkpoint"):
    train_tiny(tmp_path, config="vae_standard",
               bindings=["train.checkpoint_every = 2", "train.num_steps = 20",
                         "train.max_consecutive_skips = 3"])
  # Batches 5, 6, 7 are NaN: the steps on them are skipped (each still advances the counter to
  # 6, 7, 8) and the third stops the run before checkpoint 8; checkpoint 6 holds the weights
  # of the five finite updates and one skip.
  ckpt = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
  assert ckpt.endswith("-6")
  assert int(tf.train.load_variable(ckpt, "skipped_steps/.ATTRIBUTES/VARIABLE_VALUE")) == 1
  variables = _variables(tmp_path)
  for name, value in variables.items():
    assert np.all(np.isfinite(value)), name
  four = {n: tf.train.load_variable(ckpt.replace("-6", "-4"), n) for n in variables}
  changed = [n for n in variables if "model" in n and not np.array_equal(four[n], variables[n])]
  assert changed  # the update on batch 4 (finite) is in checkpoint 6, not in 4


def test_one_non_finite_batch_is_skipped_counted_and_the_run_finishes(train_tiny, tmp_path,
                                                                       monkeypatch):
  make = pipelines.make_datasets

  def poisoned(**kwargs):
    ds = make(**kwargs)
    bad = ds.train.enumerate(start=kwargs.get("start_step", 0)).map(
        lambda i, x: x * tf.where(tf.equal(i, 3), float("nan"), 1.0))
    return ds._replace(train=bad)

  monkeypatch.setattr(pipelines, "make_datasets", poisoned)
  results = train_tiny(tmp_path, config="vae_standard", bindings=["train.num_steps = 8"],
                       evaluate=False, export=False)
  assert results["num_steps"] == 8 and results["skipped_steps"] == 1
  with open(tmp_path / "metrics.json") as f:
    assert json.load(f)["skipped_steps"] == 1


@pytest.mark.parametrize("step, skipped, consecutive, stops", [
    (50, 5, 5, False),     # the fraction counts at least 100 steps: 5 is not above 5
    (50, 6, 6, True),      # 6 is
    (100, 5, 1, False),    # 5 of 100 is not above 5%
    (100, 6, 1, True),     # 6 of 100 is
    (1000, 50, 9, False),  # 5% of 1000
    (1000, 20, 10, True),  # ten in a row
])
def test_non_finite_step_limits(step, skipped, consecutive, stops):
  limits = runner_lib.NonFiniteSteps(max_consecutive=10, max_fraction=0.05)
  if stops:
    with pytest.raises(train_lib.NonFiniteLossError, match="ckpt-7"):
      limits.check(step, skipped, consecutive, "ckpt-7")
  else:
    limits.check(step, skipped, consecutive, "ckpt-7")


def test_incompatible_checkpoint_is_refused_and_left_intact(train_tiny, tmp_path):
  train_tiny(tmp_path, config="vae_standard", bindings=["train.num_steps = 2"], evaluate=False,
         export=False)
  before = sorted(os.listdir(tmp_path / "checkpoints"))
  with pytest.raises(checkpointing.IncompatibleCheckpointError, match="new --workdir"):
    train_tiny(tmp_path, config="lars_vae", bindings=["train.num_steps = 4"], evaluate=False,
           export=False)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_corrupt_checkpoint_gives_clear_error(train_tiny, tmp_path):
  train_tiny(tmp_path, config="vae_standard", bindings=["train.num_steps = 2"], evaluate=False,
         export=False)
  for name in os.listdir(tmp_path / "checkpoints"):
    if ".data-" in name:
      with open(tmp_path / "checkpoints" / name, "wb") as f:
        f.write(b"garbage")
  with pytest.raises(checkpointing.IncompatibleCheckpointError):
    train_tiny(tmp_path, config="vae_standard", bindings=["train.num_steps = 4"], evaluate=False,
           export=False)


def test_bad_configuration_errors():
  with pytest.raises(ValueError, match="no_such_parameter"):
    run.parse_config(["vae_standard"], ["train.no_such_parameter = 1"])
  with pytest.raises(FileNotFoundError, match="lars_hvae.gin"):
    run.parse_config(["no_such_config"], [])


def test_truncation_below_one_is_rejected(train_tiny, tmp_path):
  with pytest.raises(ValueError, match="truncation T must be"):
    train_tiny(tmp_path, bindings=["LarsPrior.truncation = 0", "train.num_steps = 1"])


def test_config_resolves_by_name_and_by_path():
  assert run.resolve_config("lars_hvae.gin") == run.resolve_config("lars_hvae")
  path = run.resolve_config("lars_hvae.gin")
  assert os.path.isabs(path) and run.resolve_config(path) == path


def test_tensorboard_holds_the_config_hyperparameters_and_test_metrics(train_tiny, tmp_path):
  train_tiny(tmp_path, config="lars_vae", bindings=["train.num_steps = 2"], export=False)
  tags = set()
  for name in os.listdir(tmp_path / "train"):
    for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "train" / name)):
      tags.update(v.tag for v in event.summary.value)
  assert {"config", "_hparams_/session_start_info", "test/nll", "test/elbo", "test/kl",
          "test/active_units", "loss"} <= tags, tags


@pytest.mark.parametrize("config", ["lars_vae", "vae_standard"])
def test_blocks_of_steps_give_the_weights_of_single_steps_to_the_bit(train_tiny, tmp_path,
                                                                     config):
  # One graph call per step (steps_per_execution = 1) against blocks of up to 8 steps that
  # the log (5), image (10) and checkpoint (6) intervals cut; the same stream of batches and
  # seeds, so the same weights, optimizer slots and LARS <Z> EMA, exactly.
  common = ["train.num_steps = 23", "train.checkpoint_every = 6", "train.decay_step = 9"]
  runs = {}
  for k in (1, 8):
    workdir = tmp_path / f"k{k}"
    results = train_tiny(workdir, config=config,
                         bindings=common + [f"train.steps_per_execution = {k}"],
                         evaluate=False, export=False, deterministic=True)
    assert results["num_steps"] == 23 and results["skipped_steps"] == 0
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
    runs[k] = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
               if "save_counter" not in n and not n.startswith("_CHECKPOINTABLE")}
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("-23")
  assert runs[1].keys() == runs[8].keys() and any("optimizer" in n for n in runs[1])
  for name in runs[1]:
    np.testing.assert_array_equal(runs[1][name], runs[8][name], err_msg=name)


def _blocks(runner, num_steps):
  """The blocks the training loop would run: [(start, length)] over [0, num_steps)."""
  blocks, step = [], 0
  while step < num_steps:
    phase, rate = runner.strategy.phase(step, num_steps, runner.learning_rate_fn)
    blocks.append((step, runner.block_length(step, phase, rate)))
    step += blocks[-1][1]
  return blocks


@pytest.mark.parametrize("strategy", [
    strategies_lib.Joint(), strategies_lib.Alternating(model_steps=7, estimator_steps=11),
    strategies_lib.Iterative(iterations=2, pretrain_fraction=0.3)])
def test_a_block_never_spans_an_event_of_the_loop(tmp_path, strategy):
  # Every step where the loop acts (an interval, the prior's initialisation) or where phase
  # or learning rate change must start a block; no block is longer than steps_per_execution.
  num_steps = 300
  runner = runner_lib.Runner(
      str(tmp_path), strategy=strategy,
      schedule=runner_lib.Schedule(num_steps=num_steps, decay_step=45),
      intervals=runner_lib.Intervals(log_every=20, image_every=50, checkpoint_every=70,
                                     steps_per_execution=16),
      validation=runner_lib.Validation(every=33))
  runner.initialization_step = strategy.prior_initialization_step(num_steps)
  blocks = _blocks(runner, num_steps)
  starts = [s for s, _ in blocks]
  assert all(1 <= n <= 16 for _, n in blocks) and sum(n for _, n in blocks) == num_steps
  events = {s for s in range(1, num_steps) if s % 20 == 0 or s % 50 == 0 or s % 70 == 0
            or s % 33 == 0 or s == runner.initialization_step}
  events |= {s for s in range(1, num_steps)
             if strategy.phase(s, num_steps, runner.learning_rate_fn)
             != strategy.phase(s - 1, num_steps, runner.learning_rate_fn)}
  assert events - set(starts) == set()
  assert len(blocks) < num_steps / 4  # blocks do group steps
