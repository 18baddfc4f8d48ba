r"""Throughput of the evaluation log Z estimator in a(z) evaluations per second, and its
roofline fraction.

  python -m benchmarks.log_normalizer_throughput            # ~2-3 minutes on 2 CPU cores
  python -m benchmarks.log_normalizer_throughput --num_samples=1000000000 \
      --xla_num_samples=1000000000 --output_json=lz.json \
      --settings=100000/off/float64,1000000/off/float32,1000000/on/float32,4000000/on/float32

Times `LarsPrior.estimate_log_normalizer`'s loop (`estimators.estimate_log_normalizer`) with
the paper's acceptance network MLP[50-100-100-1] over N(0, I_50) and antithetic pairs, for each
setting of chunk size, XLA (`jit_compile`) and the dtype of exp(log a) and of the sums inside a
chunk (the sums across chunks are float64 always); interleaved, median of `rounds`.

Roofline fraction = (a(z) evaluations/s x FLOPs per evaluation) / (measured dense-matmul
FLOP/s, timed among the interleaved blocks), with 2 (50 100 + 100 100 + 100 1) = 30,200
FLOPs per evaluation: the matrix products of a(z) only; sampling z, tanh and exp are not
counted, so 100% is out of reach. The target is >= 50%.
"""
from absl import app
from absl import flags
import tensorflow as tf

from benchmarks import common
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.priors import LarsPrior

flags.DEFINE_integer("num_samples", 2**22, "S per timed call without XLA.")
flags.DEFINE_integer("xla_num_samples", 2**16, "S per timed call with XLA (slow on CPU).")
flags.DEFINE_list("settings", ["16384/off/float64", "16384/off/float32", "100000/off/float64",
                               "100000/off/float32", "1000000/off/float64",
                               "1000000/off/float32", "16384/on/float32"],
                  "chunk size / XLA on|off / dtype of the sums in a chunk, one per setting.")
flags.DEFINE_integer("latent_size", 50, "d.")
flags.DEFINE_list("hidden_sizes", ["100", "100"], "Hidden units of a(z).")
flags.DEFINE_integer("rounds", 3, "Timed calls per setting (interleaved).")
FLAGS = flags.FLAGS
SAMPLING_ONLY = "sampling only"  # key of the blocks with a(z) = 1


def parse_setting(text):
  """'chunk/on|off/dtype' -> (int chunk, bool jit_compile, str dtype)."""
  chunk, jit, dtype = text.split("/")
  return int(chunk), jit.lower() in ("on", "true", "1", "xla"), tf.as_dtype(dtype).name


