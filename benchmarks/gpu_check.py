r"""The GPU check: the library's GPU-sized figures in one command (at most ~8 minutes on one
H100-class GPU), written as one JSON file and one markdown table.

  python -m benchmarks.gpu_check --output_json=gpu_check.json --output_markdown=gpu_check.md
  python -m benchmarks.gpu_check --smoke     # the same code paths on a CPU in under a minute

Parts, in order (each a row of the table):

1. log Z of the LARS VAE's acceptance function a(z) = sigmoid(MLP[50-100-100-1]) over
   N(0, I_50), S = 10^10 a(z) evaluations with antithetic pairs
   (`estimators.estimate_log_normalizer`, LARS Algorithm 1's evaluation estimate; the paper
   uses S = 10^10). The chunk size and XLA setting are the fastest of `--chunk_sizes` x
   {XLA off, on} on a first call of `--tune_samples` evaluations each (a trace and a steady
   state), then S is timed once, tracing included. Reported: seconds (target: under 60 s on one
   H100-class GPU), a(z) evaluations/s, and their matrix-product FLOP/s (30,200 FLOPs per
   evaluation) as a fraction of the dense [n, n] x [n, n] float32 matmul rate measured in the
   same run (TensorFloat-32 as TF sets it, printed with the table).
2. The training loop of `vae_standard`, `lars_vae` and `lars_hvae` (`Runner.train_loop` with
   the real input pipeline, blocks of `train.steps_per_execution` steps, fused Adam;
   `benchmarks.train_loop_speed`'s runner), interleaved, median of `--timing_rounds` blocks of
   `--train_steps` steps: steps/s and the LARS ratios (seconds per step over the standard's).
3. IWAE NLL throughput at K = 1000 (`evaluation.metrics.evaluate` on the VAE 784-300-300-50
   with N(0, I) and with LARS, `--iwae_examples` random binary images, the library's IWAE batch
   and XLA default): steady-state test examples/s and examples x importance samples/s.
4. A `--run_steps` (20,000) step `lars_vae` run (`training.runner.train`, dynamic MNIST from
   $TFP_PRIORS_DATA_DIR or the data cache): its test NLL with K = 1000 on all 10,000 test
   images and log Z from the runner's GPU default S = 10^10, beside LARS Table 1's 83.03 at
   10^7 steps, and its wall time.

`--smoke` runs every part at toy sizes (S = 2^16, 2 training steps per block, K = 10 on 40
images, a 20-step run of a small VAE on the test slice given by `--smoke_data_dir`): it checks
the code paths, its figures mean nothing. Nothing here needs a GPU; without one the full check
runs on the CPU, slowly (hours).
"""
import os
import tempfile
import time

from absl import app
from absl import flags
import gin
import tensorflow as tf

from benchmarks import common
from benchmarks import train_loop_speed
from tfp_priors import models
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.evaluation import metrics
from tfp_priors.priors import build_prior
from tfp_priors.priors import LarsPrior
from tfp_priors.training import runner as runner_lib
from trainers import run as run_lib

flags.DEFINE_bool("smoke", False, "Toy sizes of every part (CPU, under a minute): a check of "
                  "the code paths, not of the figures.")
flags.DEFINE_integer("num_samples", 10**10, "S of the timed log Z estimate (LARS: 10^10).")
flags.DEFINE_integer("tune_samples", 2 * 10**8, "S of each chunk / XLA trial before the timed "
                     "estimate.")
flags.DEFINE_list("chunk_sizes", ["1000000", "4000000"], "Chunk sizes tried for log Z.")
flags.DEFINE_list("train_configs", ["vae_standard", "lars_vae", "lars_hvae"],
                  "Configs of the training-loop timing (the first is the baseline).")
flags.DEFINE_integer("train_steps", 1000, "Steps per timed training block.")
flags.DEFINE_integer("timing_rounds", 3, "Timed blocks per config and per IWAE size "
                     "(interleaved).")
flags.DEFINE_integer("iwae_examples", 2000, "Test examples of the IWAE throughput.")
flags.DEFINE_integer("num_importance_samples", 1000, "K of the IWAE parts (the papers: 1000).")
flags.DEFINE_integer("run_steps", 20000, "Training steps of the lars_vae run (0: skip it).")
flags.DEFINE_string("output_markdown", None, "Also write the markdown table to this file.")
flags.DEFINE_string("smoke_data_dir", None, "--smoke: make_datasets.data_dir of the toy run "
                    "(a directory with the dynamic MNIST files; default the data cache).")
FLAGS = flags.FLAGS

