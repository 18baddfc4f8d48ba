"""Sample-quality metrics (tfp_priors.evaluation.sample_quality) against independent numpy
computations and on real MNIST features, and `trainers.evaluate_samples` / `train.sample_quality`
end to end on a tiny trained LARS run (NCP with Langevin samples in memory).

The Fréchet distance is checked against the closed form of diagonal Gaussians, precision and
recall against a brute-force enumeration; on the classifier's features (conftest's
`mnist_classifier`), two halves of the test split are close and noise images far. The runs use a
stand-in classifier (an untrained network registered as MNIST's in a temporary cache), so that
they need neither the full MNIST nor the classifier's training.
"""
import inspect
import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
from scipy import linalg
from scipy import stats
import tensorflow as tf

from tfp_priors import checks
from tfp_priors.evaluation import classifier as classifier_lib
from tfp_priors.evaluation import prior_samples
from tfp_priors.evaluation import sample_quality
from trainers import evaluate_samples

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "mnist_classifier"
KEYS = [f"{metric}_{NAME}" for metric in (
    "frechet_distance", "precision", "recall", "predictive_entropy", "class_histogram",
    "class_histogram_entropy", "class_kl_to_uniform")]


# ------------------------------------------------------------------- Fréchet distance


def _diagonal_closed_form(m1, s1, m2, s2):
  """||m1 - m2||^2 + sum (sqrt(s1) - sqrt(s2))^2: the Fréchet distance of diagonal Gaussians."""
  return np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)


def test_frechet_distance_of_gaussians_is_the_closed_form():
  rng = np.random.RandomState(0)
  m1, m2 = rng.normal(size=6), rng.normal(size=6)
  s1, s2 = rng.uniform(0.1, 3.0, size=6), rng.uniform(0.1, 3.0, size=6)
  expected = _diagonal_closed_form(m1, s1, m2, s2)
  got = sample_quality.gaussian_frechet_distance(m1, np.diag(s1), m2, np.diag(s2))
  assert got == pytest.approx(expected, rel=1e-10)
  # Full covariances: the distance is invariant to one rotation of both Gaussians.
  q = stats.ortho_group.rvs(6, random_state=1)
  rotated = sample_quality.gaussian_frechet_distance(q @ m1, q @ np.diag(s1) @ q.T, q @ m2,
                                                     q @ np.diag(s2) @ q.T)
  assert rotated == pytest.approx(expected, rel=1e-8)
  assert sample_quality.gaussian_frechet_distance(m1, np.diag(s1), m1, np.diag(s1)) == (
      pytest.approx(0.0, abs=1e-10))


def test_frechet_distance_of_features_uses_their_sample_mean_and_covariance():
  # Columns 1..F of a 64 x 64 Hadamard matrix: zero mean, orthogonal, so these features have
  # mean exactly m and covariance exactly diag(s) * 64 / 63.
  h = linalg.hadamard(64)[:, 1:5].astype(np.float64)
  m1, m2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, -1.0, 0.5])
  s1, s2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 1.0, 0.5])
  a, b = m1 + h * np.sqrt(s1), m2 + h[::-1] * np.sqrt(s2)
  expected = _diagonal_closed_form(m1, s1 * 64 / 63, m2, s2 * 64 / 63)
  assert sample_quality.frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
  assert sample_quality.frechet_distance(b, a) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_singular_covariances_is_finite():
  rng = np.random.RandomState(2)
  a, b = rng.normal(size=[5, 20]), rng.normal(size=[5, 20])  # rank 4 of 20
  assert sample_quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
  d = sample_quality.frechet_distance(a, b)
  assert np.isfinite(d) and d > 0
  dead = np.concatenate([a, np.zeros([5, 3])], 1)  # dead ReLU units: zero variance
  assert np.isfinite(sample_quality.frechet_distance(dead, dead + 1.0))


# ------------------------------------------------------------------ precision / recall


def _brute_force_precision_recall(real, fake, k):
  """Kynkäänniemi et al. Eq. 1-2 by enumeration: python loops over every pair of points."""
  def radius(points, i):
    others = sorted(np.sum((points[i] - points[j]) ** 2) for j in range(len(points)) if j != i)
    return others[k - 1]

  def inside(p, points):
    return any(np.sum((p - points[i]) ** 2) <= radius(points, i) for i in range(len(points)))

  return (np.mean([inside(p, real) for p in fake]), np.mean([inside(p, fake) for p in real]))


