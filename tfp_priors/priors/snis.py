"""SNIS: a prior that selects one of K proposals by a learned energy (Lawson et al. 2019).

Source: Lawson, Tucker, Dai & Ranganath (2019), "Energy-Inspired Models", Sec. 3; the energy
network, K and the estimator follow the authors' `eim/models/nis.py` and `eim/mnist.py`
(google-research): E = MLP[d - 100 - 100 - 1], tanh, linear output, K - 1 reparameterized
proposal samples shared across the batch.
"""
import gin

from tfp_priors import distributions
from tfp_priors.nets import MLP
from tfp_priors.priors import interface


@gin.configurable
@interface.register("snis")
class SnisPrior(interface.Prior):
  """Self-normalized importance sampling (SNIS) prior of Lawson et al. (2019), 'snis'.

  A proposal prior pi (any registered prior, default 'normal', as LARS's proposal) and a
  learned energy E(z) = MLP(z) (MLP[d - 100 - 100 - 1], tanh, linear output: the network of
  LARS's a(z) without the logistic); a sample is one of K proposals (default K = 1024)
  selected with probability proportional to exp E. `distribution()` is a
  `distributions.SelfNormalizedImportanceSampling` with event shape [latent_size]: `sample` is
  exact, `log_prob` (z [..., d] -> [...] nats) is the K-sample lower bound with M
  (`num_bound_samples`, default 1) draws of the K - 1 other proposals, shared by every z of a
  call. Training maximises the ELBO with that bound in place of log p(z) (the authors' code;
  Aneja et al. Table 2 reports the IWAE bound with it), so the ELBO, the IWAE test NLL and
  the export's `log_likelihood` are bounds on log p(x) under the SNIS prior, not estimates
  of it. The gradient reaches E, the proposal's variables (through log pi(z) and through the
  reparameterized proposal samples) and the encoder (through z); not E's output bias, since
  the selection and the bound are invariant to E -> E + c (as in the authors' code).

  There is no normalizing constant to estimate and nothing to finalize: the bound needs only
  proposal samples.

  Raises:
    ValueError: K < 1, M < 1, or a proposal of another latent size.

  #### Mathematical details

  ```none
  p_K(z) = pi(z) exp(E(z)) E_{z_j ~ pi}[1 / ((1/K)(exp E(z) + sum_{j<K} exp E(z_j)))],
  log p_K(z) >= E[log pi(z) + E(z) - log((1/K)(exp E(z) + sum_{j<K} exp E(z_j)))],
  ```

  (Lawson et al. Sec. 3); as K -> inf, p_K -> pi(z) exp(E(z)) / Z.

  #### Examples

  ```python
  from tfp_priors.priors import SnisPrior

  prior = SnisPrior(latent_size=2, hidden_sizes=(8,), num_proposals=32)
  z = tf.random.stateless_normal([6, 2], seed=[0, 1])
  log_p, statistics = prior.training_log_prob(z, log_posterior=tf.zeros([6]), seed=[1, 2])
  assert log_p.shape == (6,) and prior.sample(4, seed=[2, 3]).shape == (4, 2)
  ```

  #### References

  [1]: John Lawson, George Tucker, Bo Dai, Rajesh Ranganath. Energy-Inspired Models: Learning
       with Sampler-Induced Distributions. In _Neural Information Processing Systems
       (NeurIPS)_, 2019. https://arxiv.org/abs/1910.14265
  """

  log_prob_is_lower_bound = True

  def __init__(self, latent_size, proposal="normal", hidden_sizes=(100, 100),
               num_proposals=1024, num_bound_samples=1, name="snis_prior"):
    """Args:
      latent_size: d.
      proposal: registry name of the proposal prior, or a `Prior` instance.
      hidden_sizes: hidden units of E(z) (tanh).
      num_proposals: K, proposals per sample and per bound.
      num_bound_samples: M, draws of the K - 1 other proposals per `log_prob` call.
      name: module name.

    Raises:
      ValueError: K < 1, M < 1, or a proposal of another latent size.
    """
    super().__init__(latent_size, name=name)
    self.num_proposals = distributions.snis.validate_count("num_proposals K", num_proposals)
    self.num_bound_samples = distributions.snis.validate_count("num_bound_samples M",
                                                               num_bound_samples)
    if isinstance(proposal, str):
      proposal = interface.build_prior(latent_size, name=proposal)
    if proposal.latent_size != self.latent_size:
      raise ValueError(f"proposal latent size {proposal.latent_size} != {self.latent_size}.")
    self.proposal = proposal
    self.energy_net = MLP(latent_size, hidden_sizes, 1, activation="tanh", name="energy")

  def log_energy(self, z):
    """E(z) = MLP(z): z [..., d] -> [...], nats (unnormalized log weights)."""
    return self.energy_net(z)[..., 0]

  def initialize(self, z):
    """Initialises the proposal on posterior samples z [N, d] (e.g. a flow's ActNorm)."""
    self.proposal.initialize(z)

  def distribution(self):
    return distributions.SelfNormalizedImportanceSampling(
        self.proposal.distribution(), self.log_energy, self.num_proposals,
        self.num_bound_samples)

  def training_log_prob(self, z, log_posterior, seed=None):
    """The K-sample lower bound on log p(z_r) [R] (nats), the K - 1 proposals drawn with
    `seed` and shared by the batch; no statistics."""
    del log_posterior
    return self.distribution().log_prob(z, seed=seed), {}
