"""Multi-device training: a 2-replica run follows the single-device loss trajectory."""
import json
import os
import socket
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from support import TINY_BINDINGS
from support import checkpoint_variables
from tfp_priors import objectives
from tfp_priors.data import pipelines
from tfp_priors.priors import build_prior
from tfp_priors.training import distribute as distribute_lib
from tfp_priors.training import strategies
from tfp_priors.training import trainer as train_lib
from trainers import run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 12


def _trajectory(config, strategy, phase=strategies.JOINT, initial=None):
  """Losses of NUM_STEPS steps on fixed real batches, the final variables, the trainer and
  the initial values of all variables (`initial`: start from these instead)."""
  gin.clear_config()
  run.parse_config([config], TINY_BINDINGS)
  data = pipelines.make_datasets()
  batches = list(data.train.take(NUM_STEPS))
  with strategy.scope():
    model_fn = gin.query_parameter("train.model_fn").scoped_configurable_fn
    model = model_fn(train_mean=data.train_mean)
    prior = build_prior(model.latent_size, model=model)
    trainer = train_lib.Trainer(model, prior, warmup_steps=5, seed=3,
                                distribution=strategy)
  prior.initialize(model.forward(batches[0], 1, seed=[3, 0]).z_top[0])
  state = model.variables + prior.variables
  if initial is not None:
    for v, value in zip(state, initial):
      v.assign(value)
  initial = [v.numpy() for v in state]
  losses = []
  for x in batches:
    out = trainer.train_step(x, tf.constant(1e-3), phase)
    assert bool(out["finite"])
    losses.append(float(out["loss"]))
  variables = [v.numpy() for v in model.trainable_variables + prior.trainable_variables]
  return np.array(losses), variables, trainer, initial


@pytest.mark.parametrize("config,phase", [
    ("lars_vae.gin", strategies.JOINT),
    ("lars_hvae.gin", strategies.JOINT),
    ("realnvp_vae.gin", strategies.JOINT),
    ("lars_realnvp_vae.gin", strategies.JOINT),
    ("lars_outputs_vae.gin", strategies.JOINT),
    ("ncp_vae.gin", strategies.Phase("nce", False, True, True, objectives.NOISE_CONTRASTIVE)),
])
def test_two_replicas_follow_the_single_device_trajectory(config, phase):
  assert len(tf.config.list_logical_devices("CPU")) == 2
  mirrored = distribute_lib.make_distribution("mirrored")
  assert mirrored.num_replicas_in_sync == 2
  single_losses, single_vars, single, initial = _trajectory(
      config, tf.distribute.get_strategy(), phase)
  mirrored_losses, mirrored_vars, trainer, _ = _trajectory(config, mirrored, phase, initial)
  # Same initial weights, global batches, seed and noise: only the order of float sums differs.
  np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-4, atol=1e-4)
  for a, b in zip(mirrored_vars, single_vars):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
  assert len(set(single_losses.round(3))) > 1  # the steps did change the loss
  prior = trainer.prior
  if hasattr(prior, "moving_average"):  # LARS: one <Z> on all replicas, the single-device one
    components = [float(v.numpy()) for v in prior.moving_average.values]
    assert components[0] == components[1]
    np.testing.assert_allclose(components[0], float(single.prior.moving_average.numpy()),
                               rtol=1e-5)


def test_every_variable_is_updated_under_two_replicas():
  mirrored = distribute_lib.make_distribution("mirrored")
  gin.clear_config()
  run.parse_config(["lars_hvae.gin"], TINY_BINDINGS)
  data = pipelines.make_datasets()
  x = next(iter(data.train))
  with mirrored.scope():
    model = gin.query_parameter("train.model_fn").scoped_configurable_fn(
        train_mean=data.train_mean)
    prior = build_prior(model.latent_size, model=model)
    trainer = train_lib.Trainer(model, prior, warmup_steps=0, seed=0,
                                distribution=mirrored)
  before = [v.numpy() for v in trainer.train_variables]
  trainer.train_step(x, tf.constant(1e-3))
  unchanged = [v.name for v, b in zip(trainer.train_variables, before)
               if np.array_equal(v.numpy(), b)]
  assert not unchanged
  assert trainer.current_step() == 1


def test_global_batch_must_split_evenly():
  mirrored = distribute_lib.make_distribution("mirrored")
  gin.clear_config()
  run.parse_config(["vae_standard.gin"], TINY_BINDINGS)
  data = pipelines.make_datasets()
  x = next(iter(data.train))[:31]
  with mirrored.scope():
    model = gin.query_parameter("train.model_fn").scoped_configurable_fn()
    prior = build_prior(model.latent_size, model=model)
    trainer = train_lib.Trainer(model, prior, warmup_steps=0, seed=0,
                                distribution=mirrored)
  with pytest.raises(ValueError, match="multiple of 2"):
    trainer.train_step(x, tf.constant(1e-3))


@pytest.mark.slow
def test_mirrored_run_evaluates_and_exports(train_tiny, tmp_path):
  results = train_tiny(tmp_path / "mirrored", "lars_vae.gin",
                       ["train.num_steps = 10", "train.distribute = 'mirrored'"])
  assert results["num_replicas"] == 2
  assert np.isfinite(results["nll"]) and np.isfinite(results["log_normalizer"])
  exported = tf.saved_model.load(str(tmp_path / "mirrored" / "export"))
  images = exported.sample(num_samples=tf.constant(3), seed=tf.constant(1))["images"]
  assert images.shape[0] == 3


def test_bad_distribute_values_name_the_fix(monkeypatch):
  with pytest.raises(ValueError, match="mirrored"):
    distribute_lib.make_distribution("mirored")
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="TF_CONFIG"):
    distribute_lib.make_distribution("multi_worker")


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.mark.slow
def test_two_local_workers_train_like_one_device(train_tiny, tmp_path):
  """MultiWorkerMirroredStrategy over two processes on loopback ports (TF_CONFIG)."""
  steps = 8
  bindings = TINY_BINDINGS + [f"train.num_steps = {steps}", "train.evaluate = False",
                              "train.export = False", "train.log_every = 1"]
  cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
  workdir = tmp_path / "multi"
  procs = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "trainers.run", "--gin_config=lars_vae.gin",
         f"--workdir={workdir}", "--gin_bindings=train.distribute = 'multi_worker'"]
        + [f"--gin_bindings={b}" for b in bindings if "print_fn" not in b],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  chief = json.loads((workdir / "metrics.json").read_text())
  worker = json.loads((workdir / "worker_1" / "metrics.json").read_text())
  assert chief["num_replicas"] == worker["num_replicas"] == 2
  assert chief["num_steps"] == steps
  # Both workers hold the same weights, and those of a single-device run of the same batch.
  single = train_tiny(tmp_path / "single", "lars_vae.gin", bindings[len(TINY_BINDINGS):])
  assert single["num_steps"] == steps
  a, b = checkpoint_variables(workdir), checkpoint_variables(workdir / "worker_1")
  c = checkpoint_variables(tmp_path / "single")
  assert a.keys() == c.keys()
  for k in a:
    if "evaluation_log_normalizer" not in k:  # set by the chief's finalize only
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_allclose(a[k], c[k], rtol=1e-3, atol=1e-4, err_msg=k)