def test_precision_and_recall_match_a_brute_force_enumeration():
  rng = np.random.RandomState(3)
  real = rng.normal(size=[40, 2])
  fake = np.concatenate([rng.normal(size=[20, 2]), rng.normal(size=[10, 2]) + 4.0])
  for k in (1, 3, 5):
    expected = _brute_force_precision_recall(real, fake, k)
    got = sample_quality.precision_recall(real, fake, k=k, batch_size=7)
    assert (got.precision, got.recall) == pytest.approx(expected, abs=1e-12), k
  assert 0 < expected[0] < 1 and 0 < expected[1] <= 1


def test_precision_and_recall_of_hand_checked_points():
  real = np.array([[0.0], [1.0], [2.0], [3.0]])
  fake = np.array([[0.5], [2.5], [10.0]])
  # k = 1: real radii 1 (0.5 and 2.5 inside, 10 outside); fake radii 2, 2, 7.5: all real inside.
  assert tuple(sample_quality.precision_recall(real, fake, k=1)) == (2 / 3, 1.0)
  # k = 2: fake radii 9.5, 7.5, 9.5 (10's second neighbour is 0.5): still all real inside.
  assert tuple(sample_quality.precision_recall(real, fake, k=2)) == (2 / 3, 1.0)
  # Far away fakes: nothing inside either way.
  assert tuple(sample_quality.precision_recall(real, fake + 100.0, k=1)) == (0.0, 0.0)
  radii = sample_quality.manifold_radii(fake, k=1)
  np.testing.assert_allclose(radii, [4.0, 4.0, 56.25])  # squared distances


def test_a_set_against_itself_has_precision_and_recall_one():
  points = np.random.RandomState(4).normal(size=[300, 16])
  assert tuple(sample_quality.precision_recall(points, points, batch_size=64)) == (1.0, 1.0)


def test_bad_feature_sets_are_refused():
  points = np.zeros([3, 2])
  with pytest.raises(ValueError, match="more than k = 3"):
    sample_quality.precision_recall(points, np.zeros([10, 2]))
  with pytest.raises(ValueError, match="differ in size"):
    sample_quality.precision_recall(np.zeros([10, 2]), np.zeros([10, 3]))
  with pytest.raises(ValueError, match="N >= 2"):
    sample_quality.frechet_distance(np.zeros([1, 2]), np.zeros([5, 2]))
  with pytest.raises(ValueError, match=r"\[N, F\]"):
    sample_quality.frechet_distance(np.zeros([5]), np.zeros([5, 2]))


# --------------------------------------------------------------------- class statistics


def test_class_statistics():
  uniform = sample_quality.class_statistics(np.full([4, 10], 0.1))
  assert uniform.predictive_entropy == pytest.approx(np.log(10))
  sure = sample_quality.class_statistics(np.eye(10)[[0, 0, 1, 3]])
  assert sure.predictive_entropy == 0.0
  np.testing.assert_allclose(sure.histogram, [0.5, 0.25, 0, 0.25, 0, 0, 0, 0, 0, 0])
  entropy = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
  assert sure.histogram_entropy == pytest.approx(entropy)
  assert sure.kl_to_uniform == pytest.approx(np.sum(
      [p * np.log(p / 0.1) for p in (0.5, 0.25, 0.25)]))
  balanced = sample_quality.class_statistics(np.eye(10))
  assert balanced.kl_to_uniform == pytest.approx(0.0, abs=1e-12)


def test_docstring_examples_run():
  for function in (sample_quality.gaussian_frechet_distance, sample_quality.frechet_distance,
                   sample_quality.precision_recall, sample_quality.class_statistics):
    block = inspect.cleandoc(function.__doc__).split("```python\n")[1].split("```")[0]
    exec(compile(block, function.__name__, "exec"), {"np": np})  # pylint: disable=exec-used


# ---------------------------------------------------- on the MNIST classifier's features


def _noise(num, binary, seed=0):
  u = np.random.RandomState(seed).uniform(size=[num, 784]).astype(np.float32)
  return (u < 0.13).astype(np.float32) if binary else u  # MNIST's mean grey level: 0.13


