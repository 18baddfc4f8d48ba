"""Faults a run directory must survive, and bad input that must be refused before any work.

1. A table of bad bindings, flags and paths given to `python -m trainers.run`: each exits with
   status 1 and one `error:` line naming the problem, prints no traceback, loads no data and
   leaves the workdir as it was (a finished run's, or absent).
2. kill -9 at random points of training, checkpointing, evaluation and export, then a rerun:
   the final weights, metrics and export equal those of an uninterrupted run.
"""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

from absl import flags
from absl import logging as absl_logging
import gin
import numpy as np
import pytest
import tensorflow as tf

import support
from tfp_priors.data import pipelines
from trainers import run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FAST = ["train.num_steps = 4", "train.log_every = 2", "train.checkpoint_every = 2",
              "train.image_every = 100"]

# (case id, extra argv, text the error line must contain). The flags below are added to each
# (a valid tiny run of lars_vae) unless the case replaces them.
BAD_INPUTS = [
    # gin syntax and names
    ("config_syntax", ["--gin_config={bad_syntax}"], "line 2"),
    ("config_truncated", ["--gin_config={truncated}"], "open bracket"),
    ("binding_syntax", ["--gin_bindings=train.num_steps = ("], "--gin_bindings: EOF"),
    ("binding_double_equals", ["--gin_bindings=train.num_steps = = 3"],
     "Unable to parse value in `train.num_steps = = 3`"),
    ("unquoted_string", ["--gin_bindings=train.num_steps = abc"], "abc"),
    ("unknown_parameter", ["--gin_bindings=train.num_stepz = 3"], "num_stepz"),
    ("unknown_configurable", ["--gin_bindings=trainz.num_steps = 3"], "trainz"),
    ("missing_config", ["--gin_config=no_such_config.gin"], "no_such_config"),
    # flags
    ("no_workdir", ["--workdir="], "--workdir is required"),
    ("no_config", ["--gin_config="], "--gin_config is required"),
    ("positional", ["extra"], "unexpected arguments"),
    ("negative_seed", ["--seed=-1"], "train.seed"),
    # train.* values
    ("num_steps_string", ["--gin_bindings=train.num_steps = 'abc'"], "train.num_steps"),
    ("num_steps_fraction", ["--gin_bindings=train.num_steps = 20.5"], "train.num_steps"),
    ("num_steps_negative", ["--gin_bindings=train.num_steps = -1"], "train.num_steps"),
    ("checkpoint_every_0", ["--gin_bindings=train.checkpoint_every = 0"],
     "train.checkpoint_every"),
    ("log_every_0", ["--gin_bindings=train.log_every = 0"], "train.log_every"),
    ("image_every_0", ["--gin_bindings=train.image_every = 0"], "train.image_every"),
    ("learning_rate_negative", ["--gin_bindings=train.learning_rate = -1e-3"],
     "train.learning_rate"),
    ("final_learning_rate_0", ["--gin_bindings=train.final_learning_rate = 0"],
     "train.final_learning_rate"),
    ("bad_rate_schedule", ["--gin_bindings=train.learning_rate_schedule = ((0.5, 1e-3),)"],
     "train.learning_rate_schedule"),
    ("warmup_negative", ["--gin_bindings=train.warmup_steps = -3"], "train.warmup_steps"),
    ("kl_warmup_start_2", ["--gin_bindings=train.kl_warmup_start = 2.0"],
     "train.kl_warmup_start"),
    ("weight_decay_negative", ["--gin_bindings=train.weight_decay = -1.0"],
     "train.weight_decay"),
    ("time_scale_0", ["--gin_bindings=train.schedule_time_scale = 0"],
     "train.schedule_time_scale"),
    ("importance_samples_0", ["--gin_bindings=train.num_importance_samples = 0"],
     "train.num_importance_samples"),
    ("normalizer_samples_0", ["--gin_bindings=train.normalizer_samples = 0"],
     "train.normalizer_samples"),
    ("eval_max_examples_0", ["--gin_bindings=train.eval_max_examples = 0"],
     "train.eval_max_examples"),
    ("validation_every_0", ["--gin_bindings=train.validation_every = 0"],
     "train.validation_every"),
    ("validation_samples_0", ["--gin_bindings=train.validation_every = 2",
                              "--gin_bindings=train.validation_importance_samples = 0"],
     "train.validation_importance_samples"),
    ("patience_without_validation", ["--gin_bindings=train.early_stopping_patience = 3"],
     "train.validation_every"),
    ("max_consecutive_skips_0", ["--gin_bindings=train.max_consecutive_skips = 0"],
     "train.max_consecutive_skips"),
    ("max_skipped_fraction_2", ["--gin_bindings=train.max_skipped_fraction = 2.0"],
     "train.max_skipped_fraction"),
    ("strategy_class", ["--gin_bindings=train.strategy = @PostHoc"], "train.strategy"),
    ("unknown_distribute", ["--gin_bindings=train.distribute = 'bogus'"], "bogus"),
    # data set and prior
    ("batch_size_0", ["--gin_bindings=make_datasets.batch_size = 0"],
     "make_datasets.batch_size"),
    ("eval_batch_size_string", ["--gin_bindings=make_datasets.eval_batch_size = '64'"],
     "make_datasets.eval_batch_size"),
    ("unknown_data_set", ["--gin_bindings=make_datasets.name = 'mnistt'"], "mnistt"),
    ("unknown_prior", ["--gin_bindings=build_prior.name = 'larss'"], "larss"),
    # paths
    ("workdir_is_file", ["--workdir={a_file}"], "is a file"),
    ("workdir_under_file", ["--workdir={a_file}/run"], "which is a file"),
    ("workdir_not_writable", ["--workdir=/proc/tfp_priors_test/run"], "cannot write"),
]


