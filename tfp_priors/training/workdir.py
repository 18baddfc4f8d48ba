"""The layout of a run directory, and reading a finished run back.

  <workdir>/config.gin        the gin config the run trained with (`write_config`)
  <workdir>/checkpoints/      the last three checkpoints (`tfp_priors.training.checkpointing`)
  <workdir>/best_checkpoint/  the best validation checkpoint (with train.validation_every)
  <workdir>/train/            TensorBoard events
  <workdir>/metrics.json      final metrics (`write_metrics`)
  <workdir>/export/           the SavedModel (`tfp_priors.export`)
  <workdir>/worker_<i>/       worker i > 0 of a multi-worker run (`training.distribute`)

The figure scripts rebuild the model from config.gin and restore it from checkpoints/.
"""
import json
import os

import gin
import tensorflow as tf

CONFIG = "config.gin"
CHECKPOINTS = "checkpoints"
BEST_CHECKPOINT = "best_checkpoint"
TRAIN_EVENTS = "train"
METRICS = "metrics.json"
EXPORT = "export"

STEP_VARIABLE = "step/.ATTRIBUTES/VARIABLE_VALUE"  # Trainer.checkpoint's step counter


def path(workdir, name):
  """workdir/name, for one of the names above."""
  return os.path.join(str(workdir), name)


def write_config(workdir, config_str):
  """Writes the operative gin config to workdir/config.gin."""
  with open(path(workdir, CONFIG), "w") as f:
    f.write(config_str)


def write_metrics(workdir, results):
  """Writes the results dict to workdir/metrics.json (sorted keys)."""
  with open(path(workdir, METRICS), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)


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
