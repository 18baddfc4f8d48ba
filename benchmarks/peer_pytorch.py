r"""Peer benchmark: our TF2 / TFP training and evaluation against PyTorch and pythae.

  pip install -e '.[bench]'                     # torch (CPU wheel) and pythae; not for tests/CI
  python -m benchmarks.peer_pytorch             # 11 rounds, ~5 minutes on 2 idle CPU cores
  python -m benchmarks.peer_pytorch --quick     # a few steps, 2 rounds: a ~1 minute smoke check
  python -m benchmarks.peer_pytorch --rounds=21 --threads=4 --output_json=peer.json

One worker process per framework, each limited to `--threads` threads (TF:
`tf.config.threading` intra- and inter-op threads; PyTorch: `torch.set_num_threads` and
`set_num_interop_threads`); the worker processes import only their own framework. Each worker
builds its variants and runs every timed block once untimed (tracing, allocation), then this
coordinator runs the blocks of both workers interleaved, one at a time (round 1: ours A, peer
A, peer A', ours B, ...; then round 2, ...), over a pipe ('run block X' -> seconds), and takes
the median of each block over `--rounds` rounds (the rule of `benchmarks.common`).

Model: the VAE of configs/vae_standard.gin (LARS appendix C.2): MLP 784-300-300-50, tanh,
diagonal Gaussian encoder (mean and log std from one 784-300-300-100 MLP), Bernoulli decoder
(50-300-300-784 logits), batch 128, Adam at 3e-4, dynamically binarized MNIST. The PyTorch
models copy our initial weights (so they start from the same point and the NLLs can be
compared) and their parameter counts are checked equal to ours. Rows (ratio = peer time /
our time: > 1 means we are faster):

1. One training step on one fixed batch: `Trainer.train_step` of a `Runner` built from
   configs/vae_standard.gin, vs a plain PyTorch step (same single-sample ELBO, KL warm-up,
   `torch.optim.Adam` with its defaults but lr) with plain and with fused Adam
   (`fused=True` where the CPU build supports it, else `foreach=True`; the table says which),
   and vs pythae's `VAE` (analytic KL) stepped as its `BaseTrainer` steps it.
2. The training loop with data: `Runner.train_loop()` (our tf.data pipeline: shuffling,
   Bernoulli binarization per batch; logging every 500 steps and at the block's last step to
   TensorBoard and the console; the loop's final checkpoint), each block extending the budget
   by `--loop_steps` steps; vs a plain PyTorch loop (the 50,000 grey training images as one
   in-memory tensor, a new permutation each epoch, `torch.bernoulli` per batch, a console
   line at the same steps, `torch.save` of model and optimizer at the block's end), with plain
   and with fused Adam; vs
   pythae's `BaseTrainer.train()` for one epoch of `--loop_steps` batches (its DataLoader over
   a `BaseDataset` re-binarized per block, its progress bar and logging, its end-of-training
   model save).
3. One VampPrior VAE step (configs/vamp_vae.gin: K = 500 pseudo-inputs, hardtanh) vs a
   hand-written PyTorch VampPrior and pythae's `VAMP` (whose pseudo-inputs are a
   Linear(500, 784) with a bias: 784 more parameters than ours, which has none).
4. IWAE NLL at K = 1000 over the first `--eval_examples` test images (the standard VAE at its
   initial weights, identical in all three): ours is the compiled step of
   `evaluation.metrics.evaluate` (IWAE bound, single-sample ELBO, posterior means, 20
   examples per step) traced once; `metrics.evaluate` itself (which traces its step on every
   call) is shown beside it. Peers: the same computation in PyTorch under `torch.no_grad()`,
   and pythae's `VAE.get_nll` (per image, 100 samples per pass; under `torch.no_grad()`).

The 'value' column is a sanity check: the loss after the last block (steps and loops, nats)
or the NLL estimate (nats), which should agree across frameworks up to Monte Carlo noise.

Not made equivalent: ours checks every step's loss and gradient norm for NaN/inf (skipping
such updates), the peers do not; Keras' Adam epsilon is 1e-7, PyTorch's 1e-8; pythae's VAE
uses the analytic KL, no KL warm-up and BCE on probabilities (ours and plain PyTorch: the
single-sample KL, warm-up, BCE on logits); pythae's trainer makes a fresh Adam, reseeds and
deep-copies the model at every `train()` and shuffles a fixed `BaseDataset` of
`--loop_steps` batches (binarized once per block, not per batch); pythae's `get_nll`
re-encodes every replica of an image (1000 encoder passes per image, ours and plain PyTorch:
one). tf.data runs its pipeline on its own threads, which the thread settings do not cap.
On a machine that other processes load, PyTorch's OpenMP threads (which spin at barriers)
slow down far more than TF's: the script warns when the load average is high;
`--omp_wait_policy=PASSIVE` avoids that collapse (the final figures: an idle machine, the
default).
"""
import dataclasses
import functools
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

from absl import app
from absl import flags
import numpy as np

