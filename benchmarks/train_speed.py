r"""Training-step time of every prior relative to the standard-prior model of the same size.

  python -m benchmarks.train_speed                      # every prior, ~3 minutes on 2 CPU cores
  python -m benchmarks.train_speed --configs=lars_vae,lars_hvae --steps=200 --rounds=9 \
      --output_json=train_speed.json
  # Under tf.distribute (2 logical CPUs here; all GPUs on a GPU machine); S = 1023 is not split
  # over the replicas, S = 1024 is:
  python -m benchmarks.train_speed --configs=lars_vae --distribute=mirrored --logical_cpus=2
  python -m benchmarks.train_speed --configs=lars_vae --distribute=mirrored --logical_cpus=2 \
      --gin_bindings=LarsPrior.num_proposal_samples=1023

Builds each config's full-size model and prior (gin configs of configs/) and the trainer's
compiled step (`training.trainer.Trainer.train_step`: objective, gradient, Adam), warms it up,
then times `rounds` interleaved blocks of `steps` steps per config in one process and takes
the median. Each config is compared with the standard-prior config of its model (`BASES`:
vae_standard for the one-latent VAE and the resampled-outputs VAE, hvae_standard for the HVAE),
which is timed alongside.

Configs that train in phases (NCP and hierarchical NCP: NoiseContrastive, classifier only;
implicit: Alternating, VAE / classifier) are timed in the phase that takes most of their steps
under their own `train.num_steps`; the table names the phase and its share of the steps.

Also prints the matrix-product FLOPs of one step (forward and gradient, counted in the traced
graph: `common.graph_matmul_flops`) and their ratio to the base: the analytic multiply-add
ratio (the LARS paper: 1.25x multiply-adds and ~1.4x wall clock for LARS; our target for LARS
is <= 1.10x wall clock). Elementwise work (e.g. the 500-component mixture's log density) is
not in the FLOP count. The batch is one fixed real MNIST batch, so the figure is the cost of the
step itself, without the input pipeline.
"""
import collections

from absl import app
from absl import flags
from absl import logging
import gin
import tensorflow as tf

from benchmarks import common
from tfp_priors.data import pipelines
from tfp_priors.priors import build_prior
from tfp_priors.training import distribute
from trainers import run
from tfp_priors.training import strategies
from tfp_priors.training import trainer as train_lib

VAE_CONFIGS = ["vae_standard", "lars_vae", "realnvp_vae", "maf_vae", "mog_vae", "vamp_vae",
               "ncp_vae", "implicit_vae", "snis_vae", "lars_realnvp_vae", "lars_outputs_vae"]
HVAE_CONFIGS = ["hvae_standard", "lars_hvae", "hierarchical_ncp_hvae"]
# Standard-prior config of each model class (the resampled-outputs model wraps the VAE).
BASES = {"VAE": "vae_standard", "ResampledOutputs": "vae_standard", "HVAE": "hvae_standard",
         "ConvHVAE": "convhvae_standard"}

flags.DEFINE_list("configs", VAE_CONFIGS + HVAE_CONFIGS,
                  "Gin configs; each one's base (BASES) is added if missing.")
flags.DEFINE_integer("steps", 25, "Steps per timed block.")
flags.DEFINE_integer("rounds", 7, "Timed blocks per config (interleaved).")
flags.DEFINE_integer("warmup_steps", 5, "Untimed steps per config after tracing.")
flags.DEFINE_string("distribute", None, "train.distribute of the trainers: None (one device) "
                    "or 'mirrored' (all local GPUs, else the logical CPUs).")
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                     "(replicas for --distribute=mirrored on a machine without GPUs); 0: no.")
FLAGS = flags.FLAGS
LEARNING_RATE = 3e-4  # of the timed steps


def _binding(name, default):
  try:
    return gin.query_parameter(name)
  except ValueError:
    return default


def _strategy():
  """The config's `train.strategy`, instantiated (Joint when unbound)."""
  reference = _binding("train.strategy", None)
  return reference.scoped_configurable_fn() if reference is not None else strategies.Joint()


def timed_phase(strategy, num_steps):
  """(phase taking most of num_steps, its share of the steps) under the strategy."""
  counts = collections.Counter(
      strategy.phase(step, num_steps, lambda _: 3e-4)[0] for step in range(num_steps))
  phase, count = counts.most_common(1)[0]
  return phase, count / num_steps


_DATA = {}


