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

from tfp_priors.models import common
from tfp_priors.models import latent_variable_model
from tfp_priors.nets import conv


@gin.configurable
class ConvVAE(latent_variable_model.LatentVariableModel):
  """Conv/ResnetVAE (Xu B.2) on flat 28x28 binary images; the prior is separate.

  `block='conv'` is the paper's ConvVAE, `block='resnet'` its ResnetVAE (see `ResnetVAE`).
  q(z|x) = N(mu(h(x)), sigma(h(x))^2 I) with h(x) the (de)convolutional or residual network of
  `tfp_priors.nets.conv` and Linear mean and log std heads (one Linear[2d] layer, split);
  p(x|z) = Bernoulli(logits = h(z) -> LinearConv1x1[28x28x1]); leaky relu; d = 40 on MNIST.
  Test NLL on dynamic MNIST (Xu Table B.3, K = 20 flows): 82.14 standard / 78.67 RNVP prior.

  Shapes: `forward(x [B, 784], K)` -> `common.Forward` with z_top [K, B, d], log q(z|x) and
  log p(x|z) [K, B] in nats, zeros for the lower-latent terms; `decode(z [N, d])` -> pixel
  probabilities [N, 784]. The decoder decodes at most `decode_batch_size` images at once, so
  the K = 1000 IWAE evaluation stays in bounded memory (see the module docstring).

  Raises:
    ValueError: an unknown block, decode_batch_size < 1 or input_size other than 784 (in the
      constructor); x that is not [B, 784] (in `forward`, `encode_top`).

  #### Mathematical details

  Xu et al. appendix B.2 (ConvVAE: the Resnet layers replaced by convolutions):

  ```none
  h(x) = x -> Conv[28x28x32 -> 28x28x32 -> 14x14x64 -> 14x14x64 -> 7x7x64 -> 7x7x16]
           -> Flatten,
  h(z) = z -> Dense[784] -> UnFlatten[7x7x16]
           -> DeConv[7x7x64 -> 14x14x64 -> 14x14x64 -> 28x28x32 -> 28x28x32],
  ```

  trained by the ELBO of Xu et al. Eq. 3 (Eq. 5 with a Real NVP prior).

  #### Examples

  ```python
  from tfp_priors.models import ConvVAE

  model = ConvVAE(latent_size=2, block="conv")
  x = tf.cast(tf.random.stateless_uniform([2, 784], seed=[0, 1]) < 0.5, tf.float32)
  forward = model.forward(x, 1, seed=[1, 2])
  assert forward.z_top.shape == (1, 2, 2) and forward.log_likelihood.shape == (1, 2)
  assert model.decode(tf.zeros([3, 2])).shape == (3, 784)
  ```

  #### References

  [1]: Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian Zhao, Dan Pei. On the
       Necessity and Effectiveness of Learning the Prior of Variational Auto-Encoder.
       _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
  """

  def __init__(self, latent_size=40, block="conv", activation="leaky_relu", train_mean=None,
               decode_batch_size=1000, input_size=784, name=None):
    """Builds encoder and decoder.

    Args:
      latent_size: d (40 on MNIST, Xu B.2).
      block: 'conv' or 'resnet'.
      activation: nonlinearity of every non-linear layer.
      train_mean: mean training image [784] (or None) for the decoder's output-bias init.
      decode_batch_size: most images decoded at once; larger K * B is decoded in chunks.
      input_size: must be 784 (28x28x1 images, flattened); the trainer passes the data's.
      name: module name (default '<block>_vae').

    Raises:
      ValueError: for an unknown block, decode_batch_size < 1 or input_size other than 784.
    """
    super().__init__(name=name or f"{block}_vae")
    if int(input_size) != 784:
      raise ValueError(f"{type(self).__name__} models 28x28x1 images: input_size must be 784, "
                       f"got {input_size}.")
    if decode_batch_size < 1:
      raise ValueError(f"decode_batch_size must be >= 1, got {decode_batch_size}.")
    self.input_size = 784
    self.latent_size = latent_size
    self.block = block
    self.decode_batch_size = int(decode_batch_size)
    self.encoder = conv.ConvEncoder(2 * latent_size, block, activation, name="encoder")
    self.decoder = conv.ConvDecoder(latent_size, block, activation,
                                    output_bias_initializer=common.output_bias(train_mean),
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
      `common.Forward`: z_top [K, B, d], log q(z|x) and log p(x|z) [K, B] in nats, zeros for the
      lower-latent terms.

    Raises:
      ValueError: if x is not [B, 784].
    """
    common.check_input(x, self.input_size)
    return common.single_latent_forward(self.encoder(x), self._logits, x, num_samples, seed)

  def encode_top(self, x):
    """q(z_top|x) as a `tfd.MultivariateNormalDiag`: x [B, D] -> batch [B], event [d]."""
    common.check_input(x, self.input_size)
    return common.diagonal_normal(self.encoder(x))

  def posterior_mean(self, x):
    """E_q[z|x]: [B, D] -> [B, d]."""
    return self.encode_top(x).mean()

  def decode(self, z_top, seed=None):
    """Pixel probabilities of p(x|z): [N, d] -> [N, 784]."""
    del seed
    return tf.sigmoid(self._logits(z_top))


@gin.configurable
class ResnetVAE(ConvVAE):
  """ConvVAE with residual blocks: Resnet / DeResnet layers (Xu B.2, Table 1 "ResnetVAE").

  `ConvVAE(block='resnet')`: the same heads, shapes, chunked decoding and errors, with
  residual blocks y = shortcut(x) + conv2(conv1(x)) in h(x) and h(z). Test NLL on dynamic
  MNIST (Xu Table 1): 81.07 standard / 78.58 RNVP prior. A training step costs about twice a
  ConvVAE step (see the module docstring).

  #### Mathematical details

  Xu et al. appendix B.2:

  ```none
  h(x) = x -> Resnet[28x28x32 -> 28x28x32 -> 14x14x64 -> 14x14x64 -> 7x7x64 -> 7x7x16]
           -> Flatten,
  h(z) = z -> Dense[784] -> UnFlatten[7x7x16]
           -> DeResnet[7x7x64 -> 14x14x64 -> 14x14x64 -> 28x28x32 -> 28x28x32].
  ```

  #### Examples

  ```python
  from tfp_priors.models import ResnetVAE

  model = ResnetVAE(latent_size=2)
  x = tf.cast(tf.random.stateless_uniform([2, 784], seed=[0, 1]) < 0.5, tf.float32)
  forward = model.forward(x, 1, seed=[1, 2])
  assert model.block == "resnet" and forward.z_top.shape == (1, 2, 2)
  assert model.posterior_mean(x).shape == (2, 2)
  ```

  #### References

  [1]: Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian Zhao, Dan Pei. On the
       Necessity and Effectiveness of Learning the Prior of Variational Auto-Encoder.
       _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
  """

  def __init__(self, latent_size=40, activation="leaky_relu", train_mean=None,
               decode_batch_size=1000, input_size=784, name="resnet_vae"):
    super().__init__(latent_size=latent_size, block="resnet", activation=activation,
                     train_mean=train_mean, decode_batch_size=decode_batch_size,
                     input_size=input_size, name=name)