def main(argv):
  del argv
  hidden = [int(h) for h in FLAGS.hidden_sizes]
  prior = LarsPrior(FLAGS.latent_size, hidden_sizes=hidden)
  flops_per_eval = common.mlp_flops([FLAGS.latent_size] + hidden + [1])
  defaults = (normalizer_lib.DEFAULT_CHUNK_SIZE, normalizer_lib.DEFAULT_JIT_COMPILE,
              normalizer_lib.DEFAULT_CHUNK_DTYPE.name)
  settings = [parse_setting(s) for s in FLAGS.settings]
  if defaults not in settings:
    settings.insert(0, defaults)
  # Each call traces (and with XLA compiles) its loop anew: a call of one chunk measures that
  # overhead, and the steady-state rate is (S - chunk) / (t(S) - t(chunk)).
  blocks, estimates = {}, {}
  for chunk, jit, dtype in settings:
    total = FLAGS.xla_num_samples if jit else FLAGS.num_samples
    for samples in (chunk, max(total, 2 * chunk)):
      def block(chunk=chunk, jit=jit, dtype=dtype, samples=samples):
        estimates[(chunk, jit, dtype, samples)] = normalizer_lib.estimate_log_normalizer(
            prior.proposal.distribution(), prior.log_acceptance, samples, chunk,
            antithetic=True, seed=0, jit_compile=jit, chunk_dtype=dtype)
        float(estimates[(chunk, jit, dtype, samples)].normalizer)
      block()  # warm up
      blocks[(chunk, jit, dtype, samples)] = block
  # The same loop at the default setting with a(z) = 1 (0 * z keeps the draws in the graph):
  # the cost of drawing z and of the sums.
  chunk, jit, dtype = defaults
  for samples in (chunk, max(FLAGS.num_samples, 2 * chunk)):
    def block_without_a(samples=samples):
      normalizer_lib.estimate_log_normalizer(
          prior.proposal.distribution(), lambda z: 0.0 * z[..., 0], samples, chunk,
          antithetic=True, seed=0, jit_compile=jit, chunk_dtype=dtype).normalizer.numpy()
    block_without_a()
    blocks[(SAMPLING_ONLY, samples)] = block_without_a
  timed, roof = common.interleaved_medians_and_roof(blocks, FLAGS.rounds)
  (_, one), (_, many) = sorted(k for k in timed if k[0] == SAMPLING_ONLY)
  sampling_rate = (many - one) / max(timed[(SAMPLING_ONLY, many)][0]
                                     - timed[(SAMPLING_ONLY, one)][0], 1e-9)
  for key in [k for k in timed if k[0] == SAMPLING_ONLY]:
    del timed[key]
  rows = []
  for chunk, jit, dtype in settings:
    (one, _), (many, samples) = [(k, k[3]) for k in timed if k[:3] == (chunk, jit, dtype)]
    del _
    overhead = timed[one][0]
    est = estimates[many]
    used = est.num_samples - estimates[one].num_samples
    rate = used / max(timed[many][0] - overhead, 1e-9)
    rows.append({"chunk_size": chunk, "jit_compile": jit, "chunk_dtype": dtype,
                 "library_default": (chunk, jit, dtype) == defaults,
                 "num_samples": est.num_samples, "seconds": timed[many][0],
                 "block_seconds": timed[many][1], "one_chunk_seconds": overhead,
                 "evaluations_per_second": rate,
                 "roofline_fraction": rate * flops_per_eval / roof,
                 "log_normalizer": float(est.log_normalizer),
                 "log_normalizer_standard_error": float(est.log_normalizer_standard_error)})
  base = [r for r in rows if r["library_default"]][0]["evaluations_per_second"]
  # Time per evaluation = sampling share + a(z) share, so a(z) alone runs at this rate:
  network_rate = 1.0 / max(1.0 / base - 1.0 / sampling_rate, 1e-12)
  for r in rows:
    r["speedup_vs_default"] = r["evaluations_per_second"] / base
  common.print_table(
      f"log Z estimator, a = MLP[{'-'.join(map(str, [FLAGS.latent_size] + hidden + [1]))}], "
      f"antithetic; {common.device_name()}, measured matmul rate {roof / 1e9:.0f} GFLOP/s, "
      f"{flops_per_eval} FLOPs per a(z); rates are steady state (S minus one chunk over the "
      f"time minus a one-chunk call, which is the trace/compile overhead)",
      [("chunk_size", "chunk"), ("jit_compile", "XLA"), ("chunk_dtype", "chunk sums"),
       ("library_default", "default"), ("num_samples", "S"),
       ("one_chunk_seconds", "one-chunk call s"),
       ("evaluations_per_second", "a(z) evaluations/s"),
       ("roofline_fraction", "roofline fraction"), ("speedup_vs_default", "vs default"),
       ("log_normalizer", "log Z")], rows)
  print(f"Default setting without a(z) (drawing z and the sums only): {sampling_rate:.3g} "
        f"evaluations/s, {base / sampling_rate:.0%} of the default estimator's time; a(z) "
        f"alone: {network_rate:.3g} evaluations/s = "
        f"{network_rate * flops_per_eval / roof:.0%} of the roof.")
  common.write_json("log_normalizer_throughput", {
      "num_samples": FLAGS.num_samples, "xla_num_samples": FLAGS.xla_num_samples,
      "latent_size": FLAGS.latent_size, "hidden_sizes": hidden, "rounds": FLAGS.rounds},
                    rows, {"matmul_flops_per_second": roof,
                           "flops_per_evaluation": flops_per_eval,
                           "sampling_only_evaluations_per_second": sampling_rate,
                           "network_only_evaluations_per_second": network_rate})


if __name__ == "__main__":
  app.run(main)
