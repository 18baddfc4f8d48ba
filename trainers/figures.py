r"""The LARS paper's qualitative figures for a trained run (Bauer & Mnih 2019, appendix D.4-D.8).

  python -m trainers.figures --workdir=runs/lars_vae [--output_dir=runs/lars_vae/figures] \
      [--figures=ranked,density,embedding] [--num_samples=10000] [--num_examples=10000]

Rebuilds model and prior from workdir/config.gin and the latest checkpoint in
workdir/checkpoints, then draws
  (a) `ranked`: S samples z ~ pi(z) of a LARS prior's proposal ranked by a(z) (Fig. 3, D.5,
      D.6): decoded sample means with the highest a(z), random ones and those with the lowest
      a(z) -> ranked_samples.png; the sorted a(z) on a log scale with a row of representative
      samples labelled by a(z) (Fig. D.7) -> acceptance_values.png. Needs a LARS prior.
  (b) `density`: for a 2-D latent space, the aggregate posterior q(z) = 1/N sum_n q(z|x_n) over
      N training examples, and the prior on a grid, with Monte Carlo KL(q(z) || p(z)) in nats
      (Fig. D.10); for LARS also the proposal pi(z), a(z), KL(q || pi) and Z (Fig. D.11-D.13)
      -> latent_density.png.
  (c) `embedding`: the posterior means E_q[z|x_n] of the N training examples, coloured by
      class where the data set has labels (MNIST, OneHot) (Fig. D.14) -> embedding.png.
Without --figures, every figure that applies to the run is drawn. The PNGs go to
--output_dir, the same images to TensorBoard (tag figures/<name>, at the checkpoint's step) in
--logdir (both default workdir/figures), and the numbers to <output_dir>/figures.json.
"""
import collections
import json
import math
import os
import sys

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tfp_priors.data import mnist
from tfp_priors.evaluation import images as images_lib
from tfp_priors.evaluation import latent_density
from tfp_priors.priors import LarsPrior
from trainers import plotting
from tfp_priors.training import checkpointing
from tfp_priors.training import workdir as workdir_lib

FLAGS = flags.FLAGS

FIGURES = ("ranked", "density", "embedding")
# PNG sizes in inches (pixels = inches * dpi).
SIZES = {
    "ranked_samples": (12.0, 4.6),
    "acceptance_values": (12.0, 5.0),
    "latent_density": (3.0, 3.4),  # per panel: 4 panels for LARS, 2 otherwise
    "embedding": (6.0, 6.0),
}
NUM_REPRESENTATIVE = 14  # samples in the bottom row of Fig. D.7


def define_flags():
  """CLI flags, defined only when run as a script (no clash with other trainers modules)."""
  flags.DEFINE_string("workdir", None, "Run directory of a trained model (trainers.run).")
  flags.DEFINE_string("output_dir", None, "Directory for the PNGs (default workdir/figures).")
  flags.DEFINE_string("logdir", None, "TensorBoard directory (default workdir/figures).")
  flags.DEFINE_list("figures", [], f"Subset of {list(FIGURES)}; default: all that apply.")
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


class FigureError(ValueError):
  """A figure cannot be drawn for this workdir (missing run or checkpoint, no LARS prior for
  (a), a latent space that is not 2-D for (b, c), bad options); nothing was written."""


Run = collections.namedtuple("Run", [
    "workdir", "model", "prior", "prior_name", "data", "dataset", "data_dir",
    "allow_download", "step"])


def load_run(workdir):
  """Rebuilds the model, prior and data of a training run and restores its checkpoint.

  Uses workdir/config.gin (written by `tfp_priors.training.runner.train`) and the latest
  checkpoint in workdir/checkpoints (`Trainer.checkpoint`: model=, prior=, ...; read by
  `tfp_priors.training.checkpointing.load_pretrained_model`). Parses the run's config into the
  global gin state (after clearing it).

  Returns:
    `Run`: model, prior, prior_name (registry name), data (`Datasets`), dataset name,
    data_dir, allow_download (the run's make_datasets bindings), step (of the checkpoint).

  Raises:
    FigureError: no workdir, config.gin or checkpoint; a config that does not parse; a
      checkpoint that does not match the config.
    DatasetNotFoundError: the run's data set is not available.
  """
  from tfp_priors.data import pipelines  # pylint: disable=g-import-not-at-top
  from tfp_priors.priors import build_prior  # pylint: disable=g-import-not-at-top

  checkpoint = workdir_lib.open_run(workdir, FigureError)
  workdir = str(workdir)
  data = pipelines.make_datasets()
  model = workdir_lib.model_fn()(train_mean=data.train_mean)
  prior = build_prior(model.latent_size, model=model)
  try:
    checkpointing.load_pretrained_model(model, workdir, prior=prior)
  except checkpointing.PretrainedModelError as e:
    raise FigureError(f"cannot restore {checkpoint} with {workdir}/config.gin: {e}") from e
  return Run(workdir, model, prior, getattr(prior, "registry_name", type(prior).__name__),
             data, data.name, workdir_lib.binding("make_datasets.data_dir", None),
             workdir_lib.binding("make_datasets.allow_download", True),
             workdir_lib.checkpoint_step(checkpoint))


