"""Figure (b): the aggregate posterior and the prior of a 2-D latent space (LARS appendix D.8).

latent_density.png: q(z) = 1/N sum_n q(z|x_n) over N training examples and the prior on a
grid, with Monte Carlo KL(q(z) || p(z)) in nats (Fig. D.10); for LARS also the proposal
pi(z), a(z), KL(q || pi) and Z (Fig. D.11-D.13).
"""
import collections
import math

import numpy as np

from tfp_priors.evaluation import latent_density
from trainers import plotting
from trainers.figures import common

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
    raise common.FigureError(f"the aggregate-posterior figure needs a 2-D latent space, got "
                             f"{run.model.latent_size}.")
  if grid_points < 2 or kl_samples < 2:
    raise common.FigureError(f"--grid_points and --kl_samples must be >= 2, got "
                             f"{grid_points}, {kl_samples}.")
  normalizer = common.ensure_log_normalizer(run.prior, normalizer_samples, seed)
  z_q = latent_density.sample_aggregate_posterior(loc, scale, kl_samples, seed)
  if not grid_limit:
    grid_limit = math.ceil(2 * max(3.0, float(np.quantile(np.abs(z_q), 0.995)))) / 2
  grid = latent_density.grid_2d(grid_limit, grid_points)
  distribution = run.prior.distribution()
  log_q_samples = latent_density.aggregate_posterior_log_prob(loc, scale, z_q)
  kl = {"prior": latent_density.kl_from_samples(
      log_q_samples, distribution.log_prob(z_q).numpy())}
  log_proposal = log_acceptance = None
  if run.prior.has_acceptance_function:
    log_proposal, log_acceptance = _acceptance_terms(run.prior, grid, z_q, log_q_samples, kl)
  return LatentDensities(
      grid, float(grid_limit), latent_density.aggregate_posterior_log_prob(loc, scale, grid.points),
      distribution.log_prob(grid.points).numpy(), log_proposal, log_acceptance, kl, normalizer,
      len(loc))


def _acceptance_terms(prior, grid, z_q, log_q_samples, kl):
  """For a prior with a(z) (LARS): adds kl['proposal'] = KL(q || pi) (nats, from the samples
  z_q of q with log q(z_q) = log_q_samples) and returns log pi(z), log a(z) [n * n] on the
  grid (Fig. D.11-D.13)."""
  proposal = prior.proposal.distribution()
  kl["proposal"] = latent_density.kl_from_samples(log_q_samples, proposal.log_prob(z_q).numpy())
  return proposal.log_prob(grid.points).numpy(), prior.log_acceptance(grid.points).numpy()


def _panels(run, densities):
  """[(title, density [n, n], colour map)]: q(z), [pi(z), a(z)], p(z)."""
  n = len(densities.grid.axis)

  def image(log_values):
    return np.exp(log_values).reshape(n, n)

  kl_p, kl_p_se = densities.kl["prior"]
  panels = [(f"aggregate posterior q(z)\n(N = {densities.num_examples})",
             image(densities.log_q), plotting.TARGET_CMAP)]
  if densities.log_proposal is None:
    return panels + [(f"prior p(z) ({run.prior_name})\nKL(q‖p) = {kl_p:.2f} ± {kl_p_se:.2f}",
                      image(densities.log_p), plotting.PRIOR_CMAP)]
  kl_pi, kl_pi_se = densities.kl["proposal"]
  return panels + [
      (f"proposal π(z) ({run.prior.proposal.registry_name})\n"
       f"KL(q‖π) = {kl_pi:.2f} ± {kl_pi_se:.2f}",
       image(densities.log_proposal), plotting.PROPOSAL_CMAP),
      (f"a(z)\nZ = {densities.normalizer:.3g}", image(densities.log_acceptance),
       plotting.ACCEPTANCE_CMAP),
      (f"LARS prior p_T(z), T = {run.prior.truncation}\nKL(q‖p) = {kl_p:.2f} ± {kl_p_se:.2f}",
       image(densities.log_p), plotting.PRIOR_CMAP)]


def density_figure(run, densities):
  """Matplotlib figure of (b): q(z), [pi(z), a(z)], p(z) side by side; SIZES['latent_density']
  per panel."""
  panels = _panels(run, densities)
  width, height = common.SIZES["latent_density"]
  fig, axes = plotting.pyplot().subplots(1, len(panels), squeeze=False,
                                         figsize=(width * len(panels), height))
  for ax, (title, values, cmap) in zip(axes[0], panels):
    plotting.density_panel(ax, values, densities.limit, title, cmap)
  fig.suptitle(f"{run.dataset}, {type(run.model).__name__}, prior {run.prior_name}, step "
               f"{run.step}; [-{densities.limit:g}, {densities.limit:g}]², KL in nats",
               fontsize="medium")
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.75, wspace=0.05)
  return fig


def draw(run, loc, scale, grid_points, grid_limit, kl_samples, normalizer_samples, seed):
  """Figure (b) of a run with a 2-D latent space; arguments as `latent_densities`.

  Returns:
    ({'latent_density': matplotlib figure}, {figures.json name: number}): kl_<name> and
    kl_<name>_standard_error (nats), grid_limit, normalizer (Z or None) and q_mass_on_grid
    (the mass of q(z) on the grid).
  """
  densities = latent_densities(run, loc, scale, grid_points, grid_limit, kl_samples,
                               normalizer_samples, seed)
  numbers = {f"kl_{k}": v[0] for k, v in densities.kl.items()}
  numbers.update({f"kl_{k}_standard_error": v[1] for k, v in densities.kl.items()})
  numbers.update(grid_limit=densities.limit, normalizer=densities.normalizer,
                 q_mass_on_grid=float(np.exp(densities.log_q).sum() * densities.grid.cell_area))
  return {"latent_density": density_figure(run, densities)}, numbers
