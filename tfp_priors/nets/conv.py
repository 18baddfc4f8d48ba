"""(De)convolutional and residual networks of Xu et al. (2019), appendix B.2 (Conv/ResnetVAE).

  encoder h(x) = x -> {Conv|Resnet}[28x28x32 -> 28x28x32 -> 14x14x64 -> 14x14x64 -> 7x7x64
                  -> 7x7x16] -> Flatten -> Linear[output_size]
  decoder h(z) = z -> Dense[784] -> UnFlatten[7x7x16] -> {DeConv|DeResnet}[7x7x64 -> 14x14x64
                  -> 14x14x64 -> 28x28x32 -> 28x28x32] -> LinearConv1x1[28x28x1] -> Flatten

3x3 kernels, 'same' padding, stride 2 where the spatial size halves (doubles for DeConv),
stride 1 elsewhere; every non-linear layer uses leaky relu (slope 0.2, as tf.nn.leaky_relu).
`block='conv'` gives ConvVAE's plain (de)convolutions, `block='resnet'` ResnetVAE's residual
blocks y = shortcut(x) + conv2(conv1(x)) (conv1 carries the stride; shortcut is a linear 1x1
(de)convolution with the same stride when the shape changes, the identity otherwise).

Weight-decay convention (Xu B.3: L2 on the kernels of non-linear hidden layers): every
non-linear layer is a tf_keras Dense / Conv2D / Conv2DTranspose whose own `activation` is the
nonlinearity, with no separate Activation layers; linear layers (Linear heads, shortcuts,
LinearConv1x1) have activation=None. A trainer can therefore select the decayed kernels as those
of layers whose activation is not `tf_keras.activations.linear`.

All layers are tf_keras layers, built in __init__, so their plain `tf.Variable`s exist at once
and are seen by `tf.Module` collections and checkpoints (see DESIGN.md).
"""
import tensorflow as tf
import tf_keras

IMAGE_SHAPE = (28, 28, 1)
# (channels, stride) of each layer of h(x) and of the deconvolutional part of h(z) (Xu B.2).
ENCODER_LAYERS = ((32, 1), (32, 1), (64, 2), (64, 1), (64, 2), (16, 1))
DECODER_INITIAL_SHAPE = (7, 7, 16)
DECODER_LAYERS = ((64, 1), (64, 2), (64, 1), (32, 2), (32, 1))
BLOCKS = ("conv", "resnet")


def _check_block(block):
  if block not in BLOCKS:
    raise ValueError(f"block must be one of {BLOCKS}, got {block!r}.")


class ConvBlock(tf.Module):
  """One layer of Xu B.2: Conv / Resnet, or DeConv / DeResnet when `transpose`.

  Call: [N, H, W, C_in] -> [N, H', W', filters], H' = H / stride (H * stride if transpose).
  """

  def __init__(self, input_shape, filters, strides=1, block="conv", transpose=False,
               activation="leaky_relu", kernel_size=3, output_padding=None,
               kernel_initializer="glorot_uniform", name=None):
    """Builds the layers.

    Args:
      input_shape: (H, W, C_in) of the input.
      filters: output channels.
      strides: 1 or 2.
      block: 'conv' (one non-linear layer) or 'resnet' (residual block of two).
      transpose: deconvolution (Conv2DTranspose) instead of convolution.
      activation: nonlinearity of the non-linear layers (a tf_keras activation).
      kernel_size: of the non-linear layers (3 in the paper).
      output_padding: transposed 'conv' blocks only: None (output H * stride) or an int
        < stride, giving H' = (H - 1) * stride + kernel_size - 2 * (kernel_size // 2)
        + output_padding; e.g. 1 for 4 -> 7 with kernel 4, stride 2, the exact transpose
        (adjoint) of a stride-2 'same' convolution 7 -> 4.
      kernel_initializer: of every kernel (a tf_keras initializer name; Xu's models keep
        the Glorot default, ConvHVAE uses 'he_uniform' for its ReLU layers).
      name: module name.

    Raises:
      ValueError: for an unknown block, or output_padding outside a transposed 'conv' block.
    """
    super().__init__(name=name)
    _check_block(block)
    if output_padding is not None and (not transpose or block != "conv"):
      raise ValueError("output_padding applies to transposed 'conv' blocks only; got "
                       f"transpose={transpose}, block={block!r}.")
    layer = tf_keras.layers.Conv2DTranspose if transpose else tf_keras.layers.Conv2D
    extra = {"output_padding": output_padding} if output_padding is not None else {}
    extra["kernel_initializer"] = kernel_initializer
    shape = [None] + list(input_shape)
    self.conv1 = layer(filters, kernel_size, strides, padding="same", activation=activation,
                       **extra)
    self.conv1.build(shape)
    self.conv2 = self.shortcut = None
    if block == "resnet":
      self.conv2 = layer(filters, kernel_size, 1, padding="same", activation=activation,
                         kernel_initializer=kernel_initializer)
      self.conv2.build(self.conv1.compute_output_shape(shape))
      if strides != 1 or input_shape[-1] != filters:
        self.shortcut = layer(filters, 1, strides, padding="same", activation=None,
                              kernel_initializer=kernel_initializer)
        self.shortcut.build(shape)
    self.output_shape = tuple(self.conv1.compute_output_shape(shape)[1:])

  def __call__(self, x):
    y = self.conv1(x)
    if self.conv2 is None:
      return y
    return (x if self.shortcut is None else self.shortcut(x)) + self.conv2(y)


