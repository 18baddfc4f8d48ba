"""Shared fixtures: tiny models on the real MNIST slice in tests/data, gin isolation, and the
project's data directory ($TFP_PRIORS_DATA_DIR)."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The project's data that no registry carries (static MNIST, Frey Faces, Omniglot, full MNIST;
# see the README.md there) lies in ../shared/data next to the repository. The loaders find it
# through $TFP_PRIORS_DATA_DIR (tfp_priors.data.files.ENV_DATA_DIR), pointed there unless set.
ENV_DATA_DIR = "TFP_PRIORS_DATA_DIR"
if not os.environ.get(ENV_DATA_DIR):
  os.environ[ENV_DATA_DIR] = str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
DATA_DIR = pathlib.Path(os.environ[ENV_DATA_DIR])

import gin  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

# Two logical CPU devices, so that tf.distribute.MirroredStrategy has two replicas to split a
# batch over (tests/test_distribute.py); ops still run on CPU:0 unless a strategy places them.
# This must happen before TensorFlow initialises its devices.
NUM_LOGICAL_CPUS = 2
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS)

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


def train_tiny(workdir, config, bindings=(), **kwargs):
  """Runs `tfp_priors.training.runner.train` on `config` with TINY_BINDINGS plus `bindings`."""
  from tfp_priors.training import runner  # pylint: disable=g-import-not-at-top
  from trainers import run  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  run.parse_config([config], TINY_BINDINGS + list(bindings))
  return runner.train(str(workdir), **kwargs)


def checkpoint_variables(workdir, prefixes=("model/", "prior/")):
  """{name: value} of the latest checkpoint in workdir/checkpoints, for the variables whose
  names start with one of `prefixes` (optimizer slots excluded)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(tuple(prefixes)) and "OPTIMIZER_SLOT" not in k}


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def data_dir_env(monkeypatch):
  """Points $TFP_PRIORS_DATA_DIR at DATA_DIR for one test (the data tests clear it by default,
  so that no real data leaks into them); returns DATA_DIR."""
  monkeypatch.setenv(ENV_DATA_DIR, str(DATA_DIR))
  return DATA_DIR


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
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy import stats  # pylint: disable=g-import-not-at-top
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
