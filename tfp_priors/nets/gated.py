"""Gated MLPs: the encoder / decoder networks of Takahashi et al. (2019), Sec. 5.2.

Every hidden layer uses the gating mechanism of Dauphin et al. (2017), "Language Modeling with
Gated Convolutional Networks" (gated linear unit):

  h = (W x + b) * sigmoid(V x + c),

as in Tomczak & Welling's `GatedDense` layers (VampPrior code), followed by a linear output
layer. Built from `tf_keras` Dense layers, so the variables are plain `tf.Variable`s (seen by
`tf.Module` collections and checkpoints; see DESIGN.md), with Glorot-uniform kernels (Takahashi
Sec. 5.2 cites Glorot & Bengio 2010) and zero biases.
"""
import tensorflow as tf
import tf_keras


class GatedMLP(tf.Module):
  """GatedMLP[in - h1 - ... - out]: gated hidden layers, linear output layer.

  Variables: per hidden layer a linear and a gate Dense layer (kernel + bias each), plus the
  output layer's kernel and bias: 4 * len(hidden_sizes) + 2 in all.
  Call: x [..., input_size] -> [..., output_size] (any number of leading axes).
  """

  def __init__(self, input_size, hidden_sizes, output_size, output_bias_initializer="zeros",
               name=None):
    """
    Args:
      input_size: size of the last axis of the input.
      hidden_sizes: units of each gated hidden layer, e.g. (500, 500).
      output_size: size of the output's last axis.
      output_bias_initializer: Keras initializer of the output bias (e.g. the logit of the
        mean training image, `models.common.output_bias`).
      name: module name.
    """
    super().__init__(name=name)
    self.input_size, self.output_size = int(input_size), int(output_size)
    self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
    self.linear_layers, self.gate_layers = [], []
    size = self.input_size
    for h in self.hidden_sizes:
      linear = tf_keras.layers.Dense(h)
      gate = tf_keras.layers.Dense(h, activation="sigmoid")
      linear.build([None, size])
      gate.build([None, size])
      self.linear_layers.append(linear)
      self.gate_layers.append(gate)
      size = h
    self.output_layer = tf_keras.layers.Dense(self.output_size,
                                              bias_initializer=output_bias_initializer)
    self.output_layer.build([None, size])

  def hidden(self, x):
    """Last gated hidden layer: [N, input_size] -> [N, hidden_sizes[-1]] (x if no hidden)."""
    for linear, gate in zip(self.linear_layers, self.gate_layers):
      x = linear(x) * gate(x)
    return x

  def __call__(self, x, training=False):
    """x [..., input_size] -> [..., output_size]; `training` is accepted for MLP's call
    convention and has no effect (no dropout or batch norm)."""
    del training
    batch_shape = tf.shape(x)[:-1]
    y = self.output_layer(self.hidden(tf.reshape(x, [-1, self.input_size])))
    return tf.reshape(y, tf.concat([batch_shape, [self.output_size]], 0))
