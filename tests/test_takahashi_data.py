"""Data and models of Takahashi et al. (2019): OneHot, Frey Faces, GatedMLP / GatedVAE, the
OneHot training run and its Figure-1 scatter plot (CPU, no network)."""
import json
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import sys

import gin
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from support import DATA_DIR
from tfp_priors import objectives
from tfp_priors.data import DatasetNotFoundError
from tfp_priors.data import files
from tfp_priors.data import frey_faces
from tfp_priors.data import load_frey_faces
from tfp_priors.data import load_onehot
from tfp_priors.data import make_datasets
from tfp_priors.models import GatedVAE
from tfp_priors.models import common
from tfp_priors.nets import GatedMLP
from tfp_priors.priors import build_prior
from trainers import plot_onehot
from trainers import run

FREY_FILE = DATA_DIR / frey_faces.SUBDIR / frey_faces.FILE_NAME
needs_frey = pytest.mark.skipif(not FREY_FILE.is_file(), reason=f"{FREY_FILE} absent")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
  monkeypatch.delenv(files.ENV_DATA_DIR, raising=False)


def _all(ds):
  return np.concatenate(list(ds.as_numpy_iterator()))


def _raw_frey():
  """Tomczak's pickle read without tfp_priors code."""
  with open(FREY_FILE, "rb") as f:
    return pickle.load(f, encoding="latin1")[0]


# ------------------------------------------------------------------------------ OneHot


