"""benchmarks.gpu_check --smoke: every part of the GPU check runs on the CPU at toy sizes and
writes its JSON and markdown, each figure derived from its timings as the docstring defines."""
import json
import math
import subprocess
import sys
import time

import pytest

from support import SLICE_DIR


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  out = tmp_path_factory.mktemp("gpu_check")
  start = time.time()
  proc = subprocess.run(
      [sys.executable, "-m", "benchmarks.gpu_check", "--smoke", f"--smoke_data_dir={SLICE_DIR}",
       f"--output_json={out / 'check.json'}", f"--output_markdown={out / 'check.md'}"],
      capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / "check.json") as f:
    payload = json.load(f)
  return payload, (out / "check.md").read_text(), time.time() - start


@pytest.mark.slow
def test_smoke_runs_every_part(smoke):
  payload, markdown, seconds = smoke
  parts = [r["part"] for r in payload["rows"]]
  assert parts == ["log Z, LARS VAE a(z)", "training loop, vae_standard",
                   "training loop, lars_vae", "training loop, lars_hvae",
                   "IWAE NLL, VAE, normal prior", "IWAE NLL, VAE, lars prior",
                   "lars_vae run, 20 steps"]
  assert payload["settings"]["smoke"] and payload["markdown"] == markdown and "SMOKE" in markdown
  for part in parts:
    assert f"| {part} |" in markdown
  print(f"gpu_check --smoke: {seconds:.0f} s")


@pytest.mark.slow
def test_smoke_figures_follow_their_definitions(smoke):
  payload, _, _ = smoke
  rows = {r["part"]: r for r in payload["rows"]}
  log_z = rows["log Z, LARS VAE a(z)"]
  # Z = E_pi[a(z)] with a(z) = sigmoid(.) in (0, 1): log Z < 0.
  assert log_z["value"] < 0
  num_samples = log_z["num_samples"]
  assert num_samples >= payload["settings"]["num_samples"]  # rounded up to whole chunks
  assert log_z["rate"] == pytest.approx(num_samples / log_z["seconds"], rel=1e-6)
  # 30,200 matmul FLOPs per a(z) evaluation (2 (50 100 + 100 100 + 100 1)) over the roof.
  assert log_z["matmul_fraction"] == pytest.approx(
      log_z["rate"] * 30200 / payload["matmul_flops_per_second"], rel=1e-6)
  base = rows["training loop, vae_standard"]
  for config in ("vae_standard", "lars_vae", "lars_hvae"):
    row = rows[f"training loop, {config}"]
    assert row["rate"] == pytest.approx(1 / row["seconds"], rel=1e-6)  # steps/s
    assert row["value"] == pytest.approx(row["seconds"] / base["seconds"], rel=1e-6)
  for prior in ("normal", "lars"):
    row = rows[f"IWAE NLL, VAE, {prior} prior"]
    assert math.isnan(row["rate"]) or row["value"] == pytest.approx(row["rate"] * 10, rel=1e-6)
  run = rows["lars_vae run, 20 steps"]
  assert "K = 2 on 8 test images" in run["setting"]
  assert math.isfinite(run["value"]) and run["value"] > 0  # a test NLL in nats
