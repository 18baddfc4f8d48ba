"""Figure (a): proposal samples of a LARS prior ranked by a(z) (LARS Fig. 3, D.5-D.7).

ranked_samples.png: decoded sample means with the highest a(z), random ones and those with
the lowest a(z); acceptance_values.png: the sorted a(z) on a log scale with a row of
representative samples labelled by a(z) (Fig. D.7).
"""
import collections

import numpy as np
import tensorflow as tf

from tfp_priors.evaluation import images as images_lib
from trainers import plotting
from trainers.figures import common

NUM_REPRESENTATIVE = 14  # samples in the bottom row of Fig. D.7

RankedSamples = collections.namedtuple("RankedSamples", [
    "z",               # [S, d] proposal samples, highest a(z) first
    "log_acceptance",  # [S] log a(z) in nats, non-increasing
])


def rank_proposal_samples(prior, num_samples=10000, seed=0, chunk_size=10000):
  """Draws S samples z ~ pi(z) from a LARS prior's proposal and sorts them by a(z), highest
  first (LARS Fig. 3, D.5-D.7: the paper uses S = 10^4).

  Args:
    prior: a prior with `has_acceptance_function` (LARS). num_samples: S >= 1. seed: int.
    chunk_size: samples per evaluation of a(z).

  Returns:
    `RankedSamples` of numpy arrays: z [S, d], log_acceptance [S] (nats, non-increasing).

  Raises:
    FigureError: the prior has no acceptance function, or S < 1.
  """
  if not prior.has_acceptance_function:
    raise common.FigureError(f"ranking proposal samples needs a LARS prior with an acceptance "
                             f"function a(z), got {type(prior).__name__}.")
  if num_samples < 1:
    raise common.FigureError(f"--num_samples must be >= 1, got {num_samples}.")
  z = prior.proposal.distribution().sample(num_samples, seed=[seed, 0]).numpy()
  log_a = np.concatenate([prior.log_acceptance(z[i:i + chunk_size]).numpy()
                          for i in range(0, num_samples, chunk_size)])
  order = np.argsort(-log_a, kind="stable")
  return RankedSamples(z[order], log_a[order])


def select_ranked(ranked, num_shown, seed=0):
  """Indices into `ranked` of the `num_shown` highest a(z), `num_shown` random samples (the
  proposal itself, drawn without replacement) and the `num_shown` lowest a(z) (lowest first),
  and of NUM_REPRESENTATIVE samples evenly spaced in rank from lowest to highest (Fig. D.7).

  Returns:
    dict 'highest', 'random', 'lowest', 'representative' -> int arrays.
  """
  size = len(ranked.log_acceptance)
  k = min(int(num_shown), size)
  rng = np.random.default_rng(seed)
  return {
      "highest": np.arange(k),
      "random": rng.choice(size, k, replace=False),
      "lowest": np.arange(size - 1, size - 1 - k, -1),
      "representative": np.unique(np.round(
          np.linspace(size - 1, 0, min(NUM_REPRESENTATIVE, size))).astype(int))[::-1],
  }


def _decode(run, z, seed):
  """Decoded sample means [N, H, W, C] in [0, 1] of latents z [N, d]."""
  x = run.prior.decode(run.model, tf.constant(z, tf.float32), seed=[seed, 1])
  return tf.reshape(x, [-1] + list(run.data.image_shape)).numpy()


def _show_image(ax, image, title, fontsize):
  """Draws one image [H, W, C] in [0, 1] (grey when C = 1) without axes."""
  ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0, vmax=1.0,
            interpolation="nearest")
  ax.set_title(title, fontsize=fontsize)
  ax.axis("off")


def _samples_figure(run, ranked, selection, a, heading, seed):
  """ranked_samples.png: grids of the highest, random and lowest a(z) (LARS Fig. 3, D.5, D.6).
  a: [S] acceptance values of `ranked`, float64."""
  fig, axes = plotting.pyplot().subplots(1, 3, figsize=common.SIZES["ranked_samples"])
  for ax, name, label in zip(axes, ("highest", "random", "lowest"),
                             ("highest a(z)", "random samples from π(z)", "lowest a(z)")):
    index = selection[name]
    grid = images_lib.image_grid(tf.constant(_decode(run, ranked.z[index], seed))).numpy()
    _show_image(ax, grid, f"{label}\na(z) in [{a[index].min():.2e}, {a[index].max():.2e}]",
                "small")
  fig.suptitle(heading, fontsize="medium")
  fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.82, wspace=0.05)
  return fig


def _acceptance_figure(run, ranked, selection, a, heading, seed):
  """acceptance_values.png: the sorted a(z) on a log scale over a row of representative
  samples labelled by a(z) (LARS Fig. D.7). a: [S] acceptance values of `ranked`, float64."""
  fig = plotting.pyplot().figure(figsize=common.SIZES["acceptance_values"])
  grid = fig.add_gridspec(2, NUM_REPRESENTATIVE, height_ratios=(2.2, 1.0))
  top = fig.add_subplot(grid[0, :])
  top.semilogy(np.arange(len(a)), a[::-1])
  top.axhline(a.mean(), color="tab:red", linestyle="--", linewidth=1,
              label=f"mean a(z) = {a.mean():.3g} (Monte Carlo Z)")
  top.set_xlabel("index of sample (sorted by a(z))")
  top.set_ylabel("a(z)")
  top.legend(loc="lower right", fontsize="small")
  top.set_title(heading, fontsize="medium")
  index = selection["representative"]
  images = _decode(run, ranked.z[index], seed)
  for column, (image, value) in enumerate(zip(images, a[index])):
    _show_image(fig.add_subplot(grid[1, column]), image, f"{value:.2e}", 7)
  fig.subplots_adjust(left=0.07, right=0.98, bottom=0.03, top=0.93, hspace=0.45)
  return fig


def ranked_figures(run, ranked, selection, normalizer, seed=0):
  """Matplotlib figures {'ranked_samples', 'acceptance_values'} of (a).

  Args:
    run: a `Run` with a LARS prior. ranked: `RankedSamples`. selection: `select_ranked`'s
    indices. normalizer: Z, shown in the titles. seed: int, of the decoder's samples.
  """
  a = np.exp(ranked.log_acceptance.astype(np.float64))
  heading = (f"{len(a)} samples of the proposal π(z) ranked by a(z); Z = {normalizer:.3g}, "
             f"step {run.step}")
  return {"ranked_samples": _samples_figure(run, ranked, selection, a, heading, seed),
          "acceptance_values": _acceptance_figure(run, ranked, selection, a, heading, seed)}


def draw(run, num_samples, num_shown, normalizer_samples, seed):
  """Figure (a) of a run with a LARS prior.

  Args:
    num_samples: S proposal samples ranked. num_shown: samples per group.
    normalizer_samples: samples for Z when the checkpoint has no estimate. seed: int.

  Returns:
    ({name: matplotlib figure}, {figures.json name: number}): Z, S, the mean and maximum
    a(z) and the lowest log a(z) (nats).
  """
  normalizer = common.ensure_log_normalizer(run.prior, normalizer_samples, seed)
  ranked = rank_proposal_samples(run.prior, num_samples, seed)
  drawn = ranked_figures(run, ranked, select_ranked(ranked, num_shown, seed), normalizer, seed)
  numbers = dict(normalizer=normalizer, num_samples=num_samples,
                 mean_acceptance=float(np.exp(ranked.log_acceptance.astype(np.float64)).mean()),
                 max_acceptance=float(np.exp(ranked.log_acceptance[0])),
                 min_log_acceptance=float(ranked.log_acceptance[-1]))
  return drawn, numbers
