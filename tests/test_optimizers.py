"""`FusedAdam`: Kingma & Ba (2015) Algorithm 1 (TF's epsilon form), checked against numpy."""
import numpy as np
import tensorflow as tf
import tf_keras

from tfp_priors.training.optimizers import FusedAdam


def _numpy_adam(w, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
  m, v = np.zeros_like(w), np.zeros_like(w)
  for t, g in enumerate(grads, start=1):
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g**2
    w = w - lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(v) + epsilon)
  return w, m, v


def test_fused_adam_is_algorithm_1_and_keeps_adams_slots():
  rng = np.random.default_rng(0)
  w0 = rng.normal(size=(5, 3)).astype(np.float32)
  grads = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(4)]
  expected, m, v = _numpy_adam(w0.astype(np.float64), grads, lr=0.05)
  for optimizer_class in (FusedAdam, tf_keras.optimizers.Adam):
    w = tf.Variable(w0)
    optimizer = optimizer_class(learning_rate=0.05)
    for g in grads:
      optimizer.apply_gradients([(tf.constant(g), w)])
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5, atol=1e-5)  # float32
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), m, rtol=1e-5)
    np.testing.assert_allclose(optimizer._velocities[0].numpy(), v, rtol=1e-4)
  assert not np.allclose(expected, w0)


def test_fused_adam_checkpoints_restore_into_keras_adam(tmp_path):
  w = tf.Variable([1.0, -2.0, 3.0])
  fused = FusedAdam(learning_rate=0.1)
  for _ in range(3):
    fused.apply_gradients([(tf.constant([0.5, -1.0, 2.0]), w)])
  path = tf.train.Checkpoint(w=w, optimizer=fused).save(str(tmp_path / "ckpt"))
  w2 = tf.Variable(tf.zeros([3]))
  adam = tf_keras.optimizers.Adam(learning_rate=0.1)
  adam.build([w2])
  tf.train.Checkpoint(w=w2, optimizer=adam).restore(path).assert_consumed()
  np.testing.assert_array_equal(w2.numpy(), w.numpy())
  np.testing.assert_array_equal(adam._momentums[0].numpy(), fused._momentums[0].numpy())
  np.testing.assert_array_equal(adam._velocities[0].numpy(), fused._velocities[0].numpy())
  assert int(adam.iterations.numpy()) == 3
