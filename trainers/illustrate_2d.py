r"""LARS's 2-D illustrations (Bauer & Mnih 2019, Fig. 2, D.3, D.4): priors fitted to nine Gaussians.

  python -m trainers.illustrate_2d --output_dir=figures/2d [--steps=2000]

Each prior is fitted by maximum likelihood to samples of a fixed target q(z), a mixture of
nine Gaussians (LARS Eq. 5/6: maximise E_q[log p(z)]), through its training path
`prior.training_log_prob` (Algorithm 1's EMA estimate of Z for LARS). The models:
  - `lars_normal_mlp10_10`: LARS over N(0, I), a = MLP[2-10-10-1] (Fig. 2 left, D.3 top);
  - `lars_normal_mlp10`: LARS over N(0, I), a = MLP[2-10-1] (Fig. 2 middle, D.3 bottom);
  - `realnvp`: a RealNVP prior alone (Fig. D.4 left);
  - `lars_realnvp`: LARS over a jointly trained RealNVP proposal, a = MLP[2-10-10-1]
    (Fig. 2 right, D.4 right).
One PNG per model (`<name>.png`: target q(z), proposal pi(z), a(z) and p(z) on a grid; KL(q||p),
KL(q||pi) in nats and Z in the title) and `summary.json` with the numbers. The paper: KL(q||p)
0.06 / 0.66 / 0.68 / 0.08, Z 0.09 / 0.17 / - / 0.18, KL(q||N(0, I)) = 1.8.
"""
import collections
import json
import os
import sys

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_priors.evaluation import latent_density
from tfp_priors.priors import LarsPrior, RealNVPPrior, StandardNormalPrior
from trainers import plotting

tfd = tfp.distributions
FLAGS = flags.FLAGS

STEPS = 2000
# name -> description in the figure title.
MODELS = {
    "lars_normal_mlp10_10": "N(0, I) + LARS, a = MLP[2-10-10-1]",
    "lars_normal_mlp10": "N(0, I) + LARS, a = MLP[2-10-1]",
    "realnvp": "RealNVP alone",
    "lars_realnvp": "RealNVP + LARS, a = MLP[2-10-10-1]",
}
PANEL_INCHES = 3.0  # width of one panel; the figure is panels * 3 x 3.4 inches
FIGURE_HEIGHT_INCHES = 3.4


def define_flags():
  """CLI flags, defined only when run as a script (no clash with other trainers modules)."""
  flags.DEFINE_string("output_dir", None, "Directory for the PNGs and summary.json.")
  flags.DEFINE_integer("steps", STEPS, "Adam steps of maximum likelihood per model (>= 0).")
  flags.DEFINE_list("models", list(MODELS), f"Models to fit, a subset of {list(MODELS)}.")
  flags.DEFINE_integer("seed", 0, "Seed of the initialisation.")
  flags.DEFINE_integer("normalizer_samples", 10**6, "Proposal samples S for LARS's Z.")
  flags.DEFINE_integer("kl_samples", 20000, "Target samples of the KL(q || p) estimate.")
  flags.DEFINE_integer("grid_points", 200, "Grid points per axis of the density panels.")
  flags.DEFINE_float("limit", 2.5, "The panels show [-limit, limit]^2.")
  flags.DEFINE_integer("dpi", 100, "Dots per inch of the PNGs.")


def nine_gaussians():
  """The target q(z) of LARS Fig. 2: an equal mixture of nine Gaussians N(mu_k, 0.13^2 I),
  mu_k on the grid {-1.2, 0, 1.2}^2; a `tfd.Distribution` with event shape [2].
  KL(q || N(0, I)) = 1.87 nats (the paper: 1.8)."""
  grid = np.array([-1.2, 0.0, 1.2], np.float32)
  locs = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
  return tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros(9)),
                               tfd.MultivariateNormalDiag(locs, tf.fill([9, 2], 0.13)))


# Bound B of the couplings' log-scale (B tanh(s / B)): LARS samples its proposal at every step,
# and with an unconstrained log-scale the flow's tails (base noise |w| ~ 3-4, which only the
# reparameterised gradient of log Z_S trains) overflowed to inf samples (1489 of 20,000 steps
# skipped). On the data the fitted log-scales stay within |s| < 4, which B = 10 hardly changes.
LOG_SCALE_BOUND = 10.0


def realnvp_proposal(seed=0, log_scale_bound=LOG_SCALE_BOUND):
  """The RealNVP of Fig. D.4: `RealNVPPrior(2, hidden_sizes=(32, 32), output_scale=0.3,
  log_scale_bound=10)`.

  output_scale 0.3: a flow started at the identity sits on a saddle for the symmetric
  nine-Gaussian target (N(0, I) matches its mean and covariance), so it starts a little off it.
  log_scale_bound 10: each coupling scales by at most e^10, so samples stay finite.
  """
  return RealNVPPrior(2, hidden_sizes=(32, 32), output_scale=0.3, seed=seed,
                      log_scale_bound=log_scale_bound)


