"""The command line of `trainers.figures`: which figures apply to a run, drawing them and
writing the PNGs, TensorBoard images and figures.json (see the package docstring)."""
import json
import os
import sys

from absl import app
from absl import flags
import tensorflow as tf

from trainers import plotting
from trainers.figures import common
from trainers.figures import density
from trainers.figures import embedding
from trainers.figures import examples
from trainers.figures import ranked

FLAGS = flags.FLAGS


def define_flags():
  """CLI flags, defined only when run as a script (no clash with other trainers modules)."""
  flags.DEFINE_string("workdir", None, "Run directory of a trained model (trainers.run).")
  flags.DEFINE_string("output_dir", None, "Directory for the PNGs (default workdir/figures).")
  flags.DEFINE_string("logdir", None, "TensorBoard directory (default workdir/figures).")
  flags.DEFINE_list("figures", [], f"Subset of {list(common.FIGURES)}; default: all that apply.")
  flags.DEFINE_integer("num_samples", 10000, "(a) proposal samples to rank (the paper: 10^4).")
  flags.DEFINE_integer("num_shown", 25, "(a) samples per group (highest / random / lowest).")
  flags.DEFINE_integer("num_examples", 10000, "(b, c) training examples of q(z).")
  flags.DEFINE_integer("kl_samples", 10000, "(b) samples of q(z) for the KL estimates.")
  flags.DEFINE_integer("grid_points", 200, "(b) grid points per axis.")
  flags.DEFINE_float("grid_limit", 0.0, "(b) grid over [-limit, limit]^2; 0: from q(z).")
  flags.DEFINE_integer("normalizer_samples", 10**6,
                       "Proposal samples for LARS's Z if the checkpoint holds no estimate.")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_integer("dpi", 100, "Dots per inch of the PNGs.")


def _refusals(run):
  """{figure name: why it does not apply to the run} for the figures that do not."""
  reasons = {}
  if not run.prior.has_acceptance_function:
    reasons["ranked"] = (
        f"figure (a) 'ranked' (LARS Fig. 3, D.5-D.7) needs a LARS prior (build_prior.name = "
        f"'lars'), whose acceptance function a(z) ranks proposal samples; the prior of "
        f"{run.workdir} is {run.prior_name!r} ({type(run.prior).__name__}), which has none.")
  if run.model.latent_size != 2:
    for name, source in (("density", "Fig. D.10-D.13"), ("embedding", "Fig. D.14")):
      reasons[name] = (
          f"figure '{name}' (LARS {source}) needs a 2-D latent space; the model of "
          f"{run.workdir} has latent size {run.model.latent_size} (train with e.g. "
          f"--gin_bindings='VAE.latent_size = 2').")
  return reasons


def check_figures(run, figures):
  """The figures to draw: `figures` if each applies to the run, else raise; all that apply
  when `figures` is empty.

  Raises:
    FigureError: an unknown name; 'ranked' without a LARS prior; 'density' or 'embedding' on
      a latent space that is not 2-D; nothing applies (with `figures` empty).
  """
  unknown = [f for f in figures if f not in common.FIGURES]
  if unknown:
    raise common.FigureError(f"unknown figure(s) {unknown}; choose from {list(common.FIGURES)}.")
  reasons = _refusals(run)
  if figures:
    for name in figures:
      if name in reasons:
        raise common.FigureError(reasons[name])
    return list(dict.fromkeys(figures))
  applicable = [f for f in common.FIGURES if f not in reasons]
  if not applicable:
    raise common.FigureError("no figure applies to this run: " + " ".join(reasons.values()))
  return applicable


# The least value of each count option of `write_figures`.
MINIMUM = {"num_samples": 1, "num_shown": 1, "num_examples": 1, "kl_samples": 2,
           "grid_points": 2, "dpi": 1}


def _check_options(grid_limit, **counts):
  """Raises FigureError for a count below its MINIMUM (checked in the order given) or a
  grid_limit < 0 (None: automatic)."""
  for flag, value in counts.items():
    if value < MINIMUM[flag]:
      raise common.FigureError(f"--{flag} must be >= {MINIMUM[flag]}, got {value}.")
  if grid_limit is not None and not grid_limit >= 0:
    raise common.FigureError(
        f"--grid_limit must be > 0 (or 0 for automatic), got {grid_limit}.")


