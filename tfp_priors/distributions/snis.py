"""The SNIS distribution: one of K proposals, selected with probability proportional to exp E.

Source: Lawson, Tucker, Dai & Ranganath (2019), "Energy-Inspired Models: Learning with
Sampler-Induced Distributions", NeurIPS, Sec. 3 (self-normalized importance sampling, SNIS);
the bound's estimator follows the authors' `eim/models/nis.py` (google-research): K - 1
proposal samples shared across the batch, reparameterized.
"""
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.distributions import over_latent
from tfp_priors.samplers import sir

tfd = tfp.distributions

# Proposal samples drawn per chunk of `sample` (chunk size * K <= this): 2^18 x d floats.
PROPOSALS_PER_CHUNK = 2**18


def validate_count(label, value):
  """int(value) for a count >= 1 (K, M).

  Raises:
    ValueError: a value that is not an integer >= 1; the message names `label`.
  """
  if isinstance(value, bool) or int(value) != value or int(value) < 1:
    raise ValueError(f"{label} must be an integer >= 1; got {value!r}.")
  return int(value)


class SelfNormalizedImportanceSampling(over_latent.OverLatent):
  """The distribution that self-normalized importance sampling with K proposals induces.

  Draw K proposals z_1..K ~ pi, select z_i with probability exp(E(z_i)) / sum_k exp(E(z_k)),
  E a learned energy (Lawson et al. 2019, Sec. 3; Aneja et al. 2021, Table 2, 'SNIS'). Pure
  math, no training state: `SnisPrior.distribution()` builds one from its variables.
  `sample` is exact by construction. The density has no closed form: `log_prob` is the
  K-sample lower bound below (in expectation), a fresh draw of K - 1 proposal samples per call
  (or per `seed`), shared by every z of the call as in the authors' code.

  Shapes: the proposal has scalar batch shape and event shape [d]; `log_prob(z, seed=None)`
  takes z [..., d] and returns [...] nats; `sample(n, seed)` returns [n, d].

  Raises:
    ValueError: K < 1, M < 1, a proposal whose event shape is not rank 1 or whose batch shape
      is not scalar (in the constructor); a z whose last axis is not d (`log_prob`).

  #### Mathematical details

  By the symmetry of the K positions, the selected sample has the density

  ```none
  p_K(z) = pi(z) exp(E(z)) E_{z_j ~ pi}[1 / ((1/K) (exp E(z) + sum_{j<K} exp E(z_j)))],
  ```

  which tends to pi(z) exp(E(z)) / Z as K -> inf and is pi(z) at K = 1. The expression inside
  the expectation, times pi(z) exp(E(z)), is an unbiased estimate of p_K(z); its log is a
  lower bound on log p_K(z) in expectation (Jensen), and with it the ELBO and the IWAE bound
  of a VAE with this prior stay lower bounds on log p(x) (Lawson et al. Sec. 3; Aneja et al.
  report this bound in Table 2). With M independent draws of the K - 1 proposals
  (`num_bound_samples`, M = 1 in the authors' code), `log_prob` is

  ```none
  log pi(z) + E(z) + log (1/M) sum_m 1 / Z_m(z),
  Z_m(z) = (1/K) (exp E(z) + sum_{j<K} exp E(z_{m,j})),
  ```

  an IWAE-style bound that tightens to log p_K(z) as M grows. (The authors' code averages
  Z_m instead of 1 / Z_m, a looser bound for M > 1; it uses M = 1.)

  #### Examples

  ```python
  from tfp_priors.distributions import SelfNormalizedImportanceSampling

  proposal = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
  snis = SelfNormalizedImportanceSampling(proposal, lambda z: 3.0 * z[..., 0],
                                          num_proposals=64)
  samples = snis.sample(500, seed=[0, 1])
  log_p = snis.log_prob(samples, seed=[1, 2])
  assert samples.shape == (500, 2) and log_p.shape == (500,)
  assert float(tf.reduce_mean(samples[:, 0])) > 1.0
  ```

  #### References

  [1]: John Lawson, George Tucker, Bo Dai, Rajesh Ranganath. Energy-Inspired Models: Learning
       with Sampler-Induced Distributions. In _Neural Information Processing Systems
       (NeurIPS)_, 2019. https://arxiv.org/abs/1910.14265

  [2]: Jyoti Aneja, Alexander Schwing, Jan Kautz, Arash Vahdat. A Contrastive Learning
       Approach for Training Variational Autoencoder Priors. In _NeurIPS_, 2021.
  """

  def __init__(self, proposal, log_energy_fn, num_proposals=1024, num_bound_samples=1,
               validate_args=False, allow_nan_stats=True,
               name="SelfNormalizedImportanceSampling"):
    """Builds the distribution.

    Args:
      proposal: `tfd.Distribution` pi with scalar batch shape and rank-1 event shape [d];
        its `log_prob` may itself be a lower bound.
      log_energy_fn: callable z [..., d] -> E(z) [...] (unnormalized log weights, any real).
      num_proposals: K >= 1, proposals per sample and in the bound's Z_m.
      num_bound_samples: M >= 1, independent draws of the K - 1 proposals in `log_prob`.
      validate_args, allow_nan_stats: passed to `tfd.Distribution`.
      name: name scope.

    Raises:
      ValueError: K < 1, M < 1, or a proposal of the wrong event or batch shape.
    """
    parameters = dict(locals())
    over_latent.check_latent_distribution(proposal, "the proposal")
    self._proposal = self._latent = proposal
    self._log_energy_fn = log_energy_fn
    self._num_proposals = validate_count("num_proposals K", num_proposals)
    self._num_bound_samples = validate_count("num_bound_samples M", num_bound_samples)
    super().__init__(
        dtype=proposal.dtype, reparameterization_type=tfd.NOT_REPARAMETERIZED,
        validate_args=validate_args, allow_nan_stats=allow_nan_stats, parameters=parameters,
        name=name)

  @property
  def proposal(self):
    return self._proposal

  @property
  def num_proposals(self):
    """K."""
    return self._num_proposals

  @property
  def num_bound_samples(self):
    """M."""
    return self._num_bound_samples

  def log_energy(self, z):
    """E(z) [...] for z [..., d]."""
    return self._log_energy_fn(z)

  def log_prob(self, value, name="log_prob", seed=None, **kwargs):
    """The K-sample lower bound on log p_K(z) (class docstring), [...] nats for z [..., d].

    Args:
      value: z [..., d].
      name: name scope.
      seed: stateless seed of the K - 1 proposals (None: a fresh stateful draw per call).
      **kwargs: passed to `tfd.Distribution.log_prob`.

    Raises:
      ValueError: a z whose last axis is not d.
    """
    return super().log_prob(value, name=name, seed=seed, **kwargs)

  def _log_prob(self, z, seed=None):
    k, m = self._num_proposals, self._num_bound_samples
    log_energy = self._log_energy_fn(z)  # [...]
    # Z_m needs exp E of the K - 1 other proposals: log sum_j exp E(z_{m,j}), [M].
    others = self._proposal.sample([m, k - 1], seed=tfp.random.sanitize_seed(seed))
    log_sum_others = tf.reduce_logsumexp(self._log_energy_fn(others), axis=-1)
    log_sum_others = tf.reshape(log_sum_others, [m] + [1] * (z.shape.rank - 1))
    log_z_m = tfp.math.log_add_exp(log_energy, log_sum_others)  # [M, ...]
    log_z_m -= tf.math.log(tf.cast(k, log_z_m.dtype))
    log_mean_reciprocal = (tf.reduce_logsumexp(-log_z_m, axis=0)
                           - tf.math.log(tf.cast(m, log_z_m.dtype)))
    return self._proposal.log_prob(z) + log_energy + log_mean_reciprocal

  def _sample_n(self, n, seed=None):
    """Exact samples [n, d]: the selection is sampling-importance-resampling with K
    proposals per sample and weights exp E (`samplers.sampling_importance_resampling`, at
    most PROPOSALS_PER_CHUNK proposals in memory)."""
    return sir.sampling_importance_resampling(
        self._proposal, self._log_energy_fn, n, self._num_proposals, seed=seed,
        max_proposals_per_chunk=PROPOSALS_PER_CHUNK).samples
