"""Session setup and fixtures: the data directory ($TFP_PRIORS_DATA_DIR), two logical CPUs, gin
isolation, `train_tiny` and `data_dir_env`. Constants and plain helpers are in support.py."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The project's data that no registry carries (static MNIST, Frey Faces, Omniglot, full MNIST;
# see the README.md there) lies in ../shared/data next to the repository. The loaders find it
# through $TFP_PRIORS_DATA_DIR (tfp_priors.data.files.ENV_DATA_DIR), pointed there unless set.
ENV_DATA_DIR = "TFP_PRIORS_DATA_DIR"
if not os.environ.get(ENV_DATA_DIR):
  os.environ[ENV_DATA_DIR] = str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")

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

import support  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="session")
def train_tiny():
  """fn(workdir, config='lars_vae', bindings=(), **train_kwargs) -> metrics: runs
  `tfp_priors.training.runner.train` on `config` with support.TINY_BINDINGS plus `bindings`
  (the gin state is cleared first)."""
  from tfp_priors.training import runner  # pylint: disable=g-import-not-at-top
  from trainers import run  # pylint: disable=g-import-not-at-top

  def train(workdir, config="lars_vae", bindings=(), **kwargs):
    gin.clear_config()
    run.parse_config([config], support.TINY_BINDINGS + list(bindings))
    return runner.train(str(workdir), **kwargs)
  return train


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def data_dir_env(monkeypatch):
  """Points $TFP_PRIORS_DATA_DIR at support.DATA_DIR for one test (the data tests clear it by
  default, so that no real data leaks into them); returns DATA_DIR."""
  monkeypatch.setenv(ENV_DATA_DIR, str(support.DATA_DIR))
  return support.DATA_DIR


@pytest.fixture(scope="session")
def mnist_classifier():
  """The MNIST sample-quality classifier (`evaluation.classifier.load_classifier`): trained
  once (about a minute) into the cache ~/.cache/tfp_priors/classifiers; later sessions read
  it there. Skips when the full MNIST with labels is in none of $TFP_PRIORS_DATA_DIR and
  ~/.cache/tfp_priors (tests never download)."""
  from tfp_priors.data import files  # pylint: disable=g-import-not-at-top
  from tfp_priors.evaluation import classifier  # pylint: disable=g-import-not-at-top
  try:
    return classifier.load_classifier("mnist", allow_download=False)
  except files.DatasetNotFoundError as e:
    pytest.skip(" ".join(str(e).split()))


@pytest.fixture(scope="session")
def mnist_test_split(mnist_classifier):  # pylint: disable=redefined-outer-name,unused-argument
  """(images [10000, 784] grey levels in [0, 1], labels [10000]) of MNIST's test split, from
  where the classifier fixture found MNIST."""
  from tfp_priors.evaluation import classifier  # pylint: disable=g-import-not-at-top
  images, labels = classifier.SPECS["mnist"].load(None, False)
  return images["test"], labels["test"]
