"""A fixed convnet classifier of MNIST or Fashion-MNIST, trained once and cached, whose
penultimate-layer features and class probabilities the sample-quality metrics use
(`evaluation.sample_quality`).

Architecture (`build_network`; 32,730 weights), on grey-level images [N, 784] in [0, 1]
(pixel / 255, the range of a decoder's Bernoulli means):

  reshape 28 x 28 x 1
  -> Conv2D 16 filters 5 x 5, 'same' -> batch norm -> ReLU -> max-pool 2 x 2   (14 x 14 x 16)
  -> Conv2D 32 filters 5 x 5, 'same' -> batch norm -> ReLU -> max-pool 2 x 2   (7 x 7 x 32)
  -> Conv2D 64 filters 3 x 3, 'same' -> batch norm -> ReLU                     (7 x 7 x 64)
  -> global average pool        <- the features, 64 (`FEATURE_SIZE`), the penultimate layer
  -> Dense 10                   <- the logits (softmax: the class probabilities)

The features are a global average pool of the last convolution, as the pool3 features of
the Inception network of FID are: in them, noise images lie far from every digit (precision
0 against the test images), while the features of a dense hidden layer after a flatten put
noise inside the digits' k-NN manifold (precision about 0.9 in a version measured here).

Training (`train_classifier`, `TrainingSettings`): the 50,000 images of the train split (the
library's 50k/10k/10k split; valid is not used), 4 epochs of Adam at batch 128, learning rate
1e-2 cosine-decayed to 2e-4, softmax cross-entropy; the initial weights (Glorot uniform) and
each epoch's data order are fixed by the seed. Measured on this project's 2-core CPU (seed 0,
another process using most of one core): MNIST 65 s, test accuracy 99.22%; Fashion-MNIST
69 s, 90.01%.

Cache (`load_classifier`): `~/.cache/tfp_priors/classifiers/<name>_convnet_v1_seed<seed>`
`.weights.npz` (the weights, a numpy archive read with allow_pickle=False) and `.json` (its
sha256, the settings, the test accuracy and the training time), both written atomically. A
cached file is used only when its sha256 and the manifest's settings match; otherwise
(missing, damaged, another version) the classifier is trained again and rewritten. The
cache never goes into $TFP_PRIORS_DATA_DIR, which may be a read-only shared folder.
"""
import dataclasses
import io
import json
import math
import os
import pathlib
import time
from typing import Callable, Tuple
import zipfile

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from tfp_priors.data import fashion_mnist
from tfp_priors.data import files
from tfp_priors.data import idx
from tfp_priors.data import mnist

VERSION = 1  # of the architecture and the training recipe; part of the cache file names
CONVOLUTIONS = ((16, 5), (32, 5), (64, 3))  # (filters, kernel size) of the three blocks
FEATURE_SIZE = CONVOLUTIONS[-1][0]
NUM_CLASSES = 10
IMAGE_SIZE = idx.IMAGE_SIZE * idx.IMAGE_SIZE
# Where trained classifiers are cached (`load_classifier`'s default cache_dir).
CACHE_DIR = files.DEFAULT_DATA_DIR / 'classifiers'


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
  """The training recipe of `train_classifier` (recorded in the cache's manifest).

  Attributes:
    epochs: passes over the 50,000 training images.
    batch_size: images per Adam step.
    learning_rate: Adam's initial rate, cosine-decayed over all steps ...
    final_fraction: ... to this fraction of it (`CosineDecay`'s alpha).
  """
  epochs: int = 4
  batch_size: int = 128
  learning_rate: float = 1e-2
  final_fraction: float = 0.02


TRAINING = TrainingSettings()


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
  """A classifier's data: its name and a loader of its labelled images.

  Attributes:
    name: the classifier's name ('mnist', 'fashion_mnist'), also in its metric keys.
    load: fn(data_dir, allow_download) -> (images, labels), dicts with 'train', 'valid',
      'test': float32 [N, 784] grey levels in [0, 1] and int64 [N] labels (digits 0-9;
      Fashion-MNIST's classes are `fashion_mnist.CLASS_NAMES`).
  """
  name: str
  load: Callable[..., Tuple[dict, dict]]


