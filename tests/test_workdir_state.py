"""The run directory's guarantees: atomic files, strict JSON, no leftovers of an interrupted
save, one process at a time, the first config kept, and no silent re-evaluation."""
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from support import checkpoint_variables
from tfp_priors.data import files
from tfp_priors.training import checkpointing
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


def test_concurrent_writers_use_their_own_temporary_files_and_fsync(tmp_path, monkeypatch):
  """Two first runs writing one cache file at once (threads here): each writes its own
  uniquely named temporary file, fsyncs it and renames it; the result is one whole file."""
  synced, temporaries = [], []
  real_fsync, real_replace = os.fsync, os.replace
  monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
  monkeypatch.setattr(os, "replace", lambda a, b: (temporaries.append(a), real_replace(a, b)))
  contents = [bytes([i]) * 1_000_000 for i in range(2)]
  threads = [threading.Thread(target=files.atomic_write, args=(tmp_path / "cache.bin", c))
             for c in contents]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert (tmp_path / "cache.bin").read_bytes() in contents
  assert len(set(temporaries)) == 2 and all(t.endswith(".part") for t in temporaries)
  assert len(synced) >= 4  # each file and the folder after each rename
  assert os.listdir(tmp_path) == ["cache.bin"]


def test_an_interrupted_export_leaves_the_previous_one(tmp_path):
  target = tmp_path / "export"
  with files.atomic_directory(target) as staging:
    (pathlib.Path(staging) / "saved_model.pb").write_bytes(b"first")
  with pytest.raises(RuntimeError, match="killed"):
    with files.atomic_directory(target) as staging:
      (pathlib.Path(staging) / "saved_model.pb").write_bytes(b"half")
      raise RuntimeError("killed")
  assert (target / "saved_model.pb").read_bytes() == b"first"
  with files.atomic_directory(target) as staging:
    (pathlib.Path(staging) / "saved_model.pb").write_bytes(b"second")
  assert (target / "saved_model.pb").read_bytes() == b"second"
  assert sorted(os.listdir(tmp_path)) == ["export"]
  (tmp_path / "export.x1y2.part").mkdir()  # what a SIGKILL mid-export leaves
  (tmp_path / "export.x1y2.part.old").mkdir()
  (tmp_path / "metrics.json.k3.part").write_bytes(b"{")
  removed = workdir_lib.remove_leftovers(tmp_path)
  assert sorted(removed) == ["export.x1y2.part", "export.x1y2.part.old", "metrics.json.k3.part"]
  assert sorted(os.listdir(tmp_path)) == ["export"]


def test_metrics_are_strict_json_with_unknown_figures_as_null(tmp_path):
  workdir_lib.write_metrics(tmp_path, {"rate": float("nan"), "z": [float("inf"), 1.5], "k": 3})
  assert _strict_json(tmp_path / "metrics.json") == {"rate": None, "z": [None, 1.5], "k": 3}


def test_metrics_are_read_back_as_written_and_none_before_the_run_finishes(tmp_path):
  assert workdir_lib.read_metrics(tmp_path) is None
  workdir_lib.write_metrics(tmp_path, {"nll": 90.5, "z": [float("nan"), 2.0], "k": 3})
  assert workdir_lib.read_metrics(tmp_path) == _strict_json(tmp_path / "metrics.json") == {
      "nll": 90.5, "z": [None, 2.0], "k": 3}


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


def _six_step_run(train_tiny, workdir, messages=None):
  print_fn = messages.append if messages is not None else None
  return train_tiny(workdir, "vae_standard",
                    ["train.num_steps = 6", "train.checkpoint_every = 2"], print_fn=print_fn,
                    **NO_EVAL)


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(train_tiny, tmp_path):
  _six_step_run(train_tiny, tmp_path)
  uninterrupted = checkpoint_variables(tmp_path)
  data_file = next((tmp_path / "checkpoints").glob("ckpt-6.data-*"))
  data_file.write_bytes(data_file.read_bytes()[:20])  # truncated
  messages = []
  results = _six_step_run(train_tiny, tmp_path, messages)
  said = "\n".join(messages)
  assert "ckpt-6 is damaged" in said and "Resuming from ckpt-4" in said
  assert "Resumed from" in said and "at step 4" in said
  # Steps 5 and 6 again, from ckpt-4: the same weights as the uninterrupted run.
  assert results["num_steps"] == 6
  again = checkpoint_variables(tmp_path)
  assert again.keys() == uninterrupted.keys()
  assert all(np.array_equal(again[k], uninterrupted[k]) for k in again)


@pytest.mark.slow
@pytest.mark.parametrize("damage",
                         ["deleted", "text garbage", "random bytes", "names a missing file"])
def test_a_damaged_state_file_resumes_from_the_checkpoint_files_not_from_step_0(
    damage, train_tiny, tmp_path):
  _six_step_run(train_tiny, tmp_path)
  state = tmp_path / "checkpoints" / "checkpoint"
  if damage == "deleted":
    state.unlink()
  elif damage == "text garbage":
    state.write_text("this is not a checkpoint state {{{")
  elif damage == "random bytes":
    state.write_bytes(bytes(np.random.RandomState(0).randint(0, 256, 300, dtype=np.uint8)))
  else:
    state.write_text('model_checkpoint_path: "ckpt-8"\nall_model_checkpoint_paths: "ckpt-8"\n')
  messages = []
  results = _six_step_run(train_tiny, tmp_path, messages)
  said = "\n".join(messages)
  assert "Resuming from ckpt-6" in said and "at step 6" in said
  assert results["num_steps"] == 6 and not any("phase" in m for m in messages)  # no step trained


@pytest.mark.slow
def test_every_checkpoint_damaged_is_a_clear_error_not_a_fresh_start(train_tiny, tmp_path):
  _six_step_run(train_tiny, tmp_path)
  for data_file in (tmp_path / "checkpoints").glob("ckpt-*.data-*"):
    data_file.write_bytes(b"garbage")
  with pytest.raises(checkpointing.CorruptCheckpointError, match="every checkpoint .* damaged"):
    _six_step_run(train_tiny, tmp_path)
