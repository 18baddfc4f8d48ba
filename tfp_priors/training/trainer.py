"""One training step of a model and its prior (`Trainer`), and the learning-rate schedule.

The step runs a phase's objective (`tfp_priors.objectives.training_objective`) over the
phase's variables with Adam; `tfp_priors.training.runner` runs the loop around it.
"""
import tensorflow as tf
from tfp_priors import objectives
from tfp_priors import replicas
from tfp_priors.nets import regularization
from tfp_priors.priors import StandardNormalPrior
from tfp_priors.training import optimizers
from tfp_priors.training import strategies


class NonFiniteLossError(FloatingPointError):
  """Too many steps had a NaN/inf loss or gradient (their updates were skipped); the last
  checkpoint holds the weights before them."""


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
  phase's variables (see `tfp_priors.training.strategies.Phase`), plus L2 weight decay on the hidden
  kernels among them (Xu B.3). Its random numbers are stateless, seeded by (seed, step), so
  a run is repeatable and a resumed run draws what an uninterrupted one does.

  Under a `tf.distribute` strategy (build model, prior and Trainer inside its `scope()`), each
  of the n replicas takes B/n consecutive examples of the global batch x [B, D] and the
  noise a single device would draw for them (`tfp_priors.replicas`); per-replica gradients of
  loss / n are summed, so the update is that of the global-batch mean loss; the LARS <Z>
  is averaged over replicas and identical on all of them.
  """

  def __init__(self, model, prior, warmup_steps, seed, kl_warmup_start=0.0, weight_decay=0.0,
               early_stopping=None, distribution=None):
    super().__init__(name="trainer")
    self.model, self.prior = model, prior
    self._distribution = distribution or tf.distribute.get_strategy()
    self.base_prior = StandardNormalPrior(model.latent_size)
    # The rate is assigned every step from the strategy's schedule.
    self.optimizer = optimizers.FusedAdam(learning_rate=1e-3)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps",
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
    # By name, so that `checkpointing.restore` can leave out what an older checkpoint lacks.
    self.checkpoint_objects = dict(model=model, prior=prior, optimizer=self.optimizer,
                                   step=self.step, skipped_steps=self.skipped_steps, **extra)
    self.checkpoint = tf.train.Checkpoint(**self.checkpoint_objects)

  def current_step(self):
    """The number of steps taken (applied or skipped), a Python int (`int()` does not take a
    mirrored variable)."""
    return int(self.step.numpy())

  def current_skipped_steps(self):
    """The number of steps skipped because of a non-finite loss or gradient, a Python int."""
    return int(self.skipped_steps.numpy())

  @tf.function
  def train_step(self, x, learning_rate, phase=strategies.JOINT):
    """One step; its update is skipped if the loss or a gradient is not finite.

    The step counter advances either way (a skipped step still uses up its batch and its
    seed, so that a resumed run stays aligned with the data stream) and `skipped_steps`
    counts the skipped ones; the caller decides when too many were skipped.

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
    return self._step(x, learning_rate, phase)

  @tf.function
  def train_steps(self, iterator, num_steps, learning_rate, phase=strategies.JOINT):
    """Up to `num_steps` steps (`train_step`) on the next batches of `iterator`, in one graph.

    The idea of Keras' `steps_per_execution`: one call (and one read of its results by the
    host) per block of steps instead of per step. The loop stops early after a step whose
    update was skipped (non-finite), so that the caller sees every skipped step as
    `train_step` would show it. Each step consumes one batch and advances the step counter
    exactly as a call of `train_step` does, so k calls of `train_step` and one block of k
    steps give the same weights to the bit.

    Args:
      iterator: a `tf.data` iterator of [B, D] global batches. num_steps: int32 scalar
        tensor >= 1. learning_rate: scalar float32 tensor, used by every step of the block.
      phase: a `strategies.Phase` (Python value).

    Returns:
      `train_step`'s dict for the block's last step, plus 'steps': int32, the steps run.
    """
    out = self._step(next(iterator), learning_rate, phase)
    steps, out = tf.while_loop(
        lambda i, out: tf.logical_and(i < num_steps, out["finite"]),
        lambda i, out: (i + 1, self._step(next(iterator), learning_rate, phase)),
        (tf.constant(1), out))
    out["steps"] = steps
    return out

  def _step(self, x, learning_rate, phase):
    """The body of `train_step`, for tracing inside a tf.function."""
    seed = tf.cast(tf.random.experimental.stateless_fold_in(
        tf.constant([self.seed, 1], tf.int64), self.step), tf.int32)
    variables = ((self.model_variables if phase.train_model else [])
                 + (self.prior.objective_variables(phase.objective) if phase.train_prior
                    else []))
    beta = (objectives.kl_weight(tf.cast(self.step, tf.float32) * phase.schedule_scale,
                                 self.warmup_steps, self.kl_warmup_start)
            if phase.train_model else tf.constant(1.0))
    present = []  # indices of the variables that get a gradient (filled at trace time)
    grads, out = self._distribution.run(
        lambda x, seed, beta: self._replica_gradients(x, seed, beta, phase, variables, present),
        args=(x, seed, beta))
    out = {k: self._distribution.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
           for k, v in out.items()}
    finite = tf.equal(out.pop("finite_fraction"), 1.0)

    def apply():
      self.optimizer.learning_rate.assign(learning_rate)
      self.optimizer.apply_gradients(zip(grads, [variables[i] for i in present]),
                                     skip_gradients_aggregation=True)
      return tf.constant(True)

    tf.cond(finite, apply, lambda: tf.constant(False))
    self.step.assign_add(1)
    self.skipped_steps.assign_add(1 - tf.cast(finite, tf.int64))
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
    objective = objectives.training_objective(phase.objective)
    with tf.GradientTape() as tape:
      loss, out, stats = objective.loss(self.model, prior, x, beta, seed)
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
