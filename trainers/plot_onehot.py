r"""Scatter plot of q(z|x) on OneHot, as Takahashi et al. (2019), Figure 1.

  python -m trainers.plot_onehot --workdir=runs/takahashi_onehot_standard \
      [--output=runs/takahashi_onehot_standard/onehot_posterior.png] [--num_samples=500]

Rebuilds the model from the run's saved workdir/config.gin, restores its weights from the
latest checkpoint in workdir/checkpoints, draws `num_samples` samples z ~ q(z|x) for each of
the four one-hot test vectors (1,0,0,0), ..., (0,0,0,1) and writes a PNG scatter plot of the
2-D latent space, one colour per input. The title names the run's prior and, when
workdir/metrics.json exists, its test ELBO (nats).
"""
import functools
import json
import os
import sys

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from trainers import plotting
from trainers import trained_run

FLAGS = flags.FLAGS


def define_flags():
  """Defines the CLI flags; only when run as a script, so that importing this module next to
  trainers.run or trainers.sample (which define --workdir, --output, ...) does not clash."""
  flags.DEFINE_string("workdir", None, "Run directory of a trained OneHot model.")
  flags.DEFINE_string("output", None, "PNG to write (default: <workdir>/onehot_posterior.png).")
  flags.DEFINE_integer("num_samples", 500, "Samples of q(z|x) per one-hot vector (> 0).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_float("size_inches", 5.0, "Width and height of the figure in inches.")
  flags.DEFINE_integer("dpi", 100, "Dots per inch: the PNG is size_inches * dpi pixels square.")

NUM_CATEGORIES = 4
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


class PlotError(ValueError):
  """The workdir cannot be plotted: missing files, or not a 2-D OneHot model."""


# A checkpoint that does not match the config (keys: see `trained_run.MISMATCH`).
MISMATCH = "the model in {checkpoint} does not match {config}: {reason}"


def load_model(workdir):
  """Rebuilds the model of `workdir` from its config.gin and restores its trained weights
  (`trained_run.load_run`, without the prior).

  Returns:
    (model, prior_name).

  Raises:
    PlotError: no workdir, config.gin or checkpoint; latent size not 2; input size not 4; or
      a checkpoint that does not match the config.
  """
  run = trained_run.load_run(workdir, PlotError, "takahashi_onehot_standard.gin",
                             check=functools.partial(_check_onehot_model, workdir),
                             with_prior=False, mismatch=MISMATCH)
  return run.model, run.prior_name


def _check_onehot_model(workdir, model, data):
  """Raises PlotError unless `model` has a 2-D latent space and OneHot's input size 4."""
  if model.latent_size != 2:
    raise PlotError(f"the model of {workdir} has a latent space of {model.latent_size} "
                    f"dimensions; the OneHot scatter plot needs 2 (Takahashi 5.2: d = 2 for "
                    f"OneHot, e.g. configs/takahashi_onehot.gin).")
  if model.input_size != NUM_CATEGORIES:
    raise PlotError(f"the model of {workdir} takes inputs of size {model.input_size}, not the "
                    f"{NUM_CATEGORIES} of OneHot (make_datasets.name = "
                    f"{data.name!r} in its config).")


def posterior_samples(model, num_samples, seed=0):
  """z ~ q(z|e_k) for the four one-hot vectors e_k: returns [4, num_samples, 2] numpy."""
  x = tf.eye(NUM_CATEGORIES, dtype=tf.float32)
  z = model.encode_top(x).sample(num_samples, seed=tf.constant([seed, 0], tf.int32))
  return np.transpose(z.numpy(), [1, 0, 2])


def plot(samples, output, title, size_inches=5.0, dpi=100):
  """Writes a scatter PNG of samples [4, N, 2], coloured by input; size_inches * dpi pixels."""
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=(size_inches, size_inches), dpi=dpi)
  for k in range(NUM_CATEGORIES):
    label = "x = (" + ", ".join("1" if i == k else "0" for i in range(NUM_CATEGORIES)) + ")"
    ax.scatter(samples[k, :, 0], samples[k, :, 1], s=4, alpha=0.5, color=COLORS[k],
               label=label, edgecolors="none")
  ax.set_xlabel("$z_1$")
  ax.set_ylabel("$z_2$")
  ax.set_aspect("equal", adjustable="datalim")
  ax.legend(loc="upper right", fontsize="small", markerscale=3)
  ax.set_title(title, fontsize="medium")
  fig.tight_layout()
  return plotting.save(fig, output, dpi)


def plot_workdir(workdir, output=None, num_samples=500, seed=0, size_inches=5.0, dpi=100):
  """Plots q(z|x) of the OneHot run in `workdir`; returns the PNG path.

  Raises:
    PlotError: see `load_model`; num_samples < 1.
  """
  if num_samples < 1:
    raise PlotError(f"--num_samples must be positive, got {num_samples}.")
  model, prior_name = load_model(workdir)
  title = f"q(z|x) on OneHot, prior: {prior_name}"
  metrics_path = os.path.join(workdir, "metrics.json")
  if os.path.isfile(metrics_path):
    with open(metrics_path) as f:
      metrics = json.load(f)
    prior_name = metrics.get("prior", prior_name)
    title = f"q(z|x) on OneHot, prior: {prior_name}"
    if "elbo" in metrics:
      title += f"\ntest ELBO {metrics['elbo']:.3f} nats (optimum -ln 4 = -1.386)"
  output = output or os.path.join(workdir, "onehot_posterior.png")
  return plot(posterior_samples(model, num_samples, seed), output, title, size_inches, dpi)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required (the run directory of a OneHot model).")
  try:
    path = plot_workdir(FLAGS.workdir, FLAGS.output, FLAGS.num_samples, FLAGS.seed,
                        FLAGS.size_inches, FLAGS.dpi)
  except PlotError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  print(f"wrote {path}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
