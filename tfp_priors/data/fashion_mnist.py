"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from Zalando's IDX files.

Source: Zalando Research's Fashion-MNIST (MIT licence), 28 x 28 grey images of clothing in 10
classes, in the same IDX format and with the same file names as LeCun's MNIST:
``train-images-idx3-ubyte.gz`` (60,000 images), ``t10k-images-idx3-ubyte.gz`` (10,000) and
the two label files. The files are carried by the Debian package ``dataset-fashion-mnist``
(installed: ``/usr/share/datasets/fashion-mnist/``). ``apt-get download
dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb DIR`` unpacks it without root.

Split (LARS paper, appendix C.1: "60,000 train/validation and 10,000 test images"), the
convention of `idx.split_train_valid`: the first 50,000 training images = train, the last
10,000 = valid, t10k = test.

Because the file names equal MNIST's, Fashion-MNIST is only looked for in a `fashion_mnist/`
(or Debian's `fashion-mnist/`) folder of a data directory, never in the directory itself,
where MNIST's files may lie.
"""

import pathlib
import shutil
import subprocess
import tempfile

from absl import logging
import numpy as np

from tfp_priors.data import files
from tfp_priors.data.files import DEFAULT_DATA_DIR
from tfp_priors.data.files import DatasetNotFoundError
from tfp_priors.data.files import ENV_DATA_DIR
from tfp_priors.data.files import atomic_write
from tfp_priors.data.files import resolve_data_dir
from tfp_priors.data.idx import TEST_IMAGES
from tfp_priors.data.idx import TEST_LABELS
from tfp_priors.data.idx import TRAIN_IMAGES
from tfp_priors.data.idx import TRAIN_LABELS
from tfp_priors.data.idx import content_sha256
from tfp_priors.data.idx import find_idx_file
from tfp_priors.data.idx import read_idx
from tfp_priors.data.idx import read_image_splits
from tfp_priors.data.idx import split_train_valid
from tfp_priors.data.idx import tfds_image_splits

SUBDIR = 'fashion_mnist'
# Where the Debian package installs the files.
SYSTEM_DIR = pathlib.Path('/usr/share/datasets/fashion-mnist')
DEBIAN_PACKAGE = 'dataset-fashion-mnist'
DEBIAN_MEMBER_DIR = 'usr/share/datasets/fashion-mnist'
FILES = (TRAIN_IMAGES, TEST_IMAGES, TRAIN_LABELS, TEST_LABELS)
# sha256 of each file's decompressed IDX content (independent of how it was gzipped), as
# shipped in dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Debian bookworm).
IDX_SHA256 = {
    TRAIN_IMAGES: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    TEST_IMAGES: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    TRAIN_LABELS: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    TEST_LABELS: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
}
# Zalando's names of the ten classes, by label.
CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
               'Sneaker', 'Bag', 'Ankle boot')
SPLIT_SIZES = {'train': 50000, 'valid': 10000, 'test': 10000}
SOURCE = (f'Zalando Research Fashion-MNIST (MIT), Debian package {DEBIAN_PACKAGE}, '
          f'files under {SYSTEM_DIR}/')


def candidate_dirs(data_dir=None):
  """Directories searched, in order.

  `<data_dir>/fashion_mnist`, `<data_dir>/fashion-mnist`, the same under
  $TFP_PRIORS_DATA_DIR, `~/.cache/tfp_priors/fashion_mnist`, then the Debian package's
  `/usr/share/datasets/fashion-mnist`.
  """
  return files.search_dirs((SUBDIR, 'fashion-mnist'), data_dir, DEFAULT_DATA_DIR,
                           [SYSTEM_DIR], include_root=False)


def find_files(data_dir=None):
  """Returns the first searched directory holding both image files, or None."""
  for d in candidate_dirs(data_dir):
    if all(find_idx_file(d, n) is not None for n in (TRAIN_IMAGES, TEST_IMAGES)):
      return d
  return None


def _load_from_dir(directory):
  """Returns {'train', 'valid', 'test'} float32 arrays from one directory's image files."""
  return read_image_splits(find_idx_file(directory, TRAIN_IMAGES),
                           find_idx_file(directory, TEST_IMAGES))


def extract_from_deb(deb, target_dir, sha256=None):
  """Unpacks a dataset-fashion-mnist .deb and copies its four IDX .gz files to target_dir.

  Args:
    deb: path of `dataset-fashion-mnist_*.deb`.
    target_dir: directory receiving the four `*-ubyte.gz` files (nothing else is kept).
    sha256: dict file name -> expected sha256 of the decompressed IDX content; default
      `IDX_SHA256`.

  Returns:
    List of the written paths.

  Raises:
    ValueError: a file is missing from the package or its content's sha256 differs from
      the pinned one (nothing written).
    subprocess.CalledProcessError: dpkg-deb cannot unpack the file.
  """
  sha256 = IDX_SHA256 if sha256 is None else sha256
  with tempfile.TemporaryDirectory() as tmp:
    subprocess.run(['dpkg-deb', '-x', str(deb), tmp], check=True, capture_output=True)
    source = pathlib.Path(tmp) / DEBIAN_MEMBER_DIR
    for name in FILES:
      if not (source / name).is_file():
        raise ValueError(f'{deb}: {DEBIAN_MEMBER_DIR}/{name} missing from the package.')
      digest = content_sha256(source / name)
      if digest != sha256[name]:
        raise ValueError(f'{deb}: {name} has content sha256 {digest}, not the pinned '
                         f'{sha256[name]}; refusing to use it.')
    written = []
    for name in FILES:
      target = pathlib.Path(target_dir) / name
      atomic_write(target, (source / name).read_bytes())
      written.append(target)
  return written


def fetch_from_debian(target_dir):
  """Fetches the Debian package with `apt-get download` (no root needed) into target_dir.

  Only the four IDX .gz files are kept, after checking their sha256 (`IDX_SHA256`).

  Returns:
    True on success, False (logged) when apt-get/dpkg-deb are absent or fail.
  """
  if shutil.which('apt-get') is None or shutil.which('dpkg-deb') is None:
    logging.warning('Fashion-MNIST: apt-get or dpkg-deb not found, cannot fetch %s.',
                    DEBIAN_PACKAGE)
    return False
  with tempfile.TemporaryDirectory() as tmp:
    cmd = ['apt-get', 'download', '-q', DEBIAN_PACKAGE]
    logging.info('Fashion-MNIST: running %s in %s', ' '.join(cmd), tmp)
    result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
    debs = sorted(pathlib.Path(tmp).glob(f'{DEBIAN_PACKAGE}_*.deb'))
    if result.returncode != 0 or not debs:
      logging.warning('Fashion-MNIST: apt-get download %s failed (run apt-get update '
                      'first?): %s', DEBIAN_PACKAGE, result.stderr.strip()[-500:])
      return False
    try:
      written = extract_from_deb(debs[0], target_dir)
    except (ValueError, subprocess.CalledProcessError) as e:
      logging.warning('Fashion-MNIST: %s', e)
      return False
  logging.info('Fashion-MNIST: verified and copied %s from %s',
               ', '.join(str(p) for p in written), debs[0].name)
  return True


def fetch_fashion_mnist(data_dir=None):
  """Makes sure the IDX files are on disk: returns the directory holding them.

  Looks in `candidate_dirs(data_dir)`; if absent, fetches the Debian package into
  `<data dir>/fashion_mnist` (data dir: `data_dir`, else $TFP_PRIORS_DATA_DIR, else
  ~/.cache/tfp_priors). Never uses tfds (whose files are not IDX files).

  Raises:
    DatasetNotFoundError: not on disk and the fetch failed.
  """
  found = find_files(data_dir)
  if found is not None:
    return found
  target = resolve_data_dir(data_dir) / SUBDIR
  if fetch_from_debian(target) and find_files(data_dir) is not None:
    return find_files(data_dir)
  raise DatasetNotFoundError(missing_message(data_dir))


def missing_message(data_dir=None):
  dirs = candidate_dirs(data_dir)
  target = resolve_data_dir(data_dir) / SUBDIR
  return (
      f'Fashion-MNIST not found. Searched: {", ".join(map(str, dirs))}. Expected the IDX '
      f'files {TRAIN_IMAGES} and {TEST_IMAGES} (uncompressed versions without .gz are '
      f'accepted too) of {SOURCE}. To get them (no root needed):\n'
      f'  cd /tmp && apt-get download {DEBIAN_PACKAGE} && '
      f'dpkg -x {DEBIAN_PACKAGE}_*.deb /tmp/fm\n'
      f'  mkdir -p {target} && cp /tmp/fm/{DEBIAN_MEMBER_DIR}/*-ubyte.gz {target}/\n'
      f'(run apt-get update first if apt cannot locate the package; or as root: '
      f'apt-get install {DEBIAN_PACKAGE}), or point ${ENV_DATA_DIR} / the `data_dir` '
      f'argument at a directory with a {SUBDIR}/ folder holding them, or call with '
      'allow_download=True.')


def load_fashion_mnist(data_dir=None, allow_download=True):
  """Loads grey-level Fashion-MNIST with the 50k/10k/10k split.

  Sources, in order (each logs one line):
    1. the data directories of `candidate_dirs(data_dir)`: `<data_dir>/fashion_mnist/`,
       `$TFP_PRIORS_DATA_DIR/fashion_mnist/`, `~/.cache/tfp_priors/fashion_mnist/`,
       `/usr/share/datasets/fashion-mnist/` (the installed Debian package);
    2. if `allow_download` and storage.googleapis.com is reachable: tensorflow_datasets
       'fashion_mnist' (`tfds_source`; train/valid then not in file order);
    3. if `allow_download`: the Debian package dataset-fashion-mnist via `apt-get download`
       (content sha256-checked), its four IDX files copied into `<data dir>/fashion_mnist/`.

  Args:
    data_dir: directory to search (and to fetch into); default $TFP_PRIORS_DATA_DIR, else
      ~/.cache/tfp_priors.
    allow_download: whether sources 2 and 3 may be tried.

  Returns:
    dict with 'train' (50000, 784), 'valid' (10000, 784), 'test' (10000, 784): float32
    grey intensities in [0, 1] (pixel / 255), rows in file order. With a training file of
    other than 60,000 images the last 1/6 becomes valid (see `idx.split_train_valid`).

  Raises:
    DatasetNotFoundError: no source worked; the message says where the files come from and
      where to put them.
    IDXFormatError: a file found is corrupt.
  """
  found = find_files(data_dir)
  if found is not None:
    logging.info('Fashion-MNIST: loading IDX files from %s', found)
    return _load_from_dir(found)
  logging.info('Fashion-MNIST: not found in %s',
               ', '.join(map(str, candidate_dirs(data_dir))))
  if allow_download:
    data = tfds_image_splits('fashion_mnist')
    if data is not None:
      return data
    target = resolve_data_dir(data_dir) / SUBDIR
    if fetch_from_debian(target):
      return _load_from_dir(target)
  raise DatasetNotFoundError(missing_message(data_dir))



def load_fashion_mnist_labels(data_dir=None):
  """Loads Zalando's Fashion-MNIST class labels (0-9, `CLASS_NAMES`), split like the images.

  Reads `train-labels-idx1-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` from the directory that
  `load_fashion_mnist` reads its images from (the first of `candidate_dirs(data_dir)` holding
  both image files), so labels and images pair row by row; never downloads.

  Args:
    data_dir: directory to search first (see `candidate_dirs`).

  Returns:
    dict with 'train' (50000,), 'valid' (10000,), 'test' (10000,) int64 labels in file order
    (with a training file of other than 60,000 labels: last 1/6 = valid, as
    `split_train_valid`).

  Raises:
    DatasetNotFoundError: the image files or a label file beside them are missing.
    IDXFormatError: a label file is corrupt or not one-dimensional.
  """
  directory = find_files(data_dir)
  if directory is None:
    raise DatasetNotFoundError(missing_message(data_dir))
  labels = {}
  for split, name in (('train', TRAIN_LABELS), ('test', TEST_LABELS)):
    path = find_idx_file(directory, name)
    if path is None:
      raise DatasetNotFoundError(f'Fashion-MNIST labels {name} not found in {directory}, '
                                 f'beside the image files; they come with them ({SOURCE}).')
    labels[split] = read_idx(path, ndim=1).astype(np.int64)
  labels['train'], labels['valid'] = split_train_valid(labels['train'])
  return labels
