"""Test-set evaluation of a trained model and prior.

- NLL: -IWAE bound with K = 1000 importance samples (LARS C.3, after Burda et al. 2016).
- ELBO = reconstruction - KL, single-sample estimates.
- Active units: Cov_x(E_q[z|x]) > 0.01 per dimension (Burda et al.; Xu et al. B.3).
- KL(q(z|x) || p(z|x)) = log p(x) - ELBO, with log p(x) from the IWAE estimate (Xu et al.
  Table 7 / B.11-B.14): the posterior's gap, "kl_posterior".
All figures are nats per example, averaged over the test set.
"""
import time

import numpy as np
import tensorflow as tf

from tfp_priors import objectives
from tfp_priors import progress

# Speed settings, measured by `python -m benchmarks.iwae_throughput` (README, Benchmarks).
DEFAULT_IWAE_BATCH_SIZE = 20
DEFAULT_JIT_COMPILE = False


def evaluate(model, prior, dataset, num_importance_samples=1000,
             iwae_batch_size=DEFAULT_IWAE_BATCH_SIZE, seed=0, max_examples=None, log_fn=None,
             jit_compile=DEFAULT_JIT_COMPILE, num_examples=None):
  """Evaluates on a finite dataset of [B, D] batches.

  Args:
    model, prior: the trained model and prior (the prior's `latent_log_prob`, i.e. its
      `distribution()` for the top latent, is used, so for LARS and NCP estimate log Z
      first, see `LarsPrior.estimate_log_normalizer`).
    dataset: finite `tf.data.Dataset` of [B, D] images.
    num_importance_samples: K of the IWAE bound.
    iwae_batch_size: examples per IWAE step (memory is K * iwae_batch_size * D floats).
    seed: int seed of the estimates.
    max_examples: evaluate only the first N examples (None: all).
    log_fn: optional callable(str) for progress lines (every 2,000 examples at the default
      batch, with the ETA when the number of examples is known).
    jit_compile: compile the evaluation step with XLA.
    num_examples: the number of examples in `dataset` if known (for the ETA only).

  Returns:
    dict with 'nll', 'elbo', 'reconstruction', 'kl' (E KL(q(z|x) || p(z))), 'kl_posterior'
    (-nll - elbo) (nats per example), 'active_units', 'num_examples', 'seconds'; and
    'nll_<name>' for each of `prior.extra_evaluation_densities()` (same importance samples).

  Raises:
    ValueError: if K < 1 or the dataset is empty.
  """
  if num_importance_samples < 1:
    raise ValueError(f"num_importance_samples must be >= 1, got {num_importance_samples}.")
  dataset = dataset.unbatch()
  if max_examples:
    dataset = dataset.take(max_examples)
  total = (min(num_examples, max_examples or num_examples) if num_examples
           else max_examples)  # for the ETA of the progress lines
  dataset = dataset.batch(iwae_batch_size)
  log_probs = {"nll": prior.latent_log_prob,
               **{f"nll_{k}": fn for k, fn in prior.extra_evaluation_densities().items()}}

  @tf.function(jit_compile=jit_compile)
  def step(x, seed):
    seed_iwae, seed_elbo = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    bounds = objectives.iwae_bounds(model, log_probs, x, num_importance_samples, seed_iwae)
    terms, _ = objectives.elbo(model, prior, x, training=False, seed=seed_elbo)
    sums = {k: -tf.reduce_sum(v) for k, v in bounds.items()}
    sums.update(elbo=tf.reduce_sum(terms.elbo), reconstruction=tf.reduce_sum(terms.reconstruction),
                kl=tf.reduce_sum(terms.kl))
    return sums, model.posterior_mean(x)

  totals = {}
  means = []
  count = 0
  start = time.time()
  for i, x in enumerate(dataset):
    sums, mean = step(x, tf.constant([seed, i], tf.int32))
    for k, v in sums.items():
      totals[k] = totals.get(k, 0.0) + float(v)
    means.append(mean.numpy())
    count += int(x.shape[0])
    if log_fn and (i + 1) % 100 == 0:
      log_fn(f"evaluated {count} of {total or '?'} examples, NLL so far "
             f"{totals['nll'] / count:.2f} nats, ETA "
             f"{progress.eta(count, total, time.time() - start)}")
  if count == 0:
    raise ValueError("the evaluation dataset is empty.")
  results = {k: v / count for k, v in totals.items()}
  results.update(kl_posterior=-results["nll"] - results["elbo"],
                 active_units=active_units(np.concatenate(means)), num_examples=count,
                 seconds=time.time() - start)
  return results


def active_units(posterior_means, threshold=0.01):
  """Number of latent dimensions whose posterior mean varies across x by more than threshold.

  Args:
    posterior_means: [N, d] array of E_q[z|x_n].
  Returns:
    int, count of dimensions with Var_n(E_q[z_j|x_n]) > threshold.
  """
  return int(np.sum(np.var(np.asarray(posterior_means, np.float64), axis=0) > threshold))
