"""VAE with one latent layer (LARS appendix C.2, "VAE (L = 1)").

q(z|x) = N(mu, sigma) from MLP[784 - 300 - 300 - d] (mean and log std share all but the last
layer), p(x|z) = Bernoulli(MLP[d - 300 - 300 - 784]), tanh nonlinearities.
"""
import gin
import tensorflow as tf

from tfp_priors.models import common
from tfp_priors.models import latent_variable_model
from tfp_priors.nets import MLP


@gin.configurable
class VAE(latent_variable_model.LatentVariableModel):
  """Single-latent-layer VAE of the LARS paper (Bauer & Mnih, appendix C.2, "VAE (L = 1)").

  q(z|x) = N(mu, sigma) from MLP[784 - 300 - 300 - d] (mean and log std share all but the last
  layer), p(x|z) = Bernoulli(MLP[d - 300 - 300 - 784]), tanh nonlinearities, d = 50 by
  default. The prior is separate (see `tfp_priors.priors`): the model scores only
  log q(z|x) and log p(x|z). The decoder's output bias starts at the logit of the mean
  training image (`train_mean`, zeros if None).

  Shapes: `forward(x [B, D], K, seed)` -> `common.Forward` with [K, B] fields in nats and
  z_top [K, B, d]; `encode_top(x)` -> `tfd.MultivariateNormalDiag`, batch [B], event [d];
  `posterior_mean(x)` -> [B, d]; `decode(z [N, d])` -> pixel probabilities [N, D].

  Raises:
    ValueError: `forward` of an x that is not [B, input_size].

  #### Mathematical details

  The model's part of the ELBO (Bauer & Mnih, Eq. 1), with one posterior sample:

  ```none
  z = mu(x) + sigma(x) * eps,  eps ~ N(0, I),
  ELBO(x) = log p(x|z) + log p(z) - log q(z|x),
  log p(x|z) = sum_i [x_i log mu_i(z) + (1 - x_i) log(1 - mu_i(z))],
  ```

  and the K-sample `forward` gives the IWAE bound (Burda et al. 2016) used for the test NLL.

  #### Examples

  ```python
  from tfp_priors.models import VAE

  model = VAE(input_size=16, latent_size=2, hidden_sizes=(8,))
  x = tf.cast(tf.random.stateless_uniform([4, 16], seed=[0, 1]) < 0.5, tf.float32)
  forward = model.forward(x, 3, seed=[1, 2])
  assert forward.z_top.shape == (3, 4, 2) and forward.log_likelihood.shape == (3, 4)
  assert model.decode(tf.zeros([5, 2])).shape == (5, 16)
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428

  [2]: Diederik P. Kingma, Max Welling. Auto-Encoding Variational Bayes. In _International
       Conference on Learning Representations (ICLR)_, 2014. https://arxiv.org/abs/1312.6114

  [3]: Yuri Burda, Roger Grosse, Ruslan Salakhutdinov. Importance Weighted Autoencoders. In
       _International Conference on Learning Representations (ICLR)_, 2016.
       https://arxiv.org/abs/1509.00519
  """

  def __init__(self, input_size=784, latent_size=50, hidden_sizes=(300, 300), activation="tanh",
               train_mean=None, name="vae"):
    super().__init__(name=name)
    self.input_size, self.latent_size = input_size, latent_size
    self.encoder = MLP(input_size, hidden_sizes, 2 * latent_size, activation, name="encoder")
    self.decoder = MLP(latent_size, tuple(reversed(hidden_sizes)), input_size, activation,
                       output_bias_initializer=common.output_bias(train_mean), name="decoder")

  def forward(self, x, num_samples=1, seed=None):
    """Samples z ~ q(z|x) K times and scores it. x [B, 784] -> `common.Forward` ([K, B] fields)."""
    common.check_input(x, self.input_size)
    return common.single_latent_forward(self.encoder(x), self.decoder, x, num_samples, seed)

  def encode_top(self, x):
    """q(z_top|x) as a `tfd.MultivariateNormalDiag`: x [B, D] -> batch [B], event [d]."""
    return common.diagonal_normal(self.encoder(x))

  def posterior_mean(self, x):
    """E_q[z|x]: [B, D] -> [B, d]."""
    return self.encode_top(x).mean()

  def decode(self, z_top, seed=None):
    """Pixel probabilities of p(x|z): [N, d] -> [N, 784]."""
    del seed
    return tf.sigmoid(self.decoder(z_top))