def build_models(names=tuple(MODELS)):
  """{name: prior} for the names of `MODELS` (in that order), initialised from the global
  seed (`tf_keras.utils.set_random_seed`).

  Raises:
    ValueError: an unknown name.
  """
  unknown = [n for n in names if n not in MODELS]
  if unknown:
    raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}.")
  makers = {
      "lars_normal_mlp10_10": lambda: LarsPrior(2, hidden_sizes=(10, 10),
                                                num_proposal_samples=256),
      "lars_normal_mlp10": lambda: LarsPrior(2, hidden_sizes=(10,), num_proposal_samples=256),
      "realnvp": realnvp_proposal,
      "lars_realnvp": lambda: LarsPrior(2, proposal=realnvp_proposal(), hidden_sizes=(10, 10),
                                        num_proposal_samples=256),
  }
  return {name: makers[name]() for name in MODELS if name in names}


FitResult = collections.namedtuple("FitResult", [
    "final_loss",     # -mean log p(z) of the last finite step, nats (NaN if none)
    "skipped_steps",  # steps whose loss or gradient was not finite (update and EMA undone)
])


def fit_maximum_likelihood(prior, target, steps=STEPS, learning_rate=3e-3, batch=256):
  """Maximises E_q[log p(z)] (LARS Eq. 5/6) over the prior's variables by Adam.

  Each step draws `batch` samples z ~ q and ascends the mean of `prior.training_log_prob(z,
  log q(z))` (Algorithm 1 for LARS: a(z) and the proposal get gradients through the batch
  estimate of Z, and the EMA <Z> is updated). Step i uses the stateless seed [0, i]. As in
  the trainer, a step whose loss or gradient is not finite changes nothing: the update is
  skipped and the prior's non-trainable state (LARS's EMA <Z>) is restored.

  Args:
    prior: a `tfp_priors.priors.Prior` over R^2.
    target: `tfd.Distribution` with event shape [2] (e.g. `nine_gaussians()`).
    steps: number of Adam steps (0: no fit).

  Returns:
    `FitResult(final_loss, skipped_steps)`.
  """
  optimizer = tf_keras.optimizers.Adam(learning_rate)
  variables = prior.trainable_variables
  state = [v for v in prior.variables if not v.trainable]
  optimizer.build(variables)

  @tf.function
  def step(seed):
    seed_q, seed_p = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    saved = [tf.identity(v) for v in state]
    z = target.sample(batch, seed=seed_q)
    with tf.GradientTape() as tape:
      log_p, _ = prior.training_log_prob(z, target.log_prob(z), seed=seed_p)
      loss = -tf.reduce_mean(log_p)
    grads = tape.gradient(loss, variables)
    finite = tf.logical_and(tf.math.is_finite(loss),
                            tf.math.is_finite(tf.linalg.global_norm(grads)))

    def apply():
      optimizer.apply_gradients(zip(grads, variables))
      return tf.constant(True)

    def undo():
      for v, value in zip(state, saved):
        v.assign(value)
      return tf.constant(False)

    return loss, tf.cond(finite, apply, undo)

  loss, skipped = float("nan"), 0
  for i in range(steps):
    out, applied = step(tf.constant([0, i]))
    if bool(applied):
      loss = out
    else:
      skipped += 1
  return FitResult(float(loss), skipped)


def kl_divergence(target, prior, num_samples=20000, normalizer_samples=10**6):
  """KL(q || p) = E_q[log q(z) - log p(z)] in nats, from `num_samples` target samples
  (seed [5, 5]).

  A prior with a log Z (LARS) first re-estimates it from `normalizer_samples` proposal
  samples (seed 1; `Prior.refresh_log_normalizer`, a no-op for normalised priors) and stores
  it, so that `prior.distribution()` uses it afterwards.
  """
  prior.refresh_log_normalizer(num_samples=normalizer_samples, seed=1)
  z = target.sample(num_samples, seed=[5, 5])
  return float(tf.reduce_mean(target.log_prob(z) - prior.distribution().log_prob(z)))


