"""Omniglot (Lake, Salakhutdinov & Tenenbaum 2015) at 28 x 28, grey values in [0, 1].

NOT the Omniglot of the papers. The LARS paper (appendix C.1), like Burda et al. (2016) and
Tomczak & Welling (2018), uses Burda's 28 x 28 `chardata.mat`: 24,345 training (1,345 of them
held out for validation) and 8,070 test images of all 50 alphabets. That file is not
available to this project. What is used instead, by default, is the SMALL official subset of
Lake's repository brendenlake/omniglot (MIT), folder python/, three zips to put in an
`omniglot/` folder of the data directory, e.g. `$TFP_PRIORS_DATA_DIR/omniglot/` (search order:
`candidate_dirs`):

  * `images_background_small1.zip` (2,720 images, 5 alphabets) and
    `images_background_small2.zip` (3,120 images, 5 alphabets). The two share their Greek and
    Latin characters: those 1,000 files are byte-identical in both and are kept once, leaving
    4,840 images of 8 alphabets (292 characters x 20 drawers).
  * `all_runs.zip`: the 20 one-shot classification runs, 800 images of characters from
    Omniglot's evaluation alphabets, none of which occurs in the background set.

Local split (fixed, `SPLIT_SEED` = 0):
  * train 4,000 / valid 840: the 4,840 unique background images sorted by their path
    `alphabet/characterNN/NNNN_NN.png`, permuted with `np.random.RandomState(0)`; the first
    4,000 are train, the last 840 valid (so valid holds new drawings of training characters);
  * test 800: all images of all_runs.zip, sorted by path. Test characters and alphabets are
    unseen in training, unlike Burda's split (same characters in train and test), so expect a
    higher test than valid NLL. Numbers are NOT comparable one to one with the papers'.

With tensorflow_datasets' `omniglot` builder (used only when online, see `tfds_source`, or
when its converted arrays are cached): its 'train' split (images_background, 19,280 images,
30 alphabets) gives train 17,935 / valid 1,345 (Tomczak's validation count; fixed seed-0
permutation of tfds' order), its 'test' split (images_evaluation, 13,180 images, 20 other
alphabets) is test. Still not Burda's split, for the same reason.

Preprocessing (both sources): the 105 x 105 binary PNGs (black strokes on white) are
inverted so that strokes are 1 and background 0 (as in MNIST and Burda's data), then resized
to 28 x 28 with `tf.image.resize(method='bilinear', antialias=True)`: grey values in [0, 1]
(thin strokes become grey), later binarized dynamically by the pipeline. The decoded arrays are
cached as `<data dir>/omniglot/omniglot_{small,tfds}_28x28.npz` (data dir: `data_dir`, else
$TFP_PRIORS_DATA_DIR, else ~/.cache/tfp_priors), so later loads take well under a second.
"""

import io
import zipfile

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from tfp_priors.data import files
from tfp_priors.data import tfds_source
from tfp_priors.data.files import DEFAULT_DATA_DIR
from tfp_priors.data.files import DatasetNotFoundError
from tfp_priors.data.files import ENV_DATA_DIR
from tfp_priors.data.files import atomic_write
from tfp_priors.data.files import resolve_data_dir
from tfp_priors.data.files import sha256_of

SUBDIR = 'omniglot'
SOURCE = ('the small official subset of the public GitHub repository brendenlake/omniglot '
          '(MIT), folder python/; tfds omniglot when online')
BACKGROUND_ZIPS = ('images_background_small1.zip', 'images_background_small2.zip')
TEST_ZIP = 'all_runs.zip'
ZIP_FILES = BACKGROUND_ZIPS + (TEST_ZIP,)
# sha256 of the zips of brendenlake/omniglot's python/ folder the split was made with; other
# files are used with a warning.
ZIP_SHA256 = {
    'images_background_small1.zip':
        'f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4',
    'images_background_small2.zip':
        '3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f',
    'all_runs.zip': '437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325',
}
SOURCE_SIZE = 105
IMAGE_SIZE = 28
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
EVENT_SIZE = IMAGE_SIZE * IMAGE_SIZE
SPLIT_SEED = 0
# Validation images held out of the training pool, per source.
NUM_VALID = {'small': 840, 'tfds': 1345}
SPLIT_SIZES = {'small': {'train': 4000, 'valid': 840, 'test': 800},
               'tfds': {'train': 17935, 'valid': 1345, 'test': 13180}}
TFDS_NAME = 'omniglot'
# Bump when preprocessing or the split changes: older cache files are then rebuilt.
CACHE_VERSION = 1
SPLITS = ('train', 'valid', 'test')


