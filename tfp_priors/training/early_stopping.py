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
  """Early stopping on the validation NLL: the best NLL so far and a patience counter.

  Keeps the best validation NLL (nats per example) seen, its step and the number of
  validations since, as in LARS appendix C.3 (static MNIST) and Xu et al. appendix B.3. The
  trainer calls `update(nll, step)` at every validation, saves the weights of every new best
  and stops once `should_stop`; `patience=None` trains for the whole budget (the best
  weights are still the ones evaluated).

  Attributes (tf.Variables, checkpointed): best_nll (float64, inf before the first
  validation), best_step (int64, -1 before), validations_since_best (int64). A resumed run
  continues the same bookkeeping.

  Raises:
    ValueError: patience < 1 or min_delta < 0 (in the constructor).
    FloatingPointError: `update` with a NaN validation NLL (the model diverged); nothing is
      recorded.

  #### Mathematical details

  A validation at step t with NLL L_t is a new best when L_t < best_nll - min_delta; then
  best_nll = L_t, best_step = t and validations_since_best = 0, otherwise
  validations_since_best increases by 1. `should_stop` is validations_since_best >= patience.

  #### Examples

  ```python
  from tfp_priors.training.early_stopping import EarlyStopping

  early_stopping = EarlyStopping(patience=2, min_delta=0.1)
  improved = [early_stopping.update(nll, step)
              for step, nll in [(100, 90.0), (200, 89.0), (300, 88.95), (400, 89.5)]]
  assert improved == [True, True, False, False] and early_stopping.should_stop
  assert int(early_stopping.best_step) == 200 and float(early_stopping.best_nll) == 89.0
  ```

  #### References

  [1]: (Early stopping, C.3.) Matthias Bauer, Andriy Mnih. Resampled Priors for Variational
       Autoencoders. In _International Conference on Artificial Intelligence and Statistics
       (AISTATS)_, 2019. https://arxiv.org/abs/1810.11428

  [2]: (Validation-based selection, B.3.) Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian
       Zhao, Dan Pei. On the Necessity and Effectiveness of Learning the Prior of Variational Auto-
       Encoder. _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
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