FULL_SPLIT_SIZES = {'train': 50000, 'valid': 10000, 'test': 10000}


def _check_full(name, images, labels, where):
  """Raises DatasetNotFoundError unless `images` / `labels` hold the full 50k/10k/10k split."""
  sizes = {k: len(v) for k, v in images.items()}
  if sizes != FULL_SPLIT_SIZES or {k: len(v) for k, v in labels.items()} != sizes:
    raise files.DatasetNotFoundError(f'{name} in {where} has splits {sizes}, not the full '
                                     f'{FULL_SPLIT_SIZES} the classifier is trained on.')


def _mnist_roots(data_dir):
  """data_dir, $TFP_PRIORS_DATA_DIR and the cache ~/.cache/tfp_priors, without repeats."""
  roots = (data_dir, os.environ.get(files.ENV_DATA_DIR), files.DEFAULT_DATA_DIR)
  return list(dict.fromkeys(pathlib.Path(r).expanduser() for r in roots if r))


def _holds_full_mnist(root):
  """Whether `root` (or root/mnist) holds MNIST's image files and 60,000 training labels."""
  labels = mnist.find_mnist_file(root, idx.TRAIN_LABELS)
  return (labels is not None and mnist.find_mnist_file(root, idx.TRAIN_IMAGES) is not None
          and idx.read_idx(labels, ndim=1).size == idx.NUM_LECUN_TRAIN)


def _load_mnist(data_dir=None, allow_download=False):
  """Full MNIST with labels from the first of `_mnist_roots` that holds it (a smaller copy,
  e.g. the tests' 1,000-image slice, is passed over); with `allow_download`, fetched into
  the cache otherwise (`mnist.load_mnist`)."""
  roots = _mnist_roots(data_dir)
  root = next((r for r in roots if _holds_full_mnist(r)), None)
  if root is None and not allow_download:
    raise files.DatasetNotFoundError(
        f'MNIST: the full data set with labels (60,000 training images) is in none of '
        f'{", ".join(map(str, roots))}; put the four IDX files into one of them (docs/data.md) '
        f'or pass allow_download=True.')
  root = root or files.DEFAULT_DATA_DIR.expanduser()
  images = mnist.load_mnist(root, allow_download=allow_download)
  labels = mnist.load_mnist_labels(root)
  _check_full('MNIST', images, labels, root)
  return images, labels


def _load_fashion_mnist(data_dir=None, allow_download=False):
  """Full Fashion-MNIST with labels (`fashion_mnist.candidate_dirs`; with `allow_download`,
  fetched into the cache ~/.cache/tfp_priors when absent)."""
  if fashion_mnist.find_files(data_dir) is None and allow_download:
    fashion_mnist.fetch_fashion_mnist(files.DEFAULT_DATA_DIR)
  directory = fashion_mnist.find_files(data_dir)
  if directory is None:
    raise files.DatasetNotFoundError(fashion_mnist.missing_message(data_dir))
  images = fashion_mnist.load_fashion_mnist(data_dir, allow_download=False)
  labels = fashion_mnist.load_fashion_mnist_labels(data_dir)
  _check_full('Fashion-MNIST', images, labels, directory)
  return images, labels


SPECS = {
    'mnist': ClassifierSpec('mnist', _load_mnist),
    'fashion_mnist': ClassifierSpec('fashion_mnist', _load_fashion_mnist),  # CLASS_NAMES
}
# Registered data set (`make_datasets.name`) -> the classifier its samples are scored with.
DATASET_CLASSIFIERS = {'dynamic_mnist': 'mnist', 'static_mnist': 'mnist', 'mnist': 'mnist',
                       'fashion_mnist': 'fashion_mnist'}