def candidate_dirs(data_dir=None):
  """Directories searched for the zips, in order: `data_dir`(/omniglot),
  $TFP_PRIORS_DATA_DIR(/omniglot), then ~/.cache/tfp_priors/omniglot."""
  return files.search_dirs(SUBDIR, data_dir, DEFAULT_DATA_DIR)


def find_zips(data_dir=None):
  """Returns the first searched directory holding all three zips, or None."""
  return files.first_dir_holding(candidate_dirs(data_dir), ZIP_FILES)


def cache_path(data_dir=None, source='small'):
  """`<data dir>/omniglot/omniglot_<source>_28x28.npz` (source 'small' or 'tfds')."""
  return resolve_data_dir(data_dir) / SUBDIR / f'omniglot_{source}_28x28.npz'


def preprocess(images):
  """Inverts and downsizes Omniglot images.

  Args:
    images: uint8 array or tensor (N, H, W, C), black (0) strokes on white (255); only the
      first channel is used.

  Returns:
    float32 np.ndarray (N, 784): 1 - pixel / 255 (strokes 1) resized to 28 x 28 with an
    antialiased bilinear filter, values in [0, 1].
  """
  x = 1.0 - tf.cast(tf.convert_to_tensor(images)[..., :1], tf.float32) / 255.0
  x = tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE), method='bilinear', antialias=True)
  x = tf.clip_by_value(x, 0.0, 1.0)
  return tf.reshape(x, (-1, EVENT_SIZE)).numpy()


def decode_pngs(pngs, batch_size=512):
  """Decodes 105 x 105 Omniglot PNGs (bytes) with `preprocess`: float32 (N, 784) in [0, 1].

  Raises:
    ValueError: an image is not 105 x 105.
  """
  if not pngs:
    return np.zeros((0, EVENT_SIZE), np.float32)

  def decode(png):
    # ensure_shape fails at run time for an image of another size.
    return tf.ensure_shape(tf.io.decode_png(png, channels=1), (SOURCE_SIZE, SOURCE_SIZE, 1))

  ds = tf.data.Dataset.from_tensor_slices(tf.constant(pngs, tf.string)).map(
      decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)
  try:
    return np.concatenate([preprocess(batch) for batch in ds])
  except tf.errors.InvalidArgumentError as e:
    raise ValueError(f'cannot decode an Omniglot PNG: {e.message}') from e


def _read_pngs(path, strip_top_folder):
  """Returns {member path: PNG bytes} of a zip's .png files.

  With `strip_top_folder`, keys drop the first folder ('images_background_small1/Greek/...'
  -> 'Greek/...'), so the same character file has the same key in both background zips.
  """
  with zipfile.ZipFile(path) as archive:
    return {(name.split('/', 1)[1] if strip_top_folder else name): archive.read(name)
            for name in archive.namelist() if name.endswith('.png')}


def _load_zips(directory):
  """Decodes the three zips of `directory` into the documented local split."""
  background = {}
  for name in BACKGROUND_ZIPS:
    for key, png in _read_pngs(directory / name, True).items():
      if key in background and background[key] != png:
        logging.warning('Omniglot: %s differs between the two background zips; keeping '
                        'the first.', key)
      background.setdefault(key, png)
  test = _read_pngs(directory / TEST_ZIP, False)
  keys = sorted(background)
  order = np.random.RandomState(SPLIT_SEED).permutation(len(keys))
  pool = decode_pngs([background[keys[i]] for i in order])
  num_train = len(keys) - NUM_VALID['small']
  data = {'train': pool[:num_train], 'valid': pool[num_train:],
          'test': decode_pngs([test[k] for k in sorted(test)])}
  sizes = {k: len(v) for k, v in data.items()}
  if sizes != SPLIT_SIZES['small']:
    logging.warning('Omniglot: split sizes %s differ from the documented %s (other zips?).',
                    sizes, SPLIT_SIZES['small'])
  return data


def _read_cache(path, key):
  if not path.is_file():
    return None
  try:
    with np.load(path) as f:
      if str(f['key']) != key:
        logging.info('Omniglot: cache %s is stale, rebuilding.', path)
        return None
      return {s: f[s].astype(np.float32) for s in SPLITS}
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    logging.warning('Omniglot: ignoring unreadable cache %s (%s).', path, e)
    return None


def _write_cache(path, key, data):
  buffer = io.BytesIO()
  np.savez_compressed(buffer, key=np.array(key), **data)
  try:
    atomic_write(path, buffer.getvalue())
    logging.info('Omniglot: cached the 28 x 28 arrays in %s', path)
  except OSError as e:
    logging.warning('Omniglot: cannot write cache %s (%s).', path, e)


