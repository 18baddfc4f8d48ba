"""Joint training of a VAE/HVAE and its prior by the ELBO, then evaluation and export.

Setup of LARS appendix C.3: Adam, learning rate 3e-4 decayed to 1e-4 (after 10% of training),
KL warm-up over the first 1% of training, batch 128. The papers run 10^7 steps; `num_steps`
sets the budget and the decay / warm-up points scale with it unless given.
"""
import json
import os
import time

from absl import logging
import gin
import numpy as np
import tensorflow as tf
import tf_keras

from tfp_priors import export as export_lib
from tfp_priors import objectives
from tfp_priors import replicas
from tfp_priors.data import pipelines
from tfp_priors.evaluation import images as images_lib
from tfp_priors.evaluation import metrics
from tfp_priors.models import VAE
from tfp_priors.nets import regularization
from tfp_priors.priors import StandardNormalPrior, build_prior
from trainers import distribute as distribute_lib
from trainers import early_stopping as early_stopping_lib
from trainers import strategies


class NonFiniteLossError(FloatingPointError):
  """The loss or a gradient became NaN/inf; the update was skipped and nothing was saved."""


class IncompatibleCheckpointError(ValueError):
  """The workdir holds a checkpoint of a different model, prior or optimizer."""


def learning_rate_function(num_steps, learning_rate=3e-4, final_learning_rate=1e-4,
                           decay_step=None, schedule=None):
  """Piecewise-constant learning rate as a function of the step (a Python int).

  Args:
    num_steps: the training budget.
    learning_rate, final_learning_rate, decay_step: LARS C.3: `learning_rate` until
      `decay_step` (default num_steps // 10), then `final_learning_rate`.
    schedule: overrides the three above: ((fraction, rate), ...), each rate starting at
      fraction * num_steps; fractions increase from 0 (Xu B.3: ((0, 1e-3), (1/3, 1e-4),
      (2/3, 1e-5))).

  Raises:
    ValueError: a schedule that does not start at 0, has decreasing fractions or a rate <= 0.
  """
  if schedule is None:
    decay_step = num_steps // 10 if decay_step is None else decay_step
    pieces = [(0, learning_rate), (int(decay_step), final_learning_rate)]
  else:
    schedule = [tuple(p) for p in schedule]
    fractions = [float(f) for f, _ in schedule]
    if (not schedule or fractions[0] != 0.0 or any(b < a for a, b in zip(fractions, fractions[1:]))
        or any(len(p) != 2 or float(p[1]) <= 0 for p in schedule)):
      raise ValueError(f"train.learning_rate_schedule must be ((0.0, rate), (fraction, rate), "
                       f"...) with increasing fractions and positive rates; got {schedule}.")
    pieces = [(int(round(f * num_steps)), r) for f, r in schedule]
  pieces = [(int(b), float(r)) for b, r in pieces]

  def rate(step):
    return [r for b, r in pieces if b <= step][-1]
  return rate


