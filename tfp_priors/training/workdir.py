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
import io
import json
import math
import os
import re
import shutil
import tempfile
import types

import gin
from gin import config_parser
import tensorflow as tf

from tfp_priors import checks
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


class WorkdirError(ValueError):
  """The workdir cannot hold a run: it is a file, lies under one, or cannot be written."""


def check_usable(workdir):
  """Checks, changing nothing, that `workdir` is a folder this process can write in, or can be
  created as one (its nearest existing ancestor is a writable folder).

  Raises:
    WorkdirError: naming the path and the fix.
  """
  existing = files.nearest_existing(workdir)
  if not os.path.isdir(existing):
    where = ("is a file" if existing == os.path.abspath(str(workdir))
             else f"lies under {existing}, which is a file")
    raise WorkdirError(f"--workdir {workdir} {where}, not a folder; pass a folder path.")
  try:  # os.access says yes to root even where writing fails (read-only mounts, /proc)
    os.rmdir(tempfile.mkdtemp(prefix=".write_check_", dir=existing))
  except OSError as e:
    raise WorkdirError(f"--workdir {workdir}: cannot write in {existing} ({e.strerror}); "
                       f"pass a --workdir you can write to.") from None


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


def read_metrics(workdir):
  """workdir/metrics.json as a dict, or None when the run has not written it (not finished)."""
  try:
    with open(path(workdir, METRICS), encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    return None


def write_metrics(workdir, results):
  """Writes the results dict to workdir/metrics.json atomically, as strict JSON (sorted keys;
  figures that are unknown, NaN or inf, as null)."""
  text = json.dumps(_strict(results), indent=2, sort_keys=True, allow_nan=False)
  files.atomic_write(path(workdir, METRICS), text.encode("utf-8"))


# What an interrupted write leaves: in the checkpoint folders, TF's `ckpt-N_temp` folders and
# `checkpoint.tmp*` state files; anywhere, `*.part` files and folders (`data.files`).
_LEFTOVERS = {CHECKPOINTS: re.compile(r"(_temp|\.tmp[^/]*$|\.part$)"),
              BEST_CHECKPOINT: re.compile(r"(_temp|\.tmp[^/]*$|\.part$)"),
              "": re.compile(r"\.part(\.old)?$")}


def remove_leftovers(workdir, log_fn=None):
  """Removes what an interrupted save leaves in the workdir (`_LEFTOVERS`: half-written
  checkpoints, state files, metrics, configs and exports); returns their names."""
  removed = []
  for sub, pattern in _LEFTOVERS.items():
    folder = path(workdir, sub)
    for name in (sorted(os.listdir(folder)) if os.path.isdir(folder) else []):
      if pattern.search(name):
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

  A workdir is trusted only for its checkpoints: a config.gin with a gin import or include
  statement (dynamic registration, `import os` and `@os.system()`, ...) is refused before
  anything is parsed or imported (`_check_config`), and the text checked is the text parsed.

  Args:
    workdir: the run directory.
    error: the exception class raised (a ValueError subclass of the caller).
    example_config: a config named in the message for a missing workdir.

  Returns:
    The path of the latest checkpoint in workdir/checkpoints.

  Raises:
    error: no workdir, no config.gin, no checkpoint; a config.gin with an import or include
      statement, or one that does not parse (truncated, not UTF-8, a syntax error, an unknown
      name), in one line naming the file and the line.
  """
  from tfp_priors.training import runner  # noqa: F401  (registers the run's configurables)

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
  text = _check_config(config, error)
  gin.clear_config()
  try:
    gin.parse_config(text)
  except (ValueError, KeyError, NameError, TypeError, OSError) as e:
    raise error(_gin_error(config, e)) from e
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


# A gin statement that imports Python code: `import m`, `from m import x` (also
# `from __gin__ import dynamic_registration`), or `include 'f.gin'` (whose imports would run).
_GIN_IMPORT = re.compile(r"\s*(import|from|include)\b")
_RESTORE = "restore the config.gin that trainers.run wrote"


def _check_config(config, error):
  """Returns the text of `config` (a config.gin) after checking it, without gin's state.

  The text must be UTF-8 and have no gin import or include statement, neither a line that
  starts with one (`_GIN_IMPORT`) nor one that gin's own parser finds (e.g. a `from`
  continued by a backslash); that parser runs with a delegate that builds no reference, so
  nothing is imported or registered. A workdir's config.gin is `gin.config_str()` of the
  library's configs, which never contains imports.

  Raises:
    error: the file cannot be read or is not UTF-8, a syntax error or a truncated value, or
      an import or include statement; one line naming the file and the line.
  """
  text = _config_text(config, error)
  for number, line in enumerate(text.split("\n"), 1):
    if _GIN_IMPORT.match(line):
      raise error(_import_message(config, number, line))
  imports = _config_imports(config, text, error)
  if imports:
    raise error(_import_message(config, *imports[0]))
  return text


def _import_message(config, number, line):
  """The one-line refusal of the gin import statement `line` at line `number` of `config`."""
  return (f"{config} line {number}: `{checks.excerpt(line)}` is a gin import or include "
          f"statement; a workdir's config.gin written by trainers.run never contains imports, "
          f"so this file was edited or is not from this library. Refused before gin reads it, "
          f"since gin imports run code ({_RESTORE}).")


def _config_text(config, error):
  """The UTF-8 text of `config`; `error` naming the line of the first byte that is not."""
  try:
    with open(config, "rb") as f:
      data = f.read()
  except OSError as e:
    raise error(f"cannot read {config}: {e.strerror}; check its permissions.") from e
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise error(f"cannot parse {config} line {line}: byte {e.start} is not UTF-8 text, so the "
                f"file is damaged or not a gin config ({_RESTORE}).") from e


def _config_imports(config, text, error):
  """[(line number, line)] of the import and include statements gin's parser finds in
  `text`, parsed with references and macros left as names (nothing imported or registered)."""
  inert = types.SimpleNamespace(configurable_reference=lambda name, evaluate: name,
                                macro=lambda name: name)
  kinds = (config_parser.ImportStatement, config_parser.IncludeStatement)
  try:
    return [(s.location.line_num, s.location.line_content)
            for s in config_parser.ConfigParser(io.StringIO(text), inert) if isinstance(s, kinds)]
  except checks.GIN_PARSE_ERRORS as e:  # nothing was built: a syntax error or a truncation
    raise error(f"cannot parse {checks.describe_gin_error(config, e)}; the file is "
                f"truncated or was edited ({_RESTORE}).") from e


def _gin_error(config, e):
  """The one-line message of gin's error `e` parsing `config` (an unknown configurable or
  parameter, ...)."""
  return (f"cannot parse {checks.describe_gin_error(config, e)}. The file was edited or is "
          f"from another version of the library ({_RESTORE}).")
