"""VAE with one latent layer (LARS appendix C.2, "VAE (L = 1)").

q(z|x) = N(mu, sigma) from MLP[784 - 300 - 300 - d] (mean and log std share all but the last
layer), p(x|z) = Bernoulli(MLP[d - 300 - 300 - 784]), tanh nonlinearities.
"""
import gin
import tensorflow as tf

from tfp_priors.models import base
from tfp_priors.models import latent_variable_model
from tfp_priors.nets import MLP


@gin.configurable
class VAE(latent_variable_model.LatentVariableModel):
  """Single-latent-layer VAE. The prior is separate (see `tfp_priors.priors`)."""

  def __init__(self, input_size=784, latent_size=50, hidden_sizes=(300, 300), activation="tanh",
               train_mean=None, name="vae"):
    super().__init__(name=name)
    self.input_size, self.latent_size = input_size, latent_size
    self.encoder = MLP(input_size, hidden_sizes, 2 * latent_size, activation, name="encoder")
    self.decoder = MLP(latent_size, tuple(reversed(hidden_sizes)), input_size, activation,
                       output_bias_initializer=base.output_bias(train_mean), name="decoder")

  def forward(self, x, num_samples=1, seed=None):
    """Samples z ~ q(z|x) K times and scores it. x [B, 784] -> `base.Forward` ([K, B] fields)."""
    base.check_input(x, self.input_size)
    return base.single_latent_forward(self.encoder(x), self.decoder, x, num_samples, seed)

  def encode_top(self, x):
    """q(z_top|x) as a `tfd.MultivariateNormalDiag`: x [B, D] -> batch [B], event [d]."""
    return base.diagonal_normal(self.encoder(x))

  def posterior_mean(self, x):
    """E_q[z|x]: [B, D] -> [B, d]."""
    return self.encode_top(x).mean()

  def decode(self, z_top, seed=None):
    """Pixel probabilities of p(x|z): [N, d] -> [N, 784]."""
    del seed
    return tf.sigmoid(self.decoder(z_top))
