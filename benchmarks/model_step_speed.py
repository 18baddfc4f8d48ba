r"""Training-step time of each model class relative to the LARS `VAE()`, in one process.

  python -m benchmarks.model_step_speed --models=VAE,DenseVAE,ConvVAE,ResnetVAE --rounds=5

Each model gets the standard Normal prior and a compiled (tf.function) step: single-sample ELBO,
gradient, Adam update. After a warm-up, `rounds` interleaved blocks of `steps` steps per model
are timed (interleaving evens out machine noise); prints the median ms/step, the ratio to
the first model and the matrix-product FLOPs per step (forward and gradient, from the traced
graph), and writes them to `--output_json`. The batch is one fixed random binary batch, so the
figure is the cost of the step itself, independent of the trainer and data pipeline.
"""
from absl import app
from absl import flags
import tensorflow as tf
import tf_keras

from benchmarks import common
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
  steps, flops = {}, {}
  for name in FLAGS.models:
    step = build(name)
    flops[name] = common.graph_matmul_flops(
        step.get_concrete_function(x, tf.TensorSpec([2], tf.int32)))[0]
    for i in range(5):
      step(x, tf.constant([i, 0])).numpy()

    def block(step=step):
      for i in range(FLAGS.steps):
        loss = step(x, tf.constant([i, 1]))
      loss.numpy()
    steps[name] = block
  timed = common.interleaved_medians(steps, FLAGS.rounds)
  base = FLAGS.models[0]
  rows = []
  for name, (seconds, all_seconds) in timed.items():
    t = seconds / FLAGS.steps
    rows.append({"model": name, "ms_per_step": 1e3 * t, "steps_per_second": 1 / t,
                 "time_ratio": seconds / timed[base][0], "block_seconds": all_seconds,
                 "matmul_mflops_per_step": flops[name] / 1e6,
                 "multiply_add_ratio": flops[name] / flops[base]})
  common.print_table(
      f"Training step of each model with N(0, I), batch {FLAGS.batch_size} "
      f"({common.device_name()}; median of {FLAGS.rounds} interleaved blocks of {FLAGS.steps} "
      f"steps; ratios to {base}; convolutions are not in the matmul FLOP count)",
      [("model", "model"), ("ms_per_step", "ms/step"), ("steps_per_second", "steps/s"),
       ("time_ratio", "time ratio"), ("matmul_mflops_per_step", "matmul MFLOPs/step"),
       ("multiply_add_ratio", "multiply-add ratio")], rows)
  common.write_json("model_step_speed", {"batch_size": FLAGS.batch_size, "steps": FLAGS.steps,
                                         "rounds": FLAGS.rounds}, rows)


if __name__ == "__main__":
  app.run(main)