def plot_model(path, title, target, prior, limit=2.5, grid_points=200, dpi=100):
  """Writes the density panels of one fitted prior on a grid over [-limit, limit]^2.

  A prior with an acceptance function (`has_acceptance_function`: LARS): target q(z),
  proposal pi(z), a(z), p_T(z) (Fig. D.3, D.4 right); any other prior: q(z) and p(z)
  (Fig. D.4 left). p uses the prior's current log Z (see `kl_divergence`).

  Returns:
    path; the PNG is (number of panels * 3) x 3.4 inches * dpi pixels.
  """
  grid = latent_density.grid_2d(limit, grid_points)
  n = grid_points

  def image(values):
    return np.asarray(values).reshape(n, n)

  panels = [("target q(z)", image(tf.exp(target.log_prob(grid.points))), plotting.TARGET_CMAP)]
  if prior.has_acceptance_function:
    panels += [
        ("proposal π(z)", image(tf.exp(prior.proposal.distribution().log_prob(grid.points))),
         plotting.PROPOSAL_CMAP),
        ("a(z)", image(tf.exp(prior.log_acceptance(grid.points))), plotting.ACCEPTANCE_CMAP),
    ]
  panels.append(("p(z)", image(tf.exp(prior.distribution().log_prob(grid.points))),
                 plotting.PRIOR_CMAP))
  plt = plotting.pyplot()
  fig, axes = plt.subplots(1, len(panels), squeeze=False,
                           figsize=(PANEL_INCHES * len(panels), FIGURE_HEIGHT_INCHES))
  for ax, (name, values, cmap) in zip(axes[0], panels):
    plotting.density_panel(ax, values, limit, name, cmap)
  fig.suptitle(title, fontsize="medium")
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.78, wspace=0.05)
  return plotting.save(fig, path, dpi)


def illustrate(output_dir, steps=STEPS, models=tuple(MODELS), seed=0, normalizer_samples=10**6,
               kl_samples=20000, grid_points=200, limit=2.5, dpi=100, print_fn=print):
  """Fits the `models` to the nine-Gaussian target and writes `<name>.png` per model and
  summary.json into `output_dir`.

  Returns:
    {name: {'kl': KL(q || p), 'kl_proposal': KL(q || pi) (LARS only), 'normalizer': Z (LARS
    only), 'final_loss', 'skipped_steps' (see `fit_maximum_likelihood`), 'path'}}, KLs in
    nats; plus 'kl_standard_normal': KL(q || N(0, I)).

  Raises:
    ValueError: an unknown model name, steps < 0, grid_points < 2 or limit <= 0 (before
    anything is fitted or written).
  """
  print_fn = print_fn or (lambda _: None)
  if steps < 0:
    raise ValueError(f"--steps must be >= 0, got {steps}.")
  latent_density.grid_2d(limit, grid_points)  # validates the grid
  if not models:
    raise ValueError(f"no model to fit; choose from {list(MODELS)}.")
  tf_keras.utils.set_random_seed(seed)
  target = nine_gaussians()
  priors = build_models(models)
  os.makedirs(output_dir, exist_ok=True)
  results = {"kl_standard_normal": kl_divergence(target, StandardNormalPrior(2), kl_samples)}
  for name, prior in priors.items():
    fit = fit_maximum_likelihood(prior, target, steps)
    out = {"final_loss": fit.final_loss, "skipped_steps": fit.skipped_steps,
           "kl": kl_divergence(target, prior, kl_samples, normalizer_samples)}
    title = f"{MODELS[name]}: KL(q‖p) = {out['kl']:.2f} nats"
    if fit.skipped_steps:
      print_fn(f"{name}: {fit.skipped_steps} of {steps} steps had a non-finite loss or "
               f"gradient and were skipped.")
    if prior.has_acceptance_function:
      out["kl_proposal"] = kl_divergence(target, prior.proposal, kl_samples)
      out["normalizer"] = float(tf.exp(prior.log_normalizer()))
      title += f", KL(q‖π) = {out['kl_proposal']:.2f}, Z = {out['normalizer']:.2f}"
    out["path"] = plot_model(os.path.join(output_dir, f"{name}.png"), title, target, prior,
                             limit, grid_points, dpi)
    results[name] = out
    print_fn(f"{name}: {title} -> {out['path']}")
  with open(os.path.join(output_dir, "summary.json"), "w") as f:
    json.dump(dict(results, steps=steps, seed=seed), f, indent=2, sort_keys=True)
  return results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.output_dir:
    raise app.UsageError("--output_dir is required.")
  try:
    results = illustrate(FLAGS.output_dir, FLAGS.steps, tuple(FLAGS.models), FLAGS.seed,
                         FLAGS.normalizer_samples, FLAGS.kl_samples, FLAGS.grid_points,
                         FLAGS.limit, FLAGS.dpi, print_fn=lambda s: print(s, flush=True))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  print(f"KL(q || N(0, I)) = {results['kl_standard_normal']:.2f} nats; wrote "
        f"{os.path.join(FLAGS.output_dir, 'summary.json')}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
