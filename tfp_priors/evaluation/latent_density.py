"""Densities of a low-dimensional latent space: the aggregate posterior and 2-D grids.

The aggregate posterior of a VAE is the mixture of its encoder's posteriors over N training
examples, q(z) = 1/N sum_n q(z|x_n) (LARS appendix D.8, Fig. D.10-D.13). Here q(z|x_n) is a
diagonal Normal N(loc_n, diag(scale_n^2)). KL divergences to a prior are estimated by Monte
Carlo on samples of q(z): KL(q || p) = E_q[log q(z) - log p(z)] in nats.
"""
import collections
import math

import numpy as np
import tensorflow as tf

Grid = collections.namedtuple("Grid", [
    "points",     # [n * n, 2] float32; row-major: points[i * n + j] = (axis[j], axis[i])
    "axis",       # [n] cell centres along each coordinate
    "cell_area",  # area of one cell, ((2 * limit) / n)^2
])


def grid_2d(limit, num_points):
  """Cell centres of a num_points x num_points grid over [-limit, limit]^2 (midpoint rule).

  `values.reshape(n, n)` of a function evaluated on `points` is an image whose row i is
  z_2 = axis[i] and column j is z_1 = axis[j]; sum(values) * cell_area approximates the
  integral over the square.

  Raises:
    ValueError: limit <= 0 or num_points < 2.
  """
  if not limit > 0 or int(num_points) < 2:
    raise ValueError(f"grid_2d needs limit > 0 and num_points >= 2, got {limit}, {num_points}.")
  n = int(num_points)
  width = 2.0 * float(limit) / n
  axis = (-float(limit) + width * (np.arange(n) + 0.5)).astype(np.float32)
  z1, z2 = np.meshgrid(axis, axis)
  points = np.stack([z1.ravel(), z2.ravel()], -1)
  return Grid(points, axis, width * width)


@tf.function
def _mixture_log_prob(z, loc, scale):
  """log (1/N) sum_n N(z; loc_n, diag scale_n^2): z [M, d], loc/scale [N, d] -> [M]."""
  standardized = (z[:, tf.newaxis, :] - loc) / scale           # [M, N, d]
  d = tf.cast(tf.shape(z)[-1], z.dtype)
  log_components = (-0.5 * tf.reduce_sum(standardized**2, -1)
                    - tf.reduce_sum(tf.math.log(scale), -1)
                    - 0.5 * d * math.log(2 * math.pi))         # [M, N]
  n = tf.cast(tf.shape(loc)[0], z.dtype)
  return tf.reduce_logsumexp(log_components, -1) - tf.math.log(n)


def aggregate_posterior_log_prob(loc, scale, z, chunk_size=512):
  """log q(z) of the aggregate posterior q(z) = 1/N sum_n N(z; loc_n, diag scale_n^2).

  Source: LARS (Bauer & Mnih 2019), appendix D.8 (Fig. D.10-D.13).

  Args:
    loc, scale: [N, d] means and standard deviations of q(z|x_n).
    z: [M, d] points.
    chunk_size: points per pass (memory is chunk_size * N * d floats).

  Returns:
    [M] float32 numpy array of log densities in nats.

  Raises:
    ValueError: mismatched shapes, N = 0, or a scale <= 0.
  """
  loc = tf.convert_to_tensor(loc, tf.float32)
  scale = tf.convert_to_tensor(scale, tf.float32)
  z = tf.convert_to_tensor(z, tf.float32)
  if (loc.shape.rank != 2 or loc.shape != scale.shape or z.shape.rank != 2
      or z.shape[-1] != loc.shape[-1] or loc.shape[0] == 0):
    raise ValueError(f"aggregate_posterior_log_prob needs loc, scale [N, d] (N > 0) and z "
                     f"[M, d]; got {loc.shape}, {scale.shape}, {z.shape}.")
  if not bool(tf.reduce_all(scale > 0)):
    raise ValueError("aggregate_posterior_log_prob: every scale must be > 0.")
  pieces = [_mixture_log_prob(z[i:i + chunk_size], loc, scale).numpy()
            for i in range(0, int(z.shape[0]), chunk_size)]
  return np.concatenate(pieces) if pieces else np.zeros([0], np.float32)


def sample_aggregate_posterior(loc, scale, num_samples, seed=0):
  """z ~ q(z): pick n uniformly, then z ~ N(loc_n, diag scale_n^2).

  Args:
    loc, scale: [N, d]. num_samples: M. seed: int.

  Returns:
    [M, d] float32 numpy array.
  """
  rng = np.random.default_rng(seed)
  loc, scale = np.asarray(loc, np.float32), np.asarray(scale, np.float32)
  index = rng.integers(0, len(loc), size=int(num_samples))
  noise = rng.standard_normal((int(num_samples), loc.shape[-1])).astype(np.float32)
  return loc[index] + scale[index] * noise


def kl_from_samples(log_q, log_p):
  """Monte Carlo KL(q || p) = mean(log q(z_m) - log p(z_m)) over z_m ~ q, in nats.

  Args:
    log_q, log_p: [M] log densities at the same samples of q.

  Returns:
    (estimate, standard error), floats in nats.

  Raises:
    ValueError: fewer than 2 samples.
  """
  diff = np.asarray(log_q, np.float64) - np.asarray(log_p, np.float64)
  if len(diff) < 2:
    raise ValueError(f"kl_from_samples needs at least 2 samples, got {len(diff)}.")
  return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))