class Trainer(tf.Module):
  """Holds model, prior, optimizer and step counter; all of them are checkpointed.

  `train_step(x, learning_rate, phase)` is one Adam step of the phase's objective over the
  phase's variables (see `trainers.strategies.Phase`), plus L2 weight decay on the hidden
  kernels among them (Xu B.3). Its random numbers are stateless, seeded by (seed, step), so
  a run is repeatable and a resumed run draws what an uninterrupted one does.

  Under a `tf.distribute` strategy (build model, prior and Trainer inside its `scope()`), each
  of the n replicas takes B/n consecutive examples of the global batch x [B, D] and the
  noise a single device would draw for them (`tfp_priors.replicas`); per-replica gradients of
  loss / n are summed, so the update is that of the global-batch mean loss; the LARS <Z>
  is averaged over replicas and identical on all of them.
  """

  def __init__(self, model, prior, warmup_steps, seed, kl_warmup_start=0.0, weight_decay=0.0,
               early_stopping=None, distribute_strategy=None):
    super().__init__(name="trainer")
    self.model, self.prior = model, prior
    self._distribute = distribute_strategy or tf.distribute.get_strategy()
    self.base_prior = StandardNormalPrior(model.latent_size)
    # The rate is assigned every step from the strategy's schedule.
    self.optimizer = tf_keras.optimizers.Adam(learning_rate=1e-3)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.seed = int(seed)
    self.warmup_steps, self.kl_warmup_start = warmup_steps, float(kl_warmup_start)
    self.weight_decay = float(weight_decay)
    self.model_variables = list(model.trainable_variables)
    self.prior_variables = list(prior.trainable_variables)
    self.train_variables = self.model_variables + self.prior_variables
    self._decayed = {id(k) for k in regularization.hidden_kernels(model, prior)}
    # Slots for every variable up front: phases may train subsets (post-hoc, iterative).
    self.optimizer.build(self.train_variables)
    extra = {} if early_stopping is None else {"early_stopping": early_stopping}
    self.checkpoint = tf.train.Checkpoint(model=model, prior=prior, optimizer=self.optimizer,
                                          step=self.step, **extra)

  def current_step(self):
    """The number of applied updates, a Python int (`int()` does not take a mirrored
    variable)."""
    return int(self.step.numpy())

  @tf.function
  def train_step(self, x, learning_rate, phase=strategies.JOINT):
    """One step; skipped if the loss or a gradient is not finite.

    Args:
      x: [B, D] global batch (B divisible by the number of replicas). learning_rate: scalar
        float32 tensor. phase: a `strategies.Phase` (a Python value: each distinct phase is
        traced once).

    Returns:
      dict of scalars (nats per example, means over the global batch): 'loss',
      'weight_penalty', 'kl_weight', 'finite'; 'elbo', 'reconstruction', 'kl' for the ELBO
      objective, 'cross_entropy' (-E_q(z)[log p(z)]) for maximum likelihood, 'nce_loss' and
      'jensen_shannon' for the noise-contrastive objective; plus the prior's statistics.

    Raises:
      ValueError: B is not divisible by the number of replicas.
    """
    seed = tf.cast(tf.random.experimental.stateless_fold_in(
        tf.constant([self.seed, 1], tf.int64), self.step), tf.int32)
    variables = ((self.model_variables if phase.train_model else [])
                 + (self.prior.objective_variables(phase.objective) if phase.train_prior
                    else []))
    beta = (objectives.kl_weight(tf.cast(self.step, tf.float32) * phase.schedule_scale,
                                 self.warmup_steps, self.kl_warmup_start)
            if phase.train_model else tf.constant(1.0))
    present = []  # indices of the variables that get a gradient (filled at trace time)
    grads, out = self._distribute.run(
        lambda x, seed, beta: self._replica_gradients(x, seed, beta, phase, variables, present),
        args=(x, seed, beta))
    out = {k: self._distribute.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
           for k, v in out.items()}
    finite = tf.equal(out.pop("finite_fraction"), 1.0)

    def apply():
      self.optimizer.learning_rate.assign(learning_rate)
      self.optimizer.apply_gradients(zip(grads, [variables[i] for i in present]),
                                     skip_gradients_aggregation=True)
      self.step.assign_add(1)
      return tf.constant(True)

    tf.cond(finite, apply, lambda: tf.constant(False))
    out["finite"] = finite
    return out

  def _replica_gradients(self, x, seed, beta, phase, variables, present):
    """This replica's share of the step: (summed gradients of the present variables, stats)."""
    replica, count = replicas.replica_position()
    if count > 1:
      if x.shape[0] is not None and x.shape[0] % count:
        raise ValueError(f"the global batch of {x.shape[0]} examples does not split evenly "
                         f"over {count} replicas; set make_datasets.batch_size to a multiple "
                         f"of {count}.")
      size = tf.shape(x)[0] // count
      x = x[replica * size:(replica + 1) * size]
    prior = self.prior if phase.learned_prior else self.base_prior
    with tf.GradientTape() as tape:
      if phase.objective == "elbo":
        terms, stats = objectives.elbo(self.model, prior, x, training=True, seed=seed)
        reconstruction = tf.reduce_mean(terms.reconstruction)
        kl = tf.reduce_mean(terms.kl)
        loss = -(reconstruction - beta * kl)
        out = {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}
      elif phase.objective == "maximum_likelihood":
        cross_entropy, stats = objectives.aggregate_posterior_cross_entropy(
            self.model, prior, x, seed=seed)
        loss = tf.reduce_mean(cross_entropy)
        out = {"cross_entropy": loss}
      else:  # noise_contrastive: the density-ratio classifier (NCP, implicit prior)
        loss, stats = prior.noise_contrastive_loss(self.model, x, seed=seed)
        out = {}
      penalty = regularization.l2_penalty(
          [v for v in variables if id(v) in self._decayed], self.weight_decay)
      total = loss + penalty
      # Summed over replicas, the gradients of total / n are those of the global mean.
      scaled = total / count
    grads = tape.gradient(scaled, variables)
    present[:] = [i for i, g in enumerate(grads) if g is not None]
    grads = [grads[i] for i in present]
    if count > 1:
      grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
    finite = tf.logical_and(tf.math.is_finite(total),
                            tf.math.is_finite(tf.linalg.global_norm(grads)))
    out.update({"loss": loss, "weight_penalty": penalty, "kl_weight": beta,
                "finite_fraction": tf.cast(finite, tf.float32)})
    out.update(stats)
    return grads, out