LATENT_SIZE = 50
ACCEPTANCE_SIZES = [LATENT_SIZE, 100, 100, 1]  # a(z) of lars_vae.gin
LARS_TABLE1_NLL = 83.03  # LARS Table 1, VAE with LARS prior, dynamic MNIST, 10^7 steps
SMOKE = dict(num_samples=2**16, tune_samples=2**14, chunk_sizes=[4096, 8192], train_steps=2,
             timing_rounds=1, iwae_examples=40, num_importance_samples=10, run_steps=20)
# A small model and budget for the --smoke run (the sizes of tests/support.TINY_BINDINGS).
SMOKE_BINDINGS = ["make_datasets.allow_download = False", "make_datasets.batch_size = 32",
                  "VAE.latent_size = 4", "VAE.hidden_sizes = (32,)",
                  "LarsPrior.hidden_sizes = (16,)", "LarsPrior.num_proposal_samples = 64",
                  "train.log_every = 5", "train.image_every = 1000000000",
                  "train.num_importance_samples = 2", "train.eval_max_examples = 8",
                  "train.normalizer_samples = 10000", "train.print_fn = None"]
HVAE_SMOKE_BINDINGS = ["HVAE.latent_size = 4", "HVAE.hidden_size = 32"]


def extra_bindings():
  """Gin bindings of the training parts: --gin_bindings, after SMOKE_BINDINGS with --smoke."""
  if not FLAGS.smoke:
    return list(FLAGS.gin_bindings)
  data = [f"make_datasets.data_dir = {FLAGS.smoke_data_dir!r}"] if FLAGS.smoke_data_dir else []
  return SMOKE_BINDINGS + data + list(FLAGS.gin_bindings)


def settings():
  """The sizes of this call: the flags, or SMOKE's with --smoke."""
  names = ("num_samples", "tune_samples", "chunk_sizes", "train_steps", "timing_rounds",
           "iwae_examples", "num_importance_samples", "run_steps")
  values = {n: getattr(FLAGS, n) for n in names}
  values["chunk_sizes"] = [int(c) for c in values["chunk_sizes"]]
  return {**values, **SMOKE} if FLAGS.smoke else values


def matmul_rate():
  """Dense float32 matmul FLOP/s of this device ([n, n] products, n = 8192 on a GPU, 1024 on
  a CPU), median of 5 blocks."""
  size = 8192 if tf.config.list_physical_devices("GPU") else 1024
  block, flops = common.matmul_block(size=size)
  return flops / common.median_seconds(block, 5)


def log_normalizer_part(s, roof):
  """Part 1: the fastest chunk / XLA setting on trial calls, then one timed S-sample call."""
  prior = LarsPrior(LATENT_SIZE, hidden_sizes=ACCEPTANCE_SIZES[1:-1])

  def estimate(num_samples, chunk, jit):
    start = time.perf_counter()
    result = normalizer_lib.estimate_log_normalizer(
        prior.proposal.distribution(), prior.log_acceptance, num_samples, chunk,
        antithetic=True, seed=0, jit_compile=jit)
    float(result.normalizer)
    return time.perf_counter() - start, result

  trials = {(chunk, jit): estimate(max(s["tune_samples"], 2 * chunk), chunk, jit)[0]
            for chunk in s["chunk_sizes"] for jit in (False, True)}
  chunk, jit = min(trials, key=trials.get)
  seconds, result = estimate(s["num_samples"], chunk, jit)
  rate = float(result.num_samples) / seconds
  return {"part": "log Z, LARS VAE a(z)", "setting": f"S = {float(result.num_samples):.3g}, "
          f"chunk {chunk}, XLA {'on' if jit else 'off'}", "seconds": seconds,
          "rate": rate, "rate_unit": "a(z) evaluations/s", "num_samples": int(result.num_samples),
          "matmul_fraction": rate * common.mlp_flops(ACCEPTANCE_SIZES) / roof,
          "value": float(result.log_normalizer),
          "value_name": f"log Z (SE {float(result.log_normalizer_standard_error):.2g})",
          "trial_seconds": {f"{c}/{'xla' if j else 'no-xla'}": t for (c, j), t in trials.items()}}


def training_part(s, scratch):
  """Part 2: steps/s of each config's training loop, interleaved, and the ratios."""
  blocks = {}
  for config in FLAGS.train_configs:
    runner = train_loop_speed.build_runner(
        config, os.path.join(scratch, config), min(100, s["train_steps"]), fused=True,
        bindings=extra_bindings() + (HVAE_SMOKE_BINDINGS if FLAGS.smoke else []))
    blocks[config] = train_loop_speed.loop_block(runner, s["train_steps"])
    blocks[config]()  # tracing and warm-up
  timed = common.interleaved_medians(blocks, s["timing_rounds"])
  base = timed[FLAGS.train_configs[0]][0]
  return [{"part": f"training loop, {config}", "setting": f"median of {s['timing_rounds']} "
           f"blocks of {s['train_steps']} steps", "seconds": seconds / s["train_steps"],
           "rate": s["train_steps"] / seconds, "rate_unit": "steps/s", "value": seconds / base,
           "value_name": f"time per step vs {FLAGS.train_configs[0]}"}
          for config, (seconds, _) in timed.items()]


