"""The base of the distributions built over another distribution of z in R^d."""
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def check_latent_distribution(distribution, what):
  """Raises ValueError unless `distribution` has a rank-1 event shape [d] and scalar batch
  shape; `what` names it in the message (e.g. 'the proposal')."""
  if distribution.event_shape.rank != 1:
    raise ValueError(f"{what} must have a rank-1 event shape [d]; got "
                     f"{distribution.event_shape}. Wrap it in tfd.Independent.")
  if distribution.batch_shape.rank is None or distribution.batch_shape.rank != 0:
    raise ValueError(f"{what} must have scalar batch shape; got {distribution.batch_shape}.")


class OverLatent(tfd.Distribution):
  """A distribution over z in R^d defined through another one, `self._latent` (a proposal or
  a base distribution), set by the subclass before `tfd.Distribution.__init__`: it takes that
  one's event shape [d] and has scalar batch shape, and `log_prob` checks that z is [..., d]
  (ValueError otherwise) before any work."""

  def _event_shape(self):
    return self._latent.event_shape

  def _event_shape_tensor(self):
    return self._latent.event_shape_tensor()

  def _batch_shape(self):
    return tf.TensorShape([])

  def _batch_shape_tensor(self):
    return tf.constant([], tf.int32)

  def log_prob(self, value, name="log_prob", **kwargs):
    value = tf.convert_to_tensor(value, dtype_hint=self.dtype)
    d = self._latent.event_shape[-1]
    if value.shape.rank is not None and (value.shape.rank < 1 or value.shape[-1] != d):
      raise ValueError(f"log_prob expects z of shape [..., {d}] (the latent size); "
                       f"got shape {value.shape}.")
    return super().log_prob(value, name=name, **kwargs)

  def _default_event_space_bijector(self):
    return self._latent.experimental_default_event_space_bijector()