def test_onehot_splits_values_and_pipeline():
  data = load_onehot()
  eye = np.eye(4, dtype=np.float32)
  for split, size in (("train", 1000), ("valid", 100), ("test", 1000)):
    x = data[split]
    assert x.shape == (size, 4) and x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0} and np.all(x.sum(axis=1) == 1.0)
    np.testing.assert_array_equal(x.sum(axis=0), [size // 4] * 4)  # each vector equally often
    np.testing.assert_array_equal(x[:8], np.concatenate([eye, eye]))  # fixed order
  ds = make_datasets("onehot", batch_size=100, seed=3)
  assert (ds.num_train, ds.num_valid, ds.num_test) == (1000, 100, 1000)
  assert ds.image_shape == (1, 4, 1) and ds.event_size == 4
  np.testing.assert_array_equal(ds.train_mean, [0.25] * 4)
  np.testing.assert_array_equal(_all(ds.test), data["test"])
  np.testing.assert_array_equal(_all(ds.valid), data["valid"])
  batches = [b.numpy() for b in ds.train.take(12)]  # > 1 epoch of 10 batches
  for b in batches:
    assert b.shape == (100, 4) and np.all(b.sum(axis=1) == 1.0)
  # One epoch = every training example once, shuffled: 250 of each vector.
  np.testing.assert_array_equal(np.concatenate(batches[:10]).sum(axis=0), [250] * 4)
  assert not np.array_equal(batches[0], data["train"][:100])
  again = make_datasets("onehot", batch_size=100, seed=3)
  np.testing.assert_array_equal(batches, [b.numpy() for b in again.train.take(12)])
  resumed = make_datasets("onehot", batch_size=100, seed=3, start_step=7)
  np.testing.assert_array_equal(batches[7:], [b.numpy() for b in resumed.train.take(5)])


def test_unknown_dataset_name_lists_all_names():
  with pytest.raises(ValueError, match="dynamic_mnist, static_mnist, onehot, frey_faces"):
    make_datasets("cifar10")


# --------------------------------------------------------------------------- Frey Faces


@needs_frey
@pytest.mark.usefixtures("data_dir_env")
def test_frey_faces_split_scaling_and_determinism():
  raw = _raw_frey()
  assert raw.shape == (1965, 560) and raw.dtype == np.uint8
  assert (raw.min(), raw.max()) == (8, 238)
  data = load_frey_faces()
  assert {k: v.shape for k, v in data.items()} == {
      "train": (1565, 560), "valid": (200, 560), "test": (200, 560)}
  order = np.random.RandomState(0).permutation(1965)  # documented split seed 0
  start = 0
  for split in ("train", "valid", "test"):
    x = data[split]
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(x, raw[order[start:start + len(x)]].astype(np.float32) / 255)
    start += len(x)
  # The splits partition the 1,965 images; a second load gives the same split.
  assert sorted(order[:start]) == list(range(1965))
  again = load_frey_faces()
  for split in data:
    np.testing.assert_array_equal(data[split], again[split])
  # Continuous grey values, not bits.
  assert len(np.unique(data["train"])) > 200
  assert 0.55 < data["train"].mean() < 0.66


@needs_frey
@pytest.mark.usefixtures("data_dir_env")
def test_frey_faces_pipeline():
  ds = make_datasets("frey_faces", batch_size=100, eval_batch_size=64)
  assert (ds.num_train, ds.num_valid, ds.num_test) == (1565, 200, 200)
  assert ds.image_shape == (28, 20, 1) and ds.event_size == 560
  assert ds.train_mean.shape == (560,)
  first, second = [b.numpy() for b in ds.train.take(2)]
  assert first.shape == (100, 560) and len(np.unique(first)) > 2  # not binarized
  assert 0.0 <= first.min() and first.max() <= 1.0
  assert not np.array_equal(first, second)
  np.testing.assert_array_equal(_all(ds.test), load_frey_faces()["test"])
  assert [len(b) for b in ds.valid.as_numpy_iterator()] == [64, 64, 64, 8]


@needs_frey
def test_frey_faces_found_in_data_dir_and_env_var(tmp_path, monkeypatch):
  monkeypatch.setattr(frey_faces, "DEFAULT_DATA_DIR", tmp_path / "no_cache")
  (tmp_path / "d" / "frey_faces").mkdir(parents=True)
  shutil.copy(FREY_FILE, tmp_path / "d" / "frey_faces" / "freyfaces.pkl")
  assert load_frey_faces(tmp_path / "d")["test"].shape == (200, 560)
  monkeypatch.setenv(files.ENV_DATA_DIR, str(tmp_path / "d"))
  assert make_datasets("frey_faces").num_train == 1565


def test_missing_frey_faces_error(tmp_path, monkeypatch):
  monkeypatch.setattr(frey_faces, "DEFAULT_DATA_DIR", tmp_path / "no_cache")
  with pytest.raises(DatasetNotFoundError) as info:
    make_datasets("frey_faces", data_dir=tmp_path)
  assert isinstance(info.value, FileNotFoundError)
  message = str(info.value)
  for needle in ("freyfaces.pkl", "jmtomczak/vae_vampprior", "datasets/Freyfaces/freyfaces.pkl",
                 str(tmp_path), "TFP_PRIORS_DATA_DIR", "make_datasets.data_dir"):
    assert needle in message, needle


class _RunsCode:
  """Unpickling it calls pathlib.Path.touch on `marker`: what a crafted pickle can do."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_frey_faces_file_other_than_the_pinned_one_is_never_unpickled(tmp_path):
  path = tmp_path / "freyfaces.pkl"
  marker = tmp_path / "code_ran"
  with open(path, "wb") as f:
    pickle.dump([_RunsCode(marker)], f)
  with pytest.raises(ValueError, match="freyfaces.pkl: sha256 .* refusing to unpickle"):
    load_frey_faces(tmp_path)
  assert not marker.exists()
  path.write_bytes(b"not a pickle")
  with pytest.raises(ValueError, match="refusing to unpickle"):
    load_frey_faces(tmp_path)


def test_corrupt_or_misshapen_frey_faces_file_is_named(tmp_path):
  """Past the sha256 check (a digest passed in), the contents are still checked."""
  path = tmp_path / "freyfaces.pkl"
  path.write_bytes(b"not a pickle")
  with pytest.raises(ValueError, match="freyfaces.pkl.*unpickle"):
    frey_faces.read_pickle(path, sha256=files.sha256_of(path))
  with open(path, "wb") as f:
    pickle.dump([np.zeros((10, 784), np.uint8)], f)
  with pytest.raises(ValueError, match=r"\(1965, 560\)"):
    frey_faces.read_pickle(path, sha256=files.sha256_of(path))


# ------------------------------------------------------------------------- GatedMLP / GatedVAE


def test_gated_mlp_computes_gated_linear_units():
  net = GatedMLP(3, (5, 4), 2, name="g")
  assert len(net.trainable_variables) == 4 * 2 + 2
  x = np.random.RandomState(0).normal(size=(2, 6, 3)).astype(np.float32)
  y = net(x)
  assert y.shape == (2, 6, 2)
  h = x.reshape(-1, 3)
  sigmoid = lambda a: 1 / (1 + np.exp(-a))
  for linear, gate in zip(net.linear_layers, net.gate_layers):
    w, b = (v.numpy() for v in linear.weights)
    v, c = (v.numpy() for v in gate.weights)
    h = (h @ w + b) * sigmoid(h @ v + c)
  w, b = (v.numpy() for v in net.output_layer.weights)
  np.testing.assert_allclose(y.numpy().reshape(-1, 2), h @ w + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_gated_vae_shapes_and_interface(likelihood):
  rng = np.random.RandomState(1)
  mean = rng.uniform(0.1, 0.9, size=12).astype(np.float32)
  model = GatedVAE(latent_size=3, hidden_sizes=(8, 8), likelihood=likelihood, train_mean=mean)
  assert model.input_size == 12 and model.latent_size == 3  # input size from train_mean
  # Encoder D-8-8-2d and decoder d-8-8-D (2D for Gaussian), kernel + bias per Dense.
  assert len(model.trainable_variables) == 2 * (4 * 2 + 2)
  out_size = 12 if likelihood == "bernoulli" else 24
  assert model.decoder.output_layer.kernel.shape == (8, out_size)
  x = tf.constant(rng.uniform(size=(5, 12)) < 0.5, tf.float32)
  f = model.forward(x, num_samples=4, seed=[0, 1])
  assert f.z_top.shape == (4, 5, 3)
  for field in (f.log_posterior_top, f.log_likelihood, f.log_posterior_rest, f.log_prior_rest):
    assert field.shape == (4, 5)
  assert model.encode_top(x).event_shape == (3,)
  assert model.posterior_mean(x).shape == (5, 3)
  images = model.decode(tf.zeros([7, 3])).numpy()
  assert images.shape == (7, 12) and images.min() >= 0 and images.max() <= 1
  # The decoder starts at the mean training image.
  np.testing.assert_allclose(images, np.tile(mean, (7, 1)), atol=1e-5)
  with pytest.raises(ValueError, match=r"\[batch, 12\]"):
    model.forward(tf.zeros([5, 13]))


def test_gated_vae_argument_errors():
  with pytest.raises(ValueError, match="likelihood"):
    GatedVAE(input_size=4, likelihood="poisson")
  with pytest.raises(ValueError, match="input_size = 784 but the data have 560"):
    GatedVAE(input_size=784, train_mean=np.zeros(560))
  with pytest.raises(ValueError, match="initial_log_variance"):
    GatedVAE(input_size=4, likelihood="gaussian", log_variance_range=(-4.5, 0.0))
  assert GatedVAE(hidden_sizes=(4,), latent_size=2).input_size == 784


def test_gaussian_log_likelihood_matches_scipy():
  rng = np.random.RandomState(2)
  mean = rng.uniform(size=(3, 5, 7))
  log_variance = rng.uniform(-6, 0, size=(3, 5, 7))
  x = rng.uniform(size=(5, 7))
  got = common.gaussian_log_likelihood(
      tf.constant(np.concatenate([mean, log_variance], -1), tf.float64), tf.constant(x))
  expected = scipy.stats.norm.logpdf(x, mean, np.exp(0.5 * log_variance)).sum(-1)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)

  model = GatedVAE(input_size=7, latent_size=2, hidden_sizes=(6,), likelihood="gaussian",
                   log_variance_range=(-3.0, -1.0), initial_log_variance=-2.0)
  out = model.decoder_output(tf.constant(rng.normal(size=(4, 2)) * 50, tf.float32)).numpy()
  assert out.shape == (4, 14)
  assert 0 <= out[:, :7].min() and out[:, :7].max() <= 1
  assert -3.0 <= out[:, 7:].min() and out[:, 7:].max() <= -1.0  # clipped log variance
  assert np.any(out[:, 7:] == -3.0) or np.any(out[:, 7:] == -1.0)
  f = model.forward(tf.constant(x, tf.float32), num_samples=2, seed=[3, 4])
  z = f.z_top
  expected = scipy.stats.norm.logpdf(
      x, *(lambda o: (o[..., :7], np.exp(0.5 * o[..., 7:])))(
          model.decoder_output(z).numpy().astype(np.float64))).sum(-1)
  np.testing.assert_allclose(f.log_likelihood.numpy(), expected, rtol=1e-4)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_gated_vae_every_variable_gets_a_gradient(likelihood):
  rng = np.random.RandomState(3)
  x = tf.constant(rng.uniform(size=(16, 10)), tf.float32)
  if likelihood == "bernoulli":
    x = tf.cast(x < 0.5, tf.float32)
  model = GatedVAE(input_size=10, latent_size=2, hidden_sizes=(8, 8), likelihood=likelihood)
  prior = build_prior(2, name="normal", model=model)
  variables = model.trainable_variables + prior.trainable_variables
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, x, training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  grads = tape.gradient(loss, variables)
  assert len(variables) == 20
  for v, g in zip(variables, grads):
    assert g is not None, v.name
    assert np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0), v.name


@pytest.mark.parametrize("name,dataset,likelihood,latent", [
    ("takahashi_onehot_standard", "onehot", "bernoulli", 2),
    ("takahashi_mnist_standard", "dynamic_mnist", "bernoulli", 40),
    ("takahashi_frey_standard", "frey_faces", "gaussian", 40)])
def test_configs_parse(name, dataset, likelihood, latent):
  run.parse_config([name], [])
  assert gin.query_parameter("make_datasets.name") == dataset
  assert gin.query_parameter("make_datasets.batch_size") == 100
  assert gin.query_parameter("GatedVAE.likelihood") == likelihood
  assert gin.query_parameter("GatedVAE.latent_size") == latent
  assert gin.query_parameter("build_prior.name") == "normal"
  # Warm-up over 100 of the 1,000 epochs (10% of the budget).
  assert gin.query_parameter("train.warmup_steps") * 10 == gin.query_parameter("train.num_steps")


# ------------------------------------------------------------ OneHot run and Figure 1 plot


def _png_size(path):
  with open(path, "rb") as f:
    head = f.read(24)
  assert head[:8] == b"\x89PNG\r\n\x1a\n"
  return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def onehot_run(train_tiny, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("onehot_run")
  gin.clear_config()
  results = train_tiny(workdir, "takahashi_onehot_standard", [
      "GatedVAE.hidden_sizes = (16, 16)", "train.num_steps = 30", "train.warmup_steps = 10",
      "make_datasets.batch_size = 100", "train.eval_max_examples = 100"])
  gin.clear_config()
  return workdir, results


@pytest.mark.slow
def test_tiny_onehot_run_trains_evaluates_and_exports(onehot_run):
  workdir, results = onehot_run
  with open(workdir / "metrics.json") as f:
    metrics = json.load(f)
  assert metrics["model"] == "GatedVAE" and metrics["prior"] == "normal"
  assert metrics["num_steps"] == 30
  for key in ("nll", "elbo", "kl", "reconstruction"):
    assert np.isfinite(metrics[key]), key
  assert metrics["num_examples"] == 100
  # -ln 4 is the best possible log-likelihood of OneHot; a (stochastic) bound stays near it.
  assert metrics["nll"] > np.log(4) - 0.1 and -metrics["elbo"] > np.log(4) - 0.1
  assert metrics == pytest.approx(results)
  exported = tf.saved_model.load(str(workdir / "export"))
  out = exported.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(0))
  assert out["images"].shape == (3, 1, 4, 1) and out["latents"].shape == (3, 2)


@pytest.mark.slow
def test_plot_onehot_writes_png(onehot_run, tmp_path):
  workdir, _ = onehot_run
  samples = plot_onehot.posterior_samples(plot_onehot.load_model(str(workdir))[0], 50)
  assert samples.shape == (4, 50, 2) and np.all(np.isfinite(samples))
  output = tmp_path / "figure.png"
  proc = subprocess.run(
      [sys.executable, "-m", "trainers.plot_onehot", f"--workdir={workdir}",
       f"--output={output}", "--num_samples=100", "--size_inches=3", "--dpi=50"],
      capture_output=True, text=True, cwd=REPO, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert output.stat().st_size > 1000
  assert _png_size(output) == (150, 150)


@pytest.mark.slow
def test_plot_onehot_errors(onehot_run, tmp_path):
  workdir, _ = onehot_run
  with pytest.raises(plot_onehot.PlotError, match="does not exist"):
    plot_onehot.plot_workdir(str(tmp_path / "missing"))
  empty = tmp_path / "empty"
  empty.mkdir()
  shutil.copy(workdir / "config.gin", empty / "config.gin")
  with pytest.raises(plot_onehot.PlotError, match="no checkpoint"):
    plot_onehot.plot_workdir(str(empty))
  wide = tmp_path / "wide"
  shutil.copytree(workdir / "checkpoints", wide / "checkpoints")
  config = (workdir / "config.gin").read_text()
  assert "GatedVAE.latent_size = 2" in config
  (wide / "config.gin").write_text(config.replace("GatedVAE.latent_size = 2",
                                                  "GatedVAE.latent_size = 3"))
  with pytest.raises(plot_onehot.PlotError, match="3 dimensions; the OneHot scatter plot needs 2"):
    plot_onehot.plot_workdir(str(wide))
