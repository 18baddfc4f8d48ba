"""Convolutional hierarchical VAE with two latent layers (LARS appendix C.2, "ConvHVAE (L = 2)").

Bauer & Mnih (2019), "Resampled Priors for Variational Autoencoders", appendix C.2:
  q(z2|x)     = MLP[CNN[28x28x1 - 14x14x32 - 7x7x32 - 4x4x32] - d]
  q(z1|x, z2) = MLP[[CNN[28x28x1 - 14x14x32 - 7x7x32 - 4x4x32], MLP[d - 4x4x32]] - 300 - d]
  p(z1|z2)    = MLP[d - 300 - 300 - d]
  p(x|z1, z2) = CNN[MLP[[MLP[d - 300], MLP[d - 300]] - 4x4x32] - 7x7x32 - 14x14x32 - 28x28x1]
with 4x4 kernels, stride-2 (transposed) convolutions, 32 channels, ReLU after convolutions,
tanh after MLP layers, a Bernoulli likelihood and d = 50 per latent layer. The learned prior
(e.g. LARS) is p(z2), the top latent. Test NLL on dynamic MNIST (LARS Table 1, 10^7 steps):
81.21 nats with a standard Normal p(z2), 80.30 with LARS.

Choices the paper leaves open, made here:
- The paper's decoder ends at "32x32x1"; the data are 28x28, so that is taken as a typo and
  the decoder ends at 28x28x1.
- Padding: the encoder's convolutions use 'same' padding, ceil(H / 2): 28 -> 14 -> 7 -> 4
  (7 -> 4 pads one row above and two below). The decoder's first transposed convolution,
  4 -> 7, has output_padding = 1, which makes it the exact transpose (adjoint) of that 7 -> 4
  convolution rather than an 8x8 output cropped by hand; 7 -> 14 -> 28 are plain 'same'
  transposed convolutions (the adjoints of 14 -> 7 and 28 -> 14).
- "MLP[...]" around a CNN means Dense layers on the flattened 4x4x32 = 512 features, with
  tanh after every MLP layer except the output heads: q(z2|x)'s head is one linear layer
  512 -> 2d; q(z1|x, z2) concatenates the CNN's (ReLU) features with MLP[d - 512] (tanh) and
  applies Dense[300] (tanh) then a linear layer -> 2d; the decoder's MLP ends in a tanh layer
  600 -> 512, reshaped to 4x4x32.
- The two encoders have separate CNNs (no weight sharing).
- The last transposed convolution (14x14x32 -> 28x28x1, linear: Bernoulli logits) has no bias
  of its own; an untied per-pixel bias [784], initialised to the logit of the mean training
  image (`common.output_bias`), follows it, as in the other models' decoders.
- Heads output the mean and log std of a diagonal Normal (2d numbers), as in `HVAE`.
- Convolution kernels use He initialisation, the MLP layers Glorot's (see KERNEL_INITIALIZER:
  with Glorot's everywhere, short runs collapse to the mean image).

Everything else (forward, decode, the hierarchical-NCP pieces) is `HVAE`'s.

Cost on a 2-core CPU (batch 128, tf.function, `benchmarks/model_step_speed.py
--models=HVAE,ConvHVAE`): a training step takes ~2.9x the CPU time of `HVAE`'s (2.2-3.1x wall
time on a shared machine); 989,904 parameters against HVAE's 1,399,684. The K = 1000 IWAE
evaluation of 20 images (20,000 decoder passes, largest map 14x14x32) takes ~2.3 s and
~1.6 GB peak memory, so it needs no chunked decoding.
"""
import gin
import tensorflow as tf
import tf_keras

from tfp_priors.models import common
from tfp_priors.models import hvae
from tfp_priors.nets import MLP
from tfp_priors.nets import conv

IMAGE_SHAPE = (28, 28, 1)
CHANNELS = 32
KERNEL_SIZE = 4
# Feature maps after each layer (LARS C.2), the decoder's with its final 28x28x1 (see above).
ENCODER_SHAPES = ((14, 14, 32), (7, 7, 32), (4, 4, 32))
DECODER_INITIAL_SHAPE = (4, 4, 32)
DECODER_SHAPES = ((7, 7, 32), (14, 14, 32), (28, 28, 1))
# output_padding of the decoder's transposed convolutions (None: H -> 2H; 1: 4 -> 7).
_DECODER_OUTPUT_PADDING = (1, None, None)
_FLAT = 4 * 4 * 32
# He et al. (2015) initialisation of the (transposed) convolutions. With Glorot's, ReLU halves
# the signal's variance per layer: at initialisation the decoder's logits barely depend on z
# (std across z ~0.02, the MLP HVAE's ~0.35) and on dynamic MNIST with a 5,000-step budget
# (warm-up 50 steps) the model collapsed to the mean image (ELBO -199, 0 active units); with
# He's, the reconstruction reached -147 nats after 100 steps where Glorot's stayed at -206.
KERNEL_INITIALIZER = "he_uniform"


