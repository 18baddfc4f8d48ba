"""Priors reweighted by a learned density ratio: the noise contrastive prior (NCP) and the
implicit optimal prior.

Both define p(z) = b(z) r(z) / Z over a base prior b, with log r(z) = T(z) the logit of a binary
classifier D(z) = sigmoid(T(z)) trained by noise contrastive estimation to tell
aggregate-posterior samples z ~ q(z) = E_x q(z|x) (label 1) from base samples z ~ b(z)
(label 0): at the optimum T*(z) = log q(z) - log b(z) (Aneja et al. 2021, Eq. 3; Takahashi et
al. 2019, Eq. 12-14). They differ in how they are trained and normalised:
  - `NCPPrior` ('ncp', Aneja et al. Sec. 4): two stages, a VAE with its base prior (any prior
    of the library), then the classifier with the VAE frozen (`strategies.NoiseContrastive`);
    Z = E_b[r(z)] is estimated for likelihood evaluation.
  - `ImplicitPrior` ('implicit', Takahashi et al. Sec. 3): base N(0, I), classifier trained in
    alternation with the VAE (`strategies.Alternating`, Algorithm 1); Z is taken as 1, as the
    paper does, so its test log-likelihood is an estimate; samples come from the aggregate
    posterior by ancestral sampling, as the paper says.
"""
import math

import gin
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors import distributions
from tfp_priors import objectives
from tfp_priors import replicas
from tfp_priors import seeds
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.nets import MLP
from tfp_priors.priors import interface

tfd = tfp.distributions



def noise_contrastive_loss(logits_data, logits_noise):
  """Eq. 3 of Aneja et al. (Eq. 13/20 of Takahashi et al., negated), in nats.

  L = -E_q[log D(z)] - E_b[log(1 - D(z))] with D = sigmoid(T): the SUM of the two binary
  cross-entropies, so that at the optimum JSD(q || b) = log 2 - L* / 2 (Aneja Sec. 5.4).

  Args:
    logits_data: [N] T(z) at aggregate-posterior samples. logits_noise: [M] T(z) at base
      samples.

  Returns:
    (loss scalar, accuracy scalar: fraction of the N + M samples classified correctly).
  """
  loss = (tf.reduce_mean(tf.nn.softplus(-logits_data))
          + tf.reduce_mean(tf.nn.softplus(logits_noise)))
  correct = tf.concat([tf.cast(logits_data > 0, tf.float32),
                       tf.cast(logits_noise <= 0, tf.float32)], 0)
  return loss, tf.reduce_mean(correct)


def nce_statistics(logits_data, logits_noise, suffix=""):
  """(loss, {'nce_loss', 'jensen_shannon', 'classifier_accuracy'} + suffix) of one group."""
  loss, accuracy = noise_contrastive_loss(logits_data, logits_noise)
  return loss, {f"nce_loss{suffix}": loss, f"jensen_shannon{suffix}": jensen_shannon(loss),
                f"classifier_accuracy{suffix}": accuracy}


def jensen_shannon(loss):
  """JSD(q || b) = log 2 - L / 2 in nats from the NCE loss of `noise_contrastive_loss` (exact
  at the optimal classifier; a lower bound otherwise; Goodfellow et al. 2014)."""
  return math.log(2.0) - 0.5 * loss