def _tree_digest(folder):
  """{relative path: sha256 of its bytes (None for a folder)} of everything under `folder`."""
  digest = {}
  for root, dirs, names in os.walk(folder):
    for name in dirs + names:
      full = os.path.join(root, name)
      rel = os.path.relpath(full, folder)
      digest[rel] = (None if os.path.isdir(full)
                     else hashlib.sha256(open(full, "rb").read()).hexdigest())
  return digest


@pytest.fixture(scope="module")
def finished_workdir(tmp_path_factory):
  """A finished tiny lars_vae run (4 steps, no evaluation or export)."""
  workdir = tmp_path_factory.mktemp("finished")
  gin.clear_config()
  run.parse_config(["lars_vae"], support.TINY_BINDINGS + TRAIN_FAST
                   + ["train.evaluate = False", "train.export = False"])
  from tfp_priors.training import runner  # pylint: disable=g-import-not-at-top
  runner.train(str(workdir))
  gin.clear_config()
  return workdir


def _main(argv, capsys):
  """Runs trainers.run's main in this process; returns (exit status, stdout, stderr)."""
  flags.FLAGS.unparse_flags()
  remaining = flags.FLAGS(["trainers.run"] + argv)
  levels = absl_logging.get_verbosity(), tf.get_logger().level
  status = 0
  try:
    run.main(remaining)
  except SystemExit as e:
    status = e.code
  finally:  # `run.fail` silences the loggers for the exit of a real process
    absl_logging.set_verbosity(levels[0])
    tf.get_logger().setLevel(levels[1])
  captured = capsys.readouterr()
  return status, captured.out, captured.err


