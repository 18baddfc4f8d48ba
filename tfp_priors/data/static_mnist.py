"""Statically binarized MNIST of Larochelle & Murray (2011).

Source: H. Larochelle and I. Murray, "The Neural Autoregressive Distribution
Estimator", AISTATS 2011: one fixed Bernoulli binarization of MNIST, split
50,000 / 10,000 / 10,000. Stored as MATLAB v5 files
`binarized_mnist_{train,valid,test}.mat` holding a uint8 variable `X` of
shape (N, 784) with values in {0, 1} (copies in `<repo>/../shared/data/`,
see the README there).
"""


import numpy as np
import scipy.io
from absl import logging

from tfp_priors.data import locations
from tfp_priors.data.mnist import DEFAULT_DATA_DIR
from tfp_priors.data.mnist import DatasetNotFoundError
from tfp_priors.data.mnist import ENV_DATA_DIR

SPLITS = ('train', 'valid', 'test')
SPLIT_SIZES = {'train': 50000, 'valid': 10000, 'test': 10000}
SUBDIR = 'binarized_mnist'
# <repo>/../shared/data/binarized_mnist, the project's shared data folder.
SHARED_DIR = locations.SHARED_DATA_DIR / SUBDIR


def file_name(split):
  return f'binarized_mnist_{split}.mat'


def candidate_dirs(data_dir=None):
  """Directories searched, in order: `data_dir`(/binarized_mnist),
  $TFP_PRIORS_DATA_DIR(/binarized_mnist), ~/.cache/tfp_priors/binarized_mnist,
  then `<repo>/../shared/data/binarized_mnist`."""
  return locations.search_dirs(SUBDIR, data_dir, DEFAULT_DATA_DIR, [SHARED_DIR])


def _load_mat(path, split):
  x = scipy.io.loadmat(str(path))['X']
  if x.ndim != 2 or x.shape[1] != 784 or not np.isin(x, (0, 1)).all():
    raise ValueError(f'{path}: expected a (N, 784) array of 0/1 values in '
                     f'variable X, got shape {x.shape}.')
  if x.shape[0] != SPLIT_SIZES[split]:
    logging.warning('%s: %d rows, the standard split has %d.', path,
                    x.shape[0], SPLIT_SIZES[split])
  return x.astype(np.float32)


def load_static_mnist(data_dir=None):
  """Loads Larochelle's statically binarized MNIST.

  Args:
    data_dir: optional directory holding the three .mat files (directly or
      in a `binarized_mnist/` subfolder); see `candidate_dirs` for the full
      search order.

  Returns:
    dict with 'train' (50000, 784), 'valid' (10000, 784), 'test'
    (10000, 784): float32 arrays with values in {0, 1}, as given.

  Raises:
    DatasetNotFoundError: no searched directory holds all three files.
    ValueError: a file holds something other than a (N, 784) 0/1 array.
  """
  dirs = candidate_dirs(data_dir)
  names = [file_name(s) for s in SPLITS]
  for d in dirs:
    if all((d / n).is_file() for n in names):
      logging.info('Static MNIST: loading %s', d)
      return {s: _load_mat(d / file_name(s), s) for s in SPLITS}
  logging.info('Static MNIST: not found in %s', ', '.join(map(str, dirs)))
  raise DatasetNotFoundError(
      'Statically binarized MNIST not found. Searched: '
      + ', '.join(map(str, dirs)) + '. Expected the MATLAB v5 files '
      + ', '.join(names) + " (variable 'X', uint8 (N, 784) in {0, 1}; "
      'Larochelle & Murray 2011). Copy them from the shared data folder '
      f'({SHARED_DIR}, see its README) into <data_dir>/{SUBDIR}/, or set '
      f'${ENV_DATA_DIR} / the data_dir argument to a folder holding them.')
