"""Unadjusted Langevin dynamics for energy-based priors.

Source: Aneja et al. (2021), "A Contrastive Learning Approach for Training Variational
Autoencoder Priors" (NCP-VAE), Sec. 4.3:
  z_{t+1} = z_t - 0.5 lambda grad_z E(z_t) + sqrt(lambda) eps_t,  eps_t ~ N(0, I),
with E(z) = -log r(z) - log p(z) and z_0 drawn from the base prior p(z).

There is no Metropolis correction: for a finite step size lambda the chain's stationary
distribution is only close to exp(-E) (for a Gaussian energy with variance sigma^2 the
stationary variance is sigma^2 / (1 - lambda / (4 sigma^2))), and a finite number of steps need
not reach it.
"""
import numpy as np
import tensorflow as tf

from tfp_priors import seeds

_STEP_MESSAGE = "Langevin dynamics needs a positive step size lambda; got {}."
_STEPS_MESSAGE = "Langevin dynamics needs num_steps >= 0; got {}."


def _static_value(value):
  return tf.get_static_value(value) if tf.is_tensor(value) else value


def langevin_dynamics(energy_fn, initial_state, step_size, num_steps, seed=None):
  """Runs `num_steps` unadjusted Langevin steps on a batch of independent chains.

  Runs in a `tf.while_loop`, so it works eagerly, inside `tf.function` and in a SavedModel
  (step_size and num_steps may be scalar tensors). Gradients come from `tf.GradientTape` on
  sum(energy_fn(z)); since each chain's energy depends only on its own state, that is each
  chain's own gradient. Deterministic for a given seed.

  Args:
    energy_fn: callable z [N, d] -> E(z) [N], the unnormalized energy in nats
      (-log density + const).
    initial_state: [N, d] float tensor z_0 (any leading batch shape [..., d] works as well).
    step_size: lambda > 0, Python float or scalar float tensor.
    num_steps: T >= 0, Python int or scalar int tensor; T = 0 returns initial_state.
    seed: stateless seed (shape [2] int tensor), Python int (deterministic, see
      `seeds.stateless_seed`), or None for a random one.

  Returns:
    The final state z_T, same shape and dtype as initial_state.

  Raises:
    ValueError: if step_size <= 0 or num_steps < 0 (or not an integer) when their values are
      known statically (Python numbers, numpy values, eager tensors, constants); and if
      energy_fn's output does not depend on z (no gradient).
    tf.errors.InvalidArgumentError: at run time for the same conditions on dynamic tensors.
  """
  state = tf.convert_to_tensor(initial_state, dtype_hint=tf.float32)
  dtype = state.dtype
  assertions = []

  static_step = _static_value(step_size)
  if static_step is not None:
    static_step = np.asarray(static_step)
    if static_step.ndim != 0 or not static_step > 0:  # also rejects NaN
      raise ValueError(_STEP_MESSAGE.format(static_step))
  step_size = tf.cast(step_size, dtype)
  if static_step is None:
    assertions.append(tf.debugging.assert_positive(
        step_size, message=_STEP_MESSAGE.format("(see value below)")))

  static_num = _static_value(num_steps)
  if static_num is not None:
    static_num = np.asarray(static_num)
    if static_num.ndim != 0 or int(static_num) != static_num or int(static_num) < 0:
      raise ValueError(_STEPS_MESSAGE.format(static_num))
    num_steps = tf.constant(int(static_num), tf.int32)
  else:
    num_steps = tf.cast(num_steps, tf.int32)
    assertions.append(tf.debugging.assert_non_negative(
        num_steps, message=_STEPS_MESSAGE.format("(see value below)")))

  seed = seeds.stateless_seed(seed)
  with tf.control_dependencies(assertions):
    noise_scale = tf.sqrt(step_size)

  def body(t, z):
    with tf.GradientTape() as tape:
      tape.watch(z)
      energy = energy_fn(z)
    grad = tape.gradient(energy, z)
    if grad is None:
      raise ValueError("energy_fn's output does not depend on z: Langevin dynamics needs the "
                       "gradient of the energy E(z) with respect to z.")
    noise = tf.random.stateless_normal(
        tf.shape(z), tf.random.experimental.stateless_fold_in(seed, t), dtype=dtype)
    return t + 1, z - 0.5 * step_size * grad + noise_scale * noise

  _, state = tf.while_loop(lambda t, _: t < num_steps, body, (tf.constant(0, tf.int32), state))
  return state