def _flat_size(shape):
  return shape[0] * shape[1] * shape[2]


def _apply_to_images(fn, x, image_shape, output_size):
  """fn on [N, H, W, C] images given x [..., H*W*C]: returns [..., output_size]."""
  batch_shape = tf.shape(x)[:-1]
  y = fn(tf.reshape(x, [-1] + list(image_shape)))
  return tf.reshape(y, tf.concat([batch_shape, [output_size]], 0))


class ConvFeatures(tf.Module):
  """CNN[28x28x1 - 14x14x32 - 7x7x32 - 4x4x32]: three stride-2 4x4 ReLU convolutions.

  Call: x [..., 784] flat images -> [..., 512] (the flattened 4x4x32 features).
  """

  def __init__(self, name=None):
    super().__init__(name=name)
    self.blocks = []
    shape = IMAGE_SHAPE
    for i, expected in enumerate(ENCODER_SHAPES):
      block = conv.ConvBlock(shape, CHANNELS, 2, activation="relu", kernel_size=KERNEL_SIZE,
                             kernel_initializer=KERNEL_INITIALIZER,
                             name=f"conv{i}")
      if block.output_shape != expected:
        raise AssertionError(f"encoder layer {i} gives {block.output_shape}, not {expected}")
      self.blocks.append(block)
      shape = block.output_shape
    self.output_size = _flat_size(shape)

  def __call__(self, x):
    def cnn(h):
      for block in self.blocks:
        h = block(h)
      return h
    return _apply_to_images(cnn, x, IMAGE_SHAPE, self.output_size)


class ConvEncoder(tf.Module):
  """q(z2|x) = MLP[CNN[28x28x1 - 14x14x32 - 7x7x32 - 4x4x32] - d]: x [..., 784] -> [..., 2d]."""

  def __init__(self, output_size, name=None):
    super().__init__(name=name)
    self.features = ConvFeatures(name="features")
    self.head = MLP(self.features.output_size, (), output_size, name="head")

  def __call__(self, x):
    return self.head(self.features(x))


class ConvDecoder(tf.Module):
  """p(x|z1, z2) = CNN[MLP[[MLP[d - h], MLP[d - h]] - 4x4x32] - 7x7x32 - 14x14x32 - 28x28x1].

  Call: z1 [..., d], z2 [..., d] -> Bernoulli logits [..., 784] (flattened 28x28x1).
  """

  def __init__(self, latent_size, hidden_size, output_bias_initializer="zeros", name=None):
    super().__init__(name=name)
    d, h = latent_size, hidden_size
    self.merge = hvae._Merge(  # pylint: disable=protected-access
        MLP(d, (), h, output_activation="tanh", name="branch_a"),
        MLP(d, (), h, output_activation="tanh", name="branch_b"),
        MLP(2 * h, (), _flat_size(DECODER_INITIAL_SHAPE), output_activation="tanh",
            name="head"), name="merge")
    self.blocks = []
    shape = DECODER_INITIAL_SHAPE
    for i, (expected, padding) in enumerate(zip(DECODER_SHAPES[:-1], _DECODER_OUTPUT_PADDING)):
      block = conv.ConvBlock(shape, CHANNELS, 2, transpose=True, activation="relu",
                             kernel_initializer=KERNEL_INITIALIZER,
                             kernel_size=KERNEL_SIZE, output_padding=padding, name=f"deconv{i}")
      if block.output_shape != expected:
        raise AssertionError(f"decoder layer {i} gives {block.output_shape}, not {expected}")
      self.blocks.append(block)
      shape = block.output_shape
    self.output_conv = tf_keras.layers.Conv2DTranspose(
        IMAGE_SHAPE[-1], KERNEL_SIZE, 2, padding="same", activation=None, use_bias=False,
        kernel_initializer=KERNEL_INITIALIZER,
        output_padding=_DECODER_OUTPUT_PADDING[-1])
    self.output_conv.build([None] + list(shape))
    final = tuple(self.output_conv.compute_output_shape([None] + list(shape))[1:])
    if final != DECODER_SHAPES[-1]:
      raise AssertionError(f"decoder ends at {final}, not {DECODER_SHAPES[-1]}")
    self.output_size = _flat_size(IMAGE_SHAPE)
    init = tf_keras.initializers.get(output_bias_initializer)
    self.pixel_bias = tf.Variable(init([self.output_size], tf.float32), name="pixel_bias")

  def __call__(self, z1, z2):
    def deconv(h):
      for block in self.blocks:
        h = block(h)
      return self.output_conv(h)
    logits = _apply_to_images(deconv, self.merge(z1, z2), DECODER_INITIAL_SHAPE,
                              self.output_size)
    return logits + self.pixel_bias


