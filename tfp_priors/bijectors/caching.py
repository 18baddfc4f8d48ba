"""Dropping TFP's cached bijector results after the bijector's variables change.

TFP caches forward/inverse results keyed on the identity of the input tensor (and the bijector's
parameterization), not on the values of its variables (`tfp.internal.cache_util`): in eager
mode, `bijector.forward(x)` for a tensor x seen before a variable update (a training step, a
checkpoint restore, a data-dependent initialisation) can return the result computed with the old
values, as long as that earlier result is still referenced.
"""
import tensorflow_probability as tfp

tfb = tfp.bijectors


def tree(bijector):
  """The bijector and, recursively, the components of its Chains and Inverts: a list."""
  found = [bijector]
  for part in getattr(bijector, "bijectors", ()):  # tfb.Chain and other compositions
    found += tree(part)
  if getattr(bijector, "bijector", None) is not None:  # tfb.Invert
    found += tree(bijector.bijector)
  return found


def clear_caches(bijectors):
  """Drops TFP's cached forward/inverse results computed by these bijector instances.

  One pass over TFP's cache storage, matching bijectors by identity (`Bijector._cache.clear()`
  compares every entry with `Bijector.__eq__`: quadratic, and slow once traced graphs hold
  thousands of entries). Relies on TFP 0.25 internals (`cache_util.BijectorCache.storage`);
  tests/test_flows.py checks the behaviour it guarantees.

  Args:
    bijectors: iterable of `tfb.Bijector` instances (components are not visited: see `tree`).
  """
  storage = getattr(getattr(tfb.Bijector, "_cache", None), "storage", None)
  if storage is None:  # A TFP version without this cache: nothing to clear.
    return
  ids = {id(b) for b in bijectors}
  for key in list(storage.keys()):
    if id(key.subkey[0]) in ids:
      key.cancel()
      storage.pop(key, None)
