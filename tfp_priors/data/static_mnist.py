"""Statically binarized MNIST of Larochelle & Murray (2011).

Source: H. Larochelle and I. Murray, "The Neural Autoregressive Distribution
Estimator", AISTATS 2011: one fixed Bernoulli binarization of MNIST, split
50,000 / 10,000 / 10,000. Stored as MATLAB v5 files
`binarized_mnist_{train,valid,test}.mat` holding a uint8 variable `X` of
shape (N, 784) with values in {0, 1} (copies: the `.amat` files of `SOURCE`, MATLAB
files despite the name, saved as `.mat`). Put them in a `binarized_mnist/` folder of the
data directory, e.g. `$TFP_PRIORS_DATA_DIR/binarized_mnist/` (search order:
`candidate_dirs`).
"""


import numpy as np
import scipy.io
from absl import logging

from tfp_priors.data import files
from tfp_priors.data.files import DEFAULT_DATA_DIR
from tfp_priors.data.files import DatasetNotFoundError
from tfp_priors.data.files import ENV_DATA_DIR

SPLITS = ('train', 'valid', 'test')
SPLIT_SIZES = {'train': 50000, 'valid': 10000, 'test': 10000}
SUBDIR = 'binarized_mnist'
SOURCE = ('Larochelle & Murray (2011), binarized_mnist_{train,valid,test}.amat (MATLAB v5 '
          'files) of the public GitHub repository mingzhang-yin/ARM-gradient (MIT)')


def file_name(split):
  return f'binarized_mnist_{split}.mat'


def candidate_dirs(data_dir=None):
  """Directories searched, in order: `data_dir`(/binarized_mnist),
  $TFP_PRIORS_DATA_DIR(/binarized_mnist), then ~/.cache/tfp_priors/binarized_mnist."""
  return files.search_dirs(SUBDIR, data_dir, DEFAULT_DATA_DIR)


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
  directory = files.first_dir_holding(dirs, [file_name(s) for s in SPLITS])
  if directory is None:
    logging.info('Static MNIST: not found in %s', ', '.join(map(str, dirs)))
    raise DatasetNotFoundError(missing_message(dirs))
  logging.info('Static MNIST: loading %s', directory)
  return {s: _load_mat(directory / file_name(s), s) for s in SPLITS}


def missing_message(dirs):
  """What to put where, naming the searched directories `dirs`."""
  return (
      'Statically binarized MNIST not found. Searched: ' + ', '.join(map(str, dirs))
      + '. Expected the MATLAB v5 files ' + ', '.join(file_name(s) for s in SPLITS)
      + " (variable 'X', uint8 (N, 784) in {0, 1}; Larochelle & Murray 2011). Put them in "
      f'<data_dir>/{SUBDIR}/ and set ${ENV_DATA_DIR} / the data_dir argument (gin: '
      f'make_datasets.data_dir) to <data_dir>, or copy them to {DEFAULT_DATA_DIR / SUBDIR}.')
