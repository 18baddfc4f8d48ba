"""ELBO, IWAE bound, KL warm-up and the registry of training objectives.

ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)) (LARS Eq. 1), with a single-sample KL estimate
log q(z|x) - log p(z) (LARS appendix A.4); IWAE bound of Burda et al. (2016) with K
importance samples. All values are nats per example.

A training phase names its objective (`ELBO`, `MAXIMUM_LIKELIHOOD`, `NOISE_CONTRASTIVE`);
`training_objective(name)` gives its loss and the statistics shown on the console.
"""
import collections
import math

import tensorflow as tf

from tfp_priors import seeds

ElboTerms = collections.namedtuple("ElboTerms", ["elbo", "reconstruction", "kl"])

ELBO = "elbo"  # encoder, decoder and prior by the (KL-annealed) ELBO
MAXIMUM_LIKELIHOOD = "maximum_likelihood"  # a prior alone by -E_q(z)[log p(z)]
NOISE_CONTRASTIVE = "noise_contrastive"  # a density-ratio prior's classifier by NCE

TrainingObjective = collections.namedtuple("TrainingObjective", [
    "name",
    "loss",     # fn(model, prior, x, kl_weight, seed) -> (scalar loss, {name: scalar}, prior
                # statistics {name: scalar}); nats per example, means over the batch
    "console",  # names among the statistics that the trainer prints at each log interval
])


def elbo(model, prior, x, training=False, seed=None):
  """Single-sample ELBO terms per example.

  Args:
    model: a `tfp_priors.models.LatentVariableModel`.
    prior: a `tfp_priors.priors.Prior` over the model's top latent.
    x: [B, D] binary images.
    training: if True, log p(z_top) comes from `prior.training_log_prob` (LARS: Alg. 1 and
      its EMA update) and z from the model's `training_forward(x, prior, seed)` (`model.forward`
      unless the model has training-time estimates, `ResampledOutputs`); else log p(z) is
      `prior.latent_log_prob` and z from `model.forward`.
    seed: stateless seed [2] or None.

  Returns:
    (`ElboTerms` of [B] tensors in nats: elbo = reconstruction - kl, dict of prior and model
    statistics).
  """
  seed_model, seed_prior = seeds.split_seed(seed)
  if training:
    # Models may have their own training-time estimates (LARS on outputs: Z by Algorithm 1).
    f, stats = model.training_forward(x, prior, seed=seed_model)
  else:
    f, stats = model.forward(x, 1, seed=seed_model), {}
  z, log_q_top = f.z_top[0], f.log_posterior_top[0]
  if training:
    log_p_top, prior_stats = prior.training_log_prob(z, log_q_top, seed=seed_prior)
    stats = {**stats, **prior_stats}
    log_p = log_p_top + f.log_prior_rest[0]
  else:
    log_p = prior.latent_log_prob(f)[0]
  kl = log_q_top + f.log_posterior_rest[0] - log_p
  reconstruction = f.log_likelihood[0]
  return ElboTerms(reconstruction - kl, reconstruction, kl), stats


def aggregate_posterior_cross_entropy(model, prior, x, seed=None):
  """-log p(z) at aggregate-posterior samples z ~ q(z|x), x from the data (one z per x).

  Its mean is a Monte Carlo estimate of the cross-entropy E_q(z)[-log p(z)] =
  KL(q(z) || p(z)) + H[q(z)], the maximum-likelihood objective of a prior fitted to the
  aggregate posterior (LARS Eq. 6; Xu et al. Eq. 6). Uses `prior.training_log_prob`.

  Returns:
    ([B] nats, dict of prior statistics).
  """
  seed_model, seed_prior = seeds.split_seed(seed)
  f = model.forward(x, 1, seed=seed_model)
  log_p, stats = prior.training_log_prob(f.z_top[0], f.log_posterior_top[0], seed=seed_prior)
  return -log_p, stats