def classifier_name(dataset):
  """The name of the classifier that scores samples of `dataset`.

  Args:
    dataset: a registered data set name ('dynamic_mnist', 'static_mnist', 'fashion_mnist')
      or a classifier name ('mnist', 'fashion_mnist').

  Returns:
    'mnist' or 'fashion_mnist'.

  Raises:
    ValueError: a data set without a classifier (one line, naming those that have one).
  """
  if dataset not in DATASET_CLASSIFIERS:
    have = ', '.join(k for k in DATASET_CLASSIFIERS if k != 'mnist')
    raise ValueError(f'no sample-quality classifier for the data set {dataset!r}: only '
                     f'{have} have one (an MNIST or a Fashion-MNIST convnet).')
  return DATASET_CLASSIFIERS[dataset]


def build_network(seed=0):
  """The convnet of the module docstring, with Glorot-uniform kernels drawn from `seed`.

  Returns:
    `tf_keras.Model`: images [N, 784] float32 in [0, 1] -> (features [N, 64], the global
    average pool of the last convolution (the penultimate layer), logits [N, 10]).
  """
  def init(i):
    return tf_keras.initializers.GlorotUniform(seed=seed * 16 + i)

  layers = tf_keras.layers
  images = tf_keras.Input([IMAGE_SIZE], name='images')
  h = layers.Reshape([idx.IMAGE_SIZE, idx.IMAGE_SIZE, 1])(images)
  for i, (filters, size) in enumerate(CONVOLUTIONS):
    h = layers.Conv2D(filters, size, padding='same', use_bias=False,
                      kernel_initializer=init(i))(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    if i < len(CONVOLUTIONS) - 1:
      h = layers.MaxPool2D()(h)
  features = layers.GlobalAveragePooling2D(name='features')(h)
  logits = layers.Dense(NUM_CLASSES, kernel_initializer=init(len(CONVOLUTIONS)),
                        name='logits')(features)
  return tf_keras.Model(images, [features, logits], name='sample_quality_classifier')


class Classifier:
  """A trained image classifier: class probabilities and penultimate-layer features.

  Attributes:
    name: 'mnist' or 'fashion_mnist' (`SPECS`). seed: the training seed.
    network: the `build_network` model. test_accuracy: on the 10,000 test images (a
    fraction; None if unknown). train_seconds: wall time of its training (None if unknown).
    settings: the `TrainingSettings` it was trained with.
  """

  def __init__(self, name, network, seed=0, test_accuracy=None, train_seconds=None,
               settings=TRAINING):
    self.name, self.network, self.seed = name, network, int(seed)
    self.test_accuracy, self.train_seconds = test_accuracy, train_seconds
    self.settings = settings
    self._call = tf.function(lambda x: self.network(x, training=False))

  @property
  def feature_name(self):
    """The feature extractor's name in metric keys: '<name>_classifier'."""
    return f'{self.name}_classifier'

  def predict(self, images, batch_size=1000):
    """Features and class probabilities of `images`, in batches.

    Args:
      images: [N, 784] grey levels in [0, 1] (numpy or tensor).
      batch_size: images per call of the network.

    Returns:
      (features [N, 64], probabilities [N, 10]): float64 numpy arrays.

    Raises:
      ValueError: images not of shape [N, 784].
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 2 or images.shape[1] != IMAGE_SIZE:
      raise ValueError(f'the {self.name} classifier takes images of shape [N, {IMAGE_SIZE}] '
                       f'(28 x 28 grey levels in [0, 1]); got {images.shape}.')
    features, probabilities = [], []
    for start in range(0, len(images), batch_size):
      f, logits = self._call(tf.constant(images[start:start + batch_size]))
      features.append(f.numpy())
      probabilities.append(tf.nn.softmax(tf.cast(logits, tf.float64)).numpy())
    if not features:
      return np.zeros([0, FEATURE_SIZE]), np.zeros([0, NUM_CLASSES])
    return (np.concatenate(features).astype(np.float64), np.concatenate(probabilities))

  def accuracy(self, images, labels, batch_size=1000):
    """Fraction of `images` [N, 784] whose most probable class is `labels` [N]."""
    _, probabilities = self.predict(images, batch_size)
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels)))


def train_classifier(dataset, seed=0, data_dir=None, allow_download=False, settings=TRAINING,
                     log_fn=None):
  """Trains the convnet of the module docstring on a data set's 50,000 training images.

  Wall time on this project's 2-core CPU (measured with another process using most of one
  core): 65 s for MNIST (test accuracy 99.22%) and 69 s for Fashion-MNIST (90.01%), with the
  default settings and seed 0. Nothing is written: `load_classifier` caches what this
  returns.

  Args:
    dataset: a data set or classifier name (`classifier_name`: 'dynamic_mnist',
      'static_mnist' and 'mnist' train on grey-level MNIST, 'fashion_mnist' on Fashion-MNIST).
    seed: int >= 0; fixes the initial weights and each epoch's data order.
    data_dir: a directory searched first for the IDX files (then $TFP_PRIORS_DATA_DIR and
      ~/.cache/tfp_priors; Fashion-MNIST also /usr/share/datasets/fashion-mnist). A copy that
      is not the full data set (the tests' 1,000-image slice) is passed over.
    allow_download: fetch the data into ~/.cache/tfp_priors when it is nowhere on disk.
    settings: `TrainingSettings`.
    log_fn: fn(str) for progress lines, or None.

  Returns:
    `Classifier`, with its test accuracy (on the 10,000 test images) and training time.

  Raises:
    ValueError: a data set without a classifier (`classifier_name`).
    DatasetNotFoundError: the full labelled data set is not on disk (and not fetched).

  #### Examples

  ```python
  from tfp_priors.evaluation import classifier

  net = classifier.train_classifier('mnist', seed=0)     # ~1 min on 2 CPU cores
  assert net.test_accuracy >= 0.99
  ```
  """
  name = classifier_name(dataset)
  images, labels = SPECS[name].load(data_dir, allow_download)
  network = build_network(seed)
  steps = settings.epochs * math.ceil(len(images['train']) / settings.batch_size)
  rate = tf_keras.optimizers.schedules.CosineDecay(settings.learning_rate, steps,
                                                   alpha=settings.final_fraction)
  trainable = tf_keras.Model(network.inputs, network.outputs[1])
  trainable.compile(tf_keras.optimizers.Adam(rate),
                    tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  rng, start = np.random.RandomState(seed), time.perf_counter()
  for epoch in range(settings.epochs):
    order = rng.permutation(len(images['train']))
    trainable.fit(images['train'][order], labels['train'][order],
                  batch_size=settings.batch_size, epochs=1, shuffle=False, verbose=0)
    if log_fn:
      log_fn(f'{name} classifier: epoch {epoch + 1}/{settings.epochs} '
             f'({time.perf_counter() - start:.0f} s)')
  seconds = time.perf_counter() - start
  classifier = Classifier(name, network, seed, train_seconds=seconds, settings=settings)
  classifier.test_accuracy = classifier.accuracy(images['test'], labels['test'])
  if log_fn:
    log_fn(f'{name} classifier: test accuracy {classifier.test_accuracy:.4f} after '
           f'{seconds:.0f} s of training')
  return classifier


def cache_paths(dataset, seed=0, cache_dir=None):
  """(weights .npz path, manifest .json path) of a classifier in the cache.

  Args:
    dataset: a data set or classifier name (`classifier_name`). seed: the training seed.
    cache_dir: the cache folder (default `CACHE_DIR`, ~/.cache/tfp_priors/classifiers).
  """
  folder = pathlib.Path(CACHE_DIR if cache_dir is None else cache_dir).expanduser()
  stem = f'{classifier_name(dataset)}_convnet_v{VERSION}_seed{int(seed)}'
  return folder / f'{stem}.weights.npz', folder / f'{stem}.json'


def _identity(name, seed, settings=TRAINING):
  """The manifest fields that must match for a cached classifier to be used."""
  return {'classifier': name, 'version': VERSION, 'seed': int(seed),
          'settings': dataclasses.asdict(settings)}


def save_classifier(classifier, cache_dir=None):
  """Writes a classifier's weights and manifest (with their sha256) to the cache, atomically
  (`files.atomic_write`: the weights first, then the manifest that vouches for them). The
  manifest records the classifier's settings; `load_classifier` uses only the default ones.

  Returns:
    The weights path.

  Raises:
    OSError: the cache folder cannot be written.
  """
  weights_path, manifest_path = cache_paths(classifier.name, classifier.seed, cache_dir)
  buffer = io.BytesIO()
  np.savez(buffer, *classifier.network.get_weights())
  files.atomic_write(weights_path, buffer.getvalue())
  manifest = {**_identity(classifier.name, classifier.seed, classifier.settings),
              'sha256': files.sha256_of(weights_path), 'test_accuracy': classifier.test_accuracy,
              'train_seconds': classifier.train_seconds}
  files.atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=True).encode())
  return weights_path


def read_cached(dataset, seed=0, cache_dir=None):
  """The cached classifier, or (None, why not) when it is missing or cannot be trusted.

  Trusted only when the manifest parses, names this classifier, version, seed and training
  settings, and the weights file's sha256 equals the manifest's; the weights are then read
  with `np.load(allow_pickle=False)` and must have the network's shapes.

  Returns:
    (`Classifier`, None) or (None, reason: str).
  """
  name = classifier_name(dataset)
  weights_path, manifest_path = cache_paths(name, seed, cache_dir)
  if not (weights_path.is_file() and manifest_path.is_file()):
    return None, f'no cached weights at {weights_path}'
  try:
    manifest = json.loads(manifest_path.read_text(encoding='utf-8'))
    if any(manifest.get(k) != v for k, v in _identity(name, seed).items()):
      return None, f'{manifest_path} is of another classifier, version or recipe'
    if files.sha256_of(weights_path) != manifest['sha256']:
      return None, f'{weights_path} does not match the sha256 of {manifest_path} (damaged)'
    network = build_network(seed)
    with np.load(weights_path, allow_pickle=False) as archive:
      weights = [archive[f'arr_{i}'] for i in range(len(archive.files))]
    if [w.shape for w in weights] != [w.shape for w in network.get_weights()]:
      return None, f'{weights_path} holds weights of other shapes'
    network.set_weights(weights)
  except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as e:
    return None, f'cannot read the cached classifier ({type(e).__name__}: {e})'
  return Classifier(name, network, seed, manifest.get('test_accuracy'),
                    manifest.get('train_seconds')), None


def load_classifier(dataset, seed=0, cache_dir=None, data_dir=None, allow_download=False,
                    log_fn=None):
  """The classifier of a data set: from the cache when it is there and intact, otherwise
  trained (`train_classifier`, about a minute on 2 CPU cores) and written to the cache.

  Args:
    dataset: a data set or classifier name (`classifier_name`).
    seed: the training seed (part of the cache file name).
    cache_dir: the cache folder (default `CACHE_DIR`, ~/.cache/tfp_priors/classifiers).
    data_dir, allow_download: where the training data are found (`train_classifier`).
    log_fn: fn(str) for what it does, or None.

  Returns:
    `Classifier`.

  Raises:
    ValueError: a data set without a classifier.
    DatasetNotFoundError: not cached and the training data are not on disk.
    OSError: the cache folder cannot be written.

  #### Examples

  ```python
  from tfp_priors.evaluation import classifier

  net = classifier.load_classifier('dynamic_mnist')   # trains once, then reads the cache
  features, probabilities = net.predict(np.zeros([2, 784], np.float32))
  assert features.shape == (2, 64) and probabilities.shape == (2, 10)
  ```
  """
  name = classifier_name(dataset)
  cached, why = read_cached(name, seed, cache_dir)
  if cached is not None:
    return cached
  logging.info('%s', why)
  if log_fn:
    log_fn(f'training the {name} sample-quality classifier ({why})...')
  trained = train_classifier(name, seed, data_dir, allow_download, log_fn=log_fn)
  path = save_classifier(trained, cache_dir)
  if log_fn:
    log_fn(f'wrote {path} (test accuracy {trained.test_accuracy:.4f})')
  return trained
