r"""Training steps/s of each prior relative to the standard Normal prior, in one process.

  python -m benchmarks.train_speed --configs=vae_standard,lars_vae --steps=300 --rounds=5

Builds each config's full-size model, warms the compiled step up, then times `rounds`
interleaved blocks of `steps` steps per config (interleaving evens out machine noise) and
prints steps/s (median over rounds) and the ratio to the first config. Data is one fixed
real MNIST batch, so the figure is the cost of the step itself.
"""
import statistics
import time

from absl import app
from absl import flags
import gin
import tensorflow as tf

from tfp_priors.data import pipelines
from tfp_priors.priors import build_prior
from trainers import run
from trainers import train as train_lib

flags.DEFINE_list("configs", ["vae_standard", "lars_vae"], "Gin configs; the first is the base.")
flags.DEFINE_integer("steps", 300, "Steps per timed block.")
flags.DEFINE_integer("rounds", 5, "Timed blocks per config.")
FLAGS = flags.FLAGS
RATE = tf.constant(3e-4)


def build(config):
  gin.clear_config()
  run.parse_config([config], [])
  data = pipelines.make_datasets()
  model_fn = gin.query_parameter("train.model_fn").scoped_configurable_fn
  model = model_fn(train_mean=data.train_mean)
  prior = build_prior(model.latent_size, model=model)
  def binding(name, default):
    try:
      return gin.query_parameter(name)
    except ValueError:
      return default
  trainer = train_lib.Trainer(model, prior, warmup_steps=10**5, seed=0,
                              weight_decay=binding("train.weight_decay", 0.0))
  x = next(iter(data.train))
  prior.initialize(model.forward(x, 1, seed=[0, 0]).z_top[0])
  return trainer, x


def main(argv):
  del argv
  runs = {c: build(c) for c in FLAGS.configs}
  for trainer, x in runs.values():
    for _ in range(20):
      trainer.train_step(x, RATE)
  rates = {c: [] for c in runs}
  for _ in range(FLAGS.rounds):
    for c, (trainer, x) in runs.items():
      start = time.perf_counter()
      for _ in range(FLAGS.steps):
        out = trainer.train_step(x, RATE)
      float(out["loss"])
      rates[c].append(FLAGS.steps / (time.perf_counter() - start))
  base = statistics.median(rates[FLAGS.configs[0]])
  print(f"{'config':<16}{'steps/s':>10}{'time ratio vs ' + FLAGS.configs[0]:>30}")
  for c in FLAGS.configs:
    r = statistics.median(rates[c])
    print(f"{c:<16}{r:>10.1f}{base / r:>30.3f}")


if __name__ == "__main__":
  app.run(main)