def iwae_bound(model, prior_distribution, x, num_samples, seed=None):
  """log (1/K) sum_k p(x, z_k) / q(z_k|x), the IWAE lower bound on log p(x).

  Args:
    model: a model with `forward`.
    prior_distribution: `tfd.Distribution` of the top latent (e.g. `prior.distribution()`);
      the model's own p(z_rest | z_top) completes the prior of the lower latents.
    x: [B, D]. num_samples: K >= 1. seed: stateless seed or None.

  Returns:
    [B] bound in nats; -bound is the NLL estimate. It is >= the ELBO in expectation and
    non-decreasing in K.
  """
  def log_prior(f):
    return prior_distribution.log_prob(f.z_top) + f.log_prior_rest
  return iwae_bounds(model, {"bound": log_prior}, x, num_samples, seed)["bound"]


def iwae_bounds(model, latent_log_probs, x, num_samples, seed=None):
  """IWAE bounds of several priors of the latents on one set of K samples of q(z|x).

  Args:
    model: a model with `forward`.
    latent_log_probs: {name: fn(`Forward`) -> [K, B] log p(z_top, z_rest) in nats}, e.g.
      `prior.latent_log_prob`.
    x: [B, D]. num_samples: K >= 1. seed: stateless seed or None.

  Returns:
    {name: [B] bound in nats} (see `iwae_bound`).
  """
  f = model.forward(x, num_samples, seed=seed)
  log_w = f.log_likelihood - f.log_posterior_top - f.log_posterior_rest
  return {name: tf.reduce_logsumexp(log_w + fn(f), axis=0) - math.log(num_samples)
          for name, fn in latent_log_probs.items()}


def kl_weight(step, warmup_steps, initial_weight=0.0):
  """KL warm-up (annealing) weight beta, linear from `initial_weight` at step 0 to 1 at
  `warmup_steps`, then 1 (LARS C.3: from 0; Xu et al. B.3: from 0.01). 1 if warmup_steps <= 0.
  """
  if warmup_steps <= 0:
    return tf.constant(1.0)
  progress = tf.minimum(1.0, tf.cast(step, tf.float32) / float(warmup_steps))
  return initial_weight + (1.0 - initial_weight) * progress


def _elbo_loss(model, prior, x, kl_weight_value, seed):
  """-(reconstruction - beta KL), the KL-annealed negative ELBO (LARS C.3)."""
  terms, stats = elbo(model, prior, x, training=True, seed=seed)
  reconstruction = tf.reduce_mean(terms.reconstruction)
  kl = tf.reduce_mean(terms.kl)
  out = {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}
  return -(reconstruction - kl_weight_value * kl), out, stats


def _maximum_likelihood_loss(model, prior, x, kl_weight_value, seed):
  """Cross-entropy of the prior on aggregate-posterior samples (LARS Eq. 6; Xu Eq. 6)."""
  del kl_weight_value
  cross_entropy, stats = aggregate_posterior_cross_entropy(model, prior, x, seed=seed)
  loss = tf.reduce_mean(cross_entropy)
  return loss, {"cross_entropy": loss}, stats


def _noise_contrastive_loss(model, prior, x, kl_weight_value, seed):
  """NCE loss of a density-ratio prior's classifier (Aneja Eq. 3; Takahashi Eq. 20)."""
  del kl_weight_value
  loss, stats = prior.noise_contrastive_loss(model, x, seed=seed)
  return loss, {}, stats


_TRAINING_OBJECTIVES = {o.name: o for o in (
    TrainingObjective(ELBO, _elbo_loss, ("elbo", "kl")),
    TrainingObjective(MAXIMUM_LIKELIHOOD, _maximum_likelihood_loss, ("cross_entropy",)),
    TrainingObjective(NOISE_CONTRASTIVE, _noise_contrastive_loss, ("nce_loss",)),
)}


def training_objective(name):
  """The registered `TrainingObjective` called `name`.

  Raises:
    ValueError: an unknown name (the message lists the registered ones).
  """
  if name not in _TRAINING_OBJECTIVES:
    raise ValueError(f"unknown training objective {name!r}; registered: "
                     f"{sorted(_TRAINING_OBJECTIVES)}.")
  return _TRAINING_OBJECTIVES[name]