def _restore(trainer, manager):
  """Restores the latest checkpoint, or explains why the workdir's checkpoint does not fit."""
  if not manager.latest_checkpoint:
    return False
  # Build slot variables first so they are restored, not silently re-created later.
  trainer.optimizer.build(trainer.train_variables)
  try:
    trainer.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
  except (AssertionError, ValueError, IndexError, tf.errors.OpError) as e:
    raise IncompatibleCheckpointError(
        f"the checkpoint {manager.latest_checkpoint} does not match this configuration "
        f"(different model, prior or latent size?): {str(e).splitlines()[0][:300]}. "
        f"Use a new --workdir, or the gin config the checkpoint was trained with. Nothing "
        f"was changed in the workdir.") from e
  return True


@gin.configurable(denylist=["workdir"])
def train(workdir, model_fn=VAE, num_steps=30000, strategy=None, learning_rate=3e-4,
          final_learning_rate=1e-4, decay_step=None, learning_rate_schedule=None,
          warmup_steps=None, kl_warmup_start=0.0, weight_decay=0.0, log_every=500,
          checkpoint_every=5000, image_every=5000, seed=0, evaluate=True, export=True,
          normalizer_samples=None, num_importance_samples=1000, eval_max_examples=None,
          schedule_time_scale=1.0, validation_every=None, validation_importance_samples=100,
          validation_max_examples=None, validation_normalizer_samples=10**6,
          early_stopping_patience=None, distribute=None,
          deterministic=False, print_fn=print):
  """Trains, evaluates and exports; resumes from the latest checkpoint in `workdir/checkpoints`.

  Args:
    workdir: run directory (checkpoints/, TensorBoard events, metrics.json, export/).
    model_fn: model class, called with `train_mean=` (gin: `train.model_fn = @HVAE`).
    num_steps: total training steps (a resumed run continues up to it).
    strategy: `strategies.Joint()` (default), `PostHoc(pretrained_workdir=...)` or
      `Iterative(...)` (gin: `train.strategy = @PostHoc()`).
    learning_rate, final_learning_rate: Adam rates before / after `decay_step`.
    decay_step: default num_steps // 10 (the paper: 10^6 of 10^7), times schedule_time_scale.
    learning_rate_schedule: ((fraction, rate), ...) overriding the three above (Xu B.3).
    warmup_steps: KL warm-up length, default num_steps // 100 (the paper: 10^5 of 10^7), times
      schedule_time_scale.
    kl_warmup_start: beta at step 0 (LARS: 0; Xu et al.: 0.01).
    weight_decay: L2 factor on kernels of non-linear hidden layers (Xu et al.: 1e-4).
    log_every, checkpoint_every, image_every: intervals in steps.
    seed: seed of initialisation and of the training step's stateless random draws (the data
      order and binarization have `make_datasets.seed`).
    deterministic: also make every op deterministic (`tf.config.experimental.
      enable_op_determinism`, for the rest of the process): two runs with one seed then give
      bit-identical weights and metrics on a CPU (`trainers.run --seed=N` sets both).
    evaluate: run the test-set evaluation at the end.
    export: write the SavedModel to workdir/export.
    normalizer_samples: S for the evaluation estimate of Z (None: 10^10 on GPU, 10^7 on CPU).
    num_importance_samples: K of the IWAE test NLL.
    eval_max_examples: evaluate on the first N test examples only (None: all 10,000).
    schedule_time_scale: factor on the default decay step and warm-up length (LARS C.3 halves
      both on static MNIST: 0.5).
    validation_every: validate (IWAE NLL on the validation split) every this many steps and at
      the last step, keep the best weights in workdir/best_checkpoint/ and evaluate, finalize
      and export those (early stopping, LARS C.3); None: no validation, the last weights.
    validation_importance_samples: K of the validation NLL.
    validation_max_examples: validate on the first N validation examples (None: all).
    validation_normalizer_samples: S of the fresh log Z estimate before each validation, for
      priors whose density needs one (LARS, NCP: `Prior.refresh_log_normalizer`), so that the
      best checkpoint is chosen by the same kind of figure as the test NLL (not by the
      training EMA of Algorithm 1).
    early_stopping_patience: stop after this many validations without improvement (None:
      train for num_steps; the best weights are used either way).
    distribute: None (one device), 'mirrored' (all local GPUs / logical CPUs), 'multi_worker'
      (TF_CONFIG) or a `tf.distribute.Strategy`; see `trainers.distribute`. The global batch
      `make_datasets.batch_size` is split over the replicas; the loss trajectory is that of
      one device with the same batch and seed, up to float summation order.
    print_fn: console output (None: silent).

  Returns:
    dict of final metrics (also in workdir/metrics.json).

  Raises:
    NonFiniteLossError: NaN/inf loss; the last checkpoint stays intact.
    IncompatibleCheckpointError: workdir holds a checkpoint of another configuration.
    PretrainedModelError: a post-hoc run's pretrained workdir has no matching trained model.
    DatasetNotFoundError: data missing (see tfp_priors.data).
    ValueError: a bad schedule, strategy or validation setting.
  """
  print_fn = print_fn or (lambda _: None)
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}.")
  if not float(schedule_time_scale) > 0:
    raise ValueError(f"schedule_time_scale must be > 0, got {schedule_time_scale}.")
  if validation_every is not None and int(validation_every) < 1:
    raise ValueError(f"validation_every must be >= 1 steps (or None), got {validation_every}.")
  if early_stopping_patience is not None and validation_every is None:
    raise ValueError("train.early_stopping_patience needs train.validation_every (how often "
                     "to validate).")
  strategy = strategy or strategies.Joint()
  if decay_step is None and learning_rate_schedule is None:
    decay_step = int(num_steps // 10 * schedule_time_scale)
  learning_rate_fn = learning_rate_function(num_steps, learning_rate, final_learning_rate,
                                            decay_step, learning_rate_schedule)
  if warmup_steps is None:
    warmup_steps = int(num_steps // 100 * schedule_time_scale)
  early_stopping = (early_stopping_lib.EarlyStopping(early_stopping_patience)
                    if validation_every else None)
  distribute_strategy = distribute_lib.make_strategy(distribute)
  chief = distribute_lib.worker_index(distribute_strategy) == 0
  workdir = distribute_lib.worker_workdir(workdir, distribute_strategy)
  if deterministic:
    tf.config.experimental.enable_op_determinism()
  tf_keras.utils.set_random_seed(seed)  # python, numpy and TF seeds: same init every run
  strategy.phase(0, num_steps, learning_rate_fn)  # validates the budget before any work
  os.makedirs(workdir, exist_ok=True)
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  data = pipelines.make_datasets(start_step=_saved_step(checkpoint_dir))
  with distribute_strategy.scope():
    model = model_fn(train_mean=data.train_mean)
    prior = build_prior(model.latent_size, model=model)
    trainer = Trainer(model, prior, warmup_steps, seed, kl_warmup_start, weight_decay,
                      early_stopping, distribute_strategy)
  manager = tf.train.CheckpointManager(trainer.checkpoint, checkpoint_dir, max_to_keep=3)
  best_manager = (tf.train.CheckpointManager(
      trainer.checkpoint, os.path.join(workdir, "best_checkpoint"), max_to_keep=1)
                  if early_stopping else None)
  iterator = iter(data.train)
  if _restore(trainer, manager):
    print_fn(f"Resumed from {manager.latest_checkpoint} at step {trainer.current_step()}.")
  else:
    strategy.prepare(model, prior)
  initialization_step = strategy.prior_initialization_step(num_steps)
  with open(os.path.join(workdir, "config.gin"), "w") as f:
    f.write(gin.config_str())

  step = start_step = trainer.current_step()
  writer = tf.summary.create_file_writer(os.path.join(workdir, "train"))
  last_time, last_step = time.time(), start_step
  steps_per_second = float("nan")
  phase_name = None
  with writer.as_default():
    while step < num_steps and not (early_stopping and early_stopping.should_stop):
      phase, rate = strategy.phase(step, num_steps, learning_rate_fn)
      if phase.name != phase_name:
        print_fn(f"step {step}: phase {phase.name} (learning rate {rate:g})")
        phase_name = phase.name
      x = next(iterator)
      if step == initialization_step:
        # Data-dependent initialisation of the prior (e.g. ActNorm) on posterior samples of
        # this step's batch, which it then trains on.
        prior.initialize(model.forward(x, 1, seed=[seed, step]).z_top[0])
      out = trainer.train_step(x, tf.constant(rate, tf.float32), phase)
      step = trainer.current_step()
      if not bool(out["finite"]):
        raise NonFiniteLossError(
            f"the loss became {float(out['loss'])} at step {step + 1}; the update was skipped "
            f"and the last good checkpoint ({manager.latest_checkpoint}) is intact. Lower "
            f"train.learning_rate or check the data, then rerun with the same --workdir to "
            f"resume.")
      if step % log_every == 0 or step == num_steps:
        now = time.time()
        steps_per_second = (step - last_step) / max(now - last_time, 1e-9)
        last_time, last_step = now, step
        scalars = {k: float(v) for k, v in out.items() if k != "finite"}
        scalars["steps_per_second"] = steps_per_second
        scalars["learning_rate"] = rate
        for k, v in scalars.items():
          tf.summary.scalar(k, v, step=step)
        shown = "".join(f" {k}={scalars[k]:.4g}" for k in
                        ("elbo", "kl", "cross_entropy", "normalizer", "nce_loss") if k in scalars)
        print_fn(f"step {step}/{num_steps} loss={scalars['loss']:.2f}{shown} "
                 f"({steps_per_second:.0f} steps/s)")
      if step % image_every == 0:
        _sample_summary(model, prior, data.image_shape, step)
      if early_stopping and (step % validation_every == 0 or step == num_steps):
        _validate(model, prior, data.valid, early_stopping, best_manager, step,
                  validation_importance_samples, validation_max_examples,
                  validation_normalizer_samples, seed, print_fn)
      if step % checkpoint_every == 0:
        manager.save(checkpoint_number=step)
    if manager.latest_checkpoint is None or step != _checkpoint_step(manager):
      manager.save(checkpoint_number=step)

    results = {"num_steps": step, "train_steps_per_second": steps_per_second,
               "prior": prior.registry_name, "model": type(model).__name__,
               "strategy": strategy.name,
               "num_replicas": int(distribute_strategy.num_replicas_in_sync)}
    if not chief:  # the chief finalizes, evaluates and exports the shared weights
      _write_metrics(workdir, results)
      return results
    if early_stopping and best_manager.latest_checkpoint:
      # Evaluate, finalize and export the best weights; later saves go to best_checkpoint/ so
      # that checkpoints/ still resumes from the last step.
      trainer.checkpoint.restore(best_manager.latest_checkpoint).assert_existing_objects_matched()
      manager = best_manager
      results.update(best_step=int(early_stopping.best_step),
                     best_validation_nll=float(early_stopping.best_nll),
                     stopped_early=results["num_steps"] < num_steps)
      print_fn(f"Restored the best validation checkpoint: step {results['best_step']}, "
               f"validation NLL {results['best_validation_nll']:.2f} nats.")
    finalized = prior.finalize(model, data.train.take(_batches_for(data.train, 10000)),
                               normalizer_samples=normalizer_samples, seed=seed,
                               log_fn=print_fn)
    if hasattr(model, "finalize"):  # models with their own normalizer (LARS on outputs)
      finalized = {**(finalized or {}),
                   **model.finalize(prior, seed=seed, log_fn=print_fn)}
    if finalized:
      results.update(finalized)
      manager.save(checkpoint_number=trainer.current_step())
    if evaluate:
      print_fn(f"Evaluating test NLL with K={num_importance_samples} importance samples...")
      results.update(metrics.evaluate(model, prior, data.test, num_importance_samples,
                                      seed=seed, max_examples=eval_max_examples,
                                      log_fn=print_fn))
      for k in ("nll", "elbo", "reconstruction", "kl", "kl_posterior", "active_units"):
        tf.summary.scalar(f"test/{k}", results[k], step=trainer.current_step())
      print_fn(f"test NLL {results['nll']:.2f} nats, ELBO {results['elbo']:.2f}, "
               f"reconstruction {results['reconstruction']:.2f}, KL {results['kl']:.2f}, "
               f"KL(q(z|x) || p(z|x)) {results['kl_posterior']:.2f}, "
               f"active units {results['active_units']}")
  _write_metrics(workdir, results)
  if export:
    path = export_lib.export(model, prior, os.path.join(workdir, "export"), data.image_shape)
    print_fn(f"Exported SavedModel to {path}")
  return results


def _write_metrics(workdir, results):
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)


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
           + (", new best" if improved else
              f", best {float(early_stopping.best_nll):.2f} at step {int(early_stopping.best_step)}"))