def test_test_halves_are_close_and_noise_is_far(mnist_classifier, mnist_test_split):
  images = mnist_test_split[0][:2000]
  features, probabilities = mnist_classifier.predict(images)
  first, second = features[:1000], features[1000:]
  halves = sample_quality.frechet_distance(first, second)
  for binary in (False, True):
    noise, _ = mnist_classifier.predict(_noise(1000, binary))
    far = sample_quality.frechet_distance(noise, second)
    assert halves < 0.02 * far, (halves, far)
    precision, recall = sample_quality.precision_recall(second, noise)
    assert precision < 0.01 and recall < 0.01
  assert tuple(sample_quality.precision_recall(second, second)) == (1.0, 1.0)
  precision, recall = sample_quality.precision_recall(second, first)
  assert precision > 0.8 and recall > 0.8  # two samples of one distribution: ~0.88 each
  # Real digits: the classifier is sure, and every class is present.
  classes = sample_quality.class_statistics(probabilities)
  assert classes.predictive_entropy < 0.1 and classes.kl_to_uniform < 0.01


def test_sample_quality_names_every_metric_after_the_classifier(mnist_classifier,
                                                                mnist_test_split):
  images = mnist_test_split[0]
  scores = sample_quality.sample_quality(images[:500], images[500:1000], mnist_classifier)
  assert sorted(scores) == sorted(KEYS)
  assert len(scores[f"class_histogram_{NAME}"]) == 10
  assert 0 < scores[f"frechet_distance_{NAME}"] and 0.8 < scores[f"precision_{NAME}"] <= 1


# ---------------------------------------------------------------- runs and the CLI


@pytest.fixture(scope="module")
def stand_in_cache(tmp_path_factory):
  """A classifier cache holding an untrained network registered as MNIST's classifier."""
  cache = tmp_path_factory.mktemp("classifiers")
  classifier_lib.save_classifier(
      classifier_lib.Classifier("mnist", classifier_lib.build_network(seed=3)), cache)
  return cache


TINY_RUN = ["train.num_steps = 20", "train.export = False", "train.eval_max_examples = 20",
            "train.num_importance_samples = 2"]


@pytest.fixture(scope="module")
def tiny_run(train_tiny, tmp_path_factory, stand_in_cache):
  """A tiny VAE whose final evaluation scored 50 prior samples (train.sample_quality)."""
  workdir = tmp_path_factory.mktemp("vae_samples")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(classifier_lib, "CACHE_DIR", stand_in_cache)
    results = train_tiny(workdir, "vae_standard", TINY_RUN + [
        "train.sample_quality = True", "train.sample_quality_samples = 50"])
  gin.clear_config()
  return str(workdir), results


@pytest.mark.slow
def test_a_run_with_sample_quality_writes_the_metrics(tiny_run):
  workdir, results = tiny_run
  written = json.load(open(os.path.join(workdir, "metrics.json")))
  for key in KEYS + ["nll", "sample_quality_num_samples"]:
    assert key in results and key in written, key
  assert written["sample_quality_num_samples"] == 50
  assert not any(k.endswith("_langevin") for k in written)