class DensityRatioPrior(interface.Prior):
  """Base class of the priors reweighted by a learned density ratio (NCP, implicit prior).

  p(z) = b(z) exp(T(z)) / Z over a base prior b (`base`, a `Prior`), with T the logit of a
  binary classifier (`classifier`, an MLP[d - hidden - 1] with optional dropout).
  `distribution()` is a `distributions.Reweighted` (event shape [latent_size]; log_prob:
  z [..., d] -> [...] nats; SIR `sample` with M = `num_proposals`, `sample_langevin`,
  `energy`). Subclasses implement `log_normalizer()` (nats): NCP estimates log Z, the implicit
  prior takes it as 0.

  Variables: the base prior's (trained in stage one / by the VAE, never by NCE) and the
  classifier T's (trained only by `noise_contrastive_loss`, see `objective_variables`), and a
  non-trainable `evaluation_log_normalizer` (NaN until estimated).

  Raises:
    ValueError: num_proposals < 1, a base prior of another latent size.

  #### Mathematical details

  The classifier D(z) = sigmoid(T(z)) is trained by noise contrastive estimation to tell
  aggregate-posterior samples z ~ q(z) (label 1) from base samples z ~ b(z) (label 0),
  Aneja et al. Eq. 3 (Takahashi et al. Eq. 13 and 20, negated):

  ```none
  L = -E_q(z)[log D(z)] - E_b(z)[log(1 - D(z))],
  ```

  minimised at D*(z) = q(z) / (q(z) + b(z)), i.e. T*(z) = log q(z) - log b(z) (Aneja Sec. 4.2;
  Takahashi Eq. 12 and 14), so that b(z) exp(T*(z)) = q(z). At the optimum
  JSD(q || b) = log 2 - L* / 2 (Aneja Sec. 5.4). The density is normalised by
  Z = E_b[exp T(z)] (Aneja Sec. 4); samples come from SIR with importance weights
  r(z) = exp T(z) or from Langevin dynamics on E(z) = -T(z) - log b(z) (Aneja Sec. 4.3).

  #### Examples

  ```python
  from tfp_priors.priors import DensityRatioPrior

  class UnnormalizedRatioPrior(DensityRatioPrior):

    def log_normalizer(self):
      return tf.constant(0.0)

  prior = UnnormalizedRatioPrior(2, "normal", hidden_sizes=(8,), activation="tanh",
                                 dropout_rate=0.0, num_proposals=16, name="ratio_prior")
  z = tf.zeros([3, 2])
  log_p = prior.distribution().log_prob(z)
  expected = prior.base.distribution().log_prob(z) + prior.log_ratio(z)
  np.testing.assert_allclose(log_p, expected, rtol=1e-6)
  assert prior.sample(4, seed=[0, 1]).shape == (4, 2)
  ```

  #### References

  [1]: Jyoti Aneja, Alexander G. Schwing, Jan Kautz, Arash Vahdat. A Contrastive Learning
       Approach for Training Variational Autoencoder Priors. In _Advances in Neural
       Information Processing Systems (NeurIPS)_, 2021. https://arxiv.org/abs/2010.02917

  [2]: Hiroshi Takahashi, Tomoharu Iwata, Yuki Yamanaka, Masanori Yamada, Satoshi Yagi.
       Variational Autoencoder with Implicit Optimal Priors. In _AAAI Conference on
       Artificial Intelligence_, 2019. https://arxiv.org/abs/1809.05284

  [3]: Michael Gutmann, Aapo Hyvärinen. Noise-contrastive estimation: A new estimation
       principle for unnormalized statistical models. In _International Conference on
       Artificial Intelligence and Statistics (AISTATS)_, 2010.
       https://proceedings.mlr.press/v9/gutmann10a.html
  """

  has_noise_contrastive_loss = True

  def __init__(self, latent_size, base_prior, hidden_sizes, activation, dropout_rate,
               num_proposals, name):
    """Raises ValueError: num_proposals < 1, a base prior of another latent size."""
    super().__init__(latent_size, name=name)
    if int(num_proposals) < 1:
      raise ValueError(f"SIR needs at least one proposal; got num_proposals={num_proposals}. "
                       f"Set num_proposals >= 1 (Aneja et al. use 5,000).")
    if isinstance(base_prior, str):
      base_prior = interface.build_prior(latent_size, name=base_prior)
    if base_prior.latent_size != self.latent_size:
      raise ValueError(f"base prior latent size {base_prior.latent_size} != {latent_size}.")
    self.base = base_prior
    self.num_proposals = int(num_proposals)
    self.classifier = MLP(latent_size, hidden_sizes, 1, activation=activation,
                          dropout_rate=dropout_rate, name="classifier")
    self.evaluation_log_normalizer = tf.Variable(math.nan, trainable=False,
                                                 name="evaluation_log_normalizer")

  def log_ratio(self, z, training=False):
    """log r(z) = T(z), nats: z [..., d] -> [...]. `training` applies dropout."""
    return self.classifier(z, training=training)[..., 0]

  def log_normalizer(self):
    """log Z used by `distribution()` (nats)."""
    raise NotImplementedError

  def distribution(self):
    """`distributions.Reweighted(b, T, log Z)`: log_prob, SIR `sample` (M = num_proposals),
    `sample_langevin` and `energy`."""
    return distributions.Reweighted(self.base.distribution(), self.log_ratio,
                                    log_normalizer=self.log_normalizer(),
                                    num_proposals=self.num_proposals)

  def langevin_sample(self, num_samples, step_size, num_steps, seed=None):
    """Langevin dynamics on E(z) = -T(z) - log b(z) from base samples (Aneja Sec. 4.3).
    Returns [num_samples, d]."""
    return self.distribution().sample_langevin(num_samples, step_size=step_size,
                                               num_steps=num_steps, seed=seed)

  def export_signatures(self, decode_fn):
    """{'sample_langevin': fn(num_samples, seed, step_size, num_steps) -> decode_fn's
    outputs}: Langevin dynamics (`langevin_sample`) from base samples, then decoded."""

    @tf.function(input_signature=[
        tf.TensorSpec([], tf.int32, name="num_samples"), tf.TensorSpec([], tf.int32, name="seed"),
        tf.TensorSpec([], tf.float32, name="step_size"),
        tf.TensorSpec([], tf.int32, name="num_steps")])
    def sample_langevin(num_samples, seed, step_size, num_steps):
      tf.debugging.assert_positive(
          num_samples, message="num_samples must be a positive number of samples")
      seed_prior, seed_decoder = tf.unstack(
          tf.random.experimental.stateless_split(tf.stack([seed, 0]), 2))
      z = self.langevin_sample(num_samples, step_size, num_steps, seed=seed_prior)
      return decode_fn(z, seed_decoder)

    return {"sample_langevin": sample_langevin}

  def objective_variables(self, objective):
    """The classifier's variables for the NCE objective; the base prior's otherwise (T is
    trained only by NCE, never by the ELBO or maximum likelihood)."""
    if objective == objectives.NOISE_CONTRASTIVE:
      return list(self.classifier.trainable_variables)
    return list(self.base.trainable_variables)

  def noise_contrastive_loss(self, model, x, seed=None, training=True):
    """NCE loss of Eq. 3 on one batch: z ~ q(z|x) (ancestral sampling of q(z), x from the
    data) against as many base samples; gradients reach the classifier only.

    Args:
      model: a model with `encode_top`. x: [B, D] data. seed: stateless seed.
      training: apply the classifier's dropout.

    Returns:
      (loss scalar in nats, {'nce_loss', 'jensen_shannon', 'classifier_accuracy'}).
    """
    seed_q, seed_b = seeds.split_seed(seed)
    z_data = tf.stop_gradient(replicas.sample_diagonal_normal(model.encode_top(x), seed_q))
    z_noise = tf.stop_gradient(replicas.replica_rows(
        lambda m: self.base.distribution().sample(m, seed=seed_b), tf.shape(z_data)[0]))
    logits = self.log_ratio(tf.concat([z_data, z_noise], 0), training=training)
    return nce_statistics(*tf.split(logits, 2))

  def evaluate_classifier(self, model, train_batches, seed=0):
    """The NCE statistics (final loss L, JSD = log 2 - L/2, Aneja Sec. 5.4) averaged over
    `train_batches`, without dropout. Returns dict of floats (nats)."""
    totals, count = {}, 0
    for i, x in enumerate(train_batches):
      _, stats = self.noise_contrastive_loss(model, x, seed=tf.constant([seed, i], tf.int32),
                                             training=False)
      for k, v in stats.items():
        totals[k] = totals.get(k, 0.0) + float(v)
      count += 1
    means = {k: v / max(count, 1) for k, v in totals.items()}
    # JSD of the mean loss (the estimate at the final classifier), not the mean of JSDs; only
    # for the losses that have one (per group, not their sum).
    for k in list(means):
      jsd = k.replace("nce_loss", "jensen_shannon")
      if k.startswith("nce_loss") and jsd in means:
        means[jsd] = float(jensen_shannon(means[k]))
    return means

  def estimate_log_normalizer(self, num_samples=None, chunk_size=10**5, seed=0):
    """Z = E_b[r(z)] from S base samples (the LARS evaluation estimator, float64 sums).
    Returns `NormalizerEstimate`."""
    return normalizer_lib.estimate_log_normalizer(
        self.base.distribution(), self.log_ratio, num_samples, chunk_size, seed=seed)

  def sir_diagnostics(self, num_samples=100, seed=0):
    """Mean effective sample size of SIR with M = num_proposals (Aneja footnote 5)."""
    result = self.distribution().sample_with_diagnostics(num_samples, seed=[seed, 2])
    return {"sir_effective_sample_size": float(tf.reduce_mean(result.effective_sample_size)),
            "sir_num_proposals": self.num_proposals}


