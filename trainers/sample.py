r"""Writes a PNG grid of samples drawn from an exported SavedModel.

  python -m trainers.sample --export_dir=runs/x/export --output=samples.png --num_samples=64

Uses only TensorFlow: the export carries its own sampling graph (exact LARS sampling).
"""
import sys

from absl import app
from absl import flags
import tensorflow as tf

from tfp_priors.evaluation.images import image_grid

flags.DEFINE_string("export_dir", None, "SavedModel directory written by a training run.")
flags.DEFINE_string("output", "samples.png", "PNG file to write.")
flags.DEFINE_integer("num_samples", 64, "Number of samples (> 0).")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_bool("means", True, "Show Bernoulli means (True) or binary draws (False).")
FLAGS = flags.FLAGS


def sample_grid(export_dir, num_samples, seed, means=True):
  """Returns a uint8 [rows*H, cols*W, C] grid of samples from the export."""
  loaded = tf.saved_model.load(export_dir)
  images = loaded.signatures["sample"](num_samples=tf.constant(num_samples, tf.int32),
                                       seed=tf.constant(seed, tf.int32))["images"]
  if not means:
    images = tf.cast(tf.random.stateless_uniform(tf.shape(images), [seed, 1]) < images,
                     tf.float32)
  return tf.cast(tf.round(image_grid(images) * 255), tf.uint8)


def main(argv):
  del argv
  if not FLAGS.export_dir:
    raise app.UsageError("--export_dir is required.")
  if FLAGS.num_samples < 1:
    raise app.UsageError(f"--num_samples must be positive, got {FLAGS.num_samples}.")
  try:
    grid = sample_grid(FLAGS.export_dir, FLAGS.num_samples, FLAGS.seed, FLAGS.means)
  except OSError as e:
    print(f"error: cannot load a SavedModel from {FLAGS.export_dir}: {e}", file=sys.stderr)
    sys.exit(1)
  tf.io.write_file(FLAGS.output, tf.io.encode_png(grid))
  print(f"wrote {FLAGS.num_samples} samples to {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
