"""Constants and helpers shared by the tests: the tiny stand-in models on the real MNIST slice
in tests/data, the project's data directory, and checks used by several modules.

Fixtures (gin isolation, `train_tiny`, `data_dir_env`) are in conftest.py.
"""
import os
import pathlib

import numpy as np
from scipy import stats
import tensorflow as tf

from tfp_priors.data import files

# Set by conftest.py to ../shared/data next to the repository unless given.
DATA_DIR = pathlib.Path(os.environ[files.ENV_DATA_DIR])

SLICE_DIR = os.path.join(os.path.dirname(__file__), "data")

# A small, fast stand-in for the paper's models, trained on the real 1000-image MNIST slice.
TINY_BINDINGS = [
    f"make_datasets.data_dir = '{SLICE_DIR}'",
    "make_datasets.allow_download = False",
    "make_datasets.batch_size = 32",
    "VAE.latent_size = 4",
    "VAE.hidden_sizes = (32,)",
    "HVAE.latent_size = 4",
    "HVAE.hidden_size = 32",
    "LarsPrior.hidden_sizes = (16,)",
    "LarsPrior.num_proposal_samples = 64",
    "train.log_every = 5",
    "train.image_every = 10",
    "train.num_importance_samples = 10",
    "train.eval_max_examples = 40",
    "train.normalizer_samples = 10000",
    "train.print_fn = None",
]


def checkpoint_variables(workdir, prefixes=("model/", "prior/")):
  """{name: value} of the latest checkpoint in workdir/checkpoints, for the variables whose
  names start with one of `prefixes` (optimizer slots excluded)."""
  reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(tuple(prefixes)) and "OPTIMIZER_SLOT" not in k}


def grid_chi_square(samples, cell_mass, edges, coarse):
  """Pearson's chi-square test of 2-D samples against a density's cell masses on a grid.

  Args:
    samples: [N, 2] array.
    cell_mass: [n, n] probabilities of the fine cells (e.g. midpoint-rule p(z) h^2; first
      index z1), summing to about 1.
    edges: [n + 1] cell edges along each axis.
    coarse: the test bins are coarse x coarse blocks of fine cells (n divisible by coarse).

  Coarse bins with fewer than 5 expected samples are pooled with the outside of the grid.

  Returns:
    (p-value, number of bins).
  """
  samples = np.asarray(samples)
  num_samples, n = len(samples), len(edges) - 1
  counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[edges[::coarse]] * 2)
  probs = cell_mass.reshape(n // coarse, coarse, n // coarse, coarse).sum(axis=(1, 3))
  counts, probs = counts.ravel(), probs.ravel()
  small = probs * num_samples < 5
  observed = np.append(counts[~small], counts[small].sum() + num_samples - counts.sum())
  expected = np.append(probs[~small], probs[small].sum() + max(1.0 - probs.sum(), 0.0))
  expected = expected / expected.sum() * num_samples
  return stats.chisquare(observed, expected)[1], len(observed)
