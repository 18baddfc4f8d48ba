"""Reweighted (energy-based) distribution p(z) = base(z) r(z) / Z: the NCP prior.

Source: Aneja et al. (2021), "A Contrastive Learning Approach for Training Variational
Autoencoder Priors" (NCP-VAE), Sec. 4 (p_NCP(z) = p(z) r(z) / Z), Sec. 4.3 (sampling by
SIR and by Langevin dynamics with energy E(z) = -log r(z) - log p(z)), footnote 5 (ESS).
"""
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import seeds
from tfp_priors.distributions import over_latent
from tfp_priors.samplers import langevin
from tfp_priors.samplers import sir

tfd = tfp.distributions


class Reweighted(over_latent.OverLatent):
  """Base distribution reweighted by a positive factor r(z): p(z) = base(z) r(z) / Z.

  The energy-based distribution of the noise contrastive prior (Aneja et al. 2021, Sec. 4)
  and the implicit optimal prior; pure math, no training state (`DensityRatioPrior`
  builds one from its variables).

  `log_prob` needs log Z = log E_base[r(z)], given as `log_normalizer` (e.g. from
  `tfp_priors.estimators.estimate_log_normalizer(base, log_ratio_fn, S)`); with the default 0.0
  it is the unnormalized log density log base(z) + log r(z). `sample` is sampling-importance-
  resampling with `num_proposals` base proposals per sample (approximate: exact only as
  M -> infinity); `sample_langevin` runs unadjusted Langevin dynamics from base samples.
  Neither sampler is reparameterized.

  Shapes: the base has scalar batch shape and event shape [d]; `log_prob(z)` and `energy(z)` take
  z [..., d] and return [...] nats; `sample(n)` returns [n, d].

  Raises:
    ValueError: if num_proposals < 1, or the base's event shape is not rank 1 or its batch
      shape not scalar (in the constructor); `log_prob` of a z whose last axis is not d.

  #### Mathematical details

  ```none
  p(z) = base(z) r(z) / Z,  Z = E_base[r(z)],  E(z) = -log r(z) - log base(z).
  ```

  SIR (Aneja Sec. 4.3) draws M proposals z^(m) ~ base and resamples one with weights
  w^(m) = p(z^(m)) / base(z^(m)) ~ r(z^(m)); its effective sample size (footnote 5) lies in
  [1, M]. Langevin dynamics (Sec. 4.3) starts at z_0 ~ base and runs

  ```none
  z_{t+1} = z_t - 0.5 lambda grad_z E(z_t) + sqrt(lambda) eps_t,  eps_t ~ N(0, I).
  ```

  #### Examples

  ```python
  from tfp_priors.distributions import Reweighted

  base = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
  reweighted = Reweighted(base, lambda z: 2.0 * z[..., 0], log_normalizer=2.0,
                          num_proposals=64)
  z = tf.zeros([3, 2])
  np.testing.assert_allclose(reweighted.log_prob(z), base.log_prob(z) - 2.0, rtol=1e-6)
  samples = reweighted.sample(100, seed=[0, 1])
  langevin = reweighted.sample_langevin(4, step_size=0.01, num_steps=5, seed=[1, 2])
  assert samples.shape == (100, 2) and langevin.shape == (4, 2)
  assert float(tf.reduce_mean(samples[:, 0])) > 0.5
  ```

  #### References

  [1]: Jyoti Aneja, Alexander G. Schwing, Jan Kautz, Arash Vahdat. A Contrastive Learning
       Approach for Training Variational Autoencoder Priors. In _Advances in Neural
       Information Processing Systems (NeurIPS)_, 2021. https://arxiv.org/abs/2010.02917
  """

  def __init__(self, base, log_ratio_fn, log_normalizer=0.0, num_proposals=5000,
               max_proposals_per_chunk=2**20, validate_args=False, allow_nan_stats=True,
               name="Reweighted"):
    """Builds the distribution.

    Args:
      base: `tfd.Distribution` p(z) with scalar batch shape and rank-1 event shape [d].
      log_ratio_fn: callable z [..., d] -> log r(z) [...] in nats (any real value; for NCP,
        the classifier's logit log D(z) / (1 - D(z))).
      log_normalizer: log Z = log E_base[r(z)] in nats (scalar); 0.0 leaves `log_prob`
        unnormalized.
      num_proposals: M >= 1, SIR proposals per sample (Aneja et al. use 5,000).
      max_proposals_per_chunk: memory cap of the SIR sampler (proposals in memory at once).
      validate_args: passed to `tfd.Distribution`.
      allow_nan_stats: passed to `tfd.Distribution`.
      name: name scope.

    Raises:
      ValueError: if num_proposals < 1, or the base's event shape is not rank 1 or its batch
        shape not scalar.
    """
    parameters = dict(locals())
    over_latent.check_latent_distribution(base, "the base distribution")
    if int(num_proposals) < 1:
      raise ValueError(f"SIR needs at least one proposal; got M={num_proposals}. Set "
                       f"num_proposals >= 1 (Aneja et al. use 5,000).")
    self._base = self._latent = base
    self._log_ratio_fn = log_ratio_fn
    self._num_proposals = int(num_proposals)
    self._max_proposals_per_chunk = int(max_proposals_per_chunk)
    with tf.name_scope(name):
      self._log_normalizer = tf.cast(log_normalizer, base.dtype)
    super().__init__(
        dtype=base.dtype, reparameterization_type=tfd.NOT_REPARAMETERIZED,
        validate_args=validate_args, allow_nan_stats=allow_nan_stats, parameters=parameters,
        name=name)

  @property
  def base(self):
    return self._base

  @property
  def log_normalizer(self):
    """log Z in nats (scalar)."""
    return self._log_normalizer

  @property
  def num_proposals(self):
    """M, SIR proposals per sample."""
    return self._num_proposals

  def log_ratio(self, z):
    """log r(z) [...] in nats for z [..., d]."""
    return self._log_ratio_fn(z)

  def energy(self, z):
    """E(z) = -log r(z) - log base(z) [...] in nats (unnormalized: log p(z) = -E(z) - log Z)."""
    return -self._log_ratio_fn(z) - self._base.log_prob(z)

  def _log_prob(self, z):
    return self._base.log_prob(z) + self._log_ratio_fn(z) - self._log_normalizer

  def _sample_n(self, n, seed=None):
    return self.sample_with_diagnostics(n, seed=seed).samples

  def sample_with_diagnostics(self, num_samples, seed=None):
    """SIR samples with their diagnostics.

    Args:
      num_samples: N >= 0, Python int or scalar int tensor.
      seed: stateless seed (shape [2]), int or None.

    Returns:
      `sir.SIRResult`: samples [N, d], effective_sample_size [N] (footnote 5, in [1, M]) and
      log_mean_weight [N] (per-sample estimates of log Z, nats).
    """
    return sir.sampling_importance_resampling(
        self._base, self._log_ratio_fn, num_samples, self._num_proposals, seed=seed,
        max_proposals_per_chunk=self._max_proposals_per_chunk)

  def sample_langevin(self, num_samples, step_size, num_steps, seed=None):
    """Langevin samples: z_0 ~ base, then `num_steps` steps on `energy` (Sec. 4.3).

    Args:
      num_samples: N, Python int or scalar int tensor.
      step_size: lambda > 0, Python float or scalar tensor.
      num_steps: T >= 0, Python int or scalar int tensor.
      seed: stateless seed (shape [2]), int or None.

    Returns:
      [N, d] samples (approximate: finite T and no Metropolis correction).

    Raises:
      ValueError / tf.errors.InvalidArgumentError: see `langevin.langevin_dynamics`.
    """
    init_seed, chain_seed = tfp.random.split_seed(seeds.stateless_seed(seed), 2)
    initial_state = self._base.sample(num_samples, seed=init_seed)
    return langevin.langevin_dynamics(self.energy, initial_state, step_size, num_steps,
                                      seed=chain_seed)
