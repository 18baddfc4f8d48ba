"""The run directory's guarantees: atomic files, strict JSON, no leftovers of an interrupted
save, one process at a time, the first config kept, and no silent re-evaluation."""
import json
import os
import subprocess
import sys
import time

import pytest

from tfp_priors.training import workdir as workdir_lib

NO_EVAL = dict(evaluate=False, export=False)


def _strict_json(path):
  """The parsed file; raises ValueError on NaN / Infinity, which strict JSON does not have."""
  def refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")
  with open(path, encoding="utf-8") as f:
    return json.loads(f.read(), parse_constant=refuse)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path, monkeypatch):
  workdir_lib.write_metrics(tmp_path, {"nll": 90.0})
  def replace_fails(src, dst):
    raise OSError("disk full")
  monkeypatch.setattr(os, "replace", replace_fails)
  with pytest.raises(OSError, match="disk full"):
    workdir_lib.write_metrics(tmp_path, {"nll": 80.0})
  assert _strict_json(tmp_path / "metrics.json") == {"nll": 90.0}
  assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_metrics_are_strict_json_with_unknown_figures_as_null(tmp_path):
  workdir_lib.write_metrics(tmp_path, {"rate": float("nan"), "z": [float("inf"), 1.5], "k": 3})
  assert _strict_json(tmp_path / "metrics.json") == {"rate": None, "z": [None, 1.5], "k": 3}


def test_leftovers_of_an_interrupted_save_are_removed_and_checkpoints_kept(tmp_path):
  checkpoints = tmp_path / "checkpoints"
  (checkpoints / "ckpt-5_temp").mkdir(parents=True)
  (checkpoints / "ckpt-5_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"")
  (checkpoints / "checkpoint.tmp7d1f0c").write_bytes(b"")
  for name in ("checkpoint", "ckpt-3.index", "ckpt-3.data-00000-of-00001"):
    (checkpoints / name).write_bytes(b"x")
  messages = []
  removed = workdir_lib.remove_leftovers(tmp_path, messages.append)
  assert sorted(removed) == ["checkpoints/checkpoint.tmp7d1f0c", "checkpoints/ckpt-5_temp"]
  assert sorted(os.listdir(checkpoints)) == [
      "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
  assert "interrupted save" in messages[0]


def test_a_second_process_on_the_workdir_is_refused_naming_the_holder(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c",
       "import fcntl, os, sys, time\n"
       f"f = open({str(tmp_path / '.lock')!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
       "f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()\n"
       "print('locked', flush=True); time.sleep(60)"],
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(workdir_lib.WorkdirLockedError, match=f"PID {holder.pid}"):
      with workdir_lib.locked(tmp_path):
        pass
  finally:
    holder.kill()
    holder.wait()
  with workdir_lib.locked(tmp_path):  # the OS released the dead holder's lock
    assert (tmp_path / ".lock").read_text() == str(os.getpid())


@pytest.mark.slow
def test_training_under_a_held_lock_stops_before_any_work(train_tiny, tmp_path):
  with workdir_lib.locked(tmp_path):
    with pytest.raises(workdir_lib.WorkdirLockedError, match=f"PID {os.getpid()}"):
      train_tiny(tmp_path, "vae_standard", ["train.num_steps = 2"], **NO_EVAL)
  assert sorted(os.listdir(tmp_path)) == [".lock"]


@pytest.mark.slow
def test_reruns_keep_the_first_config_write_strict_metrics_and_refuse_a_smaller_budget(
    train_tiny, tmp_path):
  train_tiny(tmp_path, "vae_standard", ["train.num_steps = 4"], **NO_EVAL)
  first_config = (tmp_path / "config.gin").read_text()
  # Resumed at its final step: no step is timed, the rate is unknown (null, not NaN).
  train_tiny(tmp_path, "vae_standard", ["train.num_steps = 4"], **NO_EVAL)
  assert _strict_json(tmp_path / "metrics.json")["train_steps_per_second"] is None
  assert not list(tmp_path.glob("config-*.gin"))  # same bindings: nothing new
  # More steps: trains on; the first config stays, this run's is config-4.gin.
  train_tiny(tmp_path, "vae_standard", ["train.num_steps = 6"], **NO_EVAL)
  assert (tmp_path / "config.gin").read_text() == first_config
  assert "train.num_steps = 6" in (tmp_path / "config-4.gin").read_text()
  metrics = (tmp_path / "metrics.json").read_text()
  assert _strict_json(tmp_path / "metrics.json")["num_steps"] == 6
  # Fewer steps than reached: refused, and nothing in the workdir changes (but the lock
  # file, which names the process holding it).
  def files():
    return {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()
            if p.is_file() and p.name != ".lock"}
  before = files()
  time.sleep(0.01)
  with pytest.raises(ValueError, match="train.num_steps = 3 is below step 6"):
    train_tiny(tmp_path, "vae_standard", ["train.num_steps = 3"], **NO_EVAL)
  assert files() == before and (tmp_path / "metrics.json").read_text() == metrics
