"""Matplotlib helpers shared by the figure scripts (`illustrate_2d`, `figures`, `plot_onehot`).

Every figure has a fixed size: a PNG written by `save` is exactly
round(width_inches * dpi) x round(height_inches * dpi) pixels (no tight bounding box).
"""
import os

import numpy as np

# Colour maps of the LARS figures (appendix D.1, D.8): target / aggregate posterior blue,
# proposal grey, a(z) red, resulting density p(z) green; darker is higher.
TARGET_CMAP, PROPOSAL_CMAP, ACCEPTANCE_CMAP, PRIOR_CMAP = "Blues", "Greys", "Reds", "Greens"


def pyplot():
  """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def density_panel(ax, values, limit, title, cmap):
  """Draws values [n, n] on a 2-D grid over [-limit, limit]^2 as an image.

  Row i of `values` is z_2 = i-th grid coordinate (bottom to top), column j is z_1
  (see `tfp_priors.evaluation.latent_density.grid_2d`).
  """
  ax.imshow(np.asarray(values), origin="lower", extent=(-limit, limit, -limit, limit),
            cmap=cmap, interpolation="nearest")
  ax.set_title(title, fontsize="small")
  ax.set_xticks([])
  ax.set_yticks([])


def save(fig, path, dpi):
  """Writes `fig` as a PNG of fig size * dpi pixels, closes it and returns `path`."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=dpi)
  pyplot().close(fig)
  return path
