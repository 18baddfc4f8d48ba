"""Multi-layer perceptrons, as written MLP[in - h1 - ... - out] in LARS appendix C.2.

Built from `tf_keras` layers: their variables are plain `tf.Variable`s, so `tf.Module`
collections, `tf.train.Checkpoint` and SavedModel see them (Keras 3 variables are not; see
DESIGN.md).
"""
import tensorflow as tf
import tf_keras


class MLP(tf.Module):
  """Dense network with `activation` between hidden layers and a linear output layer (or
  `output_activation`), with optional dropout after each hidden layer.

  Weights use Glorot-uniform initialisation (LARS C.3 cites Glorot & Bengio).
  Call: x [..., input_size], training (bool: apply dropout) -> [..., output_size].
  """

  def __init__(self, input_size, hidden_sizes, output_size, activation="tanh",
               output_bias_initializer="zeros", output_activation=None, dropout_rate=0.0,
               name=None):
    super().__init__(name=name)
    if not 0.0 <= float(dropout_rate) < 1.0:
      raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}.")
    layers = []
    for h in hidden_sizes:
      layers.append(tf_keras.layers.Dense(h, activation=activation))
      if dropout_rate:
        layers.append(tf_keras.layers.Dropout(float(dropout_rate)))
    layers.append(tf_keras.layers.Dense(output_size, activation=output_activation,
                                        bias_initializer=output_bias_initializer))
    self.net = tf_keras.Sequential(layers)
    self.net.build([None, input_size])
    self.input_size = input_size
    self.output_size = output_size

  def __call__(self, x, training=False):
    batch_shape = tf.shape(x)[:-1]
    y = self.net(tf.reshape(x, [-1, self.input_size]), training=training)
    return tf.reshape(y, tf.concat([batch_shape, [self.output_size]], 0))

  def hidden(self, x):
    """The last hidden layer's activations (dropout off): [..., input_size] -> [..., h]."""
    batch_shape = tf.shape(x)[:-1]
    y = tf.reshape(x, [-1, self.input_size])
    for layer in self.net.layers[:-1]:
      y = layer(y, training=False)
    return tf.reshape(y, tf.concat([batch_shape, tf.shape(y)[-1:]], 0))