def iwae_part(s):
  """Part 3: steady-state IWAE NLL throughput, (N - B) K / (t(N) - t(B)), per prior."""
  k, n = s["num_importance_samples"], s["iwae_examples"]
  batch = metrics.DEFAULT_IWAE_BATCH_SIZE
  gin.clear_config()  # the full-size VAE and LARS prior, whatever the training parts bound
  images = tf.cast(tf.random.stateless_uniform([n, 784], [0, 0]) < 0.13, tf.float32)
  dataset = tf.data.Dataset.from_tensor_slices(images).batch(100)
  model, rows = models.VAE(), []
  for name in ("normal", "lars"):
    prior = build_prior(model.latent_size, name=name)
    blocks = {m: (lambda m=m, prior=prior: metrics.evaluate(model, prior, dataset, k,
                                                             max_examples=m))
              for m in (batch, n)}
    for block in blocks.values():
      block()
    timed = common.interleaved_medians(blocks, s["timing_rounds"])
    extra = timed[n][0] - timed[batch][0]
    rate = (n - batch) / extra if extra > 0 else float("nan")  # noise beats work (--smoke)
    rows.append({"part": f"IWAE NLL, VAE, {name} prior", "setting": f"K = {k}, N = {n}, batch "
                 f"{batch}", "seconds": timed[n][0], "rate": rate,
                 "rate_unit": "test examples/s", "value": rate * k,
                 "value_name": "examples x importance samples/s"})
  return rows


def run_part(s, scratch):
  """Part 4: a lars_vae run of s['run_steps'] steps and its final test NLL."""
  gin.clear_config()
  run_lib.parse_config(["lars_vae.gin"], ["train.print_fn = None", "train.export = False"]
                       + extra_bindings()
                       + [f"train.num_steps = {s['run_steps']}"])
  start = time.perf_counter()
  try:
    results = runner_lib.train(os.path.join(scratch, "lars_vae_run"))
  finally:
    gin.clear_config()
  seconds = time.perf_counter() - start
  return {"part": f"lars_vae run, {s['run_steps']} steps", "setting": f"K = "
          f"{results['num_importance_samples']} on {results['num_examples']} test "
          f"images; paper {LARS_TABLE1_NLL} at 10^7 steps", "seconds": seconds,
          "rate": s["run_steps"] / seconds, "rate_unit": "steps/s (evaluation included)",
          "value": float(results["nll"]), "value_name": "test NLL, nats",
          "normalizer": float(results.get("normalizer", float("nan")))}


COLUMNS = [("part", "part"), ("setting", "setting"), ("seconds", "seconds"), ("rate", "rate"),
           ("rate_unit", "unit"), ("matmul_fraction", "fraction of FP32 matmul rate"),
           ("value", "figure"), ("value_name", "figure is")]


def markdown(rows, roof, total_seconds):
  """The check's table with its header line."""
  head = (f"GPU check on {common.device_name()}, TensorFlow {tf.__version__}, "
          f"{'SMOKE (toy sizes, figures mean nothing), ' if FLAGS.smoke else ''}"
          f"dense float32 matmul {roof / 1e12:.3g} TFLOP/s (TensorFloat-32 "
          f"{'on' if tf.config.experimental.tensor_float_32_execution_enabled() else 'off'}), "
          f"total {total_seconds:.0f} s")
  lines = [head, "", "| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  for row in rows:
    lines.append("| " + " | ".join(common.format_value(row.get(k)) for k, _ in COLUMNS) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  start = time.perf_counter()
  s = settings()
  roof = matmul_rate()
  rows = [log_normalizer_part(s, roof)]
  with tempfile.TemporaryDirectory() as scratch:
    rows += training_part(s, scratch)
    rows += iwae_part(s)
    if s["run_steps"]:
      rows.append(run_part(s, scratch))
  total = time.perf_counter() - start
  table = markdown(rows, roof, total)
  print("\n" + table, flush=True)
  if FLAGS.output_markdown:
    with open(FLAGS.output_markdown, "w") as f:
      f.write(table)
  common.write_json("gpu_check", {**s, "smoke": FLAGS.smoke,
                                  "train_configs": FLAGS.train_configs}, rows,
                    {"matmul_flops_per_second": roof, "total_seconds": total, "markdown": table})


if __name__ == "__main__":
  app.run(main)
