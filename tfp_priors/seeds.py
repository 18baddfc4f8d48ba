"""Stateless seeds for the samplers and estimators."""
import numpy as np
import tensorflow_probability as tfp


def stateless_seed(seed):
  """A stateless seed (int32 [2] tensor) from a [2] seed, a Python/numpy int, or None.

  Unlike `tfp.random.sanitize_seed`, which treats an int as a *stateful* seed (a different
  draw on every call), an int here maps to the fixed pair [seed // 2^31 mod 2^31, seed mod 2^31],
  so the same int always gives the same samples. None draws a random seed.
  """
  if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
    seed = [int(seed) // 2**31 % 2**31, int(seed) % 2**31]
  return tfp.random.sanitize_seed(seed)
