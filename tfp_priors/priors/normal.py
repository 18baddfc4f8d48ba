"""The standard Normal prior N(0, I), the baseline of every paper."""
import gin
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.priors import base

tfd = tfp.distributions


@gin.configurable
@base.register("normal")
class StandardNormalPrior(base.Prior):
  """p(z) = N(0, I_d). No variables."""

  symmetric = True

  def __init__(self, latent_size, name="normal_prior"):
    super().__init__(latent_size, name=name)

  def distribution(self):
    return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_size]))
