"""Image grids of samples for TensorBoard and PNG files."""
import math

import tensorflow as tf


def image_grid(images):
  """[N, H, W, C] floats -> [rows*H, cols*W, C], a near-square grid (blank-padded)."""
  n, h, w, c = images.shape
  cols = int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / cols))
  images = tf.concat([images, tf.zeros([rows * cols - n, h, w, c], images.dtype)], 0)
  grid = tf.transpose(tf.reshape(images, [rows, cols, h, w, c]), [0, 2, 1, 3, 4])
  return tf.reshape(grid, [rows * h, cols * w, c])
