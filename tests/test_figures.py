"""The figure scripts: trainers.figures (LARS Fig. 3, D.5-D.7, D.10-D.14) on tiny trained runs,
trainers.illustrate_2d (Fig. 2, D.3, D.4) with a few steps, and MNIST label loading."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from support import SLICE_DIR
from tfp_priors.data import mnist
from tfp_priors.evaluation import latent_density
from trainers import figures
from trainers import illustrate_2d

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_RUN = ["train.num_steps = 6", "train.evaluate = False", "train.export = False"]
# Small settings of the figures: fast, and the PNG sizes below follow from them.
SMALL = dict(num_samples=600, num_shown=9, num_examples=300, kl_samples=400, grid_points=40,
             dpi=40)


def _png_size(path):
  with open(path, "rb") as f:
    head = f.read(24)
  assert head[:8] == b"\x89PNG\r\n\x1a\n", path
  return struct.unpack(">II", head[16:24])


def _expected(inches, dpi):
  return tuple(int(round(v * dpi)) for v in inches)


def _files(directory):
  return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


@pytest.fixture(scope="module")
def lars_run(train_tiny, tmp_path_factory):
  """A LARS VAE with a 2-D latent space after a few steps on the MNIST slice."""
  workdir = tmp_path_factory.mktemp("lars2")
  train_tiny(workdir, "lars_vae.gin", ["VAE.latent_size = 2"] + TINY_RUN)
  return str(workdir)


@pytest.fixture(scope="module")
def normal_run(train_tiny, tmp_path_factory):
  """A standard-prior VAE with a 2-D latent space (LARS Fig. D.10)."""
  workdir = tmp_path_factory.mktemp("normal2")
  train_tiny(workdir, "vae_standard.gin", ["VAE.latent_size = 2"] + TINY_RUN)
  return str(workdir)


@pytest.fixture(scope="module")
def loaded_lars_run(lars_run):
  return figures.load_run(lars_run)


@pytest.mark.slow
def test_cli_writes_pngs_of_the_expected_size_and_tensorboard_images(lars_run, tmp_path):
  output, logdir = tmp_path / "png", tmp_path / "tb"
  args = [f"--{k}={v}" for k, v in SMALL.items()]
  result = subprocess.run(
      [sys.executable, "-m", "trainers.figures", f"--workdir={lars_run}",
       f"--output_dir={output}", f"--logdir={logdir}"] + args,
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  dpi = SMALL["dpi"]
  width, height = figures.SIZES["latent_density"]
  expected = {
      "ranked_samples.png": _expected(figures.SIZES["ranked_samples"], dpi),
      "acceptance_values.png": _expected(figures.SIZES["acceptance_values"], dpi),
      "latent_density.png": _expected((4 * width, height), dpi),  # q, pi, a, p_T
      "embedding.png": _expected(figures.SIZES["embedding"], dpi),
  }
  assert _files(output) == sorted(list(expected) + ["figures.json"])
  for name, size in expected.items():
    path = output / name
    assert _png_size(path) == size, name
    pixels = tf.io.decode_png(tf.io.read_file(str(path))).numpy()
    assert pixels.std() > 5, f"{name} is blank"
  numbers = json.loads((output / "figures.json").read_text())
  assert numbers["prior"] == "lars" and numbers["step"] == 6
  assert 0 < numbers["normalizer"] <= 1 and numbers["kl_prior"] > -0.1
  # The same images, in TensorBoard at the checkpoint's step.
  tags = set()
  for event_file in _files(logdir):
    for event in tf.compat.v1.train.summary_iterator(str(logdir / event_file)):
      tags.update((v.tag, event.step) for v in event.summary.value)
  assert tags == {(f"figures/{n[:-4]}", 6) for n in expected}


@pytest.mark.slow
def test_ranked_samples_are_sorted_by_acceptance(loaded_lars_run):
  prior = loaded_lars_run.prior
  ranked = figures.rank_proposal_samples(prior, 3000, seed=3)
  log_a = ranked.log_acceptance
  assert ranked.z.shape == (3000, 2) and log_a.shape == (3000,)
  assert np.all(np.diff(log_a) <= 0)
  # Each sample keeps its own a(z) ...
  np.testing.assert_allclose(log_a, prior.log_acceptance(ranked.z).numpy(), rtol=1e-5,
                             atol=1e-6)
  # ... and the samples are the proposal's draws, only reordered.
  draws = prior.proposal.distribution().sample(3000, seed=[3, 0]).numpy()
  np.testing.assert_allclose(np.sort(ranked.z, 0), np.sort(draws, 0), rtol=1e-6)
  chosen = figures.select_ranked(ranked, 25, seed=0)
  rest = np.setdiff1d(np.arange(3000), chosen["highest"])
  assert log_a[chosen["highest"]].min() >= log_a[rest].max()
  rest = np.setdiff1d(np.arange(3000), chosen["lowest"])
  assert log_a[chosen["lowest"]].max() <= log_a[rest].min()
  assert len(set(chosen["random"])) == 25
  representative = log_a[chosen["representative"]]
  assert len(representative) == figures.NUM_REPRESENTATIVE
  assert np.all(np.diff(representative) >= 0)  # lowest to highest, as Fig. D.7
  assert representative[0] == log_a[-1] and representative[-1] == log_a[0]


@pytest.mark.slow
def test_aggregate_posterior_on_the_grid_integrates_to_one(loaded_lars_run):
  run = loaded_lars_run
  x, labels = figures.training_examples(run, 300)
  assert x.shape == (300, 784) and set(np.unique(x)) <= {0.0, 1.0}
  np.testing.assert_array_equal(labels, mnist.load_mnist_labels(SLICE_DIR)["train"][:300])
  loc, scale = figures.encode(run.model, x)
  densities = figures.latent_densities(run, loc, scale, grid_points=150, kl_samples=500)
  area = densities.grid.cell_area
  assert np.exp(densities.log_q).sum() * area == pytest.approx(1.0, abs=0.03)
  # The LARS prior p_T with the run's Z, and the proposal, are normalised on the grid too.
  assert np.exp(densities.log_p).sum() * area == pytest.approx(1.0, abs=0.03)
  assert np.exp(densities.log_proposal).sum() * area == pytest.approx(1.0, abs=0.03)
  assert 0 < densities.normalizer <= 1
  assert set(densities.kl) == {"prior", "proposal"}
  # log q(z) is the mixture formula (checked with scipy at a few points).
  points = densities.grid.points[::997]
  expected = np.log(np.mean([stats.multivariate_normal(m, np.diag(s**2)).pdf(points)
                             for m, s in zip(loc, scale)], axis=0))
  np.testing.assert_allclose(latent_density.aggregate_posterior_log_prob(loc, scale, points),
                             expected, rtol=1e-4, atol=1e-4)


def test_aggregate_posterior_kl_matches_a_known_value():
  # q = N(0, I) (50 equal components) vs p = N(0, 4 I): KL = 2 (log 2 + 1/8 - 1/2) in 2-D.
  loc, scale = np.zeros([50, 2], np.float32), np.ones([50, 2], np.float32)
  z = latent_density.sample_aggregate_posterior(loc, scale, 40000, seed=1)
  log_q = latent_density.aggregate_posterior_log_prob(loc, scale, z, chunk_size=10000)
  log_p = stats.multivariate_normal(np.zeros(2), 4 * np.eye(2)).logpdf(z)
  kl, se = latent_density.kl_from_samples(log_q, log_p)
  assert kl == pytest.approx(2 * (np.log(2) + 1 / 8 - 1 / 2), abs=4 * se + 1e-3)
  with pytest.raises(ValueError, match="scale"):
    latent_density.aggregate_posterior_log_prob(loc, -scale, z[:3])
  with pytest.raises(ValueError):
    latent_density.grid_2d(0.0, 10)


@pytest.mark.slow
def test_standard_prior_gets_density_and_embedding_but_no_ranked_samples(normal_run, tmp_path):
  # Fig. (a) needs a(z): asked for explicitly, it fails before anything is written.
  output = tmp_path / "out"
  with pytest.raises(figures.FigureError, match="needs a LARS prior.*'normal'"):
    figures.write_figures(normal_run, str(output), str(tmp_path / "tb"), ["ranked"], **SMALL)
  assert not output.exists() and not (tmp_path / "tb").exists()
  assert "figures" not in _files(normal_run)
  # Without --figures, the figures that apply: q(z) and p(z) side by side (Fig. D.10), D.14.
  result = figures.write_figures(normal_run, str(output), str(tmp_path / "tb"), **SMALL,
                                 print_fn=None)
  assert sorted(result["paths"]) == ["embedding", "latent_density"]
  width, height = figures.SIZES["latent_density"]
  assert _png_size(output / "latent_density.png") == _expected((2 * width, height), SMALL["dpi"])
  assert "kl_proposal" not in result and result["kl_prior"] > -0.1


@pytest.mark.slow
def test_latent_size_other_than_two_is_refused(train_tiny, tmp_path):
  workdir = tmp_path / "lars4"
  train_tiny(workdir, "lars_vae.gin", ["VAE.latent_size = 4"] + TINY_RUN)
  output = tmp_path / "out"
  for name in ("density", "embedding"):
    with pytest.raises(figures.FigureError, match="needs a 2-D latent space.*latent size 4"):
      figures.write_figures(str(workdir), str(output), figures=[name], **SMALL)
  assert not output.exists() and "figures" not in _files(workdir)
  # Only (a) applies to a 4-D LARS run, and it is what the default draws.
  run = figures.load_run(str(workdir))
  assert figures.check_figures(run, []) == ["ranked"]
  with pytest.raises(figures.FigureError, match="unknown figure"):
    figures.check_figures(run, ["histogram"])


@pytest.mark.slow
def test_missing_workdir_or_checkpoint_is_a_clear_error(lars_run, tmp_path):
  output = tmp_path / "out"
  with pytest.raises(figures.FigureError, match="does not exist"):
    figures.write_figures(str(tmp_path / "missing"), str(output))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(figures.FigureError, match="config.gin not found"):
    figures.write_figures(str(empty), str(output))
  # A run that wrote its config but no checkpoint yet.
  (empty / "config.gin").write_text(open(os.path.join(lars_run, "config.gin")).read())
  with pytest.raises(figures.FigureError, match="no checkpoint"):
    figures.write_figures(str(empty), str(output))
  with pytest.raises(figures.FigureError, match="num_samples"):
    figures.write_figures(lars_run, str(output), num_samples=0)
  assert not output.exists() and _files(empty) == ["config.gin"]


def test_mnist_labels_follow_the_image_split(tmp_path):
  labels = mnist.load_mnist_labels(SLICE_DIR)
  images = mnist.load_mnist(SLICE_DIR, allow_download=False)
  assert {k: len(v) for k, v in labels.items()} == {k: len(v) for k, v in images.items()}
  np.testing.assert_array_equal(labels["train"][:5], [5, 0, 4, 1, 9])
  np.testing.assert_array_equal(labels["test"][:5], [7, 2, 1, 0, 4])
  assert labels["train"].dtype == np.int64 and set(np.unique(labels["train"])) <= set(range(10))
  with pytest.raises(mnist.DatasetNotFoundError, match=mnist.TRAIN_LABELS):
    mnist.load_mnist_labels(tmp_path)


@pytest.mark.slow
def test_illustrate_2d_writes_one_png_per_model(tmp_path):
  output = tmp_path / "2d"
  dpi = 30
  results = illustrate_2d.illustrate(str(output), steps=3, normalizer_samples=10**4,
                                     kl_samples=1000, grid_points=30, dpi=dpi, print_fn=None)
  names = [f"{name}.png" for name in illustrate_2d.MODELS]
  assert _files(output) == sorted(names + ["summary.json"])
  height = illustrate_2d.FIGURE_HEIGHT_INCHES
  for name in illustrate_2d.MODELS:
    panels = 2 if name == "realnvp" else 4  # q, p; or q, pi, a, p
    assert _png_size(output / f"{name}.png") == _expected(
        (panels * illustrate_2d.PANEL_INCHES, height), dpi)
    assert results[name]["path"] == str(output / f"{name}.png")
  summary = json.loads((output / "summary.json").read_text())
  assert summary["steps"] == 3
  assert summary["kl_standard_normal"] == pytest.approx(1.87, abs=0.1)
  for name in illustrate_2d.MODELS:
    assert np.isfinite(summary[name]["kl"]) and summary[name]["skipped_steps"] == 0
    assert ("normalizer" in summary[name]) == name.startswith("lars")


def test_illustrate_2d_rejects_unknown_models_before_writing(tmp_path):
  with pytest.raises(ValueError, match="unknown model"):
    illustrate_2d.illustrate(str(tmp_path / "x"), steps=1, models=("lars_maf",))
  with pytest.raises(ValueError, match="steps"):
    illustrate_2d.illustrate(str(tmp_path / "x"), steps=-1)
  assert not (tmp_path / "x").exists()


class _NaNTarget:
  """Samples N(0, I) but reports log q(z) = NaN: every step of the fit is non-finite."""

  def sample(self, n, seed):
    return tf.random.stateless_normal([n, 2], seed)

  def log_prob(self, z):
    return tf.fill(tf.shape(z)[:1], np.float32(np.nan))


def test_a_non_finite_step_changes_nothing():
  prior = illustrate_2d.LarsPrior(2, hidden_sizes=(4,), num_proposal_samples=16)
  before = [v.numpy() for v in prior.variables]
  fit = illustrate_2d.fit_maximum_likelihood(prior, _NaNTarget(), steps=3)
  assert fit.skipped_steps == 3 and np.isnan(fit.final_loss)
  for old, new in zip(before, prior.variables):  # weights and the EMA <Z> as they were
    np.testing.assert_array_equal(old, new.numpy())
  fit = illustrate_2d.fit_maximum_likelihood(prior, illustrate_2d.nine_gaussians(), steps=2)
  assert fit.skipped_steps == 0 and np.isfinite(fit.final_loss)
