r"""Sampling throughput of the priors' samplers: LARS truncated rejection sampling, SIR and
Langevin dynamics (NCP), in seconds per batch and per 1,000 samples.

  python -m benchmarks.sampling_speed                              # ~1 minute on 2 CPU cores
  python -m benchmarks.sampling_speed --batch_sizes=1,10,100,1000,10000 \
      --sir_proposals=5,50,500,5000 --langevin_steps=5,50,500,1000 --output_json=sampling.json

Samplers over N(0, I_50) with the papers' networks, compiled with tf.function:
  - LARS (Bauer & Mnih 2019, Alg. 2): a(z) = MLP[50-100-100-1], T = 100; the output bias is
    set so that Z = E_pi[a(z)] is near `--lars_acceptance` (the paper's VAE: Z = 0.015), since
    the expected number of proposals per sample, (1 - (1 - Z)^T) / Z, sets the cost;
  - SIR with M proposals per sample and Langevin dynamics with a number of steps (Aneja et al.
    2021, Table 8), classifier MLP[50-100-100-1].
Weights are otherwise untrained (they do not change the cost). Interleaved, median of
`rounds` calls per setting after a warm-up call; the ratio column compares each row with SIR
at the largest M and the same batch.
"""
import math

from absl import app
from absl import flags
import tensorflow as tf

from benchmarks import common
from tfp_priors.priors import LarsPrior
from tfp_priors.priors import NCPPrior

flags.DEFINE_integer("latent_size", 50, "d.")
flags.DEFINE_list("batch_sizes", ["1", "10", "100", "1000"], "Samples per batch (Aneja: 1 and 10).")
flags.DEFINE_list("sir_proposals", ["50", "500", "5000"], "M of SIR.")
flags.DEFINE_list("langevin_steps", ["5", "50", "500"], "Langevin iterations.")
flags.DEFINE_float("step_size", 1e-3, "Langevin step size lambda.")
flags.DEFINE_integer("truncation", 100, "T of LARS.")
flags.DEFINE_float("lars_acceptance", 0.015, "Target Z of the LARS acceptance function.")
flags.DEFINE_integer("rounds", 3, "Timed calls per setting (interleaved).")
FLAGS = flags.FLAGS


def lars_prior():
  """LarsPrior whose a(z) has Z near --lars_acceptance (output bias shifted by bisection)."""
  prior = LarsPrior(FLAGS.latent_size, truncation=FLAGS.truncation)
  bias = prior.acceptance_net.net.layers[-1].bias
  z = prior.proposal.distribution().sample(2**14, seed=[0, 7])
  low, high = -30.0, 30.0
  for _ in range(40):
    bias.assign(tf.fill(bias.shape, (low + high) / 2))
    if float(tf.reduce_mean(tf.exp(prior.log_acceptance(z)))) > FLAGS.lars_acceptance:
      high = (low + high) / 2
    else:
      low = (low + high) / 2
  return prior


def main(argv):
  del argv
  lars = lars_prior()
  lars_z = float(tf.reduce_mean(tf.exp(lars.log_acceptance(
      lars.proposal.distribution().sample(10**5, seed=[1, 7])))))
  # NCP priors with M proposals (M is fixed at construction); one for Langevin.
  sir_priors = {m: NCPPrior(FLAGS.latent_size, num_proposals=m)
                for m in [int(m) for m in FLAGS.sir_proposals]}
  langevin_prior = NCPPrior(FLAGS.latent_size)
  blocks, info = {}, {}
  for batch in [int(b) for b in FLAGS.batch_sizes]:
    rejection = tf.function(lambda n=batch: lars.distribution().sample_with_acceptance_rate(
        n, seed=[0, 1]))
    key = ("LARS rejection", f"T = {FLAGS.truncation}, Z = {lars_z:.3f}", batch)
    blocks[key] = lambda f=rejection: f().samples.numpy()
    info[key] = rejection
    for m, prior in sir_priors.items():
      sir = tf.function(lambda p=prior, n=batch: p.sample(n, seed=[0, 1]))
      blocks[("SIR", f"M = {m}", batch)] = lambda f=sir: f().numpy()
    for steps in [int(s) for s in FLAGS.langevin_steps]:
      langevin = tf.function(lambda n=batch, t=steps: langevin_prior.langevin_sample(
          n, FLAGS.step_size, t, seed=[0, 1]))
      blocks[("Langevin", f"{steps} steps", batch)] = lambda f=langevin: f().numpy()
  for block in blocks.values():
    block()  # trace and warm up
  timed = common.interleaved_medians(blocks, FLAGS.rounds)
  largest_m = max(sir_priors)
  rows = []
  for (sampler, setting, batch), (seconds, all_seconds) in timed.items():
    row = {"sampler": sampler, "setting": setting, "batch": batch, "seconds": seconds,
           "block_seconds": all_seconds, "seconds_per_1000": seconds * 1000 / batch,
           "ratio_to_largest_sir": seconds / timed[("SIR", f"M = {largest_m}", batch)][0]}
    if sampler.startswith("LARS"):
      result = info[(sampler, setting, batch)]()
      row["acceptance_rate"] = float(result.acceptance_rate)
      row["proposals_per_sample"] = float(result.num_proposals) / batch
      row["expected_proposals_per_sample"] = (
          -math.expm1(FLAGS.truncation * math.log1p(-lars_z)) / lars_z)
    rows.append(row)
  common.print_table(
      f"Prior sampling time, d = {FLAGS.latent_size}, networks MLP[{FLAGS.latent_size}-100-100-1]"
      f" ({common.device_name()}; median of {FLAGS.rounds} interleaved calls)",
      [("sampler", "sampler"), ("setting", "setting"), ("batch", "batch"),
       ("seconds", "s per batch"), ("seconds_per_1000", "s per 1,000 samples"),
       ("ratio_to_largest_sir", f"vs SIR M = {largest_m}"),
       ("proposals_per_sample", "proposals per sample")], rows)
  common.write_json("sampling_speed", {
      "latent_size": FLAGS.latent_size, "step_size": FLAGS.step_size,
      "truncation": FLAGS.truncation, "lars_normalizer": lars_z, "rounds": FLAGS.rounds},
                    rows)


if __name__ == "__main__":
  app.run(main)