def check_figures(run, figures):
  """The figures to draw: `figures` if each applies to the run, else raise; all that apply
  when `figures` is empty.

  Raises:
    FigureError: an unknown name; 'ranked' without a LARS prior; 'density' or 'embedding' on
      a latent space that is not 2-D; nothing applies (with `figures` empty).
  """
  unknown = [f for f in figures if f not in FIGURES]
  if unknown:
    raise FigureError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}.")
  reasons = {}
  if not isinstance(run.prior, LarsPrior):
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
  if figures:
    for name in figures:
      if name in reasons:
        raise FigureError(reasons[name])
    return list(dict.fromkeys(figures))
  applicable = [f for f in FIGURES if f not in reasons]
  if not applicable:
    raise FigureError("no figure applies to this run: " + " ".join(reasons.values()))
  return applicable


def ensure_log_normalizer(prior, num_samples, seed=0):
  """For a LARS prior whose checkpoint holds no evaluation estimate of log Z (NaN), estimates
  it from `num_samples` proposal samples (LARS Eq. A.17). Returns Z (None for other priors)."""
  if not isinstance(prior, LarsPrior):
    return None
  if not math.isfinite(float(prior.evaluation_log_normalizer)):
    prior.estimate_log_normalizer(num_samples=num_samples, seed=seed)
  return float(tf.exp(prior.log_normalizer()))


# ----------------------------------------------------------------- (a) ranked samples

RankedSamples = collections.namedtuple("RankedSamples", [
    "z",               # [S, d] proposal samples, highest a(z) first
    "log_acceptance",  # [S] log a(z) in nats, non-increasing
])


def rank_proposal_samples(prior, num_samples=10000, seed=0, chunk_size=10000):
  """Draws S samples z ~ pi(z) from a LARS prior's proposal and sorts them by a(z), highest
  first (LARS Fig. 3, D.5-D.7: the paper uses S = 10^4).

  Args:
    prior: a `LarsPrior`. num_samples: S >= 1. seed: int.
    chunk_size: samples per evaluation of a(z).

  Returns:
    `RankedSamples` of numpy arrays: z [S, d], log_acceptance [S] (nats, non-increasing).

  Raises:
    FigureError: the prior is not a LARS prior, or S < 1.
  """
  if not isinstance(prior, LarsPrior):
    raise FigureError(f"ranking proposal samples needs a LARS prior with an acceptance "
                      f"function a(z), got {type(prior).__name__}.")
  if num_samples < 1:
    raise FigureError(f"--num_samples must be >= 1, got {num_samples}.")
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


def _show_grid(ax, images, title):
  grid = images_lib.image_grid(tf.constant(images)).numpy()
  ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0.0, vmax=1.0,
            interpolation="nearest")
  ax.set_title(title, fontsize="small")
  ax.axis("off")