@gin.configurable
@interface.register("ncp")
class NCPPrior(DensityRatioPrior):
  """Noise contrastive prior (NCP) of Aneja et al. (2021, Sec. 4), registered as 'ncp'.

  A `DensityRatioPrior` p_NCP(z) = r(z) b(z) / Z over a base prior b (any registered prior,
  default 'normal'), with log r(z) = T(z) an MLP classifier's logit (default MLP[d - 100 -
  100 - 1], tanh, as LARS's a(z)). Trained in two stages: stage one is an ordinary run with
  the base prior (e.g. `build_prior.name = 'normal'` or 'mog'); stage two (`train.strategy =
  @NoiseContrastive()`) loads that VAE and base prior, freezes them and trains only the
  classifier by Eq. 3. `finalize` estimates Z = E_b[r(z)] for likelihood evaluation (stored
  in `evaluation_log_normalizer`, NaN before), and reports the final NCE loss, the
  Jensen-Shannon divergence and SIR's effective sample size. Samples: SIR with M =
  `num_proposals` base proposals (Aneja et al.: 5,000), or Langevin dynamics
  (`langevin_sample`). `training_log_prob` is the base prior's (stage one trains the VAE with
  b). log_prob: z [..., d] -> [...] nats.

  Raises:
    ValueError: num_proposals < 1, a base prior of another latent size.

  #### Mathematical details

  ```none
  p_NCP(z) = r(z) b(z) / Z,  Z = E_b[r(z)],                                    (Sec. 4)
  min_D -E_q(z)[log D(z)] - E_b(z)[log(1 - D(z))],  D = sigmoid(T),            (Eq. 3)
  r(z) = D*(z) / (1 - D*(z)) = exp T*(z) ~ q(z) / b(z),                        (Sec. 4.2)
  ```

  with z ~ q(z) drawn by ancestral sampling (x from the data, then z ~ q(z|x); footnote 2).
  SIR resamples one of M base proposals with weights r(z^(m)); Langevin dynamics runs
  z_{t+1} = z_t - 0.5 lambda grad E(z_t) + sqrt(lambda) eps_t on E(z) = -log r(z) - log b(z)
  (Sec. 4.3).

  #### Examples

  ```python
  from tfp_priors.models import VAE
  from tfp_priors.priors import NCPPrior

  model = VAE(input_size=16, latent_size=2, hidden_sizes=(8,))
  prior = NCPPrior(latent_size=2, hidden_sizes=(8,), num_proposals=32)
  x = tf.cast(tf.random.stateless_uniform([8, 16], seed=[0, 1]) < 0.5, tf.float32)
  loss, statistics = prior.noise_contrastive_loss(model, x, seed=[1, 2])
  estimate = prior.estimate_log_normalizer(num_samples=4096, chunk_size=4096, seed=0)
  z = prior.sample(3, seed=[2, 3])
  log_p = prior.distribution().log_prob(z)
  assert loss.shape == () and z.shape == (3, 2) and log_p.shape == (3,)
  assert np.isfinite(float(estimate.log_normalizer)) and np.all(np.isfinite(log_p))
  ```

  #### References

  [1]: Jyoti Aneja, Alexander G. Schwing, Jan Kautz, Arash Vahdat. A Contrastive Learning
       Approach for Training Variational Autoencoder Priors. In _Advances in Neural
       Information Processing Systems (NeurIPS)_, 2021. https://arxiv.org/abs/2010.02917

  [2]: Michael Gutmann, Aapo Hyvärinen. Noise-contrastive estimation: A new estimation
       principle for unnormalized statistical models. In _International Conference on
       Artificial Intelligence and Statistics (AISTATS)_, 2010.
       https://proceedings.mlr.press/v9/gutmann10a.html
  """

  def __init__(self, latent_size, base_prior="normal", hidden_sizes=(100, 100),
               activation="tanh", num_proposals=5000, name="ncp_prior"):
    """Args:
      latent_size: d.
      base_prior: registry name of the base prior b (stage one's prior), or a `Prior`.
      hidden_sizes, activation: classifier T = MLP[d - hidden - 1] (default as LARS's a(z)).
      num_proposals: M of SIR sampling (Aneja et al.: 5,000).

    Raises:
      ValueError: num_proposals < 1, a base prior of another latent size.
    """
    super().__init__(latent_size, base_prior, hidden_sizes, activation, 0.0, num_proposals,
                     name)

  def log_normalizer(self):
    """The evaluation estimate of log Z; NaN until `finalize` / `estimate_log_normalizer`."""
    return self.evaluation_log_normalizer

  def training_log_prob(self, z, log_posterior, seed=None):
    """Stage one trains the VAE with the base prior: b(z) (the NCE stage does not use it)."""
    return self.base.training_log_prob(z, log_posterior, seed=seed)

  def estimate_log_normalizer(self, num_samples=None, chunk_size=10**5, seed=0):
    """As `DensityRatioPrior.estimate_log_normalizer`, and stores log Z for `distribution()`."""
    estimate = super().estimate_log_normalizer(num_samples, chunk_size, seed)
    self.evaluation_log_normalizer.assign(tf.cast(estimate.log_normalizer, tf.float32))
    return estimate

  def refresh_log_normalizer(self, num_samples=None, seed=0):
    """`estimate_log_normalizer`: the classifier changes during stage two."""
    return self.estimate_log_normalizer(num_samples, seed=seed)

  def finalize(self, model, train_batches, normalizer_samples=None, seed=0, log_fn=None):
    """Estimates log Z, the final NCE loss / JSD and SIR's effective sample size."""
    results = self.normalizer_metrics(normalizer_samples, seed)
    results.update(self.evaluate_classifier(model, train_batches, seed))
    results.update(self.sir_diagnostics(seed=seed))
    if log_fn:
      log_fn(f"{self.finalize_summary(results)}; SIR ESS "
             f"{results['sir_effective_sample_size']:.1f} of M = {self.num_proposals}")
    return results

  def normalizer_metrics(self, num_samples, seed):
    """Estimates (and stores) what the density needs; metrics.json entries."""
    return normalizer_lib.as_metrics(self.estimate_log_normalizer(num_samples, seed=seed))

  def finalize_summary(self, results):
    """The console line of `finalize` for its results (before the SIR figures)."""
    return (f"log Z = {results['log_normalizer']:.4f} +- "
            f"{results['log_normalizer_standard_error']:.1e} (S = "
            f"{results['normalizer_samples']:.1e}); final NCE loss "
            f"{results['nce_loss']:.4f}, JSD {results['jensen_shannon']:.4f} nats")