@pytest.mark.parametrize("case, extra, expected", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_before_any_work(case, extra, expected, finished_workdir, tmp_path,
                                              monkeypatch, capsys):
  (tmp_path / "bad_syntax.gin").write_text("train.num_steps = 4\ntrain.log_every = = 3\n")
  (tmp_path / "truncated.gin").write_text("train.num_steps = 4\nVAE.hidden_sizes = (32,\n")
  (tmp_path / "a_file").write_text("not a folder")
  names = {name: str(tmp_path / name) for name in ("a_file",)}
  names.update({key: str(tmp_path / f"{key}.gin") for key in ("bad_syntax", "truncated")})
  extra = [arg.format(**names) for arg in extra]

  def no_data(**unused):
    raise AssertionError("data was loaded before the bad input was refused")
  monkeypatch.setattr(pipelines, "make_datasets", no_data)
  fresh = case.startswith("workdir")
  workdir = extra[0].split("=", 1)[1] if fresh else str(finished_workdir)
  argv = (["--gin_config=lars_vae", f"--workdir={workdir}"]
          + [f"--gin_bindings={b}" for b in support.TINY_BINDINGS + TRAIN_FAST]
          + [arg for arg in extra if not arg.startswith("--workdir=") or not fresh])
  if any(arg.startswith("--gin_config=") for arg in extra):  # the case's config replaces it
    argv = [a for a in argv if a != "--gin_config=lars_vae"]
  before = _tree_digest(finished_workdir)
  a_file = (tmp_path / "a_file").read_text()

  status, out, err = _main(argv, capsys)

  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert status == 1, (out, err)
  assert len(errors) == 1 and expected in errors[0], err
  assert err.strip().splitlines()[-1] == errors[0]  # the last thing printed
  assert "Traceback" not in out + err
  assert _tree_digest(finished_workdir) == before
  assert (tmp_path / "a_file").read_text() == a_file
  assert not os.path.exists("/proc/tfp_priors_test")


def test_the_table_covers_thirty_cases():
  assert len(BAD_INPUTS) >= 30 and len({c[0] for c in BAD_INPUTS}) == len(BAD_INPUTS)


def test_incompatible_checkpoint_error_is_the_last_line(finished_workdir, tmp_path):
  """A workdir of a LARS run resumed as a standard VAE: exit 1, the IncompatibleCheckpointError
  last (no TensorFlow warnings about unrestored values after it), the workdir unchanged."""
  before = _tree_digest(finished_workdir)
  del before[".lock"]  # rewritten with the PID of the process holding the lock
  proc = subprocess.run(
      [sys.executable, "-m", "trainers.run", "--gin_config=vae_standard",
       f"--workdir={finished_workdir}"]
      + [f"--gin_bindings={b}" for b in support.TINY_BINDINGS + TRAIN_FAST],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert lines[-1].startswith("error: IncompatibleCheckpointError: "), lines[-5:]
  assert "Traceback" not in proc.stderr
  after = _tree_digest(finished_workdir)
  del after[".lock"]
  assert after == before


# A tiny deterministic LARS run through every stage: training with checkpoints, log Z
# (finalize), test evaluation, metrics.json and the export.
KILL_RUN = (["--gin_config=lars_vae", "--seed=1"]
            + [f"--gin_bindings={b}" for b in support.TINY_BINDINGS
               + ["train.num_steps = 20", "train.checkpoint_every = 4", "train.log_every = 4",
                  "train.image_every = 12"]])
# (console line that starts the stage, most seconds to wait before the kill).
KILL_POINTS = [("step 8/", 0.4), ("Evaluating test NLL", 1.0), ("test NLL ", 0.3)]
TIMINGS = ("train_steps_per_second", "seconds", "acceptance_evaluations_per_second")


def _start(workdir):
  return subprocess.Popen([sys.executable, "-m", "trainers.run", f"--workdir={workdir}"]
                          + KILL_RUN, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def _kill_after(workdir, trigger, most_seconds, rng):
  """Runs until `trigger` is printed, waits up to most_seconds (uniform), then SIGKILL."""
  proc = _start(workdir)
  for line in proc.stdout:
    if trigger in line:
      time.sleep(rng.uniform(0, most_seconds))
      proc.send_signal(signal.SIGKILL)
      break
  proc.stdout.close()
  return proc.wait(timeout=300)


def _outcome(workdir):
  """(metrics less timings, checkpoint variables, export variables) of a finished run."""
  with open(os.path.join(workdir, "metrics.json")) as f:
    metrics = {k: v for k, v in json.load(f).items() if k not in TIMINGS}
  export = tf.train.load_checkpoint(os.path.join(workdir, "export", "variables", "variables"))
  return (metrics, support.checkpoint_variables(workdir),
          {k: export.get_tensor(k) for k in export.get_variable_to_shape_map()})


@pytest.mark.slow
def test_kill_9_anywhere_then_rerun_equals_an_uninterrupted_run(tmp_path):
  reference = _start(tmp_path / "reference")  # runs beside the killed ones
  rng = random.Random(15)
  codes = [_kill_after(tmp_path / "killed", trigger, most, rng) for trigger, most in KILL_POINTS]
  final = _start(tmp_path / "killed")
  log, reference_log = final.communicate(timeout=600)[0], reference.communicate(timeout=600)[0]
  assert reference.returncode == 0, reference_log[-3000:]
  noise = [line for line in reference_log.splitlines()  # trainers.console: a quiet console
           if re.match(r"[IWE]0000 00:00:|WARNING: All log messages", line)
           or "resource_reader" in line or "dataset_info.json" in line]
  assert not noise, noise
  assert final.returncode == 0, log[-3000:]
  assert codes.count(-signal.SIGKILL) >= 2, codes  # most kills landed before the run ended
  expected, got = _outcome(tmp_path / "reference"), _outcome(tmp_path / "killed")
  assert got[0] == expected[0]
  for want, have in zip(expected[1:], got[1:]):
    assert sorted(have) == sorted(want)
    for name in want:
      np.testing.assert_array_equal(have[name], want[name], err_msg=name)
  assert not [n for n in os.listdir(tmp_path / "killed") if ".part" in n]