def build(config):
  """Model, prior and trainer of one config, with its step traced and warmed up.

  Returns:
    dict: 'step' (callable running FLAGS.steps steps and waiting for them), 'model' (class
    name), 'phase', 'phase_share', 'matmul_flops' (per step), 'unknown_products'.
  """
  gin.clear_config()
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.FATAL)  # gin logs each include it looks for as an error
  try:
    run.parse_config([config], FLAGS.gin_bindings)  # --gin_bindings apply to every config
  finally:
    logging.set_verbosity(verbosity)
  key = (_binding("make_datasets.name", None), _binding("make_datasets.batch_size", None))
  if key not in _DATA:
    data = pipelines.make_datasets()
    _DATA[key] = (data.train_mean, next(iter(data.train)))
  train_mean, x = _DATA[key]
  strategy = distribute.make_distribution(FLAGS.distribute)
  with strategy.scope():
    model = gin.query_parameter("train.model_fn").scoped_configurable_fn(train_mean=train_mean)
    prior = build_prior(model.latent_size, model=model)
    trainer = train_lib.Trainer(model, prior, warmup_steps=10**5, seed=0,
                                weight_decay=_binding("train.weight_decay", 0.0),
                                distribution=strategy)
  prior.initialize(model.forward(x, 1, seed=[0, 0]).z_top[0])
  rate = tf.constant(LEARNING_RATE)
  phase, share = timed_phase(_strategy(), int(_binding("train.num_steps", 20000)))
  # Trace while this config's gin bindings are active.
  flops, unknown = common.graph_matmul_flops(
      trainer.train_step.get_concrete_function(x, rate, phase))
  for _ in range(FLAGS.warmup_steps):
    out = trainer.train_step(x, rate, phase)
  float(out["loss"])

  def step():
    for _ in range(FLAGS.steps):
      result = trainer.train_step(x, rate, phase)
    float(result["loss"])

  return {"step": step, "model": type(model).__name__, "phase": phase.name,
          "phase_share": share, "matmul_flops": flops, "unknown_products": unknown}


def main(argv):
  del argv
  if FLAGS.logical_cpus:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * FLAGS.logical_cpus)
  configs = list(FLAGS.configs)
  built = {}
  for config in configs:
    built[config] = build(config)
    base = BASES.get(built[config]["model"], "vae_standard")
    if base not in configs:
      configs.append(base)
      built[base] = build(base)
  timed = common.interleaved_medians({c: b["step"] for c, b in built.items()}, FLAGS.rounds)
  rows = []
  # Each base first, then the configs compared with it.
  base_of = {c: BASES.get(b["model"], "vae_standard") for c, b in built.items()}
  order = sorted(configs, key=lambda c: (configs.index(base_of[c]), c != base_of[c],
                                         configs.index(c)))
  for config in order:
    b = built[config]
    base = base_of[config]
    seconds = timed[config][0] / FLAGS.steps
    rows.append({
        "config": config, "base": base, "model": b["model"],
        "phase": f"{b['phase']} ({100 * b['phase_share']:.0f}%)",
        "ms_per_step": 1e3 * seconds, "steps_per_second": 1 / seconds,
        "time_ratio": timed[config][0] / timed[base][0],
        "block_seconds": timed[config][1],
        "matmul_mflops_per_step": b["matmul_flops"] / 1e6,
        "multiply_add_ratio": b["matmul_flops"] / built[base]["matmul_flops"],
        "unknown_products": b["unknown_products"]})
  common.print_table(
      f"Training step time relative to the standard prior of the same model "
      f"({common.device_name()}, replicas: "
      f"{distribute.make_distribution(FLAGS.distribute).num_replicas_in_sync}; median of "
      f"{FLAGS.rounds} interleaved blocks of "
      f"{FLAGS.steps} steps; LARS paper ~1.4x wall clock, 1.25x multiply-adds; target for "
      f"LARS <= 1.10x)",
      [("config", "config"), ("base", "base"), ("phase", "phase timed (share of steps)"),
       ("ms_per_step", "ms/step"), ("steps_per_second", "steps/s"),
       ("time_ratio", "time ratio"), ("matmul_mflops_per_step", "matmul MFLOPs/step"),
       ("multiply_add_ratio", "multiply-add ratio")], rows)
  common.write_json("train_speed", {"steps": FLAGS.steps, "rounds": FLAGS.rounds,
                                    "configs": configs, "distribute": FLAGS.distribute,
                                    "gin_bindings": FLAGS.gin_bindings}, rows)


if __name__ == "__main__":
  app.run(main)