def _load_local(directory, data_dir):
  digests = {name: sha256_of(directory / name) for name in ZIP_FILES}
  for name, digest in digests.items():
    if digest != ZIP_SHA256[name]:
      logging.warning('Omniglot: %s has sha256 %s, not the pinned %s.',
                      directory / name, digest, ZIP_SHA256[name])
  key = f'v{CACHE_VERSION} small seed{SPLIT_SEED} ' + ' '.join(
      digests[name] for name in ZIP_FILES)
  path = cache_path(data_dir, 'small')
  data = _read_cache(path, key)
  if data is not None:
    logging.info('Omniglot: loaded cached arrays %s', path)
    return data
  logging.info('Omniglot: decoding the zips of %s', directory)
  data = _load_zips(directory)
  _write_cache(path, key, data)
  return data


def _tfds_key():
  return f'v{CACHE_VERSION} tfds {TFDS_NAME} seed{SPLIT_SEED}'


def _load_tfds(data_dir):
  """Returns the tfds-derived split (cached, or downloaded when online), or None."""
  path = cache_path(data_dir, 'tfds')
  data = _read_cache(path, _tfds_key())
  if data is not None:
    logging.info('Omniglot: loaded cached tfds arrays %s', path)
    return data
  images = tfds_source.load_images(TFDS_NAME, preprocess)
  if images is None:
    return None
  train, test = images
  order = np.random.RandomState(SPLIT_SEED).permutation(len(train))
  train = train[order]
  num_train = len(train) - NUM_VALID['tfds']
  data = {'train': train[:num_train], 'valid': train[num_train:], 'test': test}
  logging.warning('Omniglot: using tfds %r (background/evaluation alphabets), %s.',
                  TFDS_NAME, {k: len(v) for k, v in data.items()})
  _write_cache(path, _tfds_key(), data)
  return data


def missing_message(data_dir=None):
  dirs = candidate_dirs(data_dir)
  return (
      f'Omniglot not found. Searched: {", ".join(map(str, dirs))} for '
      f'{", ".join(ZIP_FILES)} (the small official subset of brendenlake/omniglot, folder '
      f'python/, MIT; 105 x 105 PNGs): put the three zips in <data_dir>/{SUBDIR}/ and point '
      f'the `data_dir` argument (gin: make_datasets.data_dir) or ${ENV_DATA_DIR} at '
      f'<data_dir>, or copy them to {DEFAULT_DATA_DIR / SUBDIR}. Alternatively '
      f"the tensorflow_datasets builder '{TFDS_NAME}' is used when storage.googleapis.com is "
      'reachable and allow_download=True.')


@gin.configurable(denylist=['data_dir', 'allow_download'])
def load_omniglot(data_dir=None, allow_download=True, source='auto'):
  """Loads 28 x 28 Omniglot with a fixed split (see the module docstring for both splits).

  Sources for `source='auto'`: arrays converted from tfds 'omniglot' if cached, or if
  `allow_download` and storage.googleapis.com is reachable; otherwise the local zips
  (`candidate_dirs`: `<data_dir>/omniglot`, `$TFP_PRIORS_DATA_DIR/omniglot`,
  `~/.cache/tfp_priors/omniglot`). The result is logged.

  Args:
    data_dir: data directory (searched for the zips, and where the npz cache goes).
    allow_download: whether tfds may be downloaded.
    source: 'auto', 'small' (local zips only) or 'tfds' (tfds only). gin:
      load_omniglot.source.

  Returns:
    dict with 'train', 'valid', 'test': float32 (N, 784) grey values in [0, 1], strokes
    near 1; sizes 4,000 / 840 / 800 (local zips) or 17,935 / 1,345 / 13,180 (tfds).

  Raises:
    DatasetNotFoundError: no source is available; the message names the zips, where to put
      them and the tfds builder.
    ValueError: unknown `source`, or a PNG is not a 105 x 105 image.
  """
  if source not in ('auto', 'small', 'tfds'):
    raise ValueError(f"Omniglot source must be 'auto', 'small' or 'tfds', got {source!r}.")
  if source in ('auto', 'tfds') and (allow_download or
                                     cache_path(data_dir, 'tfds').is_file()):
    data = _load_tfds(data_dir)
    if data is not None:
      return data
  if source in ('auto', 'small'):
    directory = find_zips(data_dir)
    if directory is not None:
      return _load_local(directory, data_dir)
    logging.info('Omniglot: zips not found in %s',
                 ', '.join(map(str, candidate_dirs(data_dir))))
  raise DatasetNotFoundError(missing_message(data_dir))
