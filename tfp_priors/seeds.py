"""Seed helpers, all in one place.

Two kinds of seed appear in the library:
- stateless seeds, int32 [2] tensors for TF's stateless random ops and TFP's `seed=`
  arguments (samplers, estimators, model forward passes): `stateless_seed` makes one from an
  int, a [2] seed or None, and `split_seed` splits one into independent streams;
- integer seeds of a module's initial weights (flow priors: rotations, permutations and
  coupling kernels): `derive_seed` gives each sub-component its own int, reproducibly.
"""
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


def split_seed(seed, n=2):
  """n independent stateless seeds from one (`tfp.random.split_seed`), or n Nones when seed
  is None (each consumer then draws its own random seed)."""
  return (None,) * n if seed is None else tfp.random.split_seed(seed, n)


def derive_seed(seed, *keys):
  """A deterministic int seed for the sub-component `keys` of a module seeded with `seed`
  (`np.random.SeedSequence([seed, *keys])`: distinct keys give unrelated seeds, except that
  trailing zero keys add nothing, e.g. (seed, 1, 0) gives the seed of (seed, 1))."""
  return int(np.random.SeedSequence([int(seed), *[int(k) for k in keys]]).generate_state(1)[0])
