"""Early stopping on the validation NLL (LARS appendix C.3, static MNIST).

"We observed overfitting on static MNIST, so on that dataset we performed early stopping using
the NLL on the validation set and halved the times for learning rate decay and warm-up."

The trainer validates every `validation_every` steps; this module keeps the best validation NLL
seen, its step and the number of validations since, as variables checkpointed with the run, so
a resumed run continues the same bookkeeping. The trainer saves the weights of every new best
into workdir/best_checkpoint/ and restores them before the final evaluation.
"""
import math

import tensorflow as tf


class EarlyStopping(tf.Module):
  """Best validation NLL (nats per example) so far and a patience counter.

  Attributes (tf.Variables, checkpointed): best_nll (float64, inf before the first
  validation), best_step (int64, -1 before), validations_since_best (int64).
  """

  def __init__(self, patience=None, min_delta=0.0, name="early_stopping"):
    """Args:
      patience: stop after this many validations in a row without an improvement of more
        than `min_delta` nats; None trains for the whole budget (the best weights are still
        the ones evaluated).
      min_delta: an improvement must lower the best NLL by more than this (nats).

    Raises:
      ValueError: patience < 1 or min_delta < 0.
    """
    super().__init__(name=name)
    if patience is not None and int(patience) < 1:
      raise ValueError(f"early-stopping patience must be >= 1 validations (or None), got "
                       f"{patience}.")
    if float(min_delta) < 0:
      raise ValueError(f"min_delta must be >= 0 nats, got {min_delta}.")
    self.patience = None if patience is None else int(patience)
    self.min_delta = float(min_delta)
    self.best_nll = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_nll")
    self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
    self.validations_since_best = tf.Variable(0, dtype=tf.int64, trainable=False,
                                              name="validations_since_best")

  def update(self, nll, step):
    """Records the validation NLL of `step`; returns True if it is a new best.

    Raises:
      FloatingPointError: a NaN validation NLL (the model diverged); nothing is recorded.
    """
    if math.isnan(nll):
      raise FloatingPointError(f"the validation NLL is NaN at step {step}; the model diverged. "
                               f"The best checkpoint (step {int(self.best_step)}) is intact.")
    if nll < float(self.best_nll) - self.min_delta:
      self.best_nll.assign(nll)
      self.best_step.assign(step)
      self.validations_since_best.assign(0)
      return True
    self.validations_since_best.assign_add(1)
    return False

  @property
  def should_stop(self):
    """Whether `patience` validations in a row brought no improvement."""
    return (self.patience is not None
            and int(self.validations_since_best) >= self.patience)
