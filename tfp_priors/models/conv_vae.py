"""ConvVAE and ResnetVAE of Xu et al. (2019), appendix B.2.

q(z|x) = N(mu(h(x)), sigma(h(x))^2 I) with h(x) the (de)convolutional or residual network of
`tfp_priors.nets.conv` and Linear mean and log std heads (one Linear[2d] layer, split);
p(x|z) = Bernoulli(logits = h(z) -> LinearConv1x1[28x28x1]). d = 40 on MNIST. Leaky relu.
Test NLL on dynamic MNIST (Xu Table B.3, K = 20 flows): ConvVAE 82.14 standard / 78.67 RNVP
prior; ResnetVAE (Table 1) 81.07 / 78.58.

Cost: the decoder runs once per importance sample, with ~55x (ConvVAE) or ~110x (ResnetVAE)
the FLOPs per image of DenseVAE's 500-500 decoder; on a 2-core CPU a training step (batch 128)
is ~25-30x (ConvVAE) or ~60x (ResnetVAE) the LARS `VAE()` step (benchmarks/model_step_speed.py).
The IWAE evaluation (K = 1000, 20 examples per step: 20,000 decoder passes) decodes in chunks
of `decode_batch_size` images, so memory stays bounded (~0.1 GB per 28x28x32 activation at the
default 1000; peak RSS ~1.5 GB measured) whatever K * B is, and the evaluation batch of 20 needs
no change; the time is not bounded: ~8 s (ConvVAE) / ~15 s (ResnetVAE) per 20 test images.
"""
import gin
import tensorflow as tf

from tfp_priors.models import base
from tfp_priors.models import latent_variable_model
from tfp_priors.nets import conv


@gin.configurable
class ConvVAE(latent_variable_model.LatentVariableModel):
  """Conv/ResnetVAE (Xu B.2) on flat 28x28 binary images; the prior is separate.

  `block='conv'` is the paper's ConvVAE, `block='resnet'` its ResnetVAE (see `ResnetVAE`).
  """

  def __init__(self, latent_size=40, block="conv", activation="leaky_relu", train_mean=None,
               decode_batch_size=1000, name=None):
    """Builds encoder and decoder.

    Args:
      latent_size: d (40 on MNIST, Xu B.2).
      block: 'conv' or 'resnet'.
      activation: nonlinearity of every non-linear layer.
      train_mean: mean training image [784] (or None) for the decoder's output-bias init.
      decode_batch_size: most images decoded at once; larger K * B is decoded in chunks.
      name: module name (default '<block>_vae').

    Raises:
      ValueError: for an unknown block or decode_batch_size < 1.
    """
    super().__init__(name=name or f"{block}_vae")
    if decode_batch_size < 1:
      raise ValueError(f"decode_batch_size must be >= 1, got {decode_batch_size}.")
    self.input_size = 784
    self.latent_size = latent_size
    self.block = block
    self.decode_batch_size = int(decode_batch_size)
    self.encoder = conv.ConvEncoder(2 * latent_size, block, activation, name="encoder")
    self.decoder = conv.ConvDecoder(latent_size, block, activation,
                                    output_bias_initializer=base.output_bias(train_mean),
                                    name="decoder")

  def _logits(self, z):
    """Decoder logits for [..., d] latents -> [..., 784], at most decode_batch_size at once."""
    batch_shape = tf.shape(z)[:-1]
    flat = tf.reshape(z, [-1, self.latent_size])
    n_static = flat.shape[0]
    if n_static is not None and n_static <= self.decode_batch_size:
      logits = self.decoder(flat)
    else:
      n = tf.shape(flat)[0]
      chunk = tf.minimum(n, self.decode_batch_size)
      num_chunks = (n + chunk - 1) // chunk
      padded = tf.pad(flat, [[0, num_chunks * chunk - n], [0, 0]])
      chunks = tf.reshape(padded, [num_chunks, chunk, self.latent_size])
      logits = tf.map_fn(self.decoder, chunks, parallel_iterations=1,
                         fn_output_signature=tf.TensorSpec([None, self.input_size]))
      logits = tf.reshape(logits, [-1, self.input_size])[:n]
    return tf.reshape(logits, tf.concat([batch_shape, [self.input_size]], 0))

  def forward(self, x, num_samples=1, seed=None):
    """Samples z ~ q(z|x) K times and scores it.

    Args:
      x: [B, 784] binary images.
      num_samples: K.
      seed: stateless seed or None.

    Returns:
      `base.Forward`: z_top [K, B, d], log q(z|x) and log p(x|z) [K, B] in nats, zeros for the
      lower-latent terms.

    Raises:
      ValueError: if x is not [B, 784].
    """
    base.check_input(x, self.input_size)
    return base.single_latent_forward(self.encoder(x), self._logits, x, num_samples, seed)

  def encode_top(self, x):
    """q(z_top|x) as a `tfd.MultivariateNormalDiag`: x [B, D] -> batch [B], event [d]."""
    base.check_input(x, self.input_size)
    return base.diagonal_normal(self.encoder(x))

  def posterior_mean(self, x):
    """E_q[z|x]: [B, D] -> [B, d]."""
    return self.encode_top(x).mean()

  def decode(self, z_top, seed=None):
    """Pixel probabilities of p(x|z): [N, d] -> [N, 784]."""
    del seed
    return tf.sigmoid(self._logits(z_top))


@gin.configurable
class ResnetVAE(ConvVAE):
  """ConvVAE with residual blocks: Resnet / DeResnet layers (Xu B.2, Table 1 "ResnetVAE")."""

  def __init__(self, latent_size=40, activation="leaky_relu", train_mean=None,
               decode_batch_size=1000, name="resnet_vae"):
    super().__init__(latent_size=latent_size, block="resnet", activation=activation,
                     train_mean=train_mean, decode_batch_size=decode_batch_size, name=name)