# Set by the coordinator in its workers' environment: 'tf' or 'torch'. Workers import only
# their own framework, so benchmarks.common (TensorFlow) is the coordinator's alone.
WORKER_ENV = "TFP_PRIORS_PEER_WORKER"
if not os.environ.get(WORKER_ENV):
  from benchmarks import common  # noqa: E402  (defines --output_json)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_integer("rounds", 11, "Timed blocks per variant (interleaved); the median counts.")
flags.DEFINE_integer("steps", 20, "Steps per timed block of the fixed-batch step rows.")
flags.DEFINE_integer("loop_steps", 300, "Steps per timed block of the training-loop rows (at "
                     "most 390 with pythae: its block is one epoch of that many batches of the "
                     "50,000 training images).")
flags.DEFINE_integer("eval_examples", 100, "Test images per timed block of the IWAE rows.")
flags.DEFINE_integer("num_importance_samples", 1000, "K of the IWAE NLL.")
flags.DEFINE_integer("pythae_nll_batch", 100, "batch_size of pythae's get_nll (its default).")
flags.DEFINE_integer("threads", 2, "Threads of each framework's worker.")
flags.DEFINE_bool("quick", False, "Smoke check: 2 rounds of a few steps (~1 minute).")
flags.DEFINE_string("omp_wait_policy", None, "OMP_WAIT_POLICY of the PyTorch worker (its "
                    "OpenMP threads): None leaves the library default (spinning); PASSIVE keeps "
                    "PyTorch from collapsing on a machine that other processes load.")
flags.DEFINE_bool("pythae", True, "Time pythae's rows (skipped anyway when not importable).")
flags.DEFINE_string("worker", None, "Internal: run as the 'tf' or 'torch' worker.")
flags.DEFINE_string("worker_settings", None, "Internal: the worker's settings (JSON).")
FLAGS = flags.FLAGS

BATCH_SIZE = 128
LEARNING_RATE = 3e-4
LOG_EVERY = 500  # `train.log_every` of every config
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# (group, block, worker, label, per) in timing order; group base = the group's first row.
GROUPS = {
    "step": "1. VAE step, one fixed batch",
    "loop": "2. VAE training loop with data",
    "vamp": "3. VampPrior VAE step (K = 500)",
    "iwae": "4. IWAE NLL, K = 1000",
}
BLOCKS = [
    ("step", "ours_step", "tf", "ours: Trainer.train_step", "step"),
    ("step", "torch_step", "torch", "PyTorch, Adam", "step"),
    ("step", "torch_step_fused", "torch", "PyTorch, Adam({fused})", "step"),
    ("step", "pythae_step", "torch", "pythae VAE, Adam", "step"),
    ("loop", "ours_loop", "tf", "ours: Runner.train_loop", "step"),
    ("loop", "torch_loop", "torch", "PyTorch loop", "step"),
    ("loop", "torch_loop_fused", "torch", "PyTorch loop, Adam({fused})", "step"),
    ("loop", "pythae_loop", "torch", "pythae BaseTrainer.train", "step"),
    ("vamp", "ours_vamp", "tf", "ours: Trainer.train_step, VampPrior", "step"),
    ("vamp", "torch_vamp", "torch", "PyTorch, hand-written VampPrior", "step"),
    ("vamp", "pythae_vamp", "torch", "pythae VAMP, Adam", "step"),
    ("iwae", "ours_iwae", "tf", "ours: evaluate's step, traced once", "image"),
    ("iwae", "ours_evaluate", "tf", "ours: metrics.evaluate (traces per call)", "image"),
    ("iwae", "torch_iwae", "torch", "PyTorch, hand-written", "image"),
    ("iwae", "pythae_iwae", "torch", "pythae VAE.get_nll", "image"),
]


def settings():
  """The run's settings (--quick shrinks every block)."""
  s = dict(rounds=FLAGS.rounds, steps=FLAGS.steps, loop_steps=FLAGS.loop_steps,
           eval_examples=FLAGS.eval_examples, num_importance_samples=FLAGS.num_importance_samples,
           pythae_nll_batch=FLAGS.pythae_nll_batch, threads=FLAGS.threads, pythae=FLAGS.pythae,
           omp_wait_policy=FLAGS.omp_wait_policy,
           batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, log_every=LOG_EVERY)
  if FLAGS.quick:
    s.update(rounds=2, steps=3, loop_steps=10, eval_examples=20)
  return s


def units_per_block(per, s):
  """Steps or images of one block."""
  return {"step": None, "image": s["eval_examples"]}[per]


# ------------------------------------------------------------------------------------------
# Worker side: the protocol.


def serve(build):
  """Runs a worker: `build()` -> ({block name: callable() -> value or None}, info dict).

  Protocol (JSON lines): the worker answers {'ready': info, 'blocks': [...]} once built and
  warmed up, then for each {'run': name} on stdin {'seconds': s, 'value': v}; {'quit': 1}
  ends it. Anything the frameworks print goes to stderr (the coordinator's log file).
  """
  protocol = os.fdopen(os.dup(1), "w", buffering=1)
  os.dup2(2, 1)  # fd 1 (print, tqdm, logging) -> stderr

  def send(message):
    protocol.write(json.dumps(message) + "\n")
    protocol.flush()

  try:
    blocks, info = build()
    for block in blocks.values():  # warm-up: traces, allocations, first Adam step
      block()
    send({"ready": info, "blocks": list(blocks)})
    for line in sys.stdin:
      command = json.loads(line)
      if "quit" in command:
        break
      block = blocks[command["run"]]
      start = time.perf_counter()
      value = block()
      seconds = time.perf_counter() - start
      send({"seconds": seconds, "value": None if value is None else float(value)})
  except Exception:  # pylint: disable=broad-except
    send({"error": traceback.format_exc()})
    raise


