r"""Throughput of the evaluation log Z estimator in a(z) evaluations per second.

  python -m benchmarks.log_normalizer_throughput --num_samples=20000000 --chunk_size=100000

Uses the paper's acceptance network MLP[50-100-100-1] over N(0, I_50) with antithetic pairs.
"""
import time

from absl import app
from absl import flags

from tfp_priors.priors import LarsPrior

flags.DEFINE_integer("num_samples", 2 * 10**7, "S.")
flags.DEFINE_integer("chunk_size", 10**5, "Samples per chunk.")
flags.DEFINE_integer("latent_size", 50, "d.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  prior = LarsPrior(FLAGS.latent_size)
  prior.estimate_log_normalizer(num_samples=FLAGS.chunk_size, chunk_size=FLAGS.chunk_size)
  start = time.perf_counter()
  est = prior.estimate_log_normalizer(num_samples=FLAGS.num_samples, chunk_size=FLAGS.chunk_size)
  seconds = time.perf_counter() - start
  print(f"S={est.num_samples:.2e} in {seconds:.1f} s: {est.num_samples / seconds:.3e} a(z) "
        f"evaluations/s; log Z = {float(est.log_normalizer):.5f} +- "
        f"{float(est.log_normalizer_standard_error):.1e}")


if __name__ == "__main__":
  app.run(main)