@gin.configurable
class ConvHVAE(hvae.HVAE):
  """Convolutional two-latent-layer VAE of LARS C.2 on flat 28x28 binary images; z_top = z2.

  Bauer & Mnih, appendix C.2, "ConvHVAE (L = 2)": stride-2 4x4 (transposed) convolutions with
  32 channels and ReLU, tanh MLP layers, a Bernoulli likelihood and d = 50 per latent layer
  (the choices the paper leaves open are listed in the module docstring). Same interface as
  `HVAE` (`forward` gives `common.Forward` with [K, B] fields in nats and z_top [K, B, d];
  `decode` maps z2 [N, d] to pixel probabilities [N, 784]); only the four networks differ (see
  the module docstring). Test NLL on dynamic MNIST (LARS Table 1): 81.21 nats with a standard
  Normal p(z2), 80.30 with LARS.

  Raises:
    ValueError: if input_size is not 784.

  #### Mathematical details

  The HVAE's ELBO (see `HVAE`) with the networks of appendix C.2:

  ```none
  q(z2|x)     = MLP[CNN[28x28x1 - 14x14x32 - 7x7x32 - 4x4x32] - d]
  q(z1|x, z2) = MLP[[CNN[28x28x1 - 14x14x32 - 7x7x32 - 4x4x32], MLP[d - 4x4x32]] - 300 - d]
  p(z1|z2)    = MLP[d - 300 - 300 - d]
  p(x|z1, z2) = CNN[MLP[[MLP[d - 300], MLP[d - 300]] - 4x4x32] - 7x7x32 - 14x14x32 - 28x28x1]
  ```

  #### Examples

  ```python
  from tfp_priors.models import ConvHVAE

  model = ConvHVAE(latent_size=2, hidden_size=8)
  x = tf.cast(tf.random.stateless_uniform([2, 784], seed=[0, 1]) < 0.5, tf.float32)
  forward = model.forward(x, 1, seed=[1, 2])
  assert forward.z_top.shape == (1, 2, 2) and forward.log_likelihood.shape == (1, 2)
  assert model.decode(tf.zeros([3, 2]), seed=[2, 3]).shape == (3, 784)
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  def __init__(self, input_size=784, latent_size=50, hidden_size=300, train_mean=None,
               name="conv_hvae"):
    """Builds the networks.

    Args:
      input_size: must be 784 (28x28x1 images, flattened).
      latent_size: d of z1 and of z2 (50 in the paper).
      hidden_size: width of the MLP layers (300 in the paper).
      train_mean: mean training image [784] (or None) for the decoder's output-bias init.
      name: module name.

    Raises:
      ValueError: if input_size is not 784.
    """
    if input_size != _flat_size(IMAGE_SHAPE):
      raise ValueError(f"ConvHVAE models 28x28x1 images: input_size must be 784, got "
                       f"{input_size}.")
    # Every argument explicitly, so gin bindings of HVAE do not reach ConvHVAE.
    super().__init__(input_size=input_size, latent_size=latent_size, hidden_size=hidden_size,
                     train_mean=train_mean, name=name)

  def _networks(self, hidden_size, train_mean):
    d, h = self.latent_size, hidden_size
    q_z2 = ConvEncoder(2 * d, name="q_z2")
    q_z1 = hvae._Merge(  # pylint: disable=protected-access
        ConvFeatures(name="branch_a"),
        MLP(d, (), _FLAT, output_activation="tanh", name="branch_b"),
        MLP(2 * _FLAT, (h,), 2 * d, name="head"), name="q_z1")
    p_z1 = MLP(d, (h, h), 2 * d, name="p_z1")
    p_x = ConvDecoder(d, h, common.output_bias(train_mean), name="p_x")
    return q_z2, q_z1, p_z1, p_x
