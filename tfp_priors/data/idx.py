"""LeCun's IDX file format and the 28 x 28 grey-image layout common to MNIST and Fashion-MNIST.

Both data sets ship the same four IDX files (``train-images-idx3-ubyte.gz``, 60,000 images;
``t10k-images-idx3-ubyte.gz``, 10,000; and the two label files) and use the same split: the
first 50,000 training images = train, the last 10,000 = valid, t10k = test
(`split_train_valid`). An IDX file is a big-endian header (magic 0x0000080N for unsigned bytes
in N dimensions, then the N sizes as uint32) followed by the bytes, often gzip-compressed.
"""
import gzip
import hashlib
import pathlib
import struct
import zlib

import numpy as np
from absl import logging

from tfp_priors.data import tfds_source
from tfp_priors.data.files import atomic_write

TRAIN_IMAGES = 'train-images-idx3-ubyte.gz'
TEST_IMAGES = 't10k-images-idx3-ubyte.gz'
TRAIN_LABELS = 'train-labels-idx1-ubyte.gz'
TEST_LABELS = 't10k-labels-idx1-ubyte.gz'

NUM_STANDARD_TRAIN = 50000  # of LeCun's 60,000; the rest is valid.
NUM_LECUN_TRAIN = 60000
IMAGE_SIZE = 28

_IDX_DTYPES = {0x08: np.uint8}  # MNIST only uses unsigned bytes.


class IDXFormatError(ValueError):
  """Raised when an IDX file is truncated, corrupt or of unexpected shape."""


def _decompressed(path):
  """The bytes of `path`, gunzipped when they start with gzip's magic number."""
  raw = pathlib.Path(path).read_bytes()
  if raw[:2] != b'\x1f\x8b':
    return raw
  try:
    return gzip.decompress(raw)
  except (OSError, EOFError, zlib.error) as e:
    raise IDXFormatError(f'{path}: corrupt or truncated gzip data ({e}).') from e


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
  raw = _decompressed(path)
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
  atomic_write(path, data)


def content_sha256(path):
  """Hex sha256 of an IDX file's decompressed content (independent of how it was gzipped).

  Raises:
    IDXFormatError: the gzip data is corrupt.
  """
  return hashlib.sha256(_decompressed(path)).hexdigest()


def find_idx_file(folder, name):
  """Returns `folder`/`name`, else `folder`/`name` without `.gz` (uncompressed), if a file;
  else None."""
  folder = pathlib.Path(folder)
  for candidate in (name, name[:-len('.gz')]):
    if (folder / candidate).is_file():
      return folder / candidate
  return None


def read_images(path):
  """Reads an IDX file of 28 x 28 images: uint8 (N, 28, 28).

  Raises:
    IDXFormatError: the file is corrupt, or not 3-dimensional with 28 x 28 images.
  """
  images = read_idx(path, ndim=3)
  if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
    raise IDXFormatError(
        f'{path}: images have shape {images.shape[1:]}, expected (28, 28).')
  return images


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


def to_float(images):
  """uint8 images (N, ...) -> float32 (N, pixels): pixel / 255, in [0, 1]."""
  images = images.reshape(len(images), -1)
  return images.astype(np.float32) / np.float32(255.0)


def image_splits(train, test):
  """The {'train', 'valid', 'test'} float32 (N, 784) splits of uint8 training and test images
  (`split_train_valid`, `to_float`)."""
  train, valid = split_train_valid(train)
  return {'train': to_float(train), 'valid': to_float(valid), 'test': to_float(test)}


def read_image_splits(train_path, test_path):
  """`image_splits` of two IDX image files.

  Raises:
    IDXFormatError: a file is corrupt or its images are not 28 x 28.
  """
  return image_splits(read_images(train_path), read_images(test_path))


def tfds_image_splits(name):
  """`image_splits` of tfds builder `name` ('mnist' or 'fashion_mnist'), or None when tfds is
  unavailable (`tfds_source.load_images`).

  tfds' training order is not the files', so train/valid is then not the file-order split
  (test is the full t10k set either way); a warning says so.
  """
  images = tfds_source.load_images(name)
  if images is None:
    return None
  logging.warning("%s: loaded from tfds; its training order is not the IDX files', so "
                  'train/valid is not the file-order split.', name)
  return image_splits(*images)