def _saved_step(checkpoint_dir):
  """The step stored in the latest checkpoint of checkpoint_dir (0 if none)."""
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  if latest is None:
    return 0
  try:
    return int(tf.train.load_variable(latest, "step/.ATTRIBUTES/VARIABLE_VALUE"))
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise IncompatibleCheckpointError(
        f"cannot read the step counter from {latest} ({e.__class__.__name__}); it is corrupt "
        f"or not a tfp_priors checkpoint. Use a new --workdir; nothing was changed.") from e


def _batches_for(dataset, num_examples):
  """Number of batches of `dataset` that hold at least num_examples examples."""
  batch_size = dataset.element_spec.shape[0] or 1
  return -(-num_examples // int(batch_size))


def _checkpoint_step(manager):
  return int(manager.latest_checkpoint.rsplit("-", 1)[-1])


def _sample_summary(model, prior, image_shape, step, num=64):
  """Image grid of `num` prior samples; for LARS also the sampler's acceptance rate."""
  seed = [0, step % (2**31 - 1)]
  if hasattr(model, "sample_outputs"):  # exact samples of a resampled output distribution
    images, _, rate = model.sample_outputs(prior, num, seed=seed)
    tf.summary.scalar("output_sampler_acceptance_rate", rate, step=step)
    tf.summary.image("samples", images_lib.image_grid(
        tf.reshape(images, [-1] + list(image_shape)))[tf.newaxis], step=step)
    return
  if hasattr(prior, "rejection_sample"):  # exact sampler with its acceptance rate (LARS)
    try:
      result = prior.rejection_sample(num, seed=seed)
    except tf.errors.InvalidArgumentError as e:  # e.g. untruncated LARS at a tiny Z
      logging.warning("step %d: no sample grid: %s", step, e.message.splitlines()[0][:400])
      return
    z = result.samples
    tf.summary.scalar("sampler_acceptance_rate", result.acceptance_rate, step=step)
  else:
    z = prior.sample(num, seed=seed)
  images = tf.reshape(prior.decode(model, z, seed=[1, step % (2**31 - 1)]),
                      [-1] + list(image_shape))
  tf.summary.image("samples", images_lib.image_grid(images)[tf.newaxis], step=step)

