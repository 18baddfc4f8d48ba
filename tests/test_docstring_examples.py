"""The `#### Examples` of the public classes' docstrings run as written.

Every class listed in `DOCUMENTED` (the registered priors and their bases, the models, the
distributions, the bijectors, early stopping and the training strategies; `invertible_dense`
is a function but documented the same way) must have a TensorFlow Probability style docstring:
a one-line summary, then `#### Mathematical details`, `#### Examples` with at least one
```python block, and `#### References` sections. Each example block is exec()'d in a fresh
namespace in which `tf` (tensorflow), `np` (numpy), `tfp` (tensorflow_probability) and `tfd`
(`tfp.distributions`) are already imported, as a reader of the docstring would have them;
everything else an example uses it imports itself. Each example ends with an assert, so a
block that runs also checks what it shows.
"""
import ast
import inspect
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import bijectors
from tfp_priors import distributions
from tfp_priors import models
from tfp_priors import priors
from tfp_priors.priors import mixture
from tfp_priors.training import early_stopping
from tfp_priors.training import strategies

DOCUMENTED = {
    # The registered priors and their bases.
    "Prior": priors.Prior,
    "FlowPrior": priors.FlowPrior,
    "DensityRatioPrior": priors.DensityRatioPrior,
    "StandardNormalPrior": priors.StandardNormalPrior,
    "LarsPrior": priors.LarsPrior,
    "RealNVPPrior": priors.RealNVPPrior,
    "XuRealNVPPrior": priors.XuRealNVPPrior,
    "MAFPrior": priors.MAFPrior,
    "NCPPrior": priors.NCPPrior,
    "ImplicitPrior": priors.ImplicitPrior,
    "HierarchicalNCPPrior": priors.HierarchicalNCPPrior,
    "MixtureOfGaussiansPrior": priors.MixtureOfGaussiansPrior,
    "VampPrior": priors.VampPrior,
    # The models.
    "LatentVariableModel": models.LatentVariableModel,
    "VAE": models.VAE,
    "DenseVAE": models.DenseVAE,
    "GatedVAE": models.GatedVAE,
    "HVAE": models.HVAE,
    "ConvHVAE": models.ConvHVAE,
    "ConvVAE": models.ConvVAE,
    "ResnetVAE": models.ResnetVAE,
    "ResampledOutputs": models.ResampledOutputs,
    # The distributions (DiagonalGaussianMixture lives with the mixture priors).
    "Resampled": distributions.Resampled,
    "Reweighted": distributions.Reweighted,
    "DiagonalGaussianMixture": mixture.DiagonalGaussianMixture,
    # The bijectors.
    "ActNorm": bijectors.ActNorm,
    "invertible_dense": bijectors.invertible_dense,
    # Training.
    "EarlyStopping": early_stopping.EarlyStopping,
    "Joint": strategies.Joint,
    "PostHoc": strategies.PostHoc,
    "NoiseContrastive": strategies.NoiseContrastive,
    "Alternating": strategies.Alternating,
    "Iterative": strategies.Iterative,
}

_SECTION = re.compile(r"^#### (.+?)\s*$", re.MULTILINE)
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def sections(obj):
  """{heading: text} of the `#### heading` sections of obj's docstring (cleandoc'ed)."""
  doc = inspect.cleandoc(obj.__doc__ or "")
  headings = list(_SECTION.finditer(doc))
  return {m.group(1): doc[m.end():headings[i + 1].start() if i + 1 < len(headings) else None]
          for i, m in enumerate(headings)}


def examples(obj):
  """The source of each ```python block under obj's `#### Examples`."""
  return _PYTHON_BLOCK.findall(sections(obj).get("Examples", ""))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_docstring_has_the_tfp_sections(name):
  obj = DOCUMENTED[name]
  found = sections(obj)
  for heading in ("Mathematical details", "Examples", "References"):
    assert heading in found, f"{name}'s docstring has no '#### {heading}' section"
  assert examples(obj), f"{name}'s '#### Examples' has no ```python block"
  summary = inspect.cleandoc(obj.__doc__).splitlines()[0]
  assert summary.strip(), f"{name}'s docstring has no one-line summary"


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_docstring_examples_run(name):
  blocks = examples(DOCUMENTED[name])
  assert blocks, f"{name} has no example"
  for i, source in enumerate(blocks):
    assert isinstance(ast.parse(source).body[-1], ast.Assert), (
        f"example {i} of {name} does not end with an assert")
    namespace = {"tf": tf, "np": np, "tfp": tfp, "tfd": tfp.distributions,
                 "__name__": f"docstring_example_{name}_{i}"}
    exec(compile(source, f"<{name} example {i}>", "exec"), namespace)  # pylint: disable=exec-used
