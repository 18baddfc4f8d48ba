"""The layout of a run directory, and reading a finished run back.

  <workdir>/config.gin        the gin config the run trained with (`write_config`);
                              config-<step>.gin: a rerun's config where it differs
  <workdir>/.lock             held (fcntl.flock) by the process that uses the workdir
  <workdir>/checkpoints/      the last three checkpoints (`tfp_priors.training.checkpointing`)
  <workdir>/best_checkpoint/  the best validation checkpoint (with train.validation_every)
  <workdir>/train/            TensorBoard events
  <workdir>/metrics.json      final metrics (`write_metrics`)
  <workdir>/export/           the SavedModel (`tfp_priors.export`)
  <workdir>/worker_<i>/       worker i > 0 of a multi-worker run (`training.distribute`)

The figure scripts rebuild the model from config.gin and restore it from checkpoints/.
"""
import contextlib
import fcntl
import json
import math
import os
import re
import shutil

import gin
import tensorflow as tf

from tfp_priors.data import files

CONFIG = "config.gin"
CHECKPOINTS = "checkpoints"
BEST_CHECKPOINT = "best_checkpoint"
TRAIN_EVENTS = "train"
METRICS = "metrics.json"
EXPORT = "export"
LOCK = ".lock"  # held by the process training or evaluating in the workdir

STEP_VARIABLE = "step/.ATTRIBUTES/VARIABLE_VALUE"  # Trainer.checkpoint's step counter


def path(workdir, name):
  """workdir/name, for one of the names above."""
  return os.path.join(str(workdir), name)


class WorkdirLockedError(RuntimeError):
  """Another process holds the workdir's lock (it is training or evaluating there)."""


def write_config(workdir, config_str, step=0):
  """Writes the operative gin config, atomically: workdir/config.gin on the first run; a rerun
  whose config differs keeps the first one and writes config-<step>.gin (step: where it
  starts) beside it. Returns the path written, or None when the config is unchanged."""
  first = path(workdir, CONFIG)
  if os.path.isfile(first):
    with open(first, encoding="utf-8", errors="replace") as f:
      if f.read() == config_str:
        return None
    target = path(workdir, f"config-{int(step)}.gin")
  else:
    target = first
  files.atomic_write(target, config_str.encode("utf-8"))
  return target


def _strict(value):
  """NaN and inf become None (null), recursively: metrics.json is strict JSON."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _strict(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict(v) for v in value]
  return value


def write_metrics(workdir, results):
  """Writes the results dict to workdir/metrics.json atomically, as strict JSON (sorted keys;
  figures that are unknown, NaN or inf, as null)."""
  text = json.dumps(_strict(results), indent=2, sort_keys=True, allow_nan=False)
  files.atomic_write(path(workdir, METRICS), text.encode("utf-8"))


_LEFTOVER = re.compile(r"(_temp|\.tmp[^/]*$|\.part$)")


def remove_leftovers(workdir, log_fn=None):
  """Removes what an interrupted save leaves in checkpoints/ and best_checkpoint/ (TF's
  `ckpt-N_temp` folders, `checkpoint.tmp*` state files, `*.part` files); returns their names."""
  removed = []
  for sub in (CHECKPOINTS, BEST_CHECKPOINT):
    folder = path(workdir, sub)
    for name in (sorted(os.listdir(folder)) if os.path.isdir(folder) else []):
      if _LEFTOVER.search(name):
        target = os.path.join(folder, name)
        shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
        removed.append(os.path.join(sub, name))
  if removed and log_fn:
    log_fn(f"Removed the leftovers of an interrupted save: {', '.join(removed)}.")
  return removed


@contextlib.contextmanager
def locked(workdir):
  """Holds an exclusive lock on workdir/.lock (`fcntl.flock`; the OS releases it when the
  process dies) for the duration; the holder's PID is written into the file.

  Raises:
    WorkdirLockedError: another process holds it (the message names its PID).
  """
  lock_path = path(workdir, LOCK)
  handle = open(lock_path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  try:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = handle.read().strip() or "unknown"
      raise WorkdirLockedError(
          f"another process (PID {holder}) is using the workdir {workdir}; wait for it to "
          f"finish or pass another --workdir. Nothing was changed.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    yield
  finally:
    handle.close()  # releases the lock


def open_run(workdir, error=ValueError, example_config="..."):
  """Checks that `workdir` holds a run and parses its config.gin into the global gin state
  (after clearing it); the run's configurables are registered by importing the runner.

  Args:
    workdir: the run directory.
    error: the exception class raised (a ValueError subclass of the caller).
    example_config: a config named in the message for a missing workdir.

  Returns:
    The path of the latest checkpoint in workdir/checkpoints.

  Raises:
    error: no workdir, no config.gin, no checkpoint, or a config.gin that does not parse.
  """
  from tfp_priors.training import runner  # pylint: disable=g-import-not-at-top,unused-import

  workdir = str(workdir)
  if not os.path.isdir(workdir):
    raise error(f"--workdir {workdir} does not exist; pass the run directory of a trained "
                f"model (python -m trainers.run --gin_config={example_config} --workdir=...).")
  config = path(workdir, CONFIG)
  if not os.path.isfile(config):
    raise error(f"{config} not found: {workdir} is not a training run's workdir (the "
                f"trainer writes config.gin when it starts).")
  checkpoint = tf.train.latest_checkpoint(path(workdir, CHECKPOINTS))
  if checkpoint is None:
    raise error(f"no checkpoint in {path(workdir, CHECKPOINTS)}: the run has not "
                f"saved a trained model yet.")
  gin.clear_config()
  try:
    gin.parse_config_file(config)
  except (ValueError, KeyError, IOError) as e:
    raise error(f"cannot parse {config}: {e}") from e
  return checkpoint


def binding(name, default):
  """The value bound to `name` (e.g. 'make_datasets.name') in the parsed gin config, else
  `default`."""
  try:
    return gin.query_parameter(name)
  except ValueError:
    return default


def model_fn():
  """The model class bound to train.model_fn in the parsed config (the trainer's default VAE
  if unbound)."""
  from tfp_priors.models import VAE  # pylint: disable=g-import-not-at-top
  reference = binding("train.model_fn", VAE)
  return getattr(reference, "scoped_configurable_fn", reference)


def checkpoint_step(checkpoint):
  """The training step stored in `checkpoint` (a path from `open_run`)."""
  return int(tf.train.load_variable(checkpoint, STEP_VARIABLE))