def ranked_figures(run, ranked, selection, normalizer, seed=0):
  """Matplotlib figures {'ranked_samples', 'acceptance_values'} of (a)."""
  plt = plotting.pyplot()
  a = np.exp(ranked.log_acceptance.astype(np.float64))
  size = len(a)
  heading = (f"{size} samples of the proposal π(z) ranked by a(z); Z = {normalizer:.3g}, "
             f"step {run.step}")

  fig, axes = plt.subplots(1, 3, figsize=SIZES["ranked_samples"])
  for ax, name, label in zip(axes, ("highest", "random", "lowest"),
                             ("highest a(z)", "random samples from π(z)", "lowest a(z)")):
    index = selection[name]
    title = f"{label}\na(z) in [{a[index].min():.2e}, {a[index].max():.2e}]"
    _show_grid(ax, _decode(run, ranked.z[index], seed), title)
  fig.suptitle(heading, fontsize="medium")
  fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.82, wspace=0.05)
  figures = {"ranked_samples": fig}

  fig = plt.figure(figsize=SIZES["acceptance_values"])
  grid = fig.add_gridspec(2, NUM_REPRESENTATIVE, height_ratios=(2.2, 1.0))
  top = fig.add_subplot(grid[0, :])
  top.semilogy(np.arange(size), a[::-1])
  top.axhline(a.mean(), color="tab:red", linestyle="--", linewidth=1,
              label=f"mean a(z) = {a.mean():.3g} (Monte Carlo Z)")
  top.set_xlabel("index of sample (sorted by a(z))")
  top.set_ylabel("a(z)")
  top.legend(loc="lower right", fontsize="small")
  top.set_title(heading, fontsize="medium")
  index = selection["representative"]
  images = _decode(run, ranked.z[index], seed)
  for column, (image, value) in enumerate(zip(images, a[index])):
    ax = fig.add_subplot(grid[1, column])
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0,
              vmax=1.0, interpolation="nearest")
    ax.set_title(f"{value:.2e}", fontsize=7)
    ax.axis("off")
  fig.subplots_adjust(left=0.07, right=0.98, bottom=0.03, top=0.93, hspace=0.45)
  figures["acceptance_values"] = fig
  return figures


# ----------------------------------------------------------------- (b), (c) 2-D latent

def training_examples(run, num_examples, seed=0):
  """The first `num_examples` training examples in file order and their class labels.

  Dynamic MNIST: LeCun's training images binarized once with numpy seed `seed`, labels from
  the IDX label files (None if those are not beside the image files); OneHot: label = index
  of the 1; static MNIST and Frey Faces: no labels; any other data set: examples from the
  run's training stream, no labels.

  Returns:
    (x [N, D] float32 numpy, labels [N] int numpy or None).
  """
  # pylint: disable=g-import-not-at-top
  from tfp_priors.data import frey_faces, onehot, pipelines, static_mnist
  n, labels = int(num_examples), None
  if run.dataset == "dynamic_mnist":
    x = pipelines.binarize_numpy(mnist.load_mnist(run.data_dir, run.allow_download)["train"][:n],
                                 seed)
    directory = mnist.resolve_data_dir(run.data_dir)
    if mnist.find_mnist_file(directory, mnist.TRAIN_IMAGES) is not None:
      try:
        labels = mnist.load_mnist_labels(directory)["train"][:n]
      except mnist.DatasetNotFoundError:
        labels = None
  elif run.dataset == "onehot":
    x = onehot.load_onehot()["train"][:n]
    labels = np.argmax(x, -1)
  elif run.dataset == "static_mnist":
    x = static_mnist.load_static_mnist(run.data_dir)["train"][:n]
  elif run.dataset == "frey_faces":
    x = frey_faces.load_frey_faces(run.data_dir)["train"][:n]
  else:
    batches, count = [], 0
    for batch in run.data.train:
      batches.append(batch.numpy())
      count += len(batches[-1])
      if count >= n:
        break
    x = np.concatenate(batches)[:n]
  if labels is not None and len(labels) != len(x):
    labels = None
  return np.asarray(x, np.float32), labels


def encode(model, x, batch_size=500):
  """loc, scale [N, d] numpy of q(z_top|x_n) (diagonal Normal) for x [N, D], in batches."""
  locs, scales = [], []
  for i in range(0, len(x), batch_size):
    posterior = model.encode_top(tf.constant(x[i:i + batch_size]))
    locs.append(posterior.mean().numpy())
    scales.append(posterior.stddev().numpy())
  return np.concatenate(locs), np.concatenate(scales)


LatentDensities = collections.namedtuple("LatentDensities", [
    "grid",            # latent_density.Grid
    "limit",           # the grid covers [-limit, limit]^2
    "log_q",           # [n * n] log q(z) of the aggregate posterior on the grid, nats
    "log_p",           # [n * n] log p(z) of the prior
    "log_proposal",    # [n * n] log pi(z) (LARS) or None
    "log_acceptance",  # [n * n] log a(z) (LARS) or None
    "kl",              # {'prior': (KL(q || p), standard error), 'proposal': ... (LARS)}, nats
    "normalizer",      # Z (LARS) or None
    "num_examples",    # N
])


