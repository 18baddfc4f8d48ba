"""The registry of data sets: one `DatasetSpec` per `make_datasets.name`.

Built-in data sets, in registration order (`names()`):
  * 'dynamic_mnist': LeCun MNIST, 50k/10k/10k, binarized dynamically (`mnist.load_mnist`).
  * 'static_mnist': Larochelle's fixed binarization, 50k/10k/10k, as given
    (`static_mnist.load_static_mnist`).
  * 'onehot': the four 4-dim one-hot vectors of Mescheder et al. (2017), 1,000 / 100 / 1,000
    (Takahashi et al. 2019, Table 1), binary as given, image shape (1, 4, 1)
    (`onehot.load_onehot`).
  * 'frey_faces': Frey Faces, 1,565 / 200 / 200 with a fixed-seed split (Takahashi et al.
    2019, Table 1), continuous grey values / 255 in [0, 1], never binarized; image shape
    (28, 20, 1) (`frey_faces.load_frey_faces`).
  * 'fashion_mnist': Zalando's Fashion-MNIST, 50k/10k/10k, binarized dynamically
    (`fashion_mnist.load_fashion_mnist`).
  * 'omniglot': Omniglot resized to 28 x 28, binarized dynamically; by default the small
    official subset, 4,000 / 840 / 800, NOT Burda's 24,345 / 8,070 split
    (`omniglot.load_omniglot`).
"""
import dataclasses
import math
from typing import Callable, Dict, Tuple

import numpy as np

from tfp_priors.data import fashion_mnist
from tfp_priors.data import frey_faces
from tfp_priors.data import mnist
from tfp_priors.data import omniglot
from tfp_priors.data import onehot
from tfp_priors.data import static_mnist

# 'dynamic': grey values in [0, 1], training bits redrawn every epoch, valid and test binarized
# once with fixed seeds; 'static': binary data used as given; 'none': continuous values, never
# binarized.
BINARIZATIONS = ('dynamic', 'static', 'none')
MNIST_IMAGE_SHAPE = (28, 28, 1)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What `make_datasets` needs to know about one data set.

  Attributes:
    name: the data set's `make_datasets.name`.
    loader: function (data_dir, allow_download) -> dict with 'train', 'valid', 'test' float32
      (N, event_size) arrays: grey values in [0, 1] (the Bernoulli means) for 'dynamic'
      binarization, the final values otherwise. `data_dir` may be None (the loader's default
      search); loaders that never download ignore `allow_download`. Raises
      `DatasetNotFoundError` when the data are missing.
    image_shape: (height, width, channels) of one example.
    binarization: one of BINARIZATIONS.
    has_labels: whether class labels exist that pair row by row with the loader's arrays (IDX
      label files next to the image files; `mnist.load_mnist_labels` reads MNIST's).
    source: where the data come from, one line.
  """
  name: str
  loader: Callable[..., Dict[str, np.ndarray]]
  image_shape: Tuple[int, int, int]
  binarization: str
  has_labels: bool
  source: str

  def __post_init__(self):
    if self.binarization not in BINARIZATIONS:
      raise ValueError(f'{self.name}: binarization must be one of {BINARIZATIONS}, got '
                       f'{self.binarization!r}.')

  @property
  def event_size(self):
    """Values per example, the product of `image_shape` (784 for 28 x 28 images)."""
    return math.prod(self.image_shape)


_REGISTRY = {}


def register(spec):
  """Adds `spec` to the registry and returns it.

  Raises:
    ValueError: a data set of that name is already registered.
  """
  if spec.name in _REGISTRY:
    raise ValueError(f'data set {spec.name!r} is already registered.')
  _REGISTRY[spec.name] = spec
  return spec


def names():
  """The registered data set names, in registration order."""
  return tuple(_REGISTRY)


def get_spec(name):
  """Returns the `DatasetSpec` registered as `name`.

  Raises:
    ValueError: no data set of that name; the message lists the registered names.
  """
  if name not in _REGISTRY:
    raise ValueError(f'Unknown data set {name!r}; valid names: {", ".join(names())} '
                     '(gin: make_datasets.name).')
  return _REGISTRY[name]


# The loaders are looked up in their modules when called (lambdas), so tests can replace them.
register(DatasetSpec(
    'dynamic_mnist', lambda data_dir, download: mnist.load_mnist(data_dir, download),
    MNIST_IMAGE_SHAPE, 'dynamic', has_labels=True, source=mnist.SOURCE))
register(DatasetSpec(
    'static_mnist', lambda data_dir, _: static_mnist.load_static_mnist(data_dir),
    MNIST_IMAGE_SHAPE, 'static', has_labels=False, source=static_mnist.SOURCE))
register(DatasetSpec(
    'onehot', lambda data_dir, _: onehot.load_onehot(),
    onehot.IMAGE_SHAPE, 'static', has_labels=False, source=onehot.SOURCE))
register(DatasetSpec(
    'frey_faces', lambda data_dir, _: frey_faces.load_frey_faces(data_dir),
    frey_faces.IMAGE_SHAPE, 'none', has_labels=False, source=frey_faces.SOURCE))
register(DatasetSpec(
    'fashion_mnist',
    lambda data_dir, download: fashion_mnist.load_fashion_mnist(data_dir, download),
    MNIST_IMAGE_SHAPE, 'dynamic', has_labels=True, source=fashion_mnist.SOURCE))
register(DatasetSpec(
    'omniglot',
    lambda data_dir, download: omniglot.load_omniglot(data_dir, allow_download=download),
    omniglot.IMAGE_SHAPE, 'dynamic', has_labels=False, source=omniglot.SOURCE))
