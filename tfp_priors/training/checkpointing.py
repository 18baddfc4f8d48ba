"""Checkpoints of a run: saving, restoring (or explaining why not) and reading a pretrained run.

A checkpoint holds `Trainer.checkpoint`: model=, prior=, optimizer=, step= and, with
validation, early_stopping=. workdir/checkpoints/ keeps the last three; with validation,
workdir/best_checkpoint/ keeps the best one (`tfp_priors.training.workdir`).
"""
import os
import re

import tensorflow as tf

from tfp_priors.priors import interface as prior_base
from tfp_priors.training import workdir as workdir_lib


class IncompatibleCheckpointError(ValueError):
  """The workdir holds a checkpoint of a different model, prior or optimizer."""


class PretrainedModelError(ValueError):
  """A post-hoc run's pretrained workdir holds no usable trained model."""


class CorruptCheckpointError(IncompatibleCheckpointError):
  """Every checkpoint of a workdir is unreadable (truncated or damaged files); a subclass, so
  that callers catching the incompatible case still catch it, but said apart by its message."""


_CHECKPOINT_INDEX = re.compile(r"^ckpt-(\d+)\.index$")


def _unreadable(prefix):
  """Why the checkpoint `prefix` cannot be read in full (a short reason), or None."""
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, IndexError) as e:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
  return None


def _state_problem(checkpoint_dir, newest):
  """What is wrong with checkpoint_dir's `checkpoint` state file given the newest intact
  checkpoint `newest` (a prefix), or None when it names exactly that one."""
  try:
    state = tf.train.get_checkpoint_state(checkpoint_dir)
  except Exception as e:  # pylint: disable=broad-except  (protobuf text garbage, bad bytes)
    return f"its state file is unreadable ({type(e).__name__})"
  if state is None:
    return "its state file `checkpoint` is missing"
  named = os.path.basename(state.model_checkpoint_path)
  if named != os.path.basename(newest):
    return f"its state file names {named}, which is missing or damaged"
  return None


def recover_state(checkpoint_dir, log_fn=None):
  """Makes checkpoint_dir's state file name the newest intact checkpoint among the ckpt-N
  files present, before anything reads it: a damaged newest checkpoint, or a state file that is
  missing, garbage or names a missing file, never sends a run back to step 0 beside its
  checkpoints. Says what it found and which checkpoint it resumes from.

  Returns:
    The prefix of the newest intact checkpoint, or None when there are no checkpoints.

  Raises:
    CorruptCheckpointError: checkpoints are present but none is readable.
  """
  if not os.path.isdir(checkpoint_dir):
    return None
  steps = sorted((int(m.group(1)) for m in map(_CHECKPOINT_INDEX.match,
                                                os.listdir(checkpoint_dir)) if m), reverse=True)
  prefixes = [os.path.join(checkpoint_dir, f"ckpt-{n}") for n in steps]
  damaged = {}
  for prefix in prefixes:
    reason = _unreadable(prefix)
    if reason is None:
      break
    damaged[os.path.basename(prefix)] = reason
  else:
    if not prefixes:
      return None
    raise CorruptCheckpointError(
        f"every checkpoint in {checkpoint_dir} is damaged ({damaged}); move the folder aside "
        f"to start afresh, or pass a new --workdir. Nothing was changed.")
  problem = _state_problem(checkpoint_dir, prefix)
  if damaged or problem:
    intact = [p for p in reversed(prefixes) if os.path.basename(p) not in damaged]
    tf.compat.v1.train.update_checkpoint_state(checkpoint_dir, model_checkpoint_path=prefix,
                                               all_model_checkpoint_paths=intact)
    why = "; ".join(([f"{name} is damaged ({r})" for name, r in damaged.items()])
                    + ([problem] if problem and not damaged else []))
    if log_fn:
      log_fn(f"{checkpoint_dir}: {why}. Resuming from {os.path.basename(prefix)}, the newest "
             f"intact checkpoint.")
  return prefix


# Parts of `Trainer.checkpoint` newer than some checkpoints: restored when present.
_ADDED_LATER = ("skipped_steps",)


def _root_for(trainer, prefix):
  """trainer.checkpoint, less the parts of _ADDED_LATER that the checkpoint `prefix` lacks (a
  checkpoint of an older version of the library resumes, its skip count starting at 0)."""
  present = {name.split("/")[0] for name, _ in tf.train.list_variables(prefix)}
  missing = [name for name in _ADDED_LATER if name not in present]
  if not missing:
    return trainer.checkpoint
  return tf.train.Checkpoint(**{name: value for name, value in trainer.checkpoint_objects.items()
                                if name not in missing})


def _first_sentence(error):
  """The first sentence of a restore error (TF's lists of unmatched objects run to pages)."""
  return str(error).strip().splitlines()[0].split(". ")[0][:300].rstrip(".")


def saved_step(checkpoint_dir):
  """The step stored in the latest checkpoint of checkpoint_dir (0 if none).

  Raises:
    IncompatibleCheckpointError: the step counter cannot be read.
  """
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  if latest is None:
    return 0
  try:
    return int(tf.train.load_variable(latest, workdir_lib.STEP_VARIABLE))
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise IncompatibleCheckpointError(
        f"cannot read the step counter from {latest} ({e.__class__.__name__}); it is corrupt "
        f"or not a tfp_priors checkpoint. Use a new --workdir; nothing was changed.") from e