def latent_densities(run, loc, scale, grid_points=200, grid_limit=None, kl_samples=10000,
                     normalizer_samples=10**6, seed=0):
  """The densities of (b) on a grid and the KL estimates (LARS appendix D.8, Fig. D.10-D.13).

  Args:
    run: a `Run` with a 2-D latent space. loc, scale: [N, 2] posteriors of N training examples
      (`encode`). grid_points: n per axis. grid_limit: half-width of the square; None or 0
      picks max(3, the 99.5% quantile of |z_i| under q(z)), rounded up to 0.5.
    kl_samples: M samples z ~ q(z) for KL(q || p) = E_q[log q - log p] (Monte Carlo).
    normalizer_samples: S for LARS's Z when the checkpoint holds no estimate.

  Returns:
    `LatentDensities`.

  Raises:
    FigureError: latent size != 2, grid_points < 2 or kl_samples < 2.
  """
  if run.model.latent_size != 2:
    raise FigureError(f"the aggregate-posterior figure needs a 2-D latent space, got "
                      f"{run.model.latent_size}.")
  if grid_points < 2 or kl_samples < 2:
    raise FigureError(f"--grid_points and --kl_samples must be >= 2, got {grid_points}, "
                      f"{kl_samples}.")
  normalizer = ensure_log_normalizer(run.prior, normalizer_samples, seed)
  z_q = latent_density.sample_aggregate_posterior(loc, scale, kl_samples, seed)
  if not grid_limit:
    grid_limit = math.ceil(2 * max(3.0, float(np.quantile(np.abs(z_q), 0.995)))) / 2
  grid = latent_density.grid_2d(grid_limit, grid_points)
  distribution = run.prior.distribution()
  log_q_samples = latent_density.aggregate_posterior_log_prob(loc, scale, z_q)
  kl = {"prior": latent_density.kl_from_samples(
      log_q_samples, distribution.log_prob(z_q).numpy())}
  log_proposal = log_acceptance = None
  if isinstance(run.prior, LarsPrior):
    proposal = run.prior.proposal.distribution()
    kl["proposal"] = latent_density.kl_from_samples(log_q_samples,
                                                    proposal.log_prob(z_q).numpy())
    log_proposal = proposal.log_prob(grid.points).numpy()
    log_acceptance = run.prior.log_acceptance(grid.points).numpy()
  return LatentDensities(
      grid, float(grid_limit), latent_density.aggregate_posterior_log_prob(loc, scale, grid.points),
      distribution.log_prob(grid.points).numpy(), log_proposal, log_acceptance, kl, normalizer,
      len(loc))


def density_figure(run, densities):
  """Matplotlib figure of (b): q(z), [pi(z), a(z)], p(z) side by side."""
  n = len(densities.grid.axis)

  def image(log_values):
    return np.exp(log_values).reshape(n, n)

  kl_p, kl_p_se = densities.kl["prior"]
  panels = [(f"aggregate posterior q(z)\n(N = {densities.num_examples})",
             image(densities.log_q), plotting.TARGET_CMAP)]
  if densities.log_proposal is not None:
    kl_pi, kl_pi_se = densities.kl["proposal"]
    name = getattr(run.prior.proposal, "registry_name", "")
    panels += [
        (f"proposal π(z) ({name})\nKL(q‖π) = {kl_pi:.2f} ± {kl_pi_se:.2f}",
         image(densities.log_proposal), plotting.PROPOSAL_CMAP),
        (f"a(z)\nZ = {densities.normalizer:.3g}", image(densities.log_acceptance),
         plotting.ACCEPTANCE_CMAP),
        (f"LARS prior p_T(z), T = {run.prior.truncation}\nKL(q‖p) = {kl_p:.2f} ± {kl_p_se:.2f}",
         image(densities.log_p), plotting.PRIOR_CMAP)]
  else:
    panels.append((f"prior p(z) ({run.prior_name})\nKL(q‖p) = {kl_p:.2f} ± {kl_p_se:.2f}",
                   image(densities.log_p), plotting.PRIOR_CMAP))
  plt = plotting.pyplot()
  width, height = SIZES["latent_density"]
  fig, axes = plt.subplots(1, len(panels), squeeze=False,
                           figsize=(width * len(panels), height))
  for ax, (title, values, cmap) in zip(axes[0], panels):
    plotting.density_panel(ax, values, densities.limit, title, cmap)
  fig.suptitle(f"{run.dataset}, {type(run.model).__name__}, prior {run.prior_name}, step "
               f"{run.step}; [-{densities.limit:g}, {densities.limit:g}]², KL in nats",
               fontsize="medium")
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.75, wspace=0.05)
  return fig


