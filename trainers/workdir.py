"""Reading a training run's workdir back: its gin config and latest checkpoint.

`trainers.train.train` writes workdir/config.gin (the gin config it ran with) and
workdir/checkpoints/ (`Trainer.checkpoint`: model=, prior=, optimizer=, step=). The
figure scripts rebuild the model from the one and restore it from the other.
"""
import os

import gin
import tensorflow as tf

STEP_VARIABLE = "step/.ATTRIBUTES/VARIABLE_VALUE"  # Trainer.checkpoint's step counter


def open_run(workdir, error=ValueError, example_config="..."):
  """Checks that `workdir` holds a run and parses its config.gin into the global gin state
  (after clearing it); the run's configurables are registered by importing the trainer.

  Args:
    workdir: the run directory.
    error: the exception class raised (a ValueError subclass of the caller).
    example_config: a config named in the message for a missing workdir.

  Returns:
    The path of the latest checkpoint in workdir/checkpoints.

  Raises:
    error: no workdir, no config.gin, no checkpoint, or a config.gin that does not parse.
  """
  from trainers import train  # pylint: disable=g-import-not-at-top,unused-import

  workdir = str(workdir)
  if not os.path.isdir(workdir):
    raise error(f"--workdir {workdir} does not exist; pass the run directory of a trained "
                f"model (python -m trainers.run --gin_config={example_config} --workdir=...).")
  config = os.path.join(workdir, "config.gin")
  if not os.path.isfile(config):
    raise error(f"{config} not found: {workdir} is not a training run's workdir (the "
                f"trainer writes config.gin when it starts).")
  checkpoint = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
  if checkpoint is None:
    raise error(f"no checkpoint in {os.path.join(workdir, 'checkpoints')}: the run has not "
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
