"""`trainers.run --seed=N`: two CPU runs with one seed are bit-identical."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support import TINY_BINDINGS
from support import checkpoint_variables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start(workdir, seed):
  bindings = [b for b in TINY_BINDINGS if "print_fn" not in b] + [
      "train.num_steps = 15", "train.export = False"]
  return subprocess.Popen(
      [sys.executable, "-m", "trainers.run", "--gin_config=lars_vae.gin",
       f"--workdir={workdir}", f"--seed={seed}"] + [f"--gin_bindings={b}" for b in bindings],
      cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)


def _finish(proc, workdir):
  out = proc.communicate(timeout=300)[0]
  assert proc.returncode == 0, out[-3000:]
  metrics = json.loads((workdir / "metrics.json").read_text())
  timings = [k for k in metrics if "second" in k]  # wall-clock times and rates
  assert "train_steps_per_second" in timings
  return {k: v for k, v in metrics.items() if k not in timings}, checkpoint_variables(workdir)


@pytest.mark.slow
def test_two_processes_with_one_seed_are_bit_identical(tmp_path):
  seeds = (7, 7, 8)
  procs = [_start(tmp_path / f"run{i}", seed) for i, seed in enumerate(seeds)]
  (m1, v1), (m2, v2), (m3, v3) = [_finish(p, tmp_path / f"run{i}") for i, p in enumerate(procs)]
  assert m1 == m2  # exact: test NLL, ELBO, log Z and its SE, acceptance rate, ...
  assert v1.keys() == v2.keys() and v1
  for k in v1:
    np.testing.assert_array_equal(v1[k], v2[k], err_msg=k)
  assert np.isfinite(m1["nll"]) and m1["num_steps"] == 15
  # The seed does reach initialisation, data and sampling.
  assert m3["nll"] != m1["nll"]
  assert any(not np.array_equal(v1[k], v3[k]) for k in v1)
