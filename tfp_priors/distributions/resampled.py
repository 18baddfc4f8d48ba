"""LARS resampled distribution p(z) = pi(z) a(z) / Z and its truncated variant p_T.

Source: Bauer & Mnih (2019), "Resampled Priors for Variational Autoencoders", AISTATS:
Eq. (3) / (A.7) (untruncated p_inf), Eq. (4) / (A.14) (truncated p_T), appendix A.1-A.2.
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.distributions import over_latent
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.samplers import rejection

tfd = tfp.distributions


def validate_truncation(truncation):
  if truncation is None:
    return None
  if isinstance(truncation, (float, np.floating)) and np.isinf(truncation):
    return None
  if int(truncation) != truncation or int(truncation) < 1:
    raise ValueError(
        f"truncation T must be an integer >= 1 (T=1 is the proposal itself) or None for "
        f"untruncated resampling; got {truncation!r}.")
  return int(truncation)


# log Z at or above this is Z >= 1 (the float32 number below 1 closest to it has log -6e-8).
_LOG_NORMALIZER_NEAR_ONE = -1e-20


def resampled_log_prob(log_proposal, log_acceptance, log_normalizer, truncation):
  """log p_T(z) in log space (Eq. A.14), or log p_inf(z) (Eq. A.7) for truncation None.

  log p_T = log pi + log[a (1 - alpha_T) / Z + alpha_T],  alpha_T = (1 - Z)^(T - 1).

  Z >= 1: the true Z = E_pi[a] is below 1 (a <= 1), but the per-datapoint Z_r of Algorithm 1
  can exceed it (its posterior term pi(z_r)/q(z_r|x_r) a(z_r) is unbounded). alpha_T is then
  taken as 0, its limit as Z -> 1, so log p_T = log pi + log a - log Z with Z as given:
  finite, continuous in Z, with the gradient of -log Z, and no NaN at Z = 1 (where
  d log(1 - Z) / d log Z is infinite).

  Args:
    log_proposal: [...] log pi(z), nats.
    log_acceptance: [...] log a(z) <= 0.
    log_normalizer: log Z, broadcastable to [...] (per-datapoint Z_r of Alg. 1 allowed).
    truncation: int T >= 1 or None.

  Returns:
    [...] log density in nats.
  """
  if truncation is None:
    return log_proposal + log_acceptance - log_normalizer
  if truncation == 1:
    return tf.broadcast_to(log_proposal, tf.broadcast_dynamic_shape(
        tf.shape(log_proposal), tf.shape(log_acceptance)))
  log_normalizer = tf.convert_to_tensor(log_normalizer, log_acceptance.dtype)
  below_one = log_normalizer < _LOG_NORMALIZER_NEAR_ONE
  # The where's both branches are finite, so that neither gives a NaN gradient.
  safe = tf.where(below_one, log_normalizer, -tf.ones_like(log_normalizer))
  log_alpha = tf.where(below_one, (truncation - 1) * tfp.math.log1mexp(safe),  # (1 - Z)^(T-1)
                       tf.constant(-float("inf"), log_normalizer.dtype))
  log_resampled = log_acceptance + tfp.math.log1mexp(log_alpha) - log_normalizer
  log_alpha = tf.broadcast_to(log_alpha, tf.shape(log_resampled))
  return log_proposal + tf.reduce_logsumexp(tf.stack([log_resampled, log_alpha]), axis=0)


class Resampled(over_latent.OverLatent):
  """Learned accept/reject (LARS) distribution over any proposal.

  A `tfd.Distribution` that resamples a proposal pi by an acceptance function a(z) in [0, 1]
  (Bauer & Mnih 2019), truncated after T proposals (default T = 100) or untruncated (None).
  Pure math, no training state: `LarsPrior.distribution()` builds one from its variables.
  `sample` is exact (truncated) rejection sampling; `log_prob` needs log Z, either given
  (`log_normalizer`, e.g. the training EMA or a 10^10-sample evaluation estimate) or estimated
  at construction with `num_normalizer_samples` proposal samples (Eq. A.17).

  Shapes: the proposal has scalar batch shape and event shape [d]; `log_prob(z)` takes
  z [..., d] and returns [...] nats; `sample(n)` returns [n, d].

  Raises:
    ValueError: if truncation < 1 or not an integer, or the proposal's event shape is not
      rank 1 or its batch shape not scalar (in the constructor); `log_prob` of a z whose last
      axis is not d.
    tf.errors.InvalidArgumentError: an untruncated draw used up its budget of proposals
      (`sample_with_acceptance_rate`).

  #### Mathematical details

  ```none
  p_inf(z) = pi(z) a(z) / Z,  Z = int pi(z) a(z) dz                              (Eq. 3 / A.7),
  p_T(z) = (1 - alpha_T) pi(z) a(z) / Z + alpha_T pi(z),  alpha_T = (1 - Z)^(T-1)  (Eq. 4 / A.14).
  ```

  p_T is the density of rejection sampling that accepts the T-th proposal if the T - 1
  before it were rejected (appendix A.2): T = 1 is the proposal itself, T -> inf gives
  p_inf; the expected number of proposals per sample is (1 - (1 - Z)^T) / Z <= T. log_prob is
  computed in log space (`resampled_log_prob`); a per-datapoint Z >= 1 (Algorithm 1's Z_r can
  exceed the true Z) takes alpha_T = 0. Z = 1/S sum_s a(z_s), z_s ~ pi (Eq. 5 / A.17).

  #### Examples

  ```python
  from tfp_priors.distributions import Resampled

  proposal = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
  resampled = Resampled(proposal, lambda z: tf.math.log_sigmoid(3.0 * z[..., 0]),
                        truncation=10, num_normalizer_samples=2**12)
  samples = resampled.sample(200, seed=[0, 1])
  log_p = resampled.log_prob(samples)
  assert samples.shape == (200, 2) and log_p.shape == (200,)
  assert float(tf.reduce_mean(samples[:, 0])) > 0.0
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  def __init__(self, proposal, log_acceptance_fn, truncation=100, log_normalizer=None,
               num_normalizer_samples=2**16, normalizer_seed=0, validate_args=False,
               allow_nan_stats=True, name="Resampled"):
    """Builds the distribution.

    Args:
      proposal: `tfd.Distribution` pi with scalar batch shape and rank-1 event shape [d].
      log_acceptance_fn: callable z [..., d] -> log a(z) [...] with values <= 0 (e.g.
        `tf.math.log_sigmoid(logits)`).
      truncation: int T >= 1, or None / inf for untruncated resampling.
      log_normalizer: log Z (scalar, or broadcastable to the batch of z for per-datapoint
        estimates); None estimates it once here with `num_normalizer_samples` samples.
      num_normalizer_samples: S for the construction-time estimate.
      normalizer_seed: seed of that estimate.
      validate_args: check z's shape in `log_prob`.
      allow_nan_stats: passed to `tfd.Distribution`.
      name: name scope.

    Raises:
      ValueError: if truncation < 1 or not an integer, or the proposal's event shape is not
        rank 1 or its batch shape not scalar.
    """
    parameters = dict(locals())
    self._truncation = validate_truncation(truncation)
    over_latent.check_latent_distribution(proposal, "the proposal")
    self._proposal = self._latent = proposal
    self._log_acceptance_fn = log_acceptance_fn
    with tf.name_scope(name):
      if log_normalizer is None:
        log_normalizer = normalizer_lib.estimate_log_normalizer(
            proposal, log_acceptance_fn, num_normalizer_samples,
            chunk_size=min(num_normalizer_samples, 2**16), seed=normalizer_seed).log_normalizer
      self._log_normalizer = tf.cast(log_normalizer, proposal.dtype)
    super().__init__(
        dtype=proposal.dtype, reparameterization_type=tfd.NOT_REPARAMETERIZED,
        validate_args=validate_args, allow_nan_stats=allow_nan_stats, parameters=parameters,
        name=name)

  @property
  def proposal(self):
    return self._proposal

  @property
  def truncation(self):
    return self._truncation

  @property
  def log_normalizer(self):
    """log Z in nats (scalar or per-datapoint)."""
    return self._log_normalizer

  def log_acceptance(self, z):
    """log a(z) [...] for z [..., d]."""
    return self._log_acceptance_fn(z)

  def _log_prob(self, z):
    return resampled_log_prob(self._proposal.log_prob(z), self._log_acceptance_fn(z),
                              self._log_normalizer, self._truncation)

  def _sample_n(self, n, seed=None):
    return self.sample_with_acceptance_rate(n, seed=seed).samples

  def sample_with_acceptance_rate(self, num_samples, seed=None, max_proposals=None):
    """Exact samples with the sampler's statistics.

    Args:
      num_samples: n >= 1. seed: stateless seed, int or None.
      max_proposals: untruncated only: the budget of proposals for all n samples; default
        `rejection.proposal_budget(n, Z)` with this distribution's Z (about 2 n / Z).

    Returns:
      `rejection.RejectionSample`: samples [num_samples, d], num_proposals, num_accepted and
      acceptance_rate (an estimate of Z over the coin flips made).

    Raises:
      tf.errors.InvalidArgumentError: an untruncated draw used up its budget (see
        `rejection.truncated_rejection_sample`).
    """
    if (self._truncation is None and max_proposals is None
        and self._log_normalizer.shape.rank == 0):
      max_proposals = rejection.proposal_budget(num_samples, tf.exp(self._log_normalizer))
    return rejection.truncated_rejection_sample(
        self._proposal, self._log_acceptance_fn, num_samples, self._truncation, seed=seed,
        max_proposals=max_proposals)
