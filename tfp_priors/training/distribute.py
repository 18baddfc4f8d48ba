"""Choosing the tf.distribute strategy of a training run (gin: `train.distribute`).

  train.distribute = None             # one device (the default)
  train.distribute = 'mirrored'       # all local GPUs (or the logical CPUs) of this machine
  train.distribute = 'multi_worker'   # several machines; each reads its role from TF_CONFIG

Every model and prior trains under either: `training.trainer.Trainer` splits the global batch
(`make_datasets.batch_size`) over the replicas and sums their gradients of loss / n. For
several machines, start the same command on each with its TF_CONFIG, e.g. for two workers:

  TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
              "task": {"type": "worker", "index": 0}}' python -m trainers.run ...

Worker 0 (the chief) writes the workdir as a single-device run does; worker i > 0 keeps
its checkpoints and logs in workdir/worker_i/ and skips the final evaluation and export.
"""
import functools
import json
import os

import tensorflow as tf

NAMES = ("mirrored", "multi_worker")


def make_distribution(distribute):
  """The `tf.distribute.Strategy` (the "distribution", so as not to be confused with a
  training strategy of `training.strategies`) for a `train.distribute` value.

  Args:
    distribute: None (default strategy: one device), 'mirrored', 'multi_worker' or a
      `tf.distribute.Strategy`.

  Raises:
    ValueError: an unknown name, or 'multi_worker' without a TF_CONFIG that lists this worker.
  """
  if distribute is None or isinstance(distribute, tf.distribute.Strategy):
    return distribute or tf.distribute.get_strategy()
  return _cached_distribution(distribute)


@functools.lru_cache(maxsize=None)
def _cached_distribution(distribute):
  """One strategy object per name and process: two MirroredStrategy objects in one process
  share collective keys, and the second one's all-reduces then mix with the first's."""
  if distribute == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)
  if distribute == "multi_worker":
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if "worker" not in config.get("cluster", {}) or "task" not in config:
      raise ValueError("train.distribute = 'multi_worker' needs the environment variable "
                       "TF_CONFIG with 'cluster': {'worker': [host:port, ...]} and 'task': "
                       "{'type': 'worker', 'index': i}; see tfp_priors/training/distribute.py.")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"train.distribute must be None, one of {NAMES} or a tf.distribute."
                   f"Strategy; got {distribute!r}.")


def worker_index(distribution):
  """This worker's index in a multi-worker cluster (0: the chief; 0 for one machine)."""
  resolver = getattr(distribution, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return 0
  return int(resolver.task_id)


def worker_workdir(workdir, distribution):
  """workdir for the chief, workdir/worker_i for worker i > 0 (their files must not clash)."""
  index = worker_index(distribution)
  return workdir if index == 0 else os.path.join(workdir, f"worker_{index}")
