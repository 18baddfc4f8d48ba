"""L2 weight decay on the kernels of non-linear hidden layers (Xu et al. 2019, B.3)."""
import tensorflow as tf
import tf_keras

_LAYERS = (tf_keras.layers.Dense, tf_keras.layers.Conv2D, tf_keras.layers.Conv2DTranspose)


def hidden_kernels(*modules):
  """Kernels of the non-linear dense / conv layers inside `modules`, each once.

  A layer counts when it is a tf_keras Dense, Conv2D or Conv2DTranspose whose own `activation`
  is not linear; linear output layers (means, log std, logits) and biases are left out, as
  Xu et al. B.3 regularise "kernels of non-linear dense layers and convolutional layers".
  """
  kernels, seen = [], set()
  for module in modules:
    for sub in module.submodules:
      if (isinstance(sub, _LAYERS) and getattr(sub, "kernel", None) is not None
          and sub.activation not in (None, tf_keras.activations.linear)
          and id(sub.kernel) not in seen):
        seen.add(id(sub.kernel))
        kernels.append(sub.kernel)
  return kernels


def l2_penalty(kernels, weight):
  """weight * sum_k ||W_k||^2 (a scalar; 0. for no kernels or weight 0)."""
  if not kernels or weight == 0:
    return tf.constant(0.0)
  return weight * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])