def _draw(run, chosen, num_samples, num_shown, num_examples, kl_samples, grid_points,
          grid_limit, normalizer_samples, seed):
  """({name: matplotlib figure}, figures.json numbers) of the `chosen` figures."""
  numbers = {"step": run.step, "prior": run.prior_name, "dataset": run.dataset}
  drawn = {}
  if "ranked" in chosen:
    figures, more = ranked.draw(run, num_samples, num_shown, normalizer_samples, seed)
    drawn.update(figures)
    numbers.update(more)
  if "density" in chosen or "embedding" in chosen:
    x, labels = examples.training_examples(run, num_examples, seed)
    loc, scale = examples.encode(run.model, x)
    numbers["num_examples"] = len(x)
    if "density" in chosen:
      figures, more = density.draw(run, loc, scale, grid_points, grid_limit, kl_samples,
                                   normalizer_samples, seed)
      drawn.update(figures)
      numbers.update(more)
    if "embedding" in chosen:
      drawn["embedding"] = embedding.embedding_figure(run, loc, labels)
  return drawn, numbers


def _write_images(drawn, output_dir, logdir, step, dpi):
  """Saves each figure as <output_dir>/<name>.png and logs it to TensorBoard in `logdir`
  (tag figures/<name> at `step`). Returns {name: PNG path}."""
  paths = {name: plotting.save(fig, os.path.join(output_dir, f"{name}.png"), dpi)
           for name, fig in drawn.items()}
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for name, path in paths.items():
      image = tf.io.decode_png(tf.io.read_file(path), channels=3)
      tf.summary.image(f"figures/{name}", image[tf.newaxis], step=step)
  writer.close()
  return paths


def write_figures(workdir, output_dir=None, logdir=None, figures=(), num_samples=10000,
                  num_shown=25, num_examples=10000, kl_samples=10000, grid_points=200,
                  grid_limit=None, normalizer_samples=10**6, seed=0, dpi=100, print_fn=print):
  """Draws the figures of a run; see the package docstring.

  Every check runs before anything is written: on an error no file or directory is created.

  Args:
    workdir: the run directory. output_dir, logdir: PNGs / TensorBoard (default
      workdir/figures). figures: names of FIGURES (empty: all that apply).
    num_samples: S proposal samples ranked in (a). num_shown: samples per group in (a).
    num_examples: N training examples of q(z) in (b, c). kl_samples: M samples of q(z) for
      the KL estimates. grid_points, grid_limit: the grid of (b) (see `latent_densities`).
    normalizer_samples: S for Z when the checkpoint has no estimate. seed: int. dpi: PNG dots
      per inch.

  Returns:
    {'paths': {figure name: PNG path}, 'figures.json' numbers: step, prior, Z, KLs (nats)}.

  Raises:
    FigureError: see `load_run`, `check_figures`; a count below its minimum, grid_limit < 0.
    DatasetNotFoundError: the run's data is not available.
  """
  print_fn = print_fn or (lambda _: None)
  _check_options(grid_limit, num_samples=num_samples, num_shown=num_shown,
                 num_examples=num_examples, kl_samples=kl_samples, grid_points=grid_points,
                 dpi=dpi)
  run = common.load_run(workdir)
  chosen = check_figures(run, list(figures))
  output_dir = output_dir or os.path.join(str(workdir), "figures")
  logdir = logdir or os.path.join(str(workdir), "figures")
  drawn, numbers = _draw(run, chosen, num_samples, num_shown, num_examples, kl_samples,
                         grid_points, grid_limit, normalizer_samples, seed)
  paths = _write_images(drawn, output_dir, logdir, run.step, dpi)
  with open(os.path.join(output_dir, "figures.json"), "w") as f:
    json.dump(numbers, f, indent=2, sort_keys=True)
  for path in paths.values():
    print_fn(f"wrote {path}")
  print_fn(f"numbers: {json.dumps(numbers, sort_keys=True)}")
  return {"paths": paths, **numbers}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required (the run directory of a trained model).")
  try:
    write_figures(FLAGS.workdir, FLAGS.output_dir, FLAGS.logdir, FLAGS.figures,
                  FLAGS.num_samples, FLAGS.num_shown, FLAGS.num_examples, FLAGS.kl_samples,
                  FLAGS.grid_points, FLAGS.grid_limit or None, FLAGS.normalizer_samples,
                  FLAGS.seed, FLAGS.dpi, print_fn=lambda s: print(s, flush=True))
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
