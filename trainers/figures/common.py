"""What the figures of `trainers.figures` share: the run they draw, their error, their sizes
and the LARS prior's Z."""
import math

import tensorflow as tf

from trainers import trained_run

FIGURES = ("ranked", "density", "embedding")
# PNG sizes in inches (pixels = inches * dpi).
SIZES = {
    "ranked_samples": (12.0, 4.6),
    "acceptance_values": (12.0, 5.0),
    "latent_density": (3.0, 3.4),  # per panel: 4 panels for LARS, 2 otherwise
    "embedding": (6.0, 6.0),
}

Run = trained_run.Run


class FigureError(ValueError):
  """A figure cannot be drawn for this workdir (missing run or checkpoint, no LARS prior for
  (a), a latent space that is not 2-D for (b, c), bad options); nothing was written."""


def load_run(workdir):
  """Rebuilds the model, prior and data of a training run and restores its checkpoint
  (`trainers.trained_run.load_run`, prior included).

  Parses the run's config into the global gin state (after clearing it).

  Returns:
    `Run`: model, prior, prior_name (registry name), data (`Datasets`), dataset name,
    data_dir, allow_download (the run's make_datasets bindings), step (of the checkpoint).

  Raises:
    FigureError: no workdir, config.gin or checkpoint; a config that does not parse; a
      checkpoint that does not match the config.
    DatasetNotFoundError: the run's data set is not available.
  """
  return trained_run.load_run(workdir, FigureError)


def ensure_log_normalizer(prior, num_samples, seed=0):
  """For a prior with an acceptance function (LARS) whose checkpoint holds no evaluation
  estimate of log Z (NaN), estimates it from `num_samples` proposal samples (LARS Eq. A.17,
  `Prior.refresh_log_normalizer`).

  Returns:
    Z = exp(log Z), the prior's normalising constant (float); None for priors without a(z).
  """
  if not prior.has_acceptance_function:
    return None
  if not math.isfinite(float(prior.evaluation_log_normalizer)):
    prior.refresh_log_normalizer(num_samples, seed=seed)
  return float(tf.exp(prior.log_normalizer()))