# ------------------------------------------------------------------------------------------
# TF worker (ours).


def _parse_gin(config):
  import gin  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from trainers import run  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.FATAL)  # gin logs each include it looks for as an error
  try:
    run.parse_config([config], [])
  finally:
    logging.set_verbosity(verbosity)


def build_runner(config, workdir):
  """A `Runner` built as `runner.train` builds it from the gin config (evaluation and export
  off), set up and initialized in `workdir`."""
  from tfp_priors.training import runner as runner_lib  # pylint: disable=g-import-not-at-top
  _parse_gin(config)
  runner = runner_lib.configured_runner(workdir, evaluate=False, export=False)
  runner.check()
  os.makedirs(workdir, exist_ok=True)
  runner.setup()
  runner.restore_or_initialize()
  return runner


def mlp_weights(mlp):
  """[(kernel [in, out], bias [out]), ...] of a `tfp_priors.nets.MLP`'s dense layers."""
  return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in mlp.net.layers
          if hasattr(layer, "kernel")]


def num_parameters(variables):
  return int(sum(np.prod(v.shape) for v in variables))


def tf_worker(s):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(s["threads"])
  tf.config.threading.set_inter_op_parallelism_threads(s["threads"])
  import gin  # pylint: disable=g-import-not-at-top
  from tfp_priors import objectives  # pylint: disable=g-import-not-at-top
  from tfp_priors.data import registry  # pylint: disable=g-import-not-at-top
  from tfp_priors.evaluation import metrics  # pylint: disable=g-import-not-at-top
  from tfp_priors.priors import build_prior  # pylint: disable=g-import-not-at-top

  def build():
    tmp = s["tmpdir"]
    # VampPrior first: its step is traced (warm-up) while its gin config is active; the
    # standard config stays active for the rest of the run.
    vamp = build_runner("vamp_vae", os.path.join(tmp, "ours_vamp"))
    x = next(iter(vamp.data.train))
    vamp_phase, rate = vamp.strategy.phase(0, vamp.schedule.num_steps, vamp.learning_rate_fn)
    rate = tf.constant(rate, tf.float32)
    vamp.trainer.train_step(x, rate, vamp_phase)
    handoff = {"vamp_" + k: v for k, v in _vae_arrays(vamp.model).items()}
    handoff["vamp_pseudo_input_weights"] = vamp.prior.pseudo_input_weights.numpy()
    vamp_size = num_parameters(vamp.model.trainable_variables
                               + vamp.prior.trainable_variables)

    # The step row's Runner, and the loop row's (which its timed blocks train on).
    stepper = build_runner("vae_standard", os.path.join(tmp, "ours_step"))
    phase, _ = stepper.strategy.phase(0, stepper.schedule.num_steps, stepper.learning_rate_fn)
    runner = build_runner("vae_standard", os.path.join(tmp, "ours_loop"))
    handoff.update(_vae_arrays(runner.model))
    # An untrained copy of the initial weights for the IWAE rows.
    eval_model = runner.model_fn(input_size=runner.data.event_size,
                                 train_mean=runner.data.train_mean)
    for target, source in zip(eval_model.variables, runner.model.variables):
      target.assign(source)
    eval_prior = build_prior(eval_model.latent_size, model=eval_model)
    test = np.concatenate([b.numpy() for b in runner.data.test.take(
        -(-s["eval_examples"] // int(runner.data.test.element_spec.shape[0] or 1)))])
    test = test[:s["eval_examples"]]
    name = gin.query_parameter("make_datasets.name")
    try:
      data_dir = gin.query_parameter("make_datasets.data_dir")
    except ValueError:
      data_dir = None
    grey = registry.get_spec(name).loader(data_dir, True)["train"]
    handoff.update(
        batch=x.numpy(), test=test, train_grey_u8=np.round(grey * 255).astype(np.uint8),
        kl_warmup_steps=np.array(runner.schedule.kl_warmup_steps()),
        vamp_kl_warmup_steps=np.array(vamp.schedule.kl_warmup_steps()))
    np.savez(s["handoff"], **handoff)

    writer = tf.summary.create_file_writer(os.path.join(tmp, "ours_loop", "train"))
    k, iwae_batch = s["num_importance_samples"], metrics.DEFAULT_IWAE_BATCH_SIZE
    log_probs = {"nll": eval_prior.latent_log_prob}

    @tf.function(jit_compile=metrics.DEFAULT_JIT_COMPILE)
    def iwae_step(x, seed):  # the step of metrics.evaluate
      seed_iwae, seed_elbo = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      bounds = objectives.iwae_bounds(eval_model, log_probs, x, k, seed_iwae)
      terms, _ = objectives.elbo(eval_model, eval_prior, x, training=False, seed=seed_elbo)
      return (-tf.reduce_sum(bounds["nll"]), tf.reduce_sum(terms.elbo),
              eval_model.posterior_mean(x))

    test_batches = [tf.constant(test[i:i + iwae_batch]) for i in range(0, len(test), iwae_batch)]

    def ours_step():
      for _ in range(s["steps"]):
        out = stepper.trainer.train_step(x, rate, phase)
      return float(out["loss"])

    def ours_loop():
      runner.schedule = dataclasses.replace(
          runner.schedule, num_steps=runner.trainer.current_step() + s["loop_steps"])
      with writer.as_default():
        runner.train_loop()
      writer.flush()

    def ours_vamp():
      for _ in range(s["steps"]):
        out = vamp.trainer.train_step(x, rate, vamp_phase)
      return float(out["loss"])

    def ours_iwae():
      total = 0.0
      for i, batch in enumerate(test_batches):
        nll, _, mean = iwae_step(batch, tf.constant([0, i], tf.int32))
        total += float(nll)
        mean.numpy()
      return total / len(test)

    def ours_evaluate():
      return metrics.evaluate(eval_model, eval_prior, runner.data.test, k,
                              max_examples=s["eval_examples"])["nll"]

    blocks = {"ours_loop": ours_loop, "ours_step": ours_step, "ours_vamp": ours_vamp,
              "ours_iwae": ours_iwae, "ours_evaluate": ours_evaluate}
    info = {"tensorflow": tf.__version__,
            "params": {"VAE": num_parameters(runner.model.trainable_variables),
                       "VampPrior VAE": vamp_size},
            "threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                        tf.config.threading.get_inter_op_parallelism_threads()]}
    return blocks, info

  serve(build)


def _vae_arrays(model):
  """Our VAE's weights as arrays: enc_k{i}, enc_b{i}, dec_k{i}, dec_b{i}."""
  arrays = {}
  for prefix, mlp in (("enc", model.encoder), ("dec", model.decoder)):
    for i, (kernel, bias) in enumerate(mlp_weights(mlp)):
      arrays[f"{prefix}_k{i}"], arrays[f"{prefix}_b{i}"] = kernel, bias
  return arrays


# ------------------------------------------------------------------------------------------
# PyTorch models (built lazily: importing this module needs no torch).


@functools.lru_cache(maxsize=None)
def torch_lib():
  """The PyTorch side: a namespace of the models and functions (imports torch)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top,invalid-name

  def mlp(sizes):
    """Linear layers with tanh between them, Glorot-uniform kernels, zero biases (as ours)."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
      linear = nn.Linear(a, b)
      nn.init.xavier_uniform_(linear.weight)
      nn.init.zeros_(linear.bias)
      layers += [linear, nn.Tanh()]
    return nn.Sequential(*layers[:-1])

  def load_mlp(net, arrays, prefix):
    """Copies our kernels [in, out] (transposed) and biases into an `mlp`."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
      for i, linear in enumerate(linears):
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(arrays[f"{prefix}_k{i}"].T)))
        linear.bias.copy_(torch.from_numpy(arrays[f"{prefix}_b{i}"]))

  class TorchVAE(nn.Module):
    """Our VAE in PyTorch: q(z|x) = N(mu, exp(log_std)) from MLP[784-300-300-2d], p(x|z) =
    Bernoulli(logits = MLP[d-300-300-784]), tanh; standard Normal prior; single-sample ELBO
    with KL warm-up weight beta (`objectives._elbo_loss`)."""

    def __init__(self, input_size=784, latent_size=50, hidden_sizes=(300, 300)):
      super().__init__()
      self.latent_size = latent_size
      self.encoder = mlp([input_size, *hidden_sizes, 2 * latent_size])
      self.decoder = mlp([latent_size, *reversed(hidden_sizes), input_size])

    def load(self, arrays, prefix=""):
      load_mlp(self.encoder, arrays, prefix + "enc")
      load_mlp(self.decoder, arrays, prefix + "dec")
      return self

    def encode(self, x):
      mu, log_std = self.encoder(x).chunk(2, dim=-1)
      return mu, log_std

    def log_prior(self, z):
      return (-0.5 * z * z - HALF_LOG_2PI).sum(-1)

    def loss(self, x, beta=1.0):
      """(-(reconstruction - beta KL) batch mean, ELBO batch mean)."""
      mu, log_std = self.encode(x)
      eps = torch.randn_like(mu)
      z = mu + log_std.exp() * eps
      log_q = (-0.5 * eps * eps - log_std - HALF_LOG_2PI).sum(-1)
      reconstruction = -F.binary_cross_entropy_with_logits(
          self.decoder(z), x, reduction="none").sum(-1)
      kl = log_q - self.log_prior(z)
      return -(reconstruction - beta * kl).mean(), (reconstruction - kl).mean()

  class TorchVampVAE(TorchVAE):
    """TorchVAE with the VampPrior of configs/vamp_vae.gin: p(z) = (1/K) sum_k q(z|u_k),
    u_k = hardtanh(W e_k) = clamp(W[k], 0, 1), W [K, 784] learned, no bias (as ours)."""

    def __init__(self, num_pseudo_inputs=500, **kwargs):
      super().__init__(**kwargs)
      self.pseudo_input_weights = nn.Parameter(torch.full(
          (num_pseudo_inputs, self.encoder[0].in_features), 0.05))

    def load(self, arrays, prefix=""):
      super().load(arrays, prefix)
      with torch.no_grad():
        self.pseudo_input_weights.copy_(torch.from_numpy(arrays[prefix + "pseudo_input_weights"]))
      return self

    def log_prior(self, z):
      mu, log_std = self.encode(self.pseudo_input_weights.clamp(0.0, 1.0))  # [K, d]
      u = (z.unsqueeze(-2) - mu) * torch.exp(-log_std)  # [..., K, d]
      log_q = (-0.5 * u * u - log_std - HALF_LOG_2PI).sum(-1)
      return torch.logsumexp(log_q, dim=-1) - math.log(mu.shape[0])

  @torch.no_grad()
  def iwae_nll(model, images, num_samples, batch_size=20):
    """The step of `metrics.evaluate` over `images` [N, D]: IWAE bound with K samples,
    single-sample ELBO, posterior means; returns the mean NLL (nats)."""
    total = 0.0
    for x in images.split(batch_size):
      mu, log_std = model.encode(x)
      eps = torch.randn((num_samples,) + mu.shape)
      z = mu + log_std.exp() * eps  # [K, B, d]
      log_q = (-0.5 * eps * eps - log_std - HALF_LOG_2PI).sum(-1)
      logits = model.decoder(z)
      log_likelihood = -F.binary_cross_entropy_with_logits(
          logits, x.expand_as(logits), reduction="none").sum(-1)
      log_w = log_likelihood + model.log_prior(z) - log_q
      bound = torch.logsumexp(log_w, dim=0) - math.log(num_samples)
      total -= float(bound.sum())
      model.loss(x)  # the single-sample ELBO of evaluate
      mu.numpy()  # the posterior means of evaluate
    return total / len(images)

  return _Namespace(torch=torch, nn=nn, F=F, mlp=mlp, load_mlp=load_mlp, TorchVAE=TorchVAE,
                    TorchVampVAE=TorchVampVAE, iwae_nll=iwae_nll)


class _Namespace:
  def __init__(self, **kwargs):
    self.__dict__.update(kwargs)


def pythae_lib():
  """pythae's classes and our encoder / decoder for it, or (None, reason) if not importable."""
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    from pythae.data.datasets import BaseDataset  # pylint: disable=g-import-not-at-top
    from pythae.data.datasets import DatasetOutput  # pylint: disable=g-import-not-at-top
    from pythae.models import VAE, VAEConfig, VAMP, VAMPConfig  # pylint: disable=g-import-not-at-top
    from pythae.models.base.base_utils import ModelOutput  # pylint: disable=g-import-not-at-top
    from pythae.models.nn import BaseDecoder, BaseEncoder  # pylint: disable=g-import-not-at-top
    from pythae.trainers import BaseTrainer, BaseTrainerConfig  # pylint: disable=g-import-not-at-top
  except Exception as e:  # pylint: disable=broad-except  (ImportError, or pydantic's errors)
    return None, f"{type(e).__name__}: {e}"
  t = torch_lib()

  class Encoder(BaseEncoder):
    """Our encoder MLP; pythae wants the log variance: 2 log std."""

    def __init__(self, net):
      BaseEncoder.__init__(self)
      self.net = net

    def forward(self, x):
      mu, log_std = self.net(x.reshape(x.shape[0], -1)).chunk(2, dim=-1)
      return ModelOutput(embedding=mu, log_covariance=2.0 * log_std)

  class Decoder(BaseDecoder):
    """Our decoder MLP; pythae's 'bce' loss takes probabilities."""

    def __init__(self, net):
      BaseDecoder.__init__(self)
      self.net = net

    def forward(self, z):
      return ModelOutput(reconstruction=t.torch.sigmoid(self.net(z)))

  def vae(arrays, prefix=""):
    net = t.TorchVAE().load(arrays, prefix)
    config = VAEConfig(input_dim=(784,), latent_dim=50, reconstruction_loss="bce")
    return VAE(config, encoder=Encoder(net.encoder), decoder=Decoder(net.decoder))

  def vamp(arrays, prefix="vamp_"):
    net = t.TorchVAE().load(arrays, prefix)
    weights = arrays[prefix + "pseudo_input_weights"]
    config = VAMPConfig(input_dim=(784,), latent_dim=50, reconstruction_loss="bce",
                        number_components=weights.shape[0])
    model = VAMP(config, encoder=Encoder(net.encoder), decoder=Decoder(net.decoder))
    linear = model.pseudo_inputs[0]  # Linear(K, 784): its weight is our W transposed
    with t.torch.no_grad():
      linear.weight.copy_(t.torch.from_numpy(np.ascontiguousarray(weights.T)))
      linear.bias.zero_()
    return model

  return _Namespace(version=metadata.version("pythae"), BaseDataset=BaseDataset,
                    DatasetOutput=DatasetOutput, BaseTrainer=BaseTrainer,
                    BaseTrainerConfig=BaseTrainerConfig, vae=vae, vamp=vamp), None


def torch_worker(s):
  t = torch_lib()
  torch = t.torch
  torch.set_num_threads(s["threads"])
  torch.set_num_interop_threads(s["threads"])
  torch.manual_seed(0)
  p, pythae_reason = pythae_lib() if s["pythae"] else (None, "--nopythae")

  def build():
    arrays = dict(np.load(s["handoff"]))
    x = torch.from_numpy(arrays["batch"])
    test = torch.from_numpy(arrays["test"])
    grey = torch.from_numpy(arrays["train_grey_u8"]).float() / 255.0
    warmup = int(arrays["kl_warmup_steps"])
    vamp_warmup = int(arrays["vamp_kl_warmup_steps"])
    blocks, info = {}, {"torch": torch.__version__, "threads": [torch.get_num_threads(),
                                                                 torch.get_num_interop_threads()]}

    def beta(step, warmup_steps):
      return min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0

    def step_block(model, optimizer, warmup_steps):
      state = {"step": 0}

      def block():
        for _ in range(s["steps"]):
          loss, _ = model.loss(x, beta(state["step"], warmup_steps))
          optimizer.zero_grad()
          loss.backward()
          optimizer.step()
          state["step"] += 1
        return float(loss)
      return block

    # 1. Fixed-batch steps, plain and fused Adam.
    plain = t.TorchVAE().load(arrays)
    blocks["torch_step"] = step_block(
        plain, torch.optim.Adam(plain.parameters(), lr=LEARNING_RATE), warmup)
    fused_model = t.TorchVAE().load(arrays)
    try:
      fused = torch.optim.Adam(fused_model.parameters(), lr=LEARNING_RATE, fused=True)
      fused_model.loss(x)[0].backward()
      fused.step()  # a CPU build without fused kernels fails here
      fused.zero_grad()
      fused_model.load(arrays)
      info["fused"] = "fused=True"
    except (RuntimeError, TypeError, ValueError) as e:
      print(f"fused Adam not supported ({e}); using foreach=True")
      fused = torch.optim.Adam(fused_model.parameters(), lr=LEARNING_RATE, foreach=True)
      info["fused"] = "foreach=True"
    blocks["torch_step_fused"] = step_block(fused_model, fused, warmup)

    # 2. The plain training loop: in-memory grey images, a permutation per epoch,
    # torch.bernoulli per batch, a console line every LOG_EVERY steps and at the block's
    # last step, a checkpoint at the block's end (as Runner.train_loop).
    def loop_block(optimizer_kwargs, name):
      """A timed block of the plain loop, with its own model, Adam, data order and file."""
      loop_model = t.TorchVAE().load(arrays)
      loop_optimizer = torch.optim.Adam(loop_model.parameters(), lr=LEARNING_RATE,
                                        **optimizer_kwargs)
      # Its own generator: pythae's trainer reseeds the global one at every train().
      data_rng = torch.Generator().manual_seed(0)
      loop = {"step": 0, "perm": torch.randperm(len(grey), generator=data_rng), "pos": 0,
              "last_log": (time.time(), 0)}
      checkpoint = os.path.join(s["tmpdir"], f"{name}.pt")

      def next_batch():
        if loop["pos"] + BATCH_SIZE > len(grey):
          loop["perm"], loop["pos"] = torch.randperm(len(grey), generator=data_rng), 0
        index = loop["perm"][loop["pos"]:loop["pos"] + BATCH_SIZE]
        loop["pos"] += BATCH_SIZE
        return torch.bernoulli(grey[index], generator=data_rng)

      def torch_loop():
        end = loop["step"] + s["loop_steps"]
        loop["last_log"] = (time.time(), loop["step"])  # as train_loop: rates within the call
        while loop["step"] < end:
          batch = next_batch()
          loss, elbo = loop_model.loss(batch, beta(loop["step"], warmup))
          loop_optimizer.zero_grad()
          loss.backward()
          loop_optimizer.step()
          loop["step"] += 1
          value = float(loss)
          if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss at step {loop['step']}")
          if loop["step"] % LOG_EVERY == 0 or loop["step"] == end:
            now, last_step = time.time(), loop["last_log"][1]
            rate = (loop["step"] - last_step) / max(now - loop["last_log"][0], 1e-9)
            print(f"step {loop['step']} loss={value:.2f} elbo={float(elbo):.2f} "
                  f"({rate:.0f} steps/s)", flush=True)
            loop["last_log"] = (now, loop["step"])
        torch.save({"model": loop_model.state_dict(),
                    "optimizer": loop_optimizer.state_dict(), "step": loop["step"]},
                   checkpoint)
        return value
      return torch_loop

    blocks["torch_loop"] = loop_block({}, "torch_loop")
    fused_kwargs = {"fused": True} if info["fused"] == "fused=True" else {"foreach": True}
    blocks["torch_loop_fused"] = loop_block(fused_kwargs, "torch_loop_fused")

    # 3. VampPrior step.
    vamp = t.TorchVampVAE().load(arrays, "vamp_")
    blocks["torch_vamp"] = step_block(
        vamp, torch.optim.Adam(vamp.parameters(), lr=LEARNING_RATE), vamp_warmup)

    # 4. IWAE NLL.
    eval_model = t.TorchVAE().load(arrays).eval()
    k = s["num_importance_samples"]
    blocks["torch_iwae"] = lambda: t.iwae_nll(eval_model, test, k)

    info["params"] = {"VAE": sum(q.numel() for q in plain.parameters()),
                      "VampPrior VAE": sum(q.numel() for q in vamp.parameters())}
    if p is None:
      info["pythae_skipped"] = pythae_reason
      return blocks, info
    info["pythae"] = p.version

    def pythae_step_block(model):
      optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
      inputs = p.DatasetOutput(data=x, labels=torch.zeros(len(x)))
      model.train()

      def block():
        for _ in range(s["steps"]):
          loss = model(inputs, epoch=1).loss
          optimizer.zero_grad()  # BaseTrainer._optimizers_step
          loss.backward()
          optimizer.step()
        return float(loss)
      return block

    pythae_vae = p.vae(arrays)
    blocks["pythae_step"] = pythae_step_block(pythae_vae)
    pythae_vamp = p.vamp(arrays)
    blocks["pythae_vamp"] = pythae_step_block(pythae_vamp)

    # pythae's trainer: one epoch of loop_steps batches per block, re-binarized each block.
    n = s["loop_steps"] * BATCH_SIZE
    dataset = p.BaseDataset(torch.zeros(n, grey.shape[1]), torch.zeros(n))
    trainer = p.BaseTrainer(
        p.vae(arrays), train_dataset=dataset, training_config=p.BaseTrainerConfig(
            output_dir=os.path.join(s["tmpdir"], "pythae"), per_device_train_batch_size=BATCH_SIZE,
            num_epochs=1, learning_rate=LEARNING_RATE, no_cuda=True))

    def pythae_loop():
      dataset.data.copy_(torch.bernoulli(grey[torch.randperm(len(grey))[:n]]))
      trainer.train()
    blocks["pythae_loop"] = pythae_loop

    eval_vae = p.vae(arrays).eval()

    def pythae_iwae():
      with torch.no_grad():
        return -eval_vae.get_nll(test, n_samples=k, batch_size=s["pythae_nll_batch"])
    blocks["pythae_iwae"] = pythae_iwae

    info["params"].update({
        "pythae VAE": sum(q.numel() for q in pythae_vae.parameters()),
        "pythae VAMP": sum(q.numel() for q in pythae_vamp.parameters())})
    return blocks, info

  serve(build)


# ------------------------------------------------------------------------------------------
# Coordinator.


class Worker:
  """A worker subprocess and its pipe."""

  def __init__(self, kind, s, log_path):
    env = {**os.environ, WORKER_ENV: kind}
    if kind == "torch" and s.get("omp_wait_policy"):
      env["OMP_WAIT_POLICY"] = s["omp_wait_policy"]
    self.kind, self.log_path = kind, log_path
    self.log = open(log_path, "w")  # pylint: disable=consider-using-with
    self.process = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "benchmarks.peer_pytorch", f"--worker={kind}",
         f"--worker_settings={json.dumps(s)}"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
        text=True)

  def receive(self):
    line = self.process.stdout.readline()
    message = json.loads(line) if line else {"error": "the worker exited"}
    if "error" in message:
      self.close()
      with open(self.log_path) as f:
        tail = f.read()[-4000:]
      raise RuntimeError(f"{self.kind} worker failed: {message['error']}\n--- its log "
                         f"({self.log_path}), last lines:\n{tail}")
    return message

  def run(self, block):
    self.process.stdin.write(json.dumps({"run": block}) + "\n")
    self.process.stdin.flush()
    return self.receive()

  def close(self):
    if self.process.poll() is None:
      try:
        self.process.stdin.write(json.dumps({"quit": 1}) + "\n")
        self.process.stdin.flush()
      except OSError:
        pass
      try:
        self.process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.process.kill()
    self.log.close()


def coordinate():
  s = settings()
  if importlib.util.find_spec("torch") is None:
    sys.exit("PyTorch is not installed: pip install -e '.[bench]' (torch==2.13.0, pythae) "
             "to run the peer benchmark.")
  started = time.time()
  s["load_average_at_start"] = os.getloadavg()[0]
  if s["load_average_at_start"] > 0.5 * (os.cpu_count() or 1):
    print(f"warning: load average {s['load_average_at_start']:.1f} on {os.cpu_count()} cores: "
          f"other processes compete for the CPU; PyTorch's spinning OpenMP threads suffer "
          f"from that far more than TF's (try --omp_wait_policy=PASSIVE, or an idle machine).",
          flush=True)
  tmp = tempfile.mkdtemp(prefix="peer_pytorch_")
  s.update(tmpdir=tmp, handoff=os.path.join(tmp, "handoff.npz"))
  print(f"workers' logs and files: {tmp}", flush=True)
  workers = {}
  try:
    # TF first: it writes the initial weights and data the PyTorch worker copies.
    workers["tf"] = Worker("tf", s, os.path.join(tmp, "tf_worker.log"))
    ready = {"tf": workers["tf"].receive()}
    workers["torch"] = Worker("torch", s, os.path.join(tmp, "torch_worker.log"))
    ready["torch"] = workers["torch"].receive()
    print(f"workers ready after {time.time() - started:.0f} s", flush=True)
    info = {k: r["ready"] for k, r in ready.items()}
    available = {k: set(r["blocks"]) for k, r in ready.items()}
    order = [b for b in BLOCKS if b[1] in available[b[2]]]
    if "pythae_skipped" in info["torch"]:
      print(f"pythae rows skipped: {info['torch']['pythae_skipped']} "
            f"(pip install -e '.[bench]')", flush=True)
    params = check_parameters(info)

    times = {b[1]: [] for b in order}
    values = {}
    for r in range(s["rounds"]):
      for _, name, kind, _, _ in order:
        answer = workers[kind].run(name)
        times[name].append(answer["seconds"])
        values[name] = answer["value"]
      print(f"round {r + 1}/{s['rounds']} done ({time.time() - started:.0f} s)", flush=True)
  finally:
    for worker in workers.values():
      worker.close()
  shutil.rmtree(tmp, ignore_errors=True)  # kept (with the logs) when a worker failed
  fused = info["torch"].get("fused", "fused=True")
  rows = table_rows(order, times, values, s, fused)
  common.print_table(
      f"Peer benchmark: ours (TF {info['tf']['tensorflow']}) vs PyTorch "
      f"{info['torch']['torch']}" + (f" / pythae {info['torch']['pythae']}"
                                     if "pythae" in info["torch"] else "")
      + f" ({common.device_name()}, {s['threads']} threads per framework process"
      + (f", OMP_WAIT_POLICY={s['omp_wait_policy']}" if s["omp_wait_policy"] else "")
      + f"; median of "
      f"{s['rounds']} interleaved blocks; ratio = time / ours, > 1: we are faster)",
      [("row", "row"), ("variant", "variant"), ("per_block", "per block"),
       ("ms_per_unit", "ms per step / image"), ("units_per_second", "steps or images / s"),
       ("ratio", "ratio (time / ours)"), ("value", "value (nats)")],
      rows)
  common.print_table(
      "Trainable parameters (checked equal: ours = PyTorch; pythae VAMP's pseudo-input layer "
      "has a bias, ours none)", [("model", "model"), ("framework", "framework"),
                                 ("params", "parameters")], params)
  print(f"total {time.time() - started:.0f} s", flush=True)
  common.write_json("peer_pytorch", {k: v for k, v in s.items() if k not in ("tmpdir",
                                                                               "handoff")},
                    rows, extra={"workers": info, "parameters": params})


def check_parameters(info):
  """Rows of the parameter counts; raises if ours and the hand-written PyTorch differ."""
  ours, peer = info["tf"]["params"], info["torch"]["params"]
  for model in ("VAE", "VampPrior VAE"):
    if ours[model] != peer[model]:
      raise AssertionError(f"{model}: ours has {ours[model]} parameters, the PyTorch model "
                           f"{peer[model]}: the architectures differ.")
  rows = [{"model": m, "framework": "ours (TF)", "params": ours[m]} for m in ours]
  rows += [{"model": m, "framework": "PyTorch", "params": peer[m]} for m in ours]
  for model, ours_model in (("pythae VAE", "VAE"), ("pythae VAMP", "VampPrior VAE")):
    if model in peer:
      rows.append({"model": ours_model, "framework": model, "params": peer[model],
                   "difference": peer[model] - ours[ours_model]})
  for row in rows:
    print(f"parameters: {row['model']:>14} {row['framework']:<12} {row['params']}"
          + (f" ({row['difference']:+d} vs ours)" if row.get("difference") else ""), flush=True)
  return rows


def table_rows(order, times, values, s, fused):
  """The table's rows: median seconds per block, per step or image, ratio to the group's
  first (ours)."""
  rows = []
  base = {}
  for group, name, kind, label, per in order:
    median = statistics.median(times[name])
    units = units_per_block(per, s) or (s["loop_steps"] if group == "loop" else s["steps"])
    base.setdefault(group, median)
    rows.append({
        "row": GROUPS[group], "block": name, "framework": kind,
        "variant": label.format(fused=fused),
        "per_block": f"{units} {per}s", "seconds_per_block": median,
        "block_seconds": times[name], "ms_per_unit": 1e3 * median / units,
        "units_per_second": units / median, "ratio": median / base[group],
        "value": values.get(name)})
  return rows


def main(argv):
  del argv
  if FLAGS.worker:
    s = json.loads(FLAGS.worker_settings)
    {"tf": tf_worker, "torch": torch_worker}[FLAGS.worker](s)
  else:
    if FLAGS.pythae and FLAGS.loop_steps * BATCH_SIZE > 50000:
      raise app.UsageError(f"--loop_steps={FLAGS.loop_steps} exceeds pythae's one epoch of "
                           f"the 50,000 training images (390 batches of {BATCH_SIZE}); lower "
                           f"it, or pass --nopythae.")
    coordinate()


if __name__ == "__main__":
  app.run(main)