def _event_tags(folder):
  tags = set()
  for name in os.listdir(folder):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
      tags.update((v.tag, event.step) for v in event.summary.value)
  return tags


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "trainers.evaluate_samples", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_the_cli_merges_its_metrics_into_metrics_json_and_tensorboard(tiny_run, stand_in_cache,
                                                                      tmp_path):
  workdir, _ = tiny_run
  before = json.load(open(os.path.join(workdir, "metrics.json")))
  logdir = tmp_path / "tb"
  result = _cli(f"--workdir={workdir}", "--num_samples=80", "--seed=1",
                f"--classifier_dir={stand_in_cache}", f"--logdir={logdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "wrote" in result.stdout and "Fréchet distance" in result.stdout
  after = json.load(open(os.path.join(workdir, "metrics.json")))
  assert after["sample_quality_num_samples"] == 80 and set(before) <= set(after)
  kept = [k for k in before if not (k.endswith(NAME) or k.startswith("sample_quality"))]
  assert kept and {k: after[k] for k in kept} == {k: before[k] for k in kept}
  assert 0 <= after[f"precision_{NAME}"] <= 1 and np.isfinite(after[f"frechet_distance_{NAME}"])
  tags = _event_tags(logdir)
  assert (f"samples/frechet_distance_{NAME}", 20) in tags
  assert (f"samples/class_histogram_{NAME}/9", 20) in tags


def test_bad_flags_and_workdirs_fail_in_one_line_before_any_work(tmp_path):
  result = _cli(f"--workdir={tmp_path / 'missing'}")
  assert result.returncode == 1
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert lines == [lines[-1]] and lines[-1].startswith("error: EvaluateError: ")
  assert "does not exist" in lines[-1]
  for kwargs, match in ((dict(num_samples=1), "--num_samples"), (dict(k=0), "--k"),
                        (dict(langevin_step_size=0.0), "--langevin_step_size")):
    with pytest.raises(evaluate_samples.EvaluateError, match=match):
      evaluate_samples.evaluate_workdir(str(tmp_path / "missing"), **kwargs)
  assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_unfinished_runs_and_data_sets_without_a_classifier_are_refused(tiny_run, tmp_path):
  workdir, _ = tiny_run
  copy = tmp_path / "copy"
  subprocess.run(["cp", "-r", workdir, str(copy)], check=True)
  os.remove(copy / "metrics.json")
  with pytest.raises(evaluate_samples.EvaluateError, match="metrics.json not found"):
    evaluate_samples.evaluate_workdir(str(copy))
  (copy / "metrics.json").write_text("{}")
  config = (copy / "config.gin").read_text()
  (copy / "config.gin").write_text(config.replace("'dynamic_mnist'", "'omniglot'"))
  with pytest.raises(evaluate_samples.EvaluateError, match="no sample-quality classifier"):
    evaluate_samples.evaluate_workdir(str(copy))
  (copy / "config.gin").write_text(config)
  with pytest.raises(evaluate_samples.EvaluateError, match="more than the 1000 test images"):
    evaluate_samples.evaluate_workdir(str(copy), num_samples=1001)
  assert json.loads((copy / "metrics.json").read_text()) == {}


def test_the_training_binding_is_checked_before_any_work(tmp_path):
  from tfp_priors.training import runner  # pylint: disable=g-import-not-at-top
  gin.parse_config(["make_datasets.name = 'omniglot'"])
  with pytest.raises(checks.BadSettingError, match="train.sample_quality = True: no sample"):
    runner.configured_runner(str(tmp_path / "w"), sample_quality=True).check()
  with pytest.raises(checks.BadSettingError, match="train.sample_quality_samples"):
    runner.configured_runner(str(tmp_path / "w"), sample_quality_samples=3)
  assert not (tmp_path / "w").exists()


def test_ncp_is_also_scored_with_langevin_samples(stand_in_cache):
  from support import SLICE_DIR  # pylint: disable=g-import-not-at-top
  from tfp_priors.models import VAE  # pylint: disable=g-import-not-at-top
  from tfp_priors.priors import NCPPrior  # pylint: disable=g-import-not-at-top
  model = VAE(input_size=784, latent_size=4, hidden_sizes=(16,))
  prior = NCPPrior(4, hidden_sizes=(8,), num_proposals=10)
  net, _ = classifier_lib.read_cached("mnist", cache_dir=stand_in_cache)
  results = prior_samples.evaluate_samples(
      model, prior, "dynamic_mnist", num_samples=40, data_dir=SLICE_DIR, allow_download=False,
      classifier=net, langevin_steps=3, langevin_step_size=0.05)
  for key in KEYS:
    assert key in results and key + "_langevin" in results, key
  assert results["sample_quality_langevin_steps"] == 3
  assert results["sample_quality_num_samples"] == 40
  assert results[f"frechet_distance_{NAME}"] != results[f"frechet_distance_{NAME}_langevin"]


def test_samplers_of_each_kind_of_prior():
  from tfp_priors.priors import NCPPrior, build_prior  # pylint: disable=g-import-not-at-top
  assert list(prior_samples.samplers(build_prior(2, "normal"))) == [""]
  ncp = NCPPrior(2, hidden_sizes=(4,), num_proposals=8)
  draws = prior_samples.samplers(ncp, langevin_steps=2)
  assert list(draws) == ["", "_langevin"]
  seed = tf.constant([0, 1])
  for draw in draws.values():
    assert draw(5, seed).shape == (5, 2)
    np.testing.assert_array_equal(draw(5, seed), draw(5, seed))  # deterministic given the seed
