"""The interface every trainable prior implements, and the registry of prior names."""
import contextlib
import threading

import gin
import tensorflow as tf

_REGISTRY = {}  # registry name -> prior class
_ALIASES = {}  # former registry name -> registry name (old configs and run directories)
_DEFERRED = threading.local()  # .depth > 0 inside `deferred_state()`


def register(name, aliases=()):
  """Class decorator: makes a prior constructible by `build_prior(latent_size, name)`.

  Args:
    name: the registry name (the class's `registry_name`).
    aliases: former names that `build_prior` and `canonical_name` still accept for it, so
      that old gin configs and the config.gin of old run directories keep working.

  Raises:
    ValueError: a name or alias that is already taken.
  """
  def wrap(cls):
    for n in (name, *aliases):
      if n in _REGISTRY or n in _ALIASES:
        raise ValueError(f"the prior name {n!r} is already registered.")
    _REGISTRY[name] = cls
    _ALIASES.update({alias: name for alias in aliases})
    cls.registry_name = name
    return cls
  return wrap


def canonical_name(name):
  """The registry name that `name` stands for: `name` itself, or the current name of a former
  one (e.g. 'rnvp' -> 'xu_realnvp'). Compare names read from a config with a prior's
  `registry_name` through it. Unknown names are returned unchanged."""
  return _ALIASES.get(name, name)


def registered_class(name):
  """The prior class registered under `name` (or a former name of it).

  Raises:
    ValueError: an unknown name; the message lists the registered ones.
  """
  if canonical_name(name) not in _REGISTRY:
    raise ValueError(f"unknown prior {name!r}; registered priors: {sorted(_REGISTRY)}. "
                     f"Set e.g. build_prior.name = 'lars' in the gin config.")
  return _REGISTRY[canonical_name(name)]


@contextlib.contextmanager
def deferred_state():
  """Priors constructed inside (in this thread) leave the state they can compute on first use
  to that first use (`Prior.initialize_state`; LARS: the EMA's starting <Z>, a 2^14-sample
  estimate) instead of computing it in the constructor.

  For code that restores a prior from a checkpoint or calls `initialize(z)` before using it
  (the trainer, the figures, the export), where the constructor's work is thrown away. The
  numbers are the same either way: the first use computes what the constructor would have,
  from the same, untouched weights and the same seed, and keeps a restored value.
  """
  _DEFERRED.depth = state_deferred_depth() + 1
  try:
    yield
  finally:
    _DEFERRED.depth -= 1


def state_deferred_depth():
  """How many `deferred_state()` contexts are open in this thread (0: none)."""
  return getattr(_DEFERRED, "depth", 0)


@gin.configurable(denylist=["model", "defer_state"])
def build_prior(latent_size, name="normal", model=None, defer_state=False):
  """Builds the prior registered under `name` over a latent of size `latent_size`.

  `name` may also be a former name of a prior (`register`'s aliases, e.g. 'rnvp' for
  'xu_realnvp'). Other constructor arguments come from gin (e.g. `LarsPrior.truncation = 100`).
  Priors whose class sets `requires_model = True` (VampPrior: it encodes pseudo-inputs with
  the model's encoder) are also given `model=model`. `defer_state=True` constructs it inside
  `deferred_state()` (a caller that restores or `initialize`s the prior next).

  Raises:
    ValueError: for an unknown name (the message lists the registered ones), or a prior that
      needs the model when `model` is None.
  """
  name = canonical_name(name)
  cls = registered_class(name)
  if cls.requires_model and model is None:
    raise ValueError(f"the prior {name!r} is built from the model's encoder; call "
                     f"build_prior(latent_size, name={name!r}, model=model).")
  kwargs = {"model": model} if cls.requires_model else {}
  with deferred_state() if defer_state else contextlib.nullcontext():
    return cls(latent_size=latent_size, **kwargs)