def restore(trainer, manager):
  """Restores the latest checkpoint of `manager` into `trainer`; False if there is none.

  Raises:
    IncompatibleCheckpointError: the checkpoint does not fit this configuration; nothing in
      the workdir is changed.
  """
  if not manager.latest_checkpoint:
    return False
  # Build slot variables first so they are restored, not silently re-created later.
  trainer.optimizer.build(trainer.train_variables)
  status = None
  try:
    status = _root_for(trainer, manager.latest_checkpoint).restore(manager.latest_checkpoint)
    status.assert_consumed()  # both ways: no object left out, no value unused
  except (AssertionError, ValueError, IndexError, tf.errors.OpError) as e:
    if status is not None:
      status.expect_partial()  # no "unrestored values" warnings after the error at exit
    raise IncompatibleCheckpointError(
        f"the checkpoint {manager.latest_checkpoint} does not match this configuration "
        f"(different model, prior or latent size?): {_first_sentence(e)}. "
        f"Use a new --workdir, or the gin config the checkpoint was trained with. Nothing "
        f"was changed in the workdir.") from e
  return True


class Checkpoints:
  """The run's checkpoint managers: `last` (checkpoints/, 3 kept) and, if `keep_best`, `best`
  (best_checkpoint/, 1 kept). `save` writes to `last` until `use_best` switches to the best
  weights; later saves then go to best_checkpoint/, so that checkpoints/ still resumes from the
  last step."""

  def __init__(self, checkpoint, workdir, keep_best=False):
    self._checkpoint = checkpoint
    self.last = tf.train.CheckpointManager(
        checkpoint, workdir_lib.path(workdir, workdir_lib.CHECKPOINTS), max_to_keep=3)
    self.best = (tf.train.CheckpointManager(
        checkpoint, workdir_lib.path(workdir, workdir_lib.BEST_CHECKPOINT), max_to_keep=1)
                 if keep_best else None)
    self._current = self.last

  @property
  def latest(self):
    """Path of the newest checkpoint saves go to (None before the first)."""
    return self._current.latest_checkpoint

  def save(self, step):
    self._current.save(checkpoint_number=step)

  def save_if_new(self, step):
    """Saves unless the newest checkpoint already holds `step`."""
    if self.latest is None or step != int(self.latest.rsplit("-", 1)[-1]):
      self.save(step)

  def save_best(self, step):
    self.best.save(checkpoint_number=step)

  def use_best(self):
    """Restores the best validation checkpoint, if any; later saves go to best_checkpoint/.

    Returns:
      whether there was one.
    """
    if self.best is None or not self.best.latest_checkpoint:
      return False
    self._checkpoint.restore(self.best.latest_checkpoint).assert_existing_objects_matched()
    self._current = self.best
    return True


_PRIOR_BINDING = re.compile(r"""^build_prior\.name\s*=\s*['"]([\w.-]+)['"]\s*$""", re.MULTILINE)


def pretrained_prior_name(workdir):
  """The registry name of the prior a run trained with, from the workdir's config.gin.

  The file is read as text, never executed: the last `build_prior.name` binding (a former
  name, e.g. 'rnvp', as its current one), or 'normal' (build_prior's default) when there is
  none.

  Raises:
    PretrainedModelError: the workdir has no readable config.gin.
  """
  path = workdir_lib.path(workdir, workdir_lib.CONFIG)
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise PretrainedModelError(
        f"cannot tell which prior the run in {workdir} trained with: {path} is missing or "
        f"unreadable ({e.__class__.__name__}). Point pretrained_workdir at a workdir of "
        f"trainers.run, which writes config.gin.") from e
  names = _PRIOR_BINDING.findall(text)
  return prior_base.canonical_name(names[-1]) if names else "normal"


def load_pretrained_model(model, workdir, prior=None):
  """Restores `model`'s (and `prior`'s, if given) variables from the latest checkpoint in
  workdir/checkpoints.

  Raises:
    PretrainedModelError: no checkpoint there, or its model (or prior) differs from this
      configuration's (e.g. another latent size); nothing is written anywhere.
  """
  checkpoint_dir = tf.io.gfile.join(str(workdir), workdir_lib.CHECKPOINTS)
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  if latest is None:
    raise PretrainedModelError(
        f"this run needs a trained VAE, but {checkpoint_dir} holds no checkpoint. "
        f"Train one first (e.g. python -m trainers.run --gin_config=vae_standard.gin "
        f"--workdir={workdir}) or point the strategy's pretrained_workdir at its workdir.")
  parts = {"model": model} if prior is None else {"model": model, "prior": prior}
  try:
    status = tf.train.Checkpoint(**parts).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise PretrainedModelError(
        f"the {' and '.join(parts)} in {latest} do not match this configuration (latent size "
        f"{model.latent_size} here; a different latent size, architecture or base prior "
        f"there?): {str(e).splitlines()[0][:300]}. Use the model and prior bindings the VAE "
        f"was trained with.") from e
