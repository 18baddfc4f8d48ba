"""GatedVAE: the VAE of Takahashi et al. (2019), "Variational Autoencoder with Implicit Optimal
Priors", AAAI 2019, Sec. 5.2.

  q(z|x) = N(mu, sigma):  GatedMLP[D - 500 - 500 - 2d]   (mean and log std, split)
  p(x|z):                 GatedMLP[d - 500 - 500 - D]    Bernoulli logits (OneHot, MNIST), or
                          GatedMLP[d - 500 - 500 - 2D]   Gaussian mean and log variance (Frey)

Hidden layers are gated linear units (Dauphin et al. 2017, see `nets.GatedMLP`), weights
Glorot-initialised; d = 2 for OneHot and 40 otherwise; D = 4 (OneHot), 784 (MNIST), 560
(Frey Faces).

Gaussian likelihood (Frey Faces, Histopathology): per-pixel mean sigmoid(m) in [0, 1] (the
paper: "means of which were constrained to the interval [0, 1] by using a sigmoid function")
and a per-pixel log variance output by the decoder, clipped (hard, like Tomczak's Hardtanh) to
`log_variance_range`. Choice of the range: Tomczak & Welling's vae_vampprior code clips to
[-4.5, 0] (for its discretized logistic), but that caps log p(x|z) at
560 * (4.5 / 2 - ln(2 pi) / 2) = 745 nats on Frey Faces, below the paper's test
log-likelihoods (1382.53 standard, 1396.27 implicit prior, Takahashi Table 2), so those could
not be reproduced. The default floor is the variance of one 8-bit grey level,
log((1/256)^2) = -11.09, the finest scale the 8-bit data resolve (cap 2590 nats on Frey);
the ceiling 0 (sigma <= 1) bounds the variance of data in [0, 1]. Set
`log_variance_range = (-4.5, 0.0)` (and an `initial_log_variance` inside it) for Tomczak's.
The log-variance outputs start at `initial_log_variance` = ln(0.1^2) (sigma = 0.1; Frey's
per-pixel standard deviation across training images has median 0.093) through their bias.
"""
import gin
import numpy as np
import tensorflow as tf

from tfp_priors.models import common
from tfp_priors.models import latent_variable_model
from tfp_priors.nets import GatedMLP

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_VARIANCE_RANGE = (2.0 * float(np.log(1.0 / 256.0)), 0.0)
INITIAL_LOG_VARIANCE = 2.0 * float(np.log(0.1))
DEFAULT_INPUT_SIZE = 784


def _logit_of_mean(train_mean, size):
  """Logit of the mean training image, clipped to [1e-3, 1 - 1e-3] (zeros if None): [size]."""
  if train_mean is None:
    return np.zeros([size], np.float32)
  p = np.clip(np.asarray(train_mean, np.float32).reshape(-1), 1e-3, 1 - 1e-3)
  return (np.log(p) - np.log1p(-p)).astype(np.float32)


