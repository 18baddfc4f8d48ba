"""Shared fixtures: tiny models on the real MNIST slice in tests/data, gin isolation."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

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
  """Runs `trainers.train.train` on `config` with TINY_BINDINGS plus `bindings`."""
  from trainers import run, train  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  run.parse_config([config], TINY_BINDINGS + list(bindings))
  return train.train(str(workdir), **kwargs)


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()
