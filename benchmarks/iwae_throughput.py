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

Flow priors (first table, `--flow_models`, ~3 more minutes on 2 CPU cores; empty to skip):
each model:prior pair (DenseVAE with Xu et al.'s RNVP prior, the VAE with LARS's realnvp and
maf) is timed at the library's default batch and XLA setting beside the same model (same
weights) with the N(0, I) prior and with the prior's log p(z) taken from
`distribution().log_prob` (TFP's TransformedDistribution, the path before the fused
`FlowPrior.log_prob`), all interleaved. Timed is the evaluation step itself (the body of
`metrics.evaluate`'s step, traced once), since tracing, which every `evaluate` call does anew,
takes seconds for a deep flow and varies more than the steps of N = 400 examples on a shared
CPU; on the 10,000 test images the steps are all that counts. "time vs N(0, I)" is seconds
per step over those of the standard prior (issue 17's target: <= 1.5). Run from a snapshot of
an older tree, the "fused" rows time whatever `latent_log_prob` that tree has.
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
flags.DEFINE_list("flow_models", ["dense_vae:xu_realnvp", "vae:realnvp", "vae:maf"],
                  "model:prior pairs timed against the same model with N(0, I) (models: "
                  "vae, dense_vae); empty to skip the flow table.")
flags.DEFINE_integer("flow_steps", 3, "Evaluation steps per timed block of the flow table.")
FLAGS = flags.FLAGS

MODELS = {"vae": models.VAE, "dense_vae": models.DenseVAE}


class TransformedDistributionPath:
  """A prior whose log p(z) comes from `distribution().log_prob` (TFP's bijector calls).

  Delegates everything else to the wrapped prior; for a `FlowPrior` this times the log
  density of `tfd.TransformedDistribution` beside the fused `FlowPrior.log_prob`.
  """

  def __init__(self, prior):
    self._prior = prior

  def __getattr__(self, name):
    return getattr(self._prior, name)

  def latent_log_prob(self, forward):
    return self._prior.distribution().log_prob(forward.z_top) + forward.log_prior_rest


def flops_per_sample(model, prior, batch_size, num_samples):
  """Matrix-product FLOPs of the IWAE bound per importance sample (one example, one z)."""
  distribution = prior.distribution()
  bound = tf.function(lambda x: objectives.iwae_bound(model, distribution, x, num_samples,
                                                      [0, 0]))
  flops, _ = common.graph_matmul_flops(
      bound.get_concrete_function(tf.TensorSpec([batch_size, model.input_size])))
  return flops / (batch_size * num_samples)


def evaluation_step(model, prior, num_samples):
  """The step of `metrics.evaluate` (IWAE bounds, single-sample ELBO, posterior means) traced
  once: (x [B, D], seed [2]) -> scalar, so that a timed block holds no tracing."""
  log_probs = {"nll": prior.latent_log_prob,
               **{f"nll_{k}": fn for k, fn in prior.extra_evaluation_densities().items()}}

  @tf.function(jit_compile=metrics.DEFAULT_JIT_COMPILE)
  def step(x, seed):
    seed_iwae, seed_elbo = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    bounds = objectives.iwae_bounds(model, log_probs, x, num_samples, seed_iwae)
    terms, _ = objectives.elbo(model, prior, x, training=False, seed=seed_elbo)
    return (tf.add_n([tf.reduce_sum(b) for b in bounds.values()])
            + tf.reduce_sum(terms.elbo) + tf.reduce_sum(model.posterior_mean(x)))

  return step


def flow_table(images):
  """Times each `--flow_models` pair beside its model with N(0, I); returns table rows.

  A block is `--flow_steps` evaluation steps of `metrics.DEFAULT_IWAE_BATCH_SIZE` examples
  (new seeds, same images); the step is traced and warmed up before the timed rounds.
  """
  batch, k = metrics.DEFAULT_IWAE_BATCH_SIZE, FLAGS.num_importance_samples
  x = images[:batch]
  blocks, pairs = {}, [pair.split(":") for pair in FLAGS.flow_models]
  for model_name, prior_name in pairs:
    model = MODELS[model_name]()
    flow = build_prior(model.latent_size, name=prior_name)
    for variant, prior in (("normal", build_prior(model.latent_size, name="normal")),
                           ("fused", flow), ("TransformedDistribution",
                                             TransformedDistributionPath(flow))):
      step = evaluation_step(model, prior, k)

      def block(step=step):
        for i in range(FLAGS.flow_steps):
          step(x, tf.constant([0, i], tf.int32)).numpy()
      block()  # trace and warm up
      blocks[(model_name, prior_name, variant)] = block
  timed = common.interleaved_medians(blocks, FLAGS.rounds)
  rows = []
  for model_name, prior_name in pairs:
    seconds = {v: timed[(model_name, prior_name, v)][0] / FLAGS.flow_steps
               for v in ("normal", "fused", "TransformedDistribution")}
    for variant, step_seconds in seconds.items():
      rows.append({"model": model_name, "prior": prior_name if variant != "normal" else
                   "normal", "log_prob_path": variant if variant != "normal" else "-",
                   "step_seconds": step_seconds, "samples_per_second": batch * k / step_seconds,
                   "time_vs_normal": step_seconds / seconds["normal"]})
  return rows


def main(argv):
  del argv
  k = FLAGS.num_importance_samples
  images = tf.cast(tf.random.stateless_uniform([FLAGS.num_examples, 784], [0, 0]) < 0.13,
                   tf.float32)
  dataset = tf.data.Dataset.from_tensor_slices(images).batch(100)
  defaults = (metrics.DEFAULT_IWAE_BATCH_SIZE, metrics.DEFAULT_JIT_COMPILE)
  flow_rows = []
  if FLAGS.flow_models:
    flow_rows = flow_table(images)
    common.print_table(
        f"IWAE NLL evaluation step (metrics.evaluate's) with flow priors, K = {k}, batch "
        f"{defaults[0]}, XLA {'on' if defaults[1] else 'off'}, median of {FLAGS.rounds} "
        f"blocks of {FLAGS.flow_steps} steps; {common.device_name()}; time vs N(0, I): "
        f"seconds per step over those of the same model with N(0, I)",
        [("model", "model"), ("prior", "prior"), ("log_prob_path", "log p(z) path"),
         ("step_seconds", "step s"), ("samples_per_second", "examples x samples/s"),
         ("time_vs_normal", "time vs N(0, I)")], flow_rows)
  if not FLAGS.priors:
    common.write_json("iwae_throughput", {
        "num_examples": FLAGS.num_examples, "num_importance_samples": k,
        "rounds": FLAGS.rounds}, [], {"flow_rows": flow_rows})
    return
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
      "rounds": FLAGS.rounds}, rows, {"matmul_flops_per_second": roof, "flow_rows": flow_rows})


if __name__ == "__main__":
  app.run(main)