@gin.configurable
class GatedVAE(latent_variable_model.LatentVariableModel):
  """Single-latent-layer VAE with gated MLPs of Takahashi et al. (2019, Sec. 5.2).

  q(z|x) = N(mu, sigma) from GatedMLP[D - 500 - 500 - 2d]; p(x|z) Bernoulli with logits
  GatedMLP[d - 500 - 500 - D] (`likelihood='bernoulli'`: OneHot, MNIST), or Gaussian with a
  sigmoid mean in [0, 1] and a log variance clipped to `log_variance_range`
  (`likelihood='gaussian'`: Frey Faces; see the module docstring for the range). Hidden layers
  are gated linear units (Dauphin et al. 2017). The prior is separate.

  Same interface as `models.VAE`: `forward` (x [B, D] -> `common.Forward` with [K, B] fields in
  nats; for 'gaussian' log p(x|z) is a density and can be positive), `encode_top`,
  `posterior_mean`, `decode` (means of p(x|z) [N, D] in [0, 1]), `latent_size`, `input_size`.

  Raises:
    ValueError: unknown likelihood, input_size different from len(train_mean), an empty or
      reversed log_variance_range or an initial_log_variance outside it; `forward` of an x
      that is not [B, input_size].

  #### Mathematical details

  Gated hidden layers h = (W x + b) * sigmoid(V x + c) (Dauphin et al. 2017), and for the
  Gaussian likelihood

  ```none
  log p(x|z) = sum_i -0.5 (log(2 pi) + log_variance_i + (x_i - mean_i)^2 / variance_i).
  ```

  The VAE trains by the ELBO, or with the implicit optimal prior by Takahashi Eq. 19.

  #### Examples

  ```python
  from tfp_priors.models import GatedVAE

  model = GatedVAE(input_size=4, latent_size=2, hidden_sizes=(8,), likelihood="gaussian")
  x = tf.random.stateless_uniform([3, 4], seed=[0, 1])
  forward = model.forward(x, 2, seed=[1, 2])
  means = model.decode(tf.zeros([5, 2]))
  assert forward.log_likelihood.shape == (2, 3) and means.shape == (5, 4)
  assert np.all((means >= 0.0) & (means <= 1.0))
  ```

  #### References

  [1]: Hiroshi Takahashi, Tomoharu Iwata, Yuki Yamanaka, Masanori Yamada, Satoshi Yagi.
       Variational Autoencoder with Implicit Optimal Priors. In _AAAI Conference on
       Artificial Intelligence_, 2019. https://arxiv.org/abs/1809.05284

  [2]: Yann N. Dauphin, Angela Fan, Michael Auli, David Grangier. Language Modeling with Gated
       Convolutional Networks. In _International Conference on Machine Learning (ICML)_,
       2017. https://arxiv.org/abs/1612.08083
  """

  def __init__(self, input_size=None, latent_size=40, hidden_sizes=(500, 500),
               likelihood="bernoulli", log_variance_range=LOG_VARIANCE_RANGE,
               initial_log_variance=INITIAL_LOG_VARIANCE, train_mean=None, name="gated_vae"):
    """
    Args:
      input_size: D, pixels per example (4 OneHot, 784 MNIST, 560 Frey Faces). None: the
        length of `train_mean` (the trainer passes the data's), else 784.
      latent_size: d (the paper: 2 for OneHot, 40 otherwise).
      hidden_sizes: gated hidden layers of the encoder; the decoder uses them reversed.
      likelihood: 'bernoulli' (decoder logits) or 'gaussian' (sigmoid mean and clipped
        log variance per pixel, for continuous data in [0, 1]).
      log_variance_range: (min, max) of the Gaussian log variance (see the module docstring).
      initial_log_variance: initial Gaussian log variance (the bias of those outputs); must lie
        strictly inside log_variance_range.
      train_mean: mean training image [D] (or None): the decoder's initial mean is this image.
      name: module name.

    Raises:
      ValueError: unknown likelihood, input_size different from len(train_mean), an empty or
        reversed log_variance_range or an initial_log_variance outside it.
    """
    super().__init__(name=name)
    if likelihood not in LIKELIHOODS:
      raise ValueError(f"GatedVAE.likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
    mean_size = None if train_mean is None else int(np.size(train_mean))
    if input_size is None:
      input_size = mean_size or DEFAULT_INPUT_SIZE
    if mean_size is not None and mean_size != int(input_size):
      raise ValueError(f"GatedVAE.input_size = {input_size} but the data have {mean_size} "
                       f"pixels (len(train_mean)); set GatedVAE.input_size = {mean_size} or "
                       f"leave it unset.")
    low, high = (float(v) for v in log_variance_range)
    if likelihood == "gaussian":
      if not low < high:
        raise ValueError(f"GatedVAE.log_variance_range must be (min, max) with min < max, got "
                         f"{log_variance_range}.")
      if not low < float(initial_log_variance) < high:
        raise ValueError(f"GatedVAE.initial_log_variance = {initial_log_variance} must lie "
                         f"inside log_variance_range = {log_variance_range}.")
    self.input_size, self.latent_size = int(input_size), int(latent_size)
    self.likelihood = likelihood
    self.log_variance_range = (low, high)
    bias = _logit_of_mean(train_mean, self.input_size)
    if likelihood == "gaussian":
      bias = np.concatenate([bias, np.full([self.input_size], initial_log_variance, np.float32)])
    self.encoder = GatedMLP(self.input_size, hidden_sizes, 2 * self.latent_size, name="encoder")
    self.decoder = GatedMLP(self.latent_size, tuple(reversed(tuple(hidden_sizes))), bias.size,
                            output_bias_initializer=tf.constant_initializer(bias),
                            name="decoder")

  def decoder_output(self, z):
    """z [..., d] -> Bernoulli logits [..., D], or for 'gaussian' [..., 2D]: the mean in
    [0, 1] then the log variance clipped to log_variance_range (`common.gaussian_log_likelihood`
    takes this)."""
    out = self.decoder(z)
    if self.likelihood == "bernoulli":
      return out
    mean_logits, log_variance = tf.split(out, 2, axis=-1)
    return tf.concat([tf.sigmoid(mean_logits),
                      tf.clip_by_value(log_variance, *self.log_variance_range)], axis=-1)

  def _log_likelihood_fn(self):
    return (common.bernoulli_log_likelihood if self.likelihood == "bernoulli"
            else common.gaussian_log_likelihood)

  def forward(self, x, num_samples=1, seed=None):
    """Samples z ~ q(z|x) K times and scores it.

    Args:
      x: [B, D] (binary for 'bernoulli', in [0, 1] for 'gaussian'). num_samples: K.
      seed: stateless seed or None.

    Returns:
      `common.Forward` with [K, B] fields (log p(x|z) in nats; a density for 'gaussian', so it
      can be positive) and z_top [K, B, d].

    Raises:
      ValueError: x is not [B, input_size].
    """
    common.check_input(x, self.input_size)
    return common.single_latent_forward(self.encoder(x), self.decoder_output, x, num_samples,
                                      seed, log_likelihood_fn=self._log_likelihood_fn())

  def encode_top(self, x):
    """q(z_top|x) as a `tfd.MultivariateNormalDiag`: x [B, D] -> batch [B], event [d]."""
    return common.diagonal_normal(self.encoder(x))

  def posterior_mean(self, x):
    """E_q[z|x]: [B, D] -> [B, d]."""
    return self.encode_top(x).mean()

  def decode(self, z_top, seed=None):
    """Means of p(x|z): [N, d] -> [N, D] in [0, 1] (Bernoulli probabilities or Gaussian
    means)."""
    del seed
    out = self.decoder(z_top)
    if self.likelihood == "gaussian":
      out = tf.split(out, 2, axis=-1)[0]
    return tf.sigmoid(out)