class ConvEncoder(tf.Module):
  """h(x) -> Linear[output_size] of Conv/ResnetVAE (Xu B.2).

  Call: x [B, 784] flat images -> [B, output_size] (e.g. output_size = 2d: mean and log std).
  """

  def __init__(self, output_size, block="conv", activation="leaky_relu", name=None):
    super().__init__(name=name)
    _check_block(block)
    self.blocks = []
    shape = IMAGE_SHAPE
    for i, (filters, strides) in enumerate(ENCODER_LAYERS):
      b = ConvBlock(shape, filters, strides, block, False, activation, name=f"block{i}")
      self.blocks.append(b)
      shape = b.output_shape
    self.flat_size = shape[0] * shape[1] * shape[2]
    self.linear = tf_keras.layers.Dense(output_size, activation=None)
    self.linear.build([None, self.flat_size])
    self.output_size = output_size

  def __call__(self, x):
    h = tf.reshape(x, [-1] + list(IMAGE_SHAPE))
    for b in self.blocks:
      h = b(h)
    return self.linear(tf.reshape(h, [-1, self.flat_size]))


class ConvDecoder(tf.Module):
  """h(z) -> LinearConv1x1[28x28x1] Bernoulli logits of Conv/ResnetVAE (Xu B.2).

  The paper's LinearConv1x1 has a single bias; here the 1x1 convolution has no bias and is
  followed by an untied per-pixel bias [784] initialised by `output_bias_initializer` (e.g.
  `models.common.output_bias(train_mean)`, the logit of the mean training image), so the decoder
  starts at the mean image like the dense decoders (784 parameters more than the paper).

  Call: z [N, d] -> logits [N, 784] (flattened 28x28x1).
  """

  def __init__(self, latent_size, block="conv", activation="leaky_relu",
               output_bias_initializer="zeros", name=None):
    super().__init__(name=name)
    _check_block(block)
    shape = DECODER_INITIAL_SHAPE
    self.dense = tf_keras.layers.Dense(shape[0] * shape[1] * shape[2], activation=activation)
    self.dense.build([None, latent_size])
    self.blocks = []
    for i, (filters, strides) in enumerate(DECODER_LAYERS):
      b = ConvBlock(shape, filters, strides, block, True, activation, name=f"block{i}")
      self.blocks.append(b)
      shape = b.output_shape
    if tuple(shape[:2]) != IMAGE_SHAPE[:2]:
      raise AssertionError(f"decoder ends at {shape}, not {IMAGE_SHAPE}")
    self.output_conv = tf_keras.layers.Conv2D(IMAGE_SHAPE[-1], 1, padding="same",
                                              activation=None, use_bias=False)
    self.output_conv.build([None] + list(shape))
    self.output_size = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
    init = tf_keras.initializers.get(output_bias_initializer)
    self.pixel_bias = tf.Variable(init([self.output_size], tf.float32), name="pixel_bias")
    self.latent_size = latent_size

  def __call__(self, z):
    h = tf.reshape(self.dense(z), [-1] + list(DECODER_INITIAL_SHAPE))
    for b in self.blocks:
      h = b(h)
    return tf.reshape(self.output_conv(h), [-1, self.output_size]) + self.pixel_bias
