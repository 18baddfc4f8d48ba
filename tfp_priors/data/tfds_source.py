"""The one tensorflow_datasets (tfds) code path of the loaders (MNIST, Fashion-MNIST, Omniglot).

tfds is tried only when its download host storage.googleapis.com is reachable: offline,
`tfds.load(download=True)` retries for minutes, so it is not called at all. tfds stores
examples in a hashed order, not in the order of the original files, so a train/valid split
taken from its 'train' split is not the file-order split of the IDX loaders.
"""
import socket

import numpy as np
from absl import logging

HOST = ('storage.googleapis.com', 443)
# Examples per batch when reading a split (Omniglot's 105 x 105 images are resized batch by
# batch instead of being held in memory all at once).
BATCH_SIZE = 1024


def online(host=HOST, timeout=3.0):
  """Whether a TCP connection to `host` ((name, port)) opens within `timeout` seconds."""
  try:
    socket.create_connection(host, timeout=timeout).close()
    return True
  except OSError:
    return False


def _read_split(split, transform):
  """Concatenates `transform(batch['image'])` over the batches of one tfds split."""
  return np.concatenate([transform(batch['image'])
                         for batch in split.batch(BATCH_SIZE).as_numpy_iterator()])


def load_images(name, transform=None):
  """Returns the 'train' and 'test' images of the tfds builder `name`, or None.

  Downloads and prepares the builder if needed (a no-op when already prepared).

  Args:
    name: tfds builder name, e.g. 'mnist', 'fashion_mnist', 'omniglot'.
    transform: function of a uint8 image batch (B, H, W, C) to an array (B, ...), applied
      batch by batch (e.g. Omniglot's resize to 28 x 28); default: none.

  Returns:
    (train, test): numpy arrays of the transformed images (uint8 (N, H, W, C) without
    `transform`) in tfds' order; None (logged) when the host is unreachable, tfds is not
    installed or tfds fails.
  """
  if not online():
    logging.info('tfds %r: %s:%d unreachable, skipping tfds.', name, *HOST)
    return None
  transform = transform or (lambda images: images)
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    splits = tfds.load(name, split=['train', 'test'], download=True)
    return tuple(_read_split(split, transform) for split in splits)
  except Exception as e:  # pylint: disable=broad-except
    logging.info('tfds %r failed: %s', name,
                 str(e).splitlines()[0] if str(e) else type(e).__name__)
    return None
