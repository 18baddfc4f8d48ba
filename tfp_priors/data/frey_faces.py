"""Frey Faces: 1,965 grey 20 x 28 images of Brendan Frey's face (continuous data).

Source: S. Roweis' page (frey_rawface.mat), in the pickled form of the public GitHub
repository jmtomczak/vae_vampprior (MIT), file `datasets/Freyfaces/freyfaces.pkl`: a Python 2
pickle (load with encoding='latin1') holding a list whose first element is a uint8 array of
shape (1965, 560), grey levels 8..238; each row is an image of 28 rows x 20 columns, row-major.
Put it in a `frey_faces/` folder of the data directory, e.g. at
`$TFP_PRIORS_DATA_DIR/frey_faces/freyfaces.pkl` (search order: `candidate_dirs`).

Split of Takahashi et al. (2019), Table 1 (after Tomczak & Welling 2018): train 1,565 /
valid 200 / test 200. Tomczak's loader shuffles the images with numpy's unseeded global RNG
before splitting, so its split differs from run to run; here the split is fixed:
`np.random.RandomState(SPLIT_SEED).permutation(1965)` with SPLIT_SEED = 0, first 1,565 indices
train, next 200 valid, last 200 test (each split in permutation order).

Scaling: x = grey / 255 exactly (float32), as in Tomczak's code, so values lie in
[8/255, 238/255] ~ [0.031, 0.933] within [0, 1]. The data stay continuous: no binarization.
"""

import pickle

import numpy as np
from absl import logging

from tfp_priors.data import files
from tfp_priors.data.files import DEFAULT_DATA_DIR
from tfp_priors.data.files import DatasetNotFoundError
from tfp_priors.data.files import ENV_DATA_DIR

FILE_NAME = 'freyfaces.pkl'
SUBDIR = 'frey_faces'
NUM_IMAGES = 1965
IMAGE_SHAPE = (28, 20, 1)  # rows, columns, channels
EVENT_SIZE = 560
SPLIT_SIZES = {'train': 1565, 'valid': 200, 'test': 200}
SPLIT_SEED = 0
SOURCE = ('public GitHub repository jmtomczak/vae_vampprior (MIT), file '
          'datasets/Freyfaces/freyfaces.pkl')
# sha256 of that file: the only freyfaces.pkl that is unpickled.
SHA256 = '3b69410c6a5fd6e03f09012905168be3712373a094a776f7e58fcd0670d2138a'


def candidate_dirs(data_dir=None):
  """Directories searched, in order: `data_dir`(/frey_faces), $TFP_PRIORS_DATA_DIR(/frey_faces),
  then ~/.cache/tfp_priors/frey_faces."""
  return files.search_dirs(SUBDIR, data_dir, DEFAULT_DATA_DIR)


def find_file(data_dir=None):
  """Returns the path of freyfaces.pkl in the first searched directory holding it, or None."""
  directory = files.first_dir_holding(candidate_dirs(data_dir), [FILE_NAME])
  return None if directory is None else directory / FILE_NAME


def read_pickle(path, sha256=SHA256):
  """Reads Tomczak's freyfaces.pkl: returns the uint8 (1965, 560) array.

  Unpickling runs code that a crafted file can choose, so the file's sha256 is checked
  against the pinned digest of Tomczak's file first, and any other file is refused unread.

  Args:
    path: the file. sha256: the expected hex digest (default `SHA256`).

  Raises:
    ValueError: the file's sha256 differs from `sha256` (nothing unpickled), it cannot be
      unpickled, or it holds something other than a (1965, 560) array of integers in
      0..255; the message names the file.
  """
  digest = files.sha256_of(path)
  if digest != sha256:
    raise ValueError(f'{path}: sha256 {digest} is not that of the Frey Faces file of the '
                     f'{SOURCE} ({sha256}); refusing to unpickle it (a pickle can run code). '
                     f'Replace it with that file.')
  try:
    with open(path, 'rb') as f:
      obj = pickle.load(f, encoding='latin1')
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
          ImportError, IndexError) as e:
    raise ValueError(f'{path}: cannot unpickle Frey Faces ({type(e).__name__}: {e}).') from e
  if isinstance(obj, (list, tuple)) and obj:
    obj = obj[0]
  images = np.asarray(obj)
  if (images.shape != (NUM_IMAGES, EVENT_SIZE) or not np.issubdtype(images.dtype, np.integer)
      or images.min() < 0 or images.max() > 255):
    raise ValueError(
        f'{path}: expected a list holding one uint8 array of shape ({NUM_IMAGES}, '
        f'{EVENT_SIZE}) (Frey Faces, 20 x 28 pixels), got {images.dtype} {images.shape}.')
  return images.astype(np.uint8)


def split_permutation():
  """The fixed permutation of the 1,965 image indices that defines the split."""
  return np.random.RandomState(SPLIT_SEED).permutation(NUM_IMAGES)


def missing_message(data_dir=None):
  dirs = candidate_dirs(data_dir)
  return (
      f'Frey Faces ({FILE_NAME}) not found. Searched: {", ".join(map(str, dirs))}. The file '
      f'comes from the {SOURCE} (a latin1 pickle of a list holding one uint8 (1965, 560) '
      f'array). Put it at <data_dir>/{SUBDIR}/{FILE_NAME} and point the `data_dir` argument '
      f'(gin: make_datasets.data_dir) or ${ENV_DATA_DIR} at <data_dir>, or copy it to '
      f'{DEFAULT_DATA_DIR / SUBDIR}.')


def load_frey_faces(data_dir=None):
  """Loads Frey Faces with the fixed 1,565 / 200 / 200 split (see the module docstring).

  Args:
    data_dir: optional directory holding freyfaces.pkl (directly or in a `frey_faces/`
      subfolder); see `candidate_dirs` for the full search order.

  Returns:
    dict with 'train' (1565, 560), 'valid' (200, 560), 'test' (200, 560): float32 grey
    values / 255 in [0, 1]; reshape rows to (28, 20) for images.

  Raises:
    DatasetNotFoundError: no searched directory holds freyfaces.pkl; the message says where
      the file comes from and where to put it.
    ValueError: the file found is not the pinned one (sha256), is corrupt or of another
      shape.
  """
  path = find_file(data_dir)
  if path is None:
    logging.info('Frey Faces: not found in %s', ', '.join(map(str, candidate_dirs(data_dir))))
    raise DatasetNotFoundError(missing_message(data_dir))
  logging.info('Frey Faces: loading %s', path)
  images = read_pickle(path).astype(np.float32) / np.float32(255.0)
  order = split_permutation()
  data, start = {}, 0
  for split in ('train', 'valid', 'test'):
    data[split] = images[order[start:start + SPLIT_SIZES[split]]]
    start += SPLIT_SIZES[split]
  return data
