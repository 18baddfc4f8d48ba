"""LARS: a resampled prior with a learned acceptance function over any proposal prior.

Source: Bauer & Mnih (2019), Eq. (3)-(4), Algorithm 1 (appendix A.4), architecture of a(z)
in appendix C.2: MLP[d - 100 - 100 - 1], tanh, logistic output; T = 100; S = 2^10.
"""
import math
import time
import warnings

import gin
import tensorflow as tf

from tfp_priors import distributions
from tfp_priors import replicas
from tfp_priors.estimators import ema as ema_lib
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.nets import MLP
from tfp_priors.priors import interface


@gin.configurable
@interface.register("lars")
class LarsPrior(interface.Prior):
  """Learned Accept/Reject Sampling (LARS) prior of Bauer & Mnih (2019), registered as 'lars'.

  A proposal prior pi (any registered prior, default 'normal') resampled by a learned
  acceptance function a(z) = sigmoid(MLP(z)) in [0, 1] (appendix C.2: MLP[d - 100 - 100 - 1],
  tanh, logistic output), truncated after T proposals (default T = 100). `distribution()` is a
  `distributions.Resampled` with event shape [latent_size]; log_prob: z [..., d] -> [...]
  nats; exact samples by truncated rejection sampling (`rejection_sample`).

  State (all checkpointed): the acceptance network, the proposal prior's variables, the EMA
  <Z> of Algorithm 1 (`moving_average`) and, once evaluated, a high-accuracy estimate
  `evaluation_log_normalizer` (NaN until `estimate_log_normalizer` ran). `distribution()` uses
  the evaluation estimate when present, else the EMA.

  The EMA's starting value <Z>_0 is a 2^14-sample estimate of Z (seed 0) for the constructed
  a(z) and proposal (`initialize_state`). The constructor computes it, so that a prior built
  directly is complete at once (its `variables` hold <Z>_0). Built inside
  `interface.deferred_state()` (`build_prior(..., defer_state=True)`) the constructor is light: it
  builds the variables only, `moving_average` holds NaN ("no <Z> yet"), and
  `training_log_prob` and `log_normalizer` (hence `distribution()` and sampling) call
  `initialize_state()` on first use, also while tracing a `tf.function`. That is for callers
  that never need <Z>_0: the trainer's `initialize(z)` re-estimates <Z> before the first step
  of a fresh run, and a resumed run, the figures and the export restore it (the estimate over
  Xu's K = 20 RealNVP proposal takes seconds on a CPU). The first use gets the <Z>_0 the
  constructor would have computed (same samples, same untouched weights: nothing trains them
  before a first use) and keeps a value already in `moving_average` (restored, assigned, or
  set by `initialize`); only weights assigned by hand before the first use give the <Z>_0 of
  the assigned weights.

  Raises:
    ValueError: T < 1, S < 1, epsilon outside (0, 1], or a proposal of another latent size.

  #### Mathematical details

  The resampled density (Eq. 3) and its truncated version (Eq. 4):

  ```none
  p_inf(z) = pi(z) a(z) / Z,  Z = E_pi[a(z)],
  p_T(z) = (1 - alpha_T) pi(z) a(z) / Z + alpha_T pi(z),  alpha_T = (1 - Z)^(T - 1).
  ```

  Training (`training_log_prob`) estimates Z per datapoint by Algorithm 1 (appendix A.4,
  Eq. A.21-A.23) from S proposal samples (default S = 2^10) and the posterior sample z_r,

  ```none
  Z_r = (S Z_S + stop_grad(pi(z_r) / q(z_r|x_r)) a(z_r)) / (S + 1),
  Z_S = 1/S sum_s a(z_s),  z_s ~ pi,
  ```

  smoothed in the forward pass by the EMA <Z>_{i+1} = (1 - epsilon) <Z>_i + epsilon Z_i
  (Eq. A.20). For evaluation, Z = 1/S sum_s a(z_s) with a large S (Eq. 5 / A.17;
  `estimate_log_normalizer`, antithetic for a symmetric proposal).

  #### Examples

  ```python
  from tfp_priors.priors import LarsPrior

  prior = LarsPrior(latent_size=2, hidden_sizes=(8,), truncation=10,
                    num_proposal_samples=64)
  z = tf.random.stateless_normal([6, 2], seed=[0, 1])
  log_p, statistics = prior.training_log_prob(z, log_posterior=tf.zeros([6]), seed=[1, 2])
  samples = prior.rejection_sample(4, seed=[2, 3]).samples
  assert log_p.shape == (6,) and samples.shape == (4, 2)
  assert 0.0 < float(statistics["normalizer"]) <= 1.0
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  has_acceptance_function = True
  console_statistics = ("normalizer",)

  def __init__(self, latent_size, proposal="normal", hidden_sizes=(100, 100), truncation=100,
               num_proposal_samples=2**10, ema_epsilon=0.1, name="lars_prior"):
    """Args:
      latent_size: d.
      proposal: registry name of the proposal prior, or a `Prior` instance.
      hidden_sizes: hidden units of a(z) (tanh).
      truncation: T >= 1, or None for untruncated resampling.
      num_proposal_samples: S, proposal samples per training step for Z_S (Alg. 1).
      ema_epsilon: epsilon of Eq. (A.20) (the paper uses 0.1 or 0.01).
      name: module name.

    Raises:
      ValueError: T < 1, S < 1, epsilon outside (0, 1], or a proposal of another latent size.
    """
    super().__init__(latent_size, name=name)
    self.truncation = distributions.resampled.validate_truncation(truncation)
    if int(num_proposal_samples) < 1:
      raise ValueError(f"num_proposal_samples must be >= 1, got {num_proposal_samples}.")
    if not 0.0 < float(ema_epsilon) <= 1.0:
      raise ValueError(f"ema_epsilon must be in (0, 1], got {ema_epsilon}.")
    if isinstance(proposal, str):
      proposal = interface.build_prior(latent_size, name=proposal)
    if proposal.latent_size != self.latent_size:
      raise ValueError(f"proposal latent size {proposal.latent_size} != {self.latent_size}.")
    self.proposal = proposal
    self.symmetric = False
    self.num_proposal_samples = int(num_proposal_samples)
    self.ema_epsilon = float(ema_epsilon)
    self.acceptance_net = MLP(latent_size, hidden_sizes, 1, activation="tanh",
                              name="acceptance")
    # Under tf.distribute each replica assigns its batch's value; MEAN aggregation makes the
    # stored <Z> the mean over the global batch, identical on every replica. NaN: no <Z> yet
    # (deferred: `initialize_state` sets <Z>_0 on first use).
    self._state_pending = interface.state_deferred_depth() > 0
    self.moving_average = tf.Variable(
        math.nan if self._state_pending else self._initial_normalizer(), trainable=False,
        aggregation=tf.VariableAggregation.MEAN, name="ema_normalizer")
    self.evaluation_log_normalizer = tf.Variable(math.nan, trainable=False,
                                                 aggregation=tf.VariableAggregation.MEAN,
                                                 name="evaluation_log_normalizer")
    self._seconds_per_proposal = None

  def _initial_normalizer(self):
    """Z of the current a(z) and proposal from 2^14 samples: the EMA's starting value."""
    return float(normalizer_lib.estimate_log_normalizer(
        self.proposal.distribution(), self.log_acceptance, 2**14, seed=0).normalizer)

  def initialize_state(self):
    """Sets the EMA's starting value <Z>_0 = `_initial_normalizer()` if the constructor left
    it to first use (`interface.deferred_state()`) and `moving_average` holds no value yet (none
    restored from a checkpoint, assigned, or set by `initialize`).

    Called on first use by `training_log_prob` and `log_normalizer` (also while tracing a
    `tf.function`: the estimate runs eagerly, outside the graph); a no-op when the
    constructor computed <Z>_0, and once done. Returns self.
    """
    if self._state_pending:
      with tf.init_scope():
        if math.isnan(float(self.moving_average.numpy())):
          self.moving_average.assign(self._initial_normalizer())
        self._state_pending = False
    return self

  def initialize(self, z):
    """Initialises the proposal on posterior samples z [N, d] (e.g. a flow's ActNorm) and
    restarts the EMA <Z> from the initialised proposal."""
    self.proposal.initialize(z)
    self.moving_average.assign(self._initial_normalizer())
    self._state_pending = False

  def log_acceptance(self, z):
    """log a(z) = log sigmoid(MLP(z)): z [..., d] -> [...], nats, <= 0."""
    return tf.math.log_sigmoid(self.acceptance_net(z)[..., 0])

  def log_normalizer(self):
    """The log Z used by `distribution()`: evaluation estimate if present, else log <Z>."""
    self.initialize_state()
    ev = self.evaluation_log_normalizer
    return tf.where(tf.math.is_finite(ev), ev, tf.math.log(self.moving_average))

  def distribution(self, log_normalizer=None):
    """`Resampled` over the proposal's distribution with log Z (default `log_normalizer()`)."""
    if log_normalizer is None:
      log_normalizer = self.log_normalizer()
    return distributions.Resampled(self.proposal.distribution(), self.log_acceptance,
                                   truncation=self.truncation, log_normalizer=log_normalizer)

  def training_log_prob(self, z, log_posterior, seed=None):
    """log p_T(z_r) with Z_r from Algorithm 1; updates the EMA <Z> as Eq. (A.20).

    Args:
      z: [R, d] posterior samples. log_posterior: [R] log q(z_r|x_r). seed: stateless seed.

    Returns:
      (log_prob [R] nats, {'normalizer', 'log_normalizer', 'batch_normalizer'}).
    """
    self.initialize_state()
    proposal = self.proposal.distribution()
    # Under tf.distribute each replica evaluates its share of the S samples (Z_S is summed
    # over replicas in the EMA estimate).
    z_s = replicas.replica_share(lambda m: proposal.sample(m, seed=seed),
                                 self.num_proposal_samples)
    # One pass of a(z) over proposal and posterior samples together.
    log_a_s, log_a = tf.split(self.log_acceptance(tf.concat([z_s, z], 0)),
                              [tf.shape(z_s)[0], -1])
    log_pi = proposal.log_prob(z)
    estimate = ema_lib.ema_log_normalizer(
        log_a_s, log_a, log_pi - log_posterior, self.moving_average, self.ema_epsilon)
    self.moving_average.assign(estimate.new_moving_average)
    # The evaluation estimate is stale once a(z) changes.
    self.evaluation_log_normalizer.assign(math.nan)
    log_prob = distributions.resampled.resampled_log_prob(
        log_pi, log_a, estimate.log_normalizer, self.truncation)
    return log_prob, {
        "normalizer": estimate.new_moving_average,
        "log_normalizer": tf.math.log(estimate.new_moving_average),
        "batch_normalizer": estimate.batch_normalizer,
    }

  def expected_sampling_seconds(self, num_samples):
    """Expected wall time of exact sampling of num_samples from p_T on this machine.

    A truncated sampler draws E[min(G, T)] = (1 - (1 - Z)^T) / Z proposals per sample
    (G geometric with success probability Z); the time per proposal is measured once on a
    batch of 1024 (a MAF proposal is slow here: its sampling is d sequential passes).
    """
    if self._seconds_per_proposal is None:
      sample = tf.function(lambda: self.log_acceptance(
          self.proposal.distribution().sample(1024, seed=[0, 0])))
      sample()  # trace
      start = time.perf_counter()
      sample().numpy()
      self._seconds_per_proposal = (time.perf_counter() - start) / 1024
    z = float(tf.exp(self.log_normalizer()))
    if self.truncation is None:
      per_sample = 1.0 / max(z, 1e-30)
    else:
      per_sample = -math.expm1(self.truncation * math.log1p(-min(z, 1.0 - 1e-12))) / z
    return num_samples * per_sample * self._seconds_per_proposal

  def rejection_sample(self, num_samples, seed=None, warn_after_seconds=60.0,
                       max_proposals=None):
    """Exact samples of p_T by truncated rejection sampling (LARS Alg. 2 / Eq. 4).

    Warns (UserWarning, with the expected cost) before a draw expected to take longer than
    `warn_after_seconds`, e.g. many samples over a MAF proposal.

    Args:
      num_samples: n >= 1. seed: stateless seed, int or None. warn_after_seconds: see above.
      max_proposals: untruncated (`truncation = None`) only: the budget of proposals for all
        n samples; default about 2 n / Z with this prior's Z (`rejection.proposal_budget`).

    Returns:
      `samplers.RejectionSample`: samples [num_samples, d], acceptance rate, proposal counts.

    Raises:
      tf.errors.InvalidArgumentError: an untruncated draw used up its budget; the message
        names Z, the proposals per sample and the way out.
    """
    seconds = self.expected_sampling_seconds(num_samples)
    if seconds > warn_after_seconds:
      warnings.warn(
          f"exact sampling of {num_samples} samples from LARS over the "
          f"{self.proposal.registry_name or type(self.proposal).__name__!r} proposal "
          f"is expected to take about {seconds / 60:.1f} minutes here "
          f"({self._seconds_per_proposal * 1e6:.0f} us per proposal sample, "
          f"Z = {float(tf.exp(self.log_normalizer())):.3g}, T = {self.truncation}); draw fewer "
          f"samples or use a proposal that samples in one pass (e.g. 'realnvp').", stacklevel=2)
    return self.distribution().sample_with_acceptance_rate(num_samples, seed=seed,
                                                           max_proposals=max_proposals)

  def sample_with_statistics(self, num_samples, seed=None):
    """`rejection_sample`: (samples [num_samples, d], {'sampler_acceptance_rate'})."""
    result = self.rejection_sample(num_samples, seed=seed)
    return result.samples, {"sampler_acceptance_rate": result.acceptance_rate}

  def acceptance_check(self, num_samples, seed=0, log_fn=None, max_seconds=600.0,
                       max_proposals=None):
    """The exact sampler's acceptance rate on num_samples draws (an estimate of Z), or None,
    with a message to `log_fn`, when the draw is expected to take over `max_seconds` here
    (untruncated sampling at a small Z: 1/Z proposals per sample) or uses up its budget: a
    diagnostic must not end a run."""
    seconds = self.expected_sampling_seconds(num_samples)
    why = None
    if seconds > max_seconds:
      why = f"expected to take {seconds / 60:.0f} minutes here"
    else:
      try:
        return float(self.rejection_sample(num_samples, seed=seed, warn_after_seconds=math.inf,
                                           max_proposals=max_proposals).acceptance_rate)
      except tf.errors.InvalidArgumentError as e:
        why = e.message.splitlines()[0][:400]
    if log_fn:
      log_fn(f"skipped the exact sampler's acceptance check on {num_samples} samples "
             f"(Z = {float(tf.exp(self.log_normalizer())):.3g}, T = {self.truncation}): {why}")
    return None

  def finalize(self, model, train_batches, normalizer_samples=None, seed=0, log_fn=None):
    """Estimates log Z for evaluation (Eq. A.17) and measures the exact sampler's acceptance
    rate on 10,000 samples (None, with a logged message, where that is too slow: see
    `acceptance_check`)."""
    del model, train_batches
    t = time.time()
    est = self.estimate_log_normalizer(num_samples=normalizer_samples, seed=seed, log_fn=log_fn)
    seconds = time.time() - t
    results = normalizer_lib.as_metrics(est)
    results["acceptance_evaluations_per_second"] = est.num_samples / max(seconds, 1e-9)
    results["sampler_acceptance_rate"] = self.acceptance_check(10000, seed=[seed, 1],
                                                               log_fn=log_fn)
    if log_fn:
      log_fn(f"log Z = {results['log_normalizer']:.4f} +- "
             f"{results['log_normalizer_standard_error']:.1e} (Z = {results['normalizer']:.4g},"
             f" S = {results['normalizer_samples']:.1e})")
    return results

  def refresh_log_normalizer(self, num_samples=None, seed=0):
    """`estimate_log_normalizer` (the validation NLL then uses a fresh Z, not the EMA)."""
    return self.estimate_log_normalizer(num_samples, seed=seed)

  def estimate_log_normalizer(self, num_samples=None, chunk_size=10**5, seed=0, log_fn=None):
    """Estimates log Z with S samples (Eq. A.17) and stores it for `distribution()`; log_fn
    gets progress lines with the rate and the ETA.

    Returns:
      `NormalizerEstimate` (float64 scalars; see `estimators.estimate_log_normalizer`).
    """
    estimate = normalizer_lib.estimate_log_normalizer(
        self.proposal.distribution(), self.log_acceptance, num_samples, chunk_size,
        antithetic=self.proposal.symmetric, seed=seed, log_fn=log_fn)
    self.evaluation_log_normalizer.assign(tf.cast(estimate.log_normalizer, tf.float32))
    return estimate
