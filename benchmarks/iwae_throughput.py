r"""IWAE NLL evaluation throughput in (test examples x importance samples) per second, and its
roofline fraction.

  python -m benchmarks.iwae_throughput                              # ~3 minutes on 2 CPU cores
  python -m benchmarks.iwae_throughput --num_examples=2000 \
      --settings=20/off,100/off,500/off,20/on,100/on,500/on --output_json=iwae.json   # GPU

Times `evaluation.metrics.evaluate` (the test-set evaluation of `training.runner`: IWAE bound
with K importance samples, single-sample ELBO, posterior means) on the paper's VAE (MLP
784-300-300-50, Bernoulli decoder) with the standard prior and with LARS, for each IWAE batch
size (examples per step) and XLA setting; interleaved, median of `rounds`. The images are
fixed random binary images (the cost does not depend on them) and the weights untrained.
Each call traces its step anew, so the rate is the steady state: (N - B) K over the time of N
examples minus the time of one batch of B.

Roofline fraction = rate x (matrix-product FLOPs per importance sample: the decoder, the
encoder / K and the prior's networks, counted in the traced IWAE bound) / (measured
dense-matmul FLOP/s, timed among the interleaved blocks). The Bernoulli log-likelihood and
the sampling are not counted.
"""
from absl import app
from absl import flags
import tensorflow as tf

from benchmarks import common
from tfp_priors import models
from tfp_priors import objectives
from tfp_priors.evaluation import metrics
from tfp_priors.priors import build_prior

flags.DEFINE_integer("num_examples", 400, "Test examples N per timed call.")
flags.DEFINE_integer("num_importance_samples", 1000, "K (the paper: 1000).")
flags.DEFINE_list("priors", ["normal", "lars"], "Registry names of the priors.")
flags.DEFINE_list("settings", ["20/off", "100/off", "20/on"],
                  "IWAE batch size (examples per step) / XLA on|off, one per setting.")
flags.DEFINE_integer("rounds", 3, "Timed calls per setting (interleaved).")
FLAGS = flags.FLAGS


def flops_per_sample(model, prior, batch_size, num_samples):
  """Matrix-product FLOPs of the IWAE bound per importance sample (one example, one z)."""
  distribution = prior.distribution()
  bound = tf.function(lambda x: objectives.iwae_bound(model, distribution, x, num_samples,
                                                      [0, 0]))
  flops, _ = common.graph_matmul_flops(
      bound.get_concrete_function(tf.TensorSpec([batch_size, model.input_size])))
  return flops / (batch_size * num_samples)


def main(argv):
  del argv
  k = FLAGS.num_importance_samples
  images = tf.cast(tf.random.stateless_uniform([FLAGS.num_examples, 784], [0, 0]) < 0.13,
                   tf.float32)
  dataset = tf.data.Dataset.from_tensor_slices(images).batch(100)
  defaults = (metrics.DEFAULT_IWAE_BATCH_SIZE, metrics.DEFAULT_JIT_COMPILE)
  settings = []
  for text in FLAGS.settings:
    batch, jit = text.split("/")
    settings.append((int(batch), jit.lower() in ("on", "true", "1", "xla")))
  if defaults not in settings:
    settings.insert(0, defaults)
  model = models.VAE()
  blocks, flops = {}, {}
  for name in FLAGS.priors:
    prior = build_prior(model.latent_size, name=name)
    flops[name] = flops_per_sample(model, prior, 20, k)
    for batch, jit in settings:
      for examples in (batch, FLAGS.num_examples):
        def block(prior=prior, batch=batch, jit=jit, examples=examples):
          metrics.evaluate(model, prior, dataset, k, iwae_batch_size=batch,
                           max_examples=examples, jit_compile=jit)
        block()  # warm up
        blocks[(name, batch, jit, examples)] = block
  timed, roof = common.interleaved_medians_and_roof(blocks, FLAGS.rounds)
  rows = []
  for name in FLAGS.priors:
    for batch, jit in settings:
      one = timed[(name, batch, jit, batch)][0]
      many = timed[(name, batch, jit, FLAGS.num_examples)][0]
      rate = (FLAGS.num_examples - batch) * k / max(many - one, 1e-9)
      rows.append({"prior": name, "iwae_batch_size": batch, "jit_compile": jit,
                   "library_default": (batch, jit) == defaults, "seconds": many,
                   "one_batch_seconds": one, "samples_per_second": rate,
                   "flops_per_sample": flops[name],
                   "roofline_fraction": rate * flops[name] / roof})
  for r in rows:
    base = [b for b in rows if b["prior"] == r["prior"] and b["library_default"]][0]
    r["speedup_vs_default"] = r["samples_per_second"] / base["samples_per_second"]
  common.print_table(
      f"IWAE NLL evaluation (metrics.evaluate), VAE 784-300-300-50, K = {k}, N = "
      f"{FLAGS.num_examples}; {common.device_name()}, measured matmul rate {roof / 1e9:.0f} "
      f"GFLOP/s; rates are steady state, examples x importance samples per second",
      [("prior", "prior"), ("iwae_batch_size", "batch"), ("jit_compile", "XLA"),
       ("library_default", "default"), ("one_batch_seconds", "one-batch call s"),
       ("samples_per_second", "examples x samples/s"),
       ("flops_per_sample", "matmul FLOPs/sample"), ("roofline_fraction", "roofline fraction"),
       ("speedup_vs_default", "vs default")], rows)
  common.write_json("iwae_throughput", {
      "num_examples": FLAGS.num_examples, "num_importance_samples": k,
      "rounds": FLAGS.rounds}, rows, {"matmul_flops_per_second": roof})


if __name__ == "__main__":
  app.run(main)