@gin.configurable
@interface.register("implicit")
class ImplicitPrior(DensityRatioPrior):
  """Implicit optimal prior of Takahashi et al. (2019), registered as 'implicit'.

  A `DensityRatioPrior` p(z) = N(z; 0, I) exp(T(z)) ~ q(z), the aggregate posterior, with T
  the logit of a classifier MLP[d - 500 - 500 - 1] (tanh, dropout with keep probability 0.5
  while training; Takahashi Sec. 5.2). log_prob: z [..., d] -> [...] nats.

  The VAE maximises Eq. 19, -KL(q(z|x) || N(0, I)) + E_q[log p(x|z) + T(z)], i.e. the ELBO
  with log p(z) = log N(z) + T(z) and KL(q(z|x) || q(z)) estimated by Eq. 15, T evaluated at
  the reparameterised z = mu + sigma eps, so the encoder gets T's path gradient. What Eq. 21
  ignores is the dependence of the optimal T* itself on phi (zero in expectation at T = T*):
  T's variables are not trained by the ELBO; `strategies.Alternating` trains them by Eq. 20
  (Algorithm 1). This is the reading of the authors' code (takahashihiroshi/vae_iop: the
  discriminator, in eval mode, is applied to the reparameterised z without detaching it, and
  only the encoder/decoder optimizer steps).

  log Z is taken as 0 (the paper's "approximately" in Table 2); `finalize` estimates the
  actual log Z = log E_N[exp T] and reports it. Sampling is ancestral sampling from the
  aggregate posterior, as the paper says: `finalize` stores q(z|x_n) of `bank_size` training
  examples and `sample` picks one at random and samples it; before that, SIR.

  State (checkpointed): the classifier T, and the aggregate-posterior bank `bank_loc`,
  `bank_scale` [bank_size, d] and `bank_count` (non-trainable; 0 until `finalize`).

  Raises:
    ValueError: bank_size < 1, num_proposals < 1, dropout_rate outside [0, 1).

  #### Mathematical details

  With T = T* of Eq. 14, T*(z) = log q(z) - log N(z; 0, I), the KL divergence to the
  aggregate posterior is (Eq. 15)

  ```none
  KL(q(z|x) || q(z)) = KL(q(z|x) || N(0, I)) - E_q(z|x)[T*(z)],
  ```

  which gives the objective of Eq. 16-19, maximised over the encoder and decoder:

  ```none
  1/N sum_i [-KL(q(z|x_i) || N(0, I)) + 1/L sum_l {log p(x_i|z_il) + T(z_il)}],
  z_il = mu(x_i) + eps_il * sigma(x_i),  eps_il ~ N(0, I),                       (Eq. 18-19)
  ```

  while T maximises Eq. 20, the Monte Carlo form of Eq. 13; Eq. 21 shows that the gradient of
  T* with respect to the encoder vanishes in expectation. Algorithm 1 alternates J1 VAE
  steps and J2 > J1 classifier steps (`strategies.Alternating`).

  #### Examples

  ```python
  from tfp_priors.priors import ImplicitPrior

  prior = ImplicitPrior(latent_size=2, hidden_sizes=(8, 8), bank_size=16, num_proposals=32)
  z = tf.random.stateless_normal([5, 2], seed=[0, 1])
  log_p, _ = prior.training_log_prob(z, log_posterior=tf.zeros([5]))
  expected = tfd.MultivariateNormalDiag(tf.zeros(2)).log_prob(z) + prior.log_ratio(z)
  np.testing.assert_allclose(log_p, expected, rtol=1e-5)
  assert prior.sample(4, seed=[1, 2]).shape == (4, 2) and int(prior.bank_count) == 0
  ```

  #### References

  [1]: Hiroshi Takahashi, Tomoharu Iwata, Yuki Yamanaka, Masanori Yamada, Satoshi Yagi.
       Variational Autoencoder with Implicit Optimal Priors. In _AAAI Conference on
       Artificial Intelligence_, 2019. https://arxiv.org/abs/1809.05284
  """

  def __init__(self, latent_size, hidden_sizes=(500, 500), activation="tanh",
               dropout_rate=0.5, bank_size=10000, num_proposals=5000, name="implicit_prior"):
    """Args:
      latent_size: d.
      hidden_sizes, activation, dropout_rate: T = MLP[d - 500 - 500 - 1], tanh, dropout with
        keep probability 0.5 while training (Takahashi Sec. 5.2).
      bank_size: training examples whose posteriors are kept for sampling.
      num_proposals: M of SIR (used only before the bank is filled).

    Raises:
      ValueError: bank_size < 1, num_proposals < 1, dropout_rate outside [0, 1).
    """
    super().__init__(latent_size, "normal", hidden_sizes, activation, dropout_rate,
                     num_proposals, name)
    if int(bank_size) < 1:
      raise ValueError(f"bank_size must be >= 1, got {bank_size}.")
    zeros = tf.zeros([int(bank_size), latent_size])
    self.bank_loc = tf.Variable(zeros, trainable=False, name="aggregate_posterior_loc")
    self.bank_scale = tf.Variable(tf.ones_like(zeros), trainable=False,
                                  name="aggregate_posterior_scale")
    self.bank_count = tf.Variable(0, trainable=False, name="aggregate_posterior_count")

  def log_normalizer(self):
    return tf.constant(0.0)

  def training_log_prob(self, z, log_posterior, seed=None):
    """log N(z; 0, I) + T(z) at the reparameterised z (Eq. 18-19), nats: z [R, d] -> [R].

    The path gradient dT/dz dz/dphi reaches the encoder. Eq. 21 drops only the dependence of
    the optimal T* on phi through q_phi(z): T's own variables are not updated by the ELBO
    (`objective_variables('elbo')` excludes them; `strategies.Alternating` freezes the prior
    in its VAE phase). T is evaluated without dropout, as the authors' code does (their
    discriminator is in eval mode during the VAE updates).
    """
    del log_posterior, seed
    return self.base.distribution().log_prob(z) + self.log_ratio(z, training=False), {}

  def sample(self, num_samples, seed=None):
    """Ancestral samples of the aggregate posterior: n ~ U{1..N_bank}, z ~ q(z|x_n); SIR
    from N(0, I) exp(T) while the bank is empty. Returns [num_samples, d]."""
    seed_n, seed_z = seeds.split_seed(seed)
    count = tf.maximum(self.bank_count, 1)

    def from_bank():
      n = tf.random.stateless_uniform([num_samples], seed_n, 0, count, dtype=tf.int32)
      eps = tf.random.stateless_normal([num_samples, self.latent_size], seed_z)
      return tf.gather(self.bank_loc, n) + tf.gather(self.bank_scale, n) * eps

    return tf.cond(self.bank_count > 0, from_bank,
                   lambda: self.distribution().sample(num_samples, seed=seed_z))

  def fill_bank(self, model, train_batches):
    """Stores loc and scale of q(z|x) for the first `bank_size` training examples."""
    locs, scales, size = [], [], int(self.bank_loc.shape[0])
    count = 0
    for x in train_batches:
      q = model.encode_top(x)
      locs.append(q.mean())
      scales.append(q.stddev())
      count += int(x.shape[0])
      if count >= size:
        break
    count = min(count, size)
    loc = tf.concat(locs, 0)[:count]
    scale = tf.concat(scales, 0)[:count]
    pad = [[0, size - count], [0, 0]]
    self.bank_loc.assign(tf.pad(loc, pad))
    self.bank_scale.assign(tf.pad(scale, pad, constant_values=1.0))
    self.bank_count.assign(count)
    return count

  def finalize(self, model, train_batches, normalizer_samples=None, seed=0, log_fn=None):
    """Fills the aggregate-posterior bank; reports the actual log Z (the density uses 0), the
    final NCE loss / JSD and SIR's effective sample size."""
    results = {"aggregate_posterior_bank": self.fill_bank(model, train_batches)}
    estimate = self.estimate_log_normalizer(normalizer_samples, seed=seed)
    results.update({f"implicit_{k}": v for k, v in normalizer_lib.as_metrics(estimate).items()})
    results.update(self.evaluate_classifier(model, train_batches, seed))
    results.update(self.sir_diagnostics(seed=seed))
    if log_fn:
      log_fn(f"implicit prior: log Z taken as 0, estimated {results['implicit_log_normalizer']:.4f}"
             f" +- {results['implicit_log_normalizer_standard_error']:.1e}; final NCE loss "
             f"{results['nce_loss']:.4f}, JSD {results['jensen_shannon']:.4f} nats")
    return results