def embedding_figure(run, loc, labels):
  """Matplotlib figure of (c): posterior means [N, 2] coloured by class (LARS Fig. D.14)."""
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=SIZES["embedding"])
  size = float(np.clip(20000.0 / len(loc), 2.0, 12.0))  # marker area: smaller for more points
  if labels is None:
    ax.scatter(loc[:, 0], loc[:, 1], s=size, alpha=0.5, edgecolors="none")
    note = f"no class labels for {run.dataset}"
  else:
    cmap = plt.get_cmap("tab10")
    for k in np.unique(labels):
      chosen = labels == k
      ax.scatter(loc[chosen, 0], loc[chosen, 1], s=size, alpha=0.6, color=cmap(int(k) % 10),
                 label=str(k), edgecolors="none")
    ax.legend(loc="upper right", fontsize="small", markerscale=4, title="class")
    note = "coloured by class"
  ax.set_aspect("equal", adjustable="datalim")
  ax.set_xlabel("$z_1$")
  ax.set_ylabel("$z_2$")
  ax.set_title(f"E_q[z|x] of {len(loc)} training examples ({note})\n{run.dataset}, prior "
               f"{run.prior_name}, step {run.step}", fontsize="medium")
  fig.subplots_adjust(left=0.1, right=0.97, bottom=0.08, top=0.9)
  return fig


# ----------------------------------------------------------------- driver

def write_figures(workdir, output_dir=None, logdir=None, figures=(), num_samples=10000,
                  num_shown=25, num_examples=10000, kl_samples=10000, grid_points=200,
                  grid_limit=None, normalizer_samples=10**6, seed=0, dpi=100, print_fn=print):
  """Draws the figures of a run; see the module docstring.

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
  for flag, value, least in (("num_samples", num_samples, 1), ("num_shown", num_shown, 1),
                             ("num_examples", num_examples, 1), ("kl_samples", kl_samples, 2),
                             ("grid_points", grid_points, 2), ("dpi", dpi, 1)):
    if value < least:
      raise FigureError(f"--{flag} must be >= {least}, got {value}.")
  if grid_limit is not None and not grid_limit >= 0:
    raise FigureError(f"--grid_limit must be > 0 (or 0 for automatic), got {grid_limit}.")
  run = load_run(workdir)
  chosen = check_figures(run, list(figures))
  output_dir = output_dir or os.path.join(str(workdir), "figures")
  logdir = logdir or os.path.join(str(workdir), "figures")
  numbers = {"step": run.step, "prior": run.prior_name, "dataset": run.dataset}
  drawn = {}
  if "ranked" in chosen:
    normalizer = ensure_log_normalizer(run.prior, normalizer_samples, seed)
    ranked = rank_proposal_samples(run.prior, num_samples, seed)
    drawn.update(ranked_figures(run, ranked, select_ranked(ranked, num_shown, seed),
                                normalizer, seed))
    numbers.update(normalizer=normalizer, num_samples=num_samples,
                   mean_acceptance=float(np.exp(ranked.log_acceptance.astype(np.float64)).mean()),
                   max_acceptance=float(np.exp(ranked.log_acceptance[0])),
                   min_log_acceptance=float(ranked.log_acceptance[-1]))
  if "density" in chosen or "embedding" in chosen:
    x, labels = training_examples(run, num_examples, seed)
    loc, scale = encode(run.model, x)
    numbers["num_examples"] = len(x)
    if "density" in chosen:
      densities = latent_densities(run, loc, scale, grid_points, grid_limit, kl_samples,
                                   normalizer_samples, seed)
      drawn["latent_density"] = density_figure(run, densities)
      numbers.update({f"kl_{k}": v[0] for k, v in densities.kl.items()})
      numbers.update({f"kl_{k}_standard_error": v[1] for k, v in densities.kl.items()})
      numbers.update(grid_limit=densities.limit, normalizer=densities.normalizer,
                     q_mass_on_grid=float(np.exp(densities.log_q).sum()
                                          * densities.grid.cell_area))
    if "embedding" in chosen:
      drawn["embedding"] = embedding_figure(run, loc, labels)
  paths = {name: plotting.save(fig, os.path.join(output_dir, f"{name}.png"), dpi)
           for name, fig in drawn.items()}
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for name, path in paths.items():
      image = tf.io.decode_png(tf.io.read_file(path), channels=3)
      tf.summary.image(f"figures/{name}", image[tf.newaxis], step=run.step)
  writer.close()
  with open(os.path.join(output_dir, "figures.json"), "w") as f:
    json.dump(numbers, f, indent=2, sort_keys=True)
  for name, path in paths.items():
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


if __name__ == "__main__":
  define_flags()
  app.run(main)
