r"""Time per batch of prior samples: SIR vs Langevin dynamics (Aneja et al. 2021, Table 8).

  python -m benchmarks.sampling_speed --latent_size=50 --batch_sizes=1,10,100 \
      --sir_proposals=5,50,500,5000 --langevin_steps=5,50,500

Times each sampler of an NCP prior (MLP[d - 100 - 100 - 1] classifier over N(0, I)), compiled
with tf.function, median of `repeats` calls after a warm-up call, and prints a markdown table
of seconds per batch and the ratio to SIR with the largest M. The weights do not change the
cost, so an untrained classifier is used.
"""
import json
import statistics
import time

from absl import app
from absl import flags
import tensorflow as tf

from tfp_priors.priors import NCPPrior

flags.DEFINE_integer("latent_size", 50, "d.")
flags.DEFINE_list("batch_sizes", ["1", "10", "100"], "Samples per batch (Aneja: 1 and 10).")
flags.DEFINE_list("sir_proposals", ["5", "50", "500", "5000"], "M of SIR.")
flags.DEFINE_list("langevin_steps", ["5", "50", "500"], "Langevin iterations.")
flags.DEFINE_float("step_size", 1e-3, "Langevin step size lambda.")
flags.DEFINE_integer("repeats", 5, "Timed calls per setting.")
flags.DEFINE_string("output", None, "Optional JSON file for the table.")
FLAGS = flags.FLAGS


def _median_seconds(fn, repeats):
  fn().numpy()  # trace and warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn().numpy()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv):
  del argv
  rows = []
  for batch in [int(b) for b in FLAGS.batch_sizes]:
    for m in [int(m) for m in FLAGS.sir_proposals]:
      prior = NCPPrior(FLAGS.latent_size, num_proposals=m)
      fn = tf.function(lambda p=prior, n=batch: p.sample(n, seed=[0, 1]))
      rows.append({"sampler": "SIR", "setting": f"M = {m}", "batch": batch,
                   "seconds": _median_seconds(fn, FLAGS.repeats)})
    prior = NCPPrior(FLAGS.latent_size)
    for steps in [int(s) for s in FLAGS.langevin_steps]:
      fn = tf.function(lambda n=batch, t=steps: prior.langevin_sample(
          n, FLAGS.step_size, t, seed=[0, 1]))
      rows.append({"sampler": "Langevin", "setting": f"{steps} steps", "batch": batch,
                   "seconds": _median_seconds(fn, FLAGS.repeats)})
  device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
  print(f"| sampler | setting | batch | seconds per batch ({device}) |")
  print("|---|---|---|---|")
  for r in rows:
    print(f"| {r['sampler']} | {r['setting']} | {r['batch']} | {r['seconds']:.4f} |")
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      json.dump({"device": device, "rows": rows}, f, indent=2)


if __name__ == "__main__":
  app.run(main)
