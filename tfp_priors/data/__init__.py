"""Data sets for tfp_priors: MNIST, Fashion-MNIST, Omniglot, OneHot and Frey Faces loaders
and tf.data pipelines.

See `mnist.load_mnist` (grey LeCun MNIST), `static_mnist.load_static_mnist`
(Larochelle's binarized MNIST), `fashion_mnist.load_fashion_mnist`, `omniglot.load_omniglot`
(the small official Omniglot subset, not Burda's split), `onehot.load_onehot` and
`frey_faces.load_frey_faces` (Takahashi et al. 2019, Table 1), the registry of data sets
(`registry.DatasetSpec`) and `pipelines.make_datasets`. Common pieces: `files` (data
directories, search order, errors), `idx` (the IDX format of MNIST and Fashion-MNIST) and
`tfds_source` (the one tensorflow_datasets path).
"""

from tfp_priors.data.fashion_mnist import load_fashion_mnist
from tfp_priors.data.files import DatasetNotFoundError
from tfp_priors.data.frey_faces import load_frey_faces
from tfp_priors.data.idx import IDXFormatError
from tfp_priors.data.idx import read_idx
from tfp_priors.data.idx import write_idx
from tfp_priors.data.mnist import load_mnist
from tfp_priors.data.omniglot import load_omniglot
from tfp_priors.data.onehot import load_onehot
from tfp_priors.data.pipelines import DATASET_NAMES
from tfp_priors.data.pipelines import Datasets
from tfp_priors.data.pipelines import IMAGE_SHAPE
from tfp_priors.data.pipelines import make_datasets
from tfp_priors.data.registry import DatasetSpec
from tfp_priors.data.static_mnist import load_static_mnist
