"""The training run: train, validate, checkpoint, finalize, evaluate and export a model and prior.

`train` (gin: `train.*`) is the entry point of `python -m trainers.run`; it groups its
bindings into a `Schedule`, `Intervals`, an `Evaluation` and a `Validation` and hands them to a
`Runner`, whose lifecycle methods a reader finds by name: `setup`, `restore_or_initialize`,
`train_loop` (`train_block`, `maybe_log`, `maybe_sample_images`, `maybe_validate`,
checkpoints), `use_best_weights`, `finalize`, `evaluate` and `export`.

Setup of LARS appendix C.3: Adam, learning rate 3e-4 decayed to 1e-4 (after 10% of training),
KL warm-up over the first 1% of training, batch 128. The papers run 10^7 steps; `num_steps`
sets the budget and the decay / warm-up points scale with it unless given.
"""
import dataclasses
import os
import time
from typing import Any, Optional

from absl import logging
import gin
import tensorflow as tf
import tf_keras
from tensorboard.plugins.hparams import api as hparams

from tfp_priors import export as export_lib
from tfp_priors import objectives
from tfp_priors import progress
from tfp_priors.data import pipelines
from tfp_priors.evaluation import images as images_lib
from tfp_priors.evaluation import classifier as classifier_lib
from tfp_priors.evaluation import metrics
from tfp_priors.evaluation import prior_samples
from tfp_priors.evaluation import sample_quality
from tfp_priors.models import VAE
from tfp_priors.priors import build_prior
from tfp_priors.priors import registered_class
from tfp_priors.training import checkpointing
from tfp_priors import checks
from tfp_priors.training import distribute as distribute_lib
from tfp_priors.training import early_stopping as early_stopping_lib
from tfp_priors.training import strategies
from tfp_priors.training import trainer as trainer_lib
from tfp_priors.training import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The training budget and the schedules of learning rate, KL warm-up and weight decay.

  Attributes:
    num_steps: total training steps (a resumed run continues up to it).
    learning_rate, final_learning_rate: Adam rates before / after `decay_step`.
    decay_step: default num_steps // 10 (the paper: 10^6 of 10^7), times time_scale.
    learning_rate_schedule: ((fraction, rate), ...) overriding the three above (Xu B.3).
    warmup_steps: KL warm-up length, default num_steps // 100 (the paper: 10^5 of 10^7), times
      time_scale.
    kl_warmup_start: beta at step 0 (LARS: 0; Xu et al.: 0.01).
    weight_decay: L2 factor on kernels of non-linear hidden layers (Xu et al.: 1e-4).
    time_scale: factor on the default decay step and warm-up length (LARS C.3 halves both on
      static MNIST: 0.5); `train.schedule_time_scale`.

  Raises:
    BadSettingError: a value that is not a number of the right kind or range (the message names
      the `train.*` binding).
  """
  num_steps: int = 30000
  learning_rate: float = 3e-4
  final_learning_rate: float = 1e-4
  decay_step: Optional[int] = None
  learning_rate_schedule: Any = None
  warmup_steps: Optional[int] = None
  kl_warmup_start: float = 0.0
  weight_decay: float = 0.0
  time_scale: float = 1.0

  def __post_init__(self):
    checks.integer("train.num_steps", self.num_steps, minimum=0)
    checks.number("train.learning_rate", self.learning_rate, positive=True)
    checks.number("train.final_learning_rate", self.final_learning_rate, positive=True)
    checks.integer("train.decay_step", self.decay_step, minimum=0, optional=True)
    checks.integer("train.warmup_steps", self.warmup_steps, minimum=0, optional=True)
    checks.number("train.kl_warmup_start", self.kl_warmup_start, minimum=0, maximum=1)
    checks.number("train.weight_decay", self.weight_decay, minimum=0)
    checks.number("train.schedule_time_scale", self.time_scale, positive=True)

  def learning_rate_fn(self):
    """step -> rate (`trainer.learning_rate_function`), the decay step scaled by time_scale."""
    decay_step = self.decay_step
    if decay_step is None and self.learning_rate_schedule is None:
      decay_step = int(self.num_steps // 10 * self.time_scale)
    return trainer_lib.learning_rate_function(self.num_steps, self.learning_rate,
                                              self.final_learning_rate, decay_step,
                                              self.learning_rate_schedule)

  def kl_warmup_steps(self):
    if self.warmup_steps is None:
      return int(self.num_steps // 100 * self.time_scale)
    return self.warmup_steps


@dataclasses.dataclass(frozen=True)
class Intervals:
  """How often (in steps) the run logs scalars (TensorBoard and one console line), writes a
  grid of 64 samples to TensorBoard and saves a checkpoint, and how many steps at most run in
  one graph call (`steps_per_execution`: `Trainer.train_steps`; blocks end at every interval
  above, so it changes the speed, not what a run computes or writes).

  Raises:
    BadSettingError: an interval that is not an integer >= 1.
  """
  log_every: int = 500
  image_every: int = 5000
  checkpoint_every: int = 5000
  steps_per_execution: int = 100

  def __post_init__(self):
    for field in ("log_every", "image_every", "checkpoint_every", "steps_per_execution"):
      checks.integer(f"train.{field}", getattr(self, field), minimum=1)


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """The final test evaluation and export.

  Attributes:
    evaluate: run the test-set evaluation at the end.
    export: write the SavedModel to workdir/export.
    normalizer_samples: S for the evaluation estimate of Z (None: 10^10 on GPU, 10^7 on CPU).
    num_importance_samples: K of the IWAE test NLL.
    max_examples: evaluate on the first N test examples only (None: all 10,000);
      `train.eval_max_examples`.
    sample_quality: also score N prior samples against N test images in the data set's
      classifier's features (`evaluation.prior_samples`: Fréchet distance, precision and
      recall, predictive entropy; MNIST and Fashion-MNIST only); `train.sample_quality`.
    sample_quality_samples: that N (None: the whole test split); `train.sample_quality_samples`.

  Raises:
    BadSettingError: a count that is not an integer >= 1 (sample_quality_samples: >= 4).
  """
  evaluate: bool = True
  export: bool = True
  normalizer_samples: Optional[int] = None
  num_importance_samples: int = 1000
  max_examples: Optional[int] = None
  sample_quality: bool = False
  sample_quality_samples: Optional[int] = None

  def __post_init__(self):
    checks.integer("train.normalizer_samples", self.normalizer_samples, minimum=1,
                   optional=True)
    checks.integer("train.num_importance_samples", self.num_importance_samples, minimum=1)
    checks.integer("train.eval_max_examples", self.max_examples, minimum=1, optional=True)
    checks.integer("train.sample_quality_samples", self.sample_quality_samples,
                   minimum=sample_quality.NEAREST_NEIGHBORS + 1, optional=True)


@dataclasses.dataclass(frozen=True)
class Validation:
  """Validation NLL and early stopping (LARS C.3); `train.validation_<attribute>`, and
  `train.early_stopping_patience` for `patience`.

  Attributes:
    every: validate (IWAE NLL on the validation split) every this many steps and at the last
      step, keep the best weights in workdir/best_checkpoint/ and evaluate, finalize and
      export those; None: no validation, the last weights.
    importance_samples: K of the validation NLL.
    max_examples: validate on the first N validation examples (None: all).
    normalizer_samples: S of the fresh log Z estimate before each validation, for priors whose
      density needs one (LARS, NCP: `Prior.refresh_log_normalizer`), so that the best
      checkpoint is chosen by the same kind of figure as the test NLL (not by the training
      EMA of Algorithm 1).
    patience: stop after this many validations without improvement (None: train for
      num_steps; the best weights are used either way).

  Raises:
    BadSettingError: a count that is not an integer >= 1.
    ValueError: a patience without `every`.
  """
  every: Optional[int] = None
  importance_samples: int = 100
  max_examples: Optional[int] = None
  normalizer_samples: int = 10**6
  patience: Optional[int] = None

  def __post_init__(self):
    checks.integer("train.validation_every", self.every, minimum=1, optional=True)
    checks.integer("train.validation_importance_samples", self.importance_samples, minimum=1)
    checks.integer("train.validation_max_examples", self.max_examples, minimum=1,
                   optional=True)
    checks.integer("train.validation_normalizer_samples", self.normalizer_samples, minimum=1)
    checks.integer("train.early_stopping_patience", self.patience, minimum=1, optional=True)
    if self.patience is not None and self.every is None:
      raise checks.BadSettingError("train.early_stopping_patience needs "
                                   "train.validation_every (how often to validate).")


@dataclasses.dataclass(frozen=True)
class NonFiniteSteps:
  """When steps with a NaN/inf loss or gradient (`Trainer.train_step` skips their updates and
  counts them) end a run; `train.max_consecutive_skips`, `train.max_skipped_fraction`.

  Attributes:
    max_consecutive: stop after this many skipped steps in a row.
    max_fraction: stop when more than this fraction of the steps so far (at least 100 of
      them counted) were skipped.

  Raises:
    BadSettingError: max_consecutive not an integer >= 1, or max_fraction not in [0, 1].
  """
  max_consecutive: int = 10
  max_fraction: float = 0.05

  def __post_init__(self):
    checks.integer("train.max_consecutive_skips", self.max_consecutive, minimum=1)
    checks.number("train.max_skipped_fraction", self.max_fraction, minimum=0, maximum=1)

  def check(self, step, skipped, consecutive, checkpoint):
    """Raises NonFiniteLossError when `consecutive` or `skipped` (of `step` steps) is too many;
    `checkpoint` (the latest one) is named in the message."""
    if consecutive >= self.max_consecutive:
      why = (f"{consecutive} steps in a row (train.max_consecutive_skips = "
             f"{self.max_consecutive})")
    elif skipped > self.max_fraction * max(step, 100):
      why = (f"{skipped} of {step} steps (above train.max_skipped_fraction = "
             f"{self.max_fraction:g})")
    else:
      return
    raise trainer_lib.NonFiniteLossError(
        f"the loss or a gradient was not finite in {why}; their updates were skipped and the "
        f"last good checkpoint ({checkpoint}) is intact. Lower train.learning_rate or check "
        f"the data, then rerun with the same --workdir to resume.")


class Runner:
  """One training run in `workdir`; `run()` trains (resuming from the latest checkpoint),
  evaluates, writes metrics.json and exports. Arguments: see `train`.

  Raises (from `run`): see `train`.
  """

  def __init__(self, workdir, model_fn=VAE, strategy=None, schedule=Schedule(),
               intervals=Intervals(), evaluation=Evaluation(), validation=Validation(),
               seed=0, deterministic=False, distribute=None, print_fn=print,
               non_finite=NonFiniteSteps()):
    self.model_fn, self.seed, self.deterministic = model_fn, seed, deterministic
    self.non_finite, self.consecutive_skips = non_finite, 0
    self.schedule, self.intervals = schedule, intervals
    self.evaluation, self.validation = evaluation, validation
    self.strategy = strategy or strategies.Joint()
    self.learning_rate_fn = schedule.learning_rate_fn()
    self.early_stopping = (early_stopping_lib.EarlyStopping(validation.patience)
                           if validation.every else None)
    self.distribution = distribute_lib.make_distribution(distribute)
    self.chief = distribute_lib.worker_index(self.distribution) == 0
    self.workdir = distribute_lib.worker_workdir(workdir, self.distribution)
    self.print = print_fn or (lambda _: None)

  def run(self):
    """Returns the dict of final metrics (also in workdir/metrics.json), holding the workdir's
    lock throughout (`workdir.locked`: a second process on it stops at once). Every setting
    is checked first (`check`)."""
    self.check()
    os.makedirs(self.workdir, exist_ok=True)
    with workdir_lib.locked(self.workdir):
      return self._run_locked()

  def _run_locked(self):
    self.setup()
    self.restore_or_initialize()
    self.write_config()
    writer = tf.summary.create_file_writer(
        workdir_lib.path(self.workdir, workdir_lib.TRAIN_EVENTS))
    with writer.as_default():
      self.summarize_config()
      self.train_loop()
      results = self.training_results()
      if not self.chief:  # the chief finalizes, evaluates and exports the shared weights
        workdir_lib.write_metrics(self.workdir, results)
        return results
      results.update(self.use_best_weights(results["num_steps"]))
      results.update(self.finalize())
      if self.evaluation.evaluate:
        results.update(self.evaluate())
    workdir_lib.write_metrics(self.workdir, results)
    if self.evaluation.export:
      self.export()
    return results

  def check(self):
    """What can be checked before any work, changing nothing: the seed, the model class and
    the strategy (with its budget), the data set's and the prior's bound settings, and that
    the workdir can hold a run.

    Raises:
      BadSettingError, WorkdirError or ValueError: naming the setting and the fix.
    """
    checks.integer("train.seed", self.seed, minimum=0)  # numpy's seeds are >= 0
    if not callable(self.model_fn) or isinstance(self.model_fn, tf.Module):
      raise checks.BadSettingError(f"train.model_fn = {self.model_fn!r} is not a model class; "
                                   f"write e.g. train.model_fn = @HVAE (no parentheses).")
    if not isinstance(self.strategy, strategies.Strategy):
      raise checks.BadSettingError(f"train.strategy = {self.strategy!r} is not a training "
                                   f"strategy; write e.g. train.strategy = @PostHoc().")
    self.strategy.phase(0, self.schedule.num_steps, self.learning_rate_fn)  # its budget
    pipelines.check_arguments(**gin.get_bindings("make_datasets"))
    prior_bindings = gin.get_bindings("build_prior")
    if "name" in prior_bindings:
      registered_class(prior_bindings["name"])
    if self.evaluation.sample_quality:
      try:
        classifier_lib.classifier_name(gin.get_bindings("make_datasets").get("name",
                                                                             "dynamic_mnist"))
      except ValueError as e:
        raise checks.BadSettingError(f"train.sample_quality = True: {e}") from None
    workdir_lib.check_usable(self.workdir)

  def setup(self):
    """Seeds, builds data, model, prior, trainer and checkpoint managers."""
    if self.deterministic:
      tf.config.experimental.enable_op_determinism()
    tf_keras.utils.set_random_seed(self.seed)  # python, numpy and TF seeds: same init every run
    workdir_lib.remove_leftovers(self.workdir, self.print)
    checkpoint_dir = workdir_lib.path(self.workdir, workdir_lib.CHECKPOINTS)
    checkpointing.recover_state(checkpoint_dir, self.print)
    saved_step = checkpointing.saved_step(checkpoint_dir)
    if saved_step > self.schedule.num_steps:
      raise ValueError(
          f"train.num_steps = {self.schedule.num_steps} is below step {saved_step}, which the "
          f"run in {self.workdir} has already reached; nothing was changed. Raise "
          f"train.num_steps to train on, or pass a new --workdir.")
    self.data = pipelines.make_datasets(start_step=saved_step)
    with self.distribution.scope():
      self.model = self.model_fn(input_size=self.data.event_size,
                                 train_mean=self.data.train_mean)
      self.prior = build_prior(self.model.latent_size, model=self.model)
      self.trainer = trainer_lib.Trainer(
          self.model, self.prior, self.schedule.kl_warmup_steps(), self.seed,
          self.schedule.kl_warmup_start, self.schedule.weight_decay, self.early_stopping,
          self.distribution)
    self.checkpoints = checkpointing.Checkpoints(self.trainer.checkpoint, self.workdir,
                                                 keep_best=bool(self.early_stopping))
    self.iterator = iter(self.data.train)

  def restore_or_initialize(self):
    """Resumes from the latest checkpoint, or prepares a fresh run (`Strategy.prepare`)."""
    if checkpointing.restore(self.trainer, self.checkpoints.last):
      self.print(f"Resumed from {self.checkpoints.latest} at step "
                 f"{self.trainer.current_step()}.")
    else:
      self.strategy.prepare(self.model, self.prior)
    self.initialization_step = self.strategy.prior_initialization_step(self.schedule.num_steps)

  def write_config(self):
    """config.gin on the first run; a rerun with other bindings keeps it and writes its own
    config-<step>.gin beside it (`workdir.write_config`)."""
    step = self.trainer.current_step()
    written = workdir_lib.write_config(self.workdir, gin.config_str(), step=step)
    if written and step > 0:
      self.print(f"The gin config differs from the first run's (config.gin, kept); this "
                 f"run's, from step {step}, is in {os.path.basename(written)}.")

  def summarize_config(self):
    """TensorBoard: the gin config as text and the run's hyperparameters (hparams plugin;
    its metrics are the test/* scalars of `evaluate`), at the step the run starts from."""
    step = self.trainer.current_step()
    tf.summary.text("config", "```\n" + gin.config_str() + "\n```", step=step)
    hparams.hparams({
        "prior": self.prior.registry_name, "model": type(self.model).__name__,
        "strategy": self.strategy.name, "latent_size": int(self.model.latent_size),
        "num_steps": self.schedule.num_steps, "learning_rate": float(self.schedule.learning_rate),
        "batch_size": int(self.data.train.element_spec.shape[0] or 0), "seed": self.seed})

  def train_loop(self):
    """Steps until the budget is spent or early stopping says stop, then a final checkpoint.

    The steps run in blocks of up to `Intervals.steps_per_execution` per graph call
    (`Trainer.train_steps`); a block ends at every step where something else happens (a log
    line, an image grid, a validation, a checkpoint, a new phase or learning rate, the
    prior's initialisation, the budget), so the run does and writes what a loop of single
    steps does, to the bit.
    """
    num_steps = self.schedule.num_steps
    step = self.trainer.current_step()
    self._last_log = (time.time(), step)
    self.steps_per_second = float("nan")
    phase_name = None
    while step < num_steps and not (self.early_stopping and self.early_stopping.should_stop):
      phase, rate = self.strategy.phase(step, num_steps, self.learning_rate_fn)
      if phase.name != phase_name:
        self.print(f"step {step}: phase {phase.name} (learning rate {rate:g})")
        phase_name = phase.name
      out = self.train_block(step, phase, rate)
      step = self.trainer.current_step()
      self.maybe_log(step, out, phase, rate)
      self.maybe_sample_images(step)
      self.maybe_validate(step)
      if step % self.intervals.checkpoint_every == 0:
        self.checkpoints.save(step)
    self.checkpoints.save_if_new(step)

  def block_length(self, step, phase, rate):
    """The number of steps from `step` to the next step where the loop must act, at most
    `steps_per_execution`, over which phase and learning rate stay (phase, rate)."""
    end = min(step + self.intervals.steps_per_execution, self.schedule.num_steps)
    every = (self.intervals.log_every, self.intervals.image_every,
             self.intervals.checkpoint_every, self.validation.every)
    for interval in filter(None, every):
      end = min(end, (step // interval + 1) * interval)
    if self.initialization_step > step:
      end = min(end, self.initialization_step)
    for later in range(step + 1, end):
      if self.strategy.phase(later, self.schedule.num_steps,
                             self.learning_rate_fn) != (phase, rate):
        return later - step
    return end - step

  def train_block(self, step, phase, rate):
    """Updates on the next batches, from `step` for `block_length` steps (after the prior's
    data-dependent initialisation at `initialization_step`); a step with a non-finite loss or
    gradient is skipped, said and counted, and ends its block.

    Returns:
      The statistics of the block's last step (`Trainer.train_step`).

    Raises:
      NonFiniteLossError: too many skipped steps (`NonFiniteSteps`).
    """
    iterator, length = self.iterator, self.block_length(step, phase, rate)
    if step == self.initialization_step:
      x = next(self.iterator)
      # Data-dependent initialisation of the prior (e.g. ActNorm) on posterior samples of
      # this step's batch, which it then trains on (through an iterator of the same element
      # spec, so that the block's graph is traced once).
      self.prior.initialize(self.model.forward(x, 1, seed=[self.seed, step]).z_top[0])
      iterator, length = iter(tf.data.Dataset.from_tensors(x)), 1
    out = self.trainer.train_steps(iterator, tf.constant(length, tf.int32),
                                   tf.constant(rate, tf.float32), phase)
    steps = int(out.pop("steps"))
    if bool(out["finite"]):
      self.consecutive_skips = 0
      return out
    # Only the last step of a block can be a skipped one: the steps before it were finite.
    self.consecutive_skips = self.consecutive_skips + 1 if steps == 1 else 1
    skipped = self.trainer.current_skipped_steps()
    if skipped <= 10 or skipped % 100 == 0:
      terms = ", ".join(f"{k}={float(v):.4g}" for k, v in out.items() if k != "finite")
      self.print(f"step {step + steps}: non-finite loss or gradient ({terms}); update skipped "
                 f"({skipped} skipped so far).")
    self.non_finite.check(step + steps, skipped, self.consecutive_skips,
                          self.checkpoints.latest)
    return out

  def maybe_log(self, step, out, phase, rate):
    """Every `log_every` steps and at the last: TensorBoard scalars and one console line."""
    if not (step % self.intervals.log_every == 0 or step == self.schedule.num_steps):
      return
    now = time.time()
    self.steps_per_second = (step - self._last_log[1]) / max(now - self._last_log[0], 1e-9)
    self._last_log = (now, step)
    shown = (objectives.training_objective(phase.objective).console
             + tuple(self.prior.console_statistics))
    scalars = {k: float(v) for k, v in out.items() if k != "finite"}
    scalars["steps_per_second"] = self.steps_per_second
    scalars["skipped_steps"] = self.trainer.current_skipped_steps()
    scalars["learning_rate"] = rate
    for k, v in scalars.items():
      tf.summary.scalar(k, v, step=step)
    line = "".join(f" {k}={scalars[k]:.4g}" for k in dict.fromkeys(shown) if k in scalars)
    remaining = (self.schedule.num_steps - step) / max(self.steps_per_second, 1e-9)
    self.print(f"step {step}/{self.schedule.num_steps} loss={scalars['loss']:.2f}{line} "
               f"({self.steps_per_second:.0f} steps/s, ETA {progress.duration(remaining)})")

  def maybe_sample_images(self, step):
    if step % self.intervals.image_every == 0:
      _sample_summary(self.model, self.prior, self.data.image_shape, step)

  def maybe_validate(self, step):
    if self.early_stopping and (step % self.validation.every == 0
                                or step == self.schedule.num_steps):
      v = self.validation
      _validate(self.model, self.prior, self.data.valid, self.early_stopping,
                self.checkpoints.best, step, v.importance_samples, v.max_examples,
                v.normalizer_samples, self.seed, self.print)

  def training_results(self):
    return {"num_steps": self.trainer.current_step(),
            "skipped_steps": self.trainer.current_skipped_steps(),
            "train_steps_per_second": self.steps_per_second,
            "prior": self.prior.registry_name, "model": type(self.model).__name__,
            "strategy": self.strategy.name,
            "num_replicas": int(self.distribution.num_replicas_in_sync)}

  def use_best_weights(self, num_steps_done):
    """With validation: restores the best validation checkpoint for finalize, evaluation and
    export. Returns its step and NLL for metrics.json ({} without validation)."""
    if not (self.early_stopping and self.checkpoints.use_best()):
      return {}
    results = dict(best_step=int(self.early_stopping.best_step),
                   best_validation_nll=float(self.early_stopping.best_nll),
                   stopped_early=num_steps_done < self.schedule.num_steps)
    self.print(f"Restored the best validation checkpoint: step {results['best_step']}, "
               f"validation NLL {results['best_validation_nll']:.2f} nats.")
    return results

  def finalize(self):
    """What the prior's density or sampler (`Prior.finalize`) and the model's outputs
    (`finalize_outputs`) need after training, e.g. log Z; saved with the weights."""
    train_batches = self.data.train.take(_batches_for(self.data.train, 10000))
    finalized = {
        **self.prior.finalize(self.model, train_batches,
                              normalizer_samples=self.evaluation.normalizer_samples,
                              seed=self.seed, log_fn=self.print),
        **self.model.finalize_outputs(self.prior, seed=self.seed, log_fn=self.print)}
    if finalized:
      self.checkpoints.save(self.trainer.current_step())
    return finalized

  def evaluate(self):
    """Test IWAE NLL, ELBO, KL and active units (`evaluation.metrics.evaluate`); with
    `train.sample_quality`, the prior samples' quality too (`prior_samples.evaluate_samples`)."""
    k = self.evaluation.num_importance_samples
    self.print(f"Evaluating test NLL with K={k} importance samples...")
    results = metrics.evaluate(self.model, self.prior, self.data.test, k, seed=self.seed,
                               max_examples=self.evaluation.max_examples, log_fn=self.print,
                               num_examples=self.data.num_test)
    results["num_importance_samples"] = k
    for name in ("nll", "elbo", "reconstruction", "kl", "kl_posterior", "active_units"):
      tf.summary.scalar(f"test/{name}", results[name], step=self.trainer.current_step())
    self.print(f"test NLL {results['nll']:.2f} nats, ELBO {results['elbo']:.2f}, "
               f"reconstruction {results['reconstruction']:.2f}, KL {results['kl']:.2f}, "
               f"KL(q(z|x) || p(z|x)) {results['kl_posterior']:.2f}, "
               f"active units {results['active_units']}")
    if self.evaluation.sample_quality:
      data = gin.get_bindings("make_datasets")
      results.update(prior_samples.evaluate_samples(
          self.model, self.prior, self.data.name, self.evaluation.sample_quality_samples,
          self.seed, data.get("data_dir"), data.get("allow_download", True),
          step=self.trainer.current_step(), log_fn=self.print))
    return results

  def export(self):
    path = export_lib.export(self.model, self.prior,
                             workdir_lib.path(self.workdir, workdir_lib.EXPORT),
                             self.data.image_shape)
    self.print(f"Exported SavedModel to {path}")


@gin.configurable("train", denylist=["workdir"])
def configured_runner(workdir, model_fn=VAE, num_steps=30000, strategy=None,
                      learning_rate=3e-4, final_learning_rate=1e-4, decay_step=None,
                      learning_rate_schedule=None, warmup_steps=None, kl_warmup_start=0.0,
                      weight_decay=0.0, log_every=500, checkpoint_every=5000,
                      image_every=5000, steps_per_execution=100, seed=0, evaluate=True,
                      export=True, normalizer_samples=None, num_importance_samples=1000,
                      eval_max_examples=None, schedule_time_scale=1.0,
                      validation_every=None, validation_importance_samples=100,
                      validation_max_examples=None, validation_normalizer_samples=10**6,
                      early_stopping_patience=None, distribute=None, deterministic=False,
                      max_consecutive_skips=10, max_skipped_fraction=0.05,
                      sample_quality=False, sample_quality_samples=None, print_fn=print):
  """The `Runner` of a run in `workdir`, from the gin bindings `train.*` (not yet run).

  `train` runs it; benchmarks and checks that need the Runner itself (its `check`, `setup`,
  `train_loop`) take it from here.

  The gin surface of a run (`train.num_steps = 1000`). The bindings form a `Runner`'s parts:
  `Schedule` (num_steps, learning_rate, final_learning_rate, decay_step,
  learning_rate_schedule, warmup_steps, kl_warmup_start, weight_decay, schedule_time_scale),
  `Intervals` (log_every, image_every, checkpoint_every, steps_per_execution), `Evaluation`
  (evaluate, export, normalizer_samples, num_importance_samples, eval_max_examples) and
  `Validation` (validation_*, early_stopping_patience); their docstrings say what each does.

  Args:
    workdir: run directory (`tfp_priors.training.workdir` lists what it holds).
    model_fn: a `LatentVariableModel` class called with `train_mean=` (`@HVAE`).
    strategy: `strategies.Joint()` (default), `PostHoc`, `Iterative`, `NoiseContrastive` or
      `Alternating` (gin: `train.strategy = @PostHoc()`).
    seed: seed of initialisation and of the training step's stateless random draws (the data
      order and binarization have `make_datasets.seed`).
    deterministic: also make every op deterministic (`tf.config.experimental.
      enable_op_determinism`): two CPU runs with one seed give bit-identical weights and
      metrics (`trainers.run --seed=N` sets both).
    distribute: None (one device), 'mirrored', 'multi_worker' (TF_CONFIG) or a
      `tf.distribute.Strategy` (`training.distribute`); the global batch is split over the
      replicas.
    max_consecutive_skips, max_skipped_fraction: a step whose loss or gradient is not
      finite is skipped and counted ('skipped_steps' in TensorBoard and metrics.json); the
      run stops after this many in a row, or above this fraction of the steps
      (`NonFiniteSteps`).
    print_fn: console output (None: silent).

  Returns:
    A `Runner`.

  Raises:
    BadSettingError: a `train.*` value of the wrong type or range (`Schedule`, `Intervals`,
      `Evaluation`, `Validation`, `NonFiniteSteps`), before anything is built.
  """
  schedule = Schedule(num_steps, learning_rate, final_learning_rate, decay_step,
                      learning_rate_schedule, warmup_steps, kl_warmup_start, weight_decay,
                      schedule_time_scale)
  validation = Validation(validation_every, validation_importance_samples,
                          validation_max_examples, validation_normalizer_samples,
                          early_stopping_patience)
  evaluation = Evaluation(evaluate, export, normalizer_samples, num_importance_samples,
                          eval_max_examples, sample_quality, sample_quality_samples)
  intervals = Intervals(log_every, image_every, checkpoint_every, steps_per_execution)
  return Runner(workdir, model_fn, strategy, schedule, intervals, evaluation, validation, seed,
                deterministic, distribute, print_fn,
                NonFiniteSteps(max_consecutive_skips, max_skipped_fraction))


def train(workdir, **kwargs):
  """Trains, evaluates and exports; resumes from the latest checkpoint in `workdir/checkpoints`.

  `configured_runner(workdir, **kwargs).run()`: the keyword arguments override the gin
  bindings `train.*` (`configured_runner` documents each one).

  Returns:
    dict of final metrics (also in workdir/metrics.json).

  Raises:
    NonFiniteLossError: too many steps with a NaN/inf loss or gradient; the last checkpoint
      stays intact.
    IncompatibleCheckpointError: workdir holds a checkpoint of another configuration.
    PretrainedModelError: a post-hoc run's pretrained workdir has no matching trained model.
    DatasetNotFoundError: data missing (see tfp_priors.data).
    BadSettingError: a binding of the wrong type or range (`tfp_priors.checks`; a
      ValueError), raised before the workdir is touched.
    WorkdirError: a workdir that is a file, lies under one or cannot be written.
    ValueError: a bad strategy or data-set setting.
  """
  return configured_runner(workdir, **kwargs).run()


def _validate(model, prior, dataset, early_stopping, best_manager, step, num_importance_samples,
              max_examples, normalizer_samples, seed, print_fn):
  """Validation NLL of the current weights, with log Z estimated afresh where the prior needs
  one; saves them to best_manager if they are the best."""
  prior.refresh_log_normalizer(num_samples=normalizer_samples, seed=[seed, step])
  nll = metrics.evaluate(model, prior, dataset, num_importance_samples, seed=seed,
                         max_examples=max_examples)["nll"]
  improved = early_stopping.update(nll, step)
  if improved:
    best_manager.save(checkpoint_number=step)
  tf.summary.scalar("valid/nll", nll, step=step)
  print_fn(f"step {step}: validation NLL {nll:.2f} nats (K={num_importance_samples})"
           + (", new best" if improved else f", best {float(early_stopping.best_nll):.2f} at "
              f"step {int(early_stopping.best_step)}"))


def _batches_for(dataset, num_examples):
  """Number of batches of `dataset` that hold at least num_examples examples."""
  batch_size = dataset.element_spec.shape[0] or 1
  return -(-num_examples // int(batch_size))


def _sample_summary(model, prior, image_shape, step, num=64):
  """Image grid of `num` samples of the model (`LatentVariableModel.sample_images`) and the
  sampler's statistics (LARS: its acceptance rate)."""
  try:
    images, _, stats = model.sample_images(prior, num, seed=[0, step % (2**31 - 1)],
                                           decode_seed=[1, step % (2**31 - 1)], statistics=True)
  except tf.errors.InvalidArgumentError as e:  # e.g. untruncated LARS at a tiny Z
    logging.warning("step %d: no sample grid: %s", step, e.message.splitlines()[0][:400])
    return
  for name, value in stats.items():
    tf.summary.scalar(name, value, step=step)
  images = tf.reshape(images, [-1] + list(image_shape))
  tf.summary.image("samples", images_lib.image_grid(images)[tf.newaxis], step=step)
