r"""Training-step time of each model class relative to the LARS `VAE()`, in one process.

  python -m benchmarks.model_step_speed --models=VAE,DenseVAE,ConvVAE,ResnetVAE --rounds=5

Each model gets the standard Normal prior and a compiled (tf.function) step: single-sample ELBO,
gradient, Adam update. After a warm-up, `rounds` interleaved blocks of `steps` steps per model
are timed (interleaving evens out machine noise); prints the median ms/step and the ratio to
the first model. The batch is one fixed random binary batch, so the figure is the cost of the
step itself, independent of the trainer and data pipeline.
"""
import statistics
import time

from absl import app
from absl import flags
import tensorflow as tf
import tf_keras

from tfp_priors import models
from tfp_priors import objectives
from tfp_priors.priors import build_prior

flags.DEFINE_list("models", ["VAE", "DenseVAE", "ConvVAE", "ResnetVAE"],
                  "Classes in tfp_priors.models; the first is the base.")
flags.DEFINE_integer("batch_size", 128, "Examples per step.")
flags.DEFINE_integer("steps", 20, "Steps per timed block.")
flags.DEFINE_integer("rounds", 5, "Timed blocks per model.")
FLAGS = flags.FLAGS


def build(name):
  model = getattr(models, name)()
  prior = build_prior(model.latent_size, name="normal")
  variables = model.trainable_variables + prior.trainable_variables
  optimizer = tf_keras.optimizers.Adam(1e-3)

  @tf.function
  def step(x, seed):
    with tf.GradientTape() as tape:
      terms, _ = objectives.elbo(model, prior, x, training=True, seed=seed)
      loss = -tf.reduce_mean(terms.elbo)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  return step


def main(argv):
  del argv
  x = tf.cast(tf.random.stateless_uniform([FLAGS.batch_size, 784], [0, 0]) < 0.13, tf.float32)
  steps = {name: build(name) for name in FLAGS.models}
  for step in steps.values():
    for i in range(5):
      step(x, tf.constant([i, 0])).numpy()
  times = {name: [] for name in steps}
  for _ in range(FLAGS.rounds):
    for name, step in steps.items():
      start = time.perf_counter()
      for i in range(FLAGS.steps):
        loss = step(x, tf.constant([i, 1]))
      loss.numpy()
      times[name].append((time.perf_counter() - start) / FLAGS.steps)
  base = statistics.median(times[FLAGS.models[0]])
  for name, ts in times.items():
    t = statistics.median(ts)
    print(f"{name:>10}: {1e3 * t:8.2f} ms/step ({1 / t:6.1f} steps/s), {t / base:6.2f}x "
          f"{FLAGS.models[0]}")


if __name__ == "__main__":
  app.run(main)
