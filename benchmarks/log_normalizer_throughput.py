r"""Throughput of the evaluation log Z estimator in a(z) evaluations per second, and its
roofline fraction.

  python -m benchmarks.log_normalizer_throughput            # ~4-8 minutes on 2 CPU cores
  python -m benchmarks.log_normalizer_throughput --num_samples=1000000000 \
      --xla_num_samples=1000000000 --output_json=lz.json \
      --settings=100000/off/float64,1000000/off/float32,1000000/on/float32,4000000/on/float32

Times `LarsPrior.estimate_log_normalizer`'s loop (`estimators.estimate_log_normalizer`) with
the paper's acceptance network MLP[50-100-100-1] over N(0, I_50) and antithetic pairs, for each
setting of chunk size, XLA (`jit_compile`), the dtype of exp(log a) and of the sums inside a
chunk (the sums across chunks are float64 always) and the way the N(0, 1) draws are made
(`normal_sampler`: Box-Muller from uniforms, TF's normal kernel, ndtri of uniforms, or
`proposal.sample`); interleaved, median of `rounds`. Timed among them, with the same chunk
loop: the RNG alone for each sampler (plus uniforms alone and `tf.random.Generator.normal`),
the estimator with a(z) = 1 (drawing z and the sums), and a(z) with the sums on fixed draws
(the network alone), each as evaluations/s and as the roofline fraction the estimator would
reach if only that part took time.

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
flags.DEFINE_integer("xla_num_samples", 2**19, "S per timed call with XLA (slow on CPU).")
flags.DEFINE_list("settings", ["100000/off/float64/box_muller", "100000/off/float64/normal",
                               "100000/off/float64/ndtri", "100000/off/float64/proposal",
                               "16384/off/float64", "1000000/off/float64", "100000/off/float32",
                               "16384/on/float32"],
                  "chunk size / XLA on|off / dtype of the sums in a chunk [/ normal sampler, "
                  "default the library's], one per setting.")
flags.DEFINE_integer("latent_size", 50, "d.")
flags.DEFINE_list("hidden_sizes", ["100", "100"], "Hidden units of a(z).")
flags.DEFINE_integer("rounds", 3, "Timed calls per setting (interleaved).")
FLAGS = flags.FLAGS
SAMPLING_ONLY = "sampling only"  # key of the blocks with a(z) = 1
RNG_ONLY = "rng only"  # key of the blocks drawing the normals alone
NETWORK_ONLY = "network only"  # key of the blocks of a(z) and the sums on fixed draws
RNG_VARIANTS = normalizer_lib.NORMAL_SAMPLERS[:3] + ("uniforms alone", "tf.random.Generator")


def parse_setting(text):
  """'chunk/on|off/dtype[/sampler]' -> (int chunk, bool jit_compile, str dtype, str sampler)."""
  chunk, jit, dtype, *sampler = text.split("/")
  return (int(chunk), jit.lower() in ("on", "true", "1", "xla"), tf.as_dtype(dtype).name,
          sampler[0] if sampler else normalizer_lib.DEFAULT_NORMAL_SAMPLER)


def chunk_loop(step, num_chunks):
  """A warmed-up block running step(i) -> float32 scalar for chunks 0..num_chunks-1 in one
  tf.function while loop (the estimator's loop structure) and waiting for the result."""
  @tf.function(autograph=False)
  def loop():
    return tf.while_loop(lambda i, _: i < num_chunks, lambda i, acc: (i + 1, acc + step(i)),
                         (tf.constant(0, tf.int64), tf.constant(0.0, tf.float64)))[1]
  loop().numpy()
  return lambda: loop().numpy()


def rng_block(variant, draws, latent_size, num_chunks):
  """Draws [draws, d] normals per chunk (`variant`: a normal sampler, uniforms alone, or a
  tf.random.Generator), reading one column so the draw is not pruned."""
  seed = tf.constant([0, 0], tf.int32)
  generator = tf.random.Generator.from_seed(0, alg="philox")

  def step(i):
    chunk_seed = tf.cast(tf.random.experimental.stateless_fold_in(seed, i), tf.int32)
    if variant == "uniforms alone":
      z = tf.random.stateless_uniform([draws, latent_size], chunk_seed, alg="philox")
    elif variant == "tf.random.Generator":
      z = generator.normal([draws, latent_size])
    else:
      z = normalizer_lib.standard_normals([draws, latent_size], chunk_seed, tf.float32, variant)
    return tf.cast(tf.reduce_sum(z[:, 0]), tf.float64)
  return chunk_loop(step, num_chunks)


def network_block(log_acceptance, draws, latent_size, num_chunks, dtype):
  """a(z), a(-z) and the chunk sums on one fixed draw (perturbed by 0 * i so that no chunk can
  be hoisted out of the loop): the estimator without the RNG."""
  z0 = tf.random.stateless_normal([draws, latent_size], [0, 1])

  def step(i):
    z = z0 + 0.0 * tf.cast(i, tf.float32)
    total, _ = normalizer_lib._chunk_moments(  # pylint: disable=protected-access
        log_acceptance(z), log_acceptance(-z), tf.as_dtype(dtype))
    return total
  return chunk_loop(step, num_chunks)


def main(argv):
  del argv
  hidden = [int(h) for h in FLAGS.hidden_sizes]
  prior = LarsPrior(FLAGS.latent_size, hidden_sizes=hidden)
  flops_per_eval = common.mlp_flops([FLAGS.latent_size] + hidden + [1])
  defaults = (normalizer_lib.DEFAULT_CHUNK_SIZE, normalizer_lib.DEFAULT_JIT_COMPILE,
              normalizer_lib.DEFAULT_CHUNK_DTYPE.name, normalizer_lib.DEFAULT_NORMAL_SAMPLER)
  settings = [parse_setting(s) for s in FLAGS.settings]
  if defaults not in settings:
    settings.insert(0, defaults)
  # Each call traces (and with XLA compiles) its loop anew: a call of one chunk measures that
  # overhead, and the steady-state rate is (S - chunk) / (t(S) - t(chunk)).
  blocks, estimates = {}, {}
  for chunk, jit, dtype, sampler in settings:
    total = FLAGS.xla_num_samples if jit else FLAGS.num_samples
    for samples in (chunk, max(total, 2 * chunk)):
      key = (chunk, jit, dtype, sampler, samples)

      def block(chunk=chunk, jit=jit, dtype=dtype, sampler=sampler, samples=samples, key=key):
        estimates[key] = normalizer_lib.estimate_log_normalizer(
            prior.proposal.distribution(), prior.log_acceptance, samples, chunk,
            antithetic=True, seed=0, jit_compile=jit, chunk_dtype=dtype, normal_sampler=sampler)
        float(estimates[key].normalizer)
      block()  # warm up
      blocks[key] = block
  # The same loop at the default setting with a(z) = 1 (0 * z keeps the draws in the graph):
  # the cost of drawing z and of the sums.
  chunk, jit, dtype, sampler = defaults
  for samples in (chunk, max(FLAGS.num_samples, 2 * chunk)):
    def block_without_a(samples=samples):
      normalizer_lib.estimate_log_normalizer(
          prior.proposal.distribution(), lambda z: 0.0 * z[..., 0], samples, chunk,
          antithetic=True, seed=0, jit_compile=jit, chunk_dtype=dtype,
          normal_sampler=sampler).normalizer.numpy()
    block_without_a()
    blocks[(SAMPLING_ONLY, samples)] = block_without_a
  # The parts alone, in the estimator's loop of chunks (one trace each, so no overhead term).
  parts_chunk = chunk
  num_chunks = max(FLAGS.num_samples // parts_chunk, 2)
  for variant in RNG_VARIANTS:
    blocks[(RNG_ONLY, variant)] = rng_block(variant, parts_chunk // 2, FLAGS.latent_size,
                                            num_chunks)
  blocks[(NETWORK_ONLY,)] = network_block(prior.log_acceptance, parts_chunk // 2,
                                          FLAGS.latent_size, num_chunks, dtype)
  timed, roof = common.interleaved_medians_and_roof(blocks, FLAGS.rounds)
  (_, one), (_, many) = sorted(k for k in timed if k[0] == SAMPLING_ONLY)
  sampling_rate = (many - one) / max(timed[(SAMPLING_ONLY, many)][0]
                                     - timed[(SAMPLING_ONLY, one)][0], 1e-9)
  evaluations = num_chunks * parts_chunk  # of the parts-alone blocks (2 per antithetic draw)
  rng_rates = {v: evaluations / timed[(RNG_ONLY, v)][0] for v in RNG_VARIANTS}
  network_alone_rate = evaluations / timed[(NETWORK_ONLY,)][0]
  for key in [k for k in timed if k[0] in (SAMPLING_ONLY, RNG_ONLY, NETWORK_ONLY)]:
    del timed[key]
  rows = []
  for setting in settings:
    (one, _), (many, samples) = [(k, k[4]) for k in timed if k[:4] == setting]
    del _
    overhead = timed[one][0]
    est = estimates[many]
    used = est.num_samples - estimates[one].num_samples
    # A difference under 5% of the block is noise (the compile time varies): no rate then.
    delta = timed[many][0] - overhead
    rate = used / delta if delta > 0.05 * timed[many][0] else float("nan")
    chunk, jit, dtype, sampler = setting
    rows.append({"chunk_size": chunk, "jit_compile": jit, "chunk_dtype": dtype,
                 "normal_sampler": sampler, "library_default": setting == defaults,
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
       ("normal_sampler", "normals"), ("library_default", "default"), ("num_samples", "S"),
       ("one_chunk_seconds", "one-chunk call s"),
       ("evaluations_per_second", "a(z) evaluations/s"),
       ("roofline_fraction", "roofline fraction"), ("speedup_vs_default", "vs default"),
       ("log_normalizer", "log Z")], rows)
  parts = [{"part": f"RNG alone: {v}", "evaluations_per_second": r,
            "normals_per_second": r * FLAGS.latent_size / 2,
            "roofline_fraction": r * flops_per_eval / roof} for v, r in rng_rates.items()]
  parts.append({"part": "a(z) and the sums on fixed draws",
                "evaluations_per_second": network_alone_rate,
                "roofline_fraction": network_alone_rate * flops_per_eval / roof})
  common.print_table(
      f"The parts alone in the same loop of {num_chunks} chunks of {parts_chunk} (antithetic: "
      f"{FLAGS.latent_size // 2} normals per evaluation); roofline fraction = the estimator's "
      f"if only this part took time",
      [("part", "part"), ("normals_per_second", "normals/s"),
       ("evaluations_per_second", "a(z) evaluations/s"),
       ("roofline_fraction", "roofline fraction")], parts)
  print(f"Default setting without a(z) (drawing z and the sums only): {sampling_rate:.3g} "
        f"evaluations/s, {base / sampling_rate:.0%} of the default estimator's time; a(z) "
        f"alone (the difference): {network_rate:.3g} evaluations/s = "
        f"{network_rate * flops_per_eval / roof:.0%} of the roof.")
  common.write_json("log_normalizer_throughput", {
      "num_samples": FLAGS.num_samples, "xla_num_samples": FLAGS.xla_num_samples,
      "latent_size": FLAGS.latent_size, "hidden_sizes": hidden, "rounds": FLAGS.rounds},
                    rows, {"matmul_flops_per_second": roof,
                           "flops_per_evaluation": flops_per_eval, "parts": parts,
                           "sampling_only_evaluations_per_second": sampling_rate,
                           "network_only_evaluations_per_second": network_rate})


if __name__ == "__main__":
  app.run(main)
