"""The console of the command-line programs (trainers.console): third-party noise dropped, the
rest kept."""
import logging
import os
import subprocess
import sys

import pytest

from trainers import console

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796178093.020761   10662 port.cc:153] oneDNN custom operations are on.",
    b"W0000 00:00:1796178093.1   10662 cudart_stub.cc:31] Could not find cuda drivers",
    b"E0000 00:00:1796178100.069739   10662 cuda_platform.cc:52] failed call to cuInit: "
    b"INTERNAL: CUDA error",
    b"E0000 00:00:1796178114.207342   10662 util.cc:131] oneDNN supports DT_BOOL only on "
    b"platforms with AVX-512.",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild",
]
KEPT = [
    b"E0000 00:00:1796178100.1   10662 bfc_allocator.cc:47] Allocator ran out of memory",
    b"W1202 01:21:41.483844 140557063945088 runner.py:55] step 10: no sample grid",  # ours
    b"error: BadSettingError: train.num_steps = 20.5 is not an integer",
    b"step 2/4 loss=221.86 elbo=-221.9 kl=12.64 (1 steps/s)",
    b"",
]


@pytest.mark.parametrize("line", NOISE)
def test_native_noise_is_dropped(line):
  assert console.is_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_native_errors_and_our_lines_are_kept(line):
  assert not console.is_noise(line)


def test_gin_path_lookups_and_tfds_folder_warnings_are_filtered_not_other_records():
  noise = console.ThirdPartyNoise()

  def record(path, level, msg):
    return logging.LogRecord("x", level, path, 1, msg, (), None)
  assert not noise.filter(record("/v/gin/resource_reader.py", logging.ERROR,
                                 "Path not found: %s"))
  assert not noise.filter(record("/v/tensorflow_datasets/core/x.py", logging.WARNING,
                                 "Variant folder has no dataset_info.json"))
  assert noise.filter(record("/v/tensorflow_datasets/core/x.py", logging.ERROR, "real"))
  assert noise.filter(record("/w/tfp_priors/training/runner.py", logging.WARNING, "ours"))


def test_a_refused_run_prints_only_its_error_and_verbosity_brings_the_rest_back():
  args = [sys.executable, "-m", "trainers.run", "--gin_config=vae_standard",
          "--workdir=/tmp/never_created_by_test_console", "--gin_bindings=train.num_steps=-1"]
  quiet = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                         cwd=REPO)
  assert quiet.returncode == 1
  assert quiet.stderr.strip().splitlines() == [
      line for line in quiet.stderr.strip().splitlines() if line.startswith("error:")], (
          quiet.stderr)
  assert len(quiet.stderr.strip().splitlines()) == 1 and quiet.stdout == ""
  loud = subprocess.run(args + ["--verbosity=0"], capture_output=True, text=True, timeout=300,
                        check=False, cwd=REPO)
  assert loud.returncode == 1 and len(loud.stderr.strip().splitlines()) > 1


RESULTS = {"nll": 85.0, "elbo": -88.5, "kl": 25.25, "active_units": 27, "num_examples": 10000,
           "num_steps": 10000, "num_importance_samples": 1000, "normalizer": 0.02,
           "normalizer_standard_error": 1e-4}


def test_final_summary_puts_the_papers_figure_beside_ours():
  from trainers import run  # pylint: disable=g-import-not-at-top
  lines = run.summary(RESULTS, ["lars_vae.gin"], ["train.num_steps = 10000"])
  assert lines[0].startswith("summary: test NLL 85.00 nats (K = 1000) on 10,000 test images")
  assert "Z 0.02" in lines[0]
  # LARS Table 1, VAE + LARS on dynamic MNIST: 83.03 nats after 10^7 steps.
  assert "paper: 83.03" in lines[1] and "ours - paper = +1.97 nats" in lines[1]
  assert "10,000 of the paper's 10,000,000 steps (budget ratio 0.001)" in lines[1]


def test_no_paper_figure_when_bindings_change_the_setup_or_no_row_matches():
  from trainers import run  # pylint: disable=g-import-not-at-top
  changed = run.summary(RESULTS, ["lars_vae.gin"], ["make_datasets.name = 'omniglot'"])
  assert "not compared" in changed[1] and "make_datasets.name" in changed[1]
  unknown = run.summary(RESULTS, ["my_own.gin"])
  assert "no paper row" in unknown[1]
  assert run.summary({"num_steps": 3}, ["lars_vae.gin"]) == []


@pytest.mark.parametrize("seconds, text", [(44.6, "45s"), (185, "3m05s"), (7620, "2h07m"),
                                           (float("nan"), "?"), (None, "?")])
def test_durations(seconds, text):
  from tfp_priors import progress  # pylint: disable=g-import-not-at-top
  assert progress.duration(seconds) == text


def test_eta_at_the_rate_so_far():
  from tfp_priors import progress  # pylint: disable=g-import-not-at-top
  assert progress.eta(2000, 10000, 60.0) == "4m00s"  # 8,000 more at 2,000 a minute
  assert progress.eta(0, 10000, 1.0) == "?" and progress.eta(5, None, 1.0) == "?"
