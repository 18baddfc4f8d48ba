"""Training examples of a run and their posteriors q(z|x_n), for figures (b) and (c)."""
import numpy as np
import tensorflow as tf

from tfp_priors.data import mnist


def training_examples(run, num_examples, seed=0):
  """The first `num_examples` training examples in file order and their class labels.

  Dynamic MNIST: LeCun's training images binarized once with numpy seed `seed`, labels from
  the IDX label files (None if those are not beside the image files); OneHot: label = index
  of the 1; static MNIST and Frey Faces: no labels; any other data set: examples from the
  run's training stream, no labels.

  Returns:
    (x [N, D] float32 numpy, labels [N] int numpy or None).
  """
  load = _LOADERS.get(run.dataset, _stream_examples)
  x, labels = load(run, int(num_examples), seed)
  if labels is not None and len(labels) != len(x):
    labels = None
  return np.asarray(x, np.float32), labels


def _dynamic_mnist(run, n, seed):
  from tfp_priors.data import pipelines  # pylint: disable=g-import-not-at-top
  x = pipelines.binarize_numpy(mnist.load_mnist(run.data_dir, run.allow_download)["train"][:n],
                               seed)
  return x, _mnist_labels(run.data_dir, n)


def _mnist_labels(data_dir, n):
  """The first n MNIST training labels, if the IDX label files are beside the images."""
  directory = mnist.resolve_data_dir(data_dir)
  if mnist.find_mnist_file(directory, mnist.TRAIN_IMAGES) is None:
    return None
  try:
    return mnist.load_mnist_labels(directory)["train"][:n]
  except mnist.DatasetNotFoundError:
    return None


def _onehot(run, n, seed):
  del run, seed
  from tfp_priors.data import onehot  # pylint: disable=g-import-not-at-top
  x = onehot.load_onehot()["train"][:n]
  return x, np.argmax(x, -1)


def _static_mnist(run, n, seed):
  del seed
  from tfp_priors.data import static_mnist  # pylint: disable=g-import-not-at-top
  return static_mnist.load_static_mnist(run.data_dir)["train"][:n], None


def _frey_faces(run, n, seed):
  del seed
  from tfp_priors.data import frey_faces  # pylint: disable=g-import-not-at-top
  return frey_faces.load_frey_faces(run.data_dir)["train"][:n], None


def _stream_examples(run, n, seed):
  """The first n examples of the run's training stream (batches in stream order)."""
  del seed
  batches, count = [], 0
  for batch in run.data.train:
    batches.append(batch.numpy())
    count += len(batches[-1])
    if count >= n:
      break
  return np.concatenate(batches)[:n], None


# data set name -> fn(run, n, seed) -> (x [n, D], labels [n] or None).
_LOADERS = {"dynamic_mnist": _dynamic_mnist, "onehot": _onehot,
            "static_mnist": _static_mnist, "frey_faces": _frey_faces}


def encode(model, x, batch_size=500):
  """loc, scale [N, d] numpy of q(z_top|x_n) (diagonal Normal) for x [N, D], in batches."""
  locs, scales = [], []
  for i in range(0, len(x), batch_size):
    posterior = model.encode_top(tf.constant(x[i:i + batch_size]))
    locs.append(posterior.mean().numpy())
    scales.append(posterior.stddev().numpy())
  return np.concatenate(locs), np.concatenate(scales)