class Prior(tf.Module):
  """A trainable prior p(z) over z in R^d, the base class of every registered prior.

  Every prior owns its variables (a `tf.Module`: `trainable_variables` and checkpoints reach
  them) and builds a `tfd.Distribution` (`distribution()`, event shape [latent_size]), used for
  evaluation, sampling and export. Training goes through `training_log_prob`, the single place
  where a prior may need more than `log_prob` (LARS: Algorithm 1's EMA estimate of Z). Log
  densities are in nats. The class attributes `requires_model`, `symmetric`,
  `has_acceptance_function`, `has_noise_contrastive_loss`, `console_statistics` and
  `log_prob_is_lower_bound` declare
  capabilities that the trainer, the export and the figures read instead of probing methods.

  A subclass implements `distribution()`; every other method has a default.

  Raises:
    ValueError: latent_size < 1 (in the constructor).

  #### Mathematical details

  The prior enters the ELBO of a VAE (Bauer & Mnih, Eq. 1) through the single-sample KL
  estimate log q(z|x) - log p(z) (Bauer & Mnih, appendix A.4):

  ```none
  ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)),
  ```

  and maximising it over the prior minimises KL(q(z) || p(z)) to the aggregate posterior
  q(z) = E_x q(z|x) (Bauer & Mnih, Eq. 2). `training_log_prob(z, log_posterior)` returns
  log p(z) [R] for one posterior sample per datapoint; `latent_log_prob(forward)` returns
  log p(z_top) + log p(z_rest | z_top) [K, B] for the evaluation.

  #### Examples

  ```python
  from tfp_priors.priors import Prior

  class LaplacePrior(Prior):

    def distribution(self):
      return tfd.Independent(tfd.Laplace(tf.zeros([self.latent_size]), 1.0), 1)

  prior = LaplacePrior(latent_size=3)
  z = prior.sample(5, seed=[0, 1])
  log_p, statistics = prior.training_log_prob(z, log_posterior=tf.zeros([5]))
  assert z.shape == (5, 3) and log_p.shape == (5,) and statistics == {}
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  def __init__(self, latent_size, name=None):
    super().__init__(name=name)
    if int(latent_size) < 1:
      raise ValueError(f"latent_size must be >= 1, got {latent_size}.")
    self.latent_size = int(latent_size)

  registry_name = None  # set by `register`

  # Declared capabilities: the trainer, export and figures read these, never probe methods.
  # Whether `build_prior` passes model= (VampPrior encodes pseudo-inputs with it).
  requires_model = False
  # Whether the distribution is symmetric about the origin (enables antithetic estimators).
  symmetric = False
  # A resampled prior pi(z) a(z) / Z: `proposal` and `log_acceptance(z)` exist (LARS).
  has_acceptance_function = False
  # A density-ratio prior: `noise_contrastive_loss` trains its classifier (NCP, implicit).
  has_noise_contrastive_loss = False
  # Names among `training_log_prob`'s statistics that the trainer prints (LARS: <Z>).
  console_statistics = ()
  # `distribution().log_prob` is a lower bound on log p(z) (in expectation), not the density
  # itself (SNIS): the export names its output so, and the NLLs are bounds under it.
  log_prob_is_lower_bound = False

  def distribution(self):
    """Returns a `tfd.Distribution` with event shape [latent_size]."""
    raise NotImplementedError

  def initialize_state(self):
    """Computes the state that a constructor inside `deferred_state()` left to first use
    (LARS: the EMA's starting value <Z>_0). Priors with such state call it themselves on
    first use (also inside a `tf.function` or a tf.distribute replica step), so an explicit
    call only moves the cost to a chosen moment; a no-op by default and once done. Returns
    self."""
    return self

  def initialize(self, z):
    """Data-dependent initialisation from posterior samples z [N, d] (e.g. ActNorm, Kingma &
    Dhariwal 2018). Called once by the trainer before the first step of a fresh run; a no-op
    for priors that need none."""
    del z

  def sample(self, num_samples, seed=None):
    """[num_samples, d] samples for generation and export (default: `distribution().sample`;
    the implicit prior samples its aggregate posterior instead)."""
    return self.distribution().sample(num_samples, seed=seed)

  def sample_with_statistics(self, num_samples, seed=None):
    """Samples as `sample`, with the sampler's statistics for TensorBoard (run eagerly).

    Returns:
      ([num_samples, d], {name: scalar}); no statistics by default, LARS adds its exact
      sampler's acceptance rate.

    Raises:
      tf.errors.InvalidArgumentError: a sampler that ran out of its budget (untruncated LARS).
    """
    return self.sample(num_samples, seed=seed), {}

  def export_signatures(self, decode_fn):
    """SavedModel signatures beyond `sample` and `log_prob` (`tfp_priors.export`).

    Args:
      decode_fn: fn(z [N, d], seed) -> {'images', 'latents'}, the export's decoder.

    Returns:
      {name: `tf.function` with an input signature}; none by default (energy-based priors:
      `sample_langevin`).
    """
    del decode_fn
    return {}

  def noise_contrastive_loss(self, model, x, seed=None, training=True):
    """NCE loss of a density-ratio prior's classifier; only where `has_noise_contrastive_loss`.

    Raises:
      NotImplementedError: for every other prior.
    """
    del model, x, seed, training
    raise NotImplementedError(f"{type(self).__name__} is not a density-ratio prior and has no "
                              f"noise-contrastive loss; use e.g. build_prior.name = 'ncp'.")

  def decode(self, model, z_top, seed=None):
    """Data-space means for prior samples z_top [N, d] (default `model.decode`; hierarchical
    NCP also reweights the lower group)."""
    return model.decode(z_top, seed=seed)

  def objective_variables(self, objective):
    """The variables a training phase with `objective` ('elbo', 'maximum_likelihood',
    'noise_contrastive') updates; all trainable variables unless a prior says otherwise."""
    del objective
    return list(self.trainable_variables)

  def refresh_log_normalizer(self, num_samples=None, seed=0):
    """Re-estimates the log Z that the density needs for the current weights (LARS, NCP),
    e.g. before each validation NLL; None for priors without one (normalised densities, or
    the implicit prior's log Z taken as 0).

    Returns:
      `estimators.NormalizerEstimate` or None.
    """
    del num_samples, seed
    return None

  def finalize(self, model, train_batches, normalizer_samples=None, seed=0, log_fn=None):
    """Called once after training, before evaluation and export: estimates what the density
    or the sampler needs (LARS, NCP: log Z; implicit prior: its aggregate-posterior bank).

    Args:
      model: the trained model. train_batches: a finite iterable of training batches [B, D].
      normalizer_samples: S for log Z estimates (None: the estimator's default).
      seed: int. log_fn: console output or None.

    Returns:
      dict of scalars for metrics.json (nats where they are log densities).
    """
    del model, train_batches, normalizer_samples, seed, log_fn
    return {}

  def latent_log_prob(self, forward):
    """log p(z_top, z_rest) of all of a model's latents, for the ELBO and IWAE evaluation.

    Args:
      forward: a model's `models.common.Forward` (z_top [K, B, d], log_prior_rest [K, B]).

    Returns:
      [K, B] nats: by default log p(z_top) (`distribution()`) + the model's own
      log p(z_rest | z_top); the hierarchical NCP also reweights the lower group.
    """
    return self.distribution().log_prob(forward.z_top) + forward.log_prior_rest

  def extra_evaluation_densities(self):
    """{name: fn(forward) -> [K, B] nats}: other latent densities whose test NLL is also
    reported, as 'nll_<name>' (hierarchical NCP: the top group reweighted alone); none by
    default."""
    return {}

  def training_log_prob(self, z, log_posterior, seed=None):
    """log p(z) for a training step, with any side statistics to log.

    Args:
      z: [R, d] one posterior sample per datapoint, z_r ~ q(z|x_r).
      log_posterior: [R] log q(z_r|x_r) in nats (used by LARS's Algorithm 1).
      seed: stateless seed for any sampling the prior does.

    Returns:
      (log_prob [R] in nats, dict of scalar tensors to log).
    """
    del log_posterior, seed
    return self.distribution().log_prob(z), {}
