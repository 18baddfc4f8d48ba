r"""Load a run's export and score images: log p(x), the latent code, a reconstruction.

  python examples/score_images.py --export_dir=runs/lars_hvae/export

Only TensorFlow is needed to load the export; the test images come from the library's data
loader here, but any [N, 784] float32 images in [0, 1] will do.
"""
import sys

import numpy as np
import tensorflow as tf

from tfp_priors.data import pipelines


def score(export_dir, num_images=100, importance_samples=1000, print_fn=print):
  """Returns the export's IWAE log p(x) [num_images] of the first test images (nats)."""
  exported = tf.saved_model.load(export_dir)
  images = np.concatenate([x.numpy() for x in pipelines.make_datasets().test])[:num_images]
  log_px = exported.signatures["log_likelihood"](
      x=tf.constant(images), num_importance_samples=tf.constant(importance_samples),
      seed=tf.constant(0))["log_likelihood"].numpy()
  code = exported.signatures["encode"](x=tf.constant(images[:8]))
  reconstruction = exported.signatures["decode"](z=code["mean"], seed=tf.constant(0))["images"]
  print_fn(f"mean log p(x) of {num_images} test images: {log_px.mean():.2f} nats "
           f"(K = {importance_samples}); latent means {code['mean'].shape}, "
           f"reconstructions {reconstruction.shape}")
  return log_px


if __name__ == "__main__":
  args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
  score(args["export_dir"])
