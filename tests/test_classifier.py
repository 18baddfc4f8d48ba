"""The sample-quality classifier (tfp_priors.evaluation.classifier): its accuracy on MNIST's
test split (trained once per machine through the cache, conftest's `mnist_classifier`), and
the cache: written with its sha256, read back, and retrained, never trusted, when damaged."""
import json

import numpy as np
import pytest

from tfp_priors.data import fashion_mnist
from tfp_priors.evaluation import classifier


def test_reaches_99_percent_on_the_test_split(mnist_classifier, mnist_test_split):
  images, labels = mnist_test_split
  assert mnist_classifier.name == "mnist" and mnist_classifier.feature_name == "mnist_classifier"
  # Every third test image: the first half of MNIST's test split is the harder one here.
  assert mnist_classifier.accuracy(images[::3], labels[::3]) >= 0.99
  assert mnist_classifier.test_accuracy >= 0.99  # on all 10,000, recorded at training
  features, probabilities = mnist_classifier.predict(images[:5])
  assert features.shape == (5, classifier.FEATURE_SIZE) and probabilities.shape == (5, 10)
  assert features.dtype == probabilities.dtype == np.float64
  np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-9)
  assert np.all(features >= 0)  # ReLU features


def test_the_cached_classifier_is_the_one_in_the_cache(mnist_classifier):
  weights, manifest = classifier.cache_paths("dynamic_mnist")
  assert weights.parent == classifier.CACHE_DIR.expanduser()
  recorded = json.loads(manifest.read_text())
  assert recorded["sha256"] == classifier.files.sha256_of(weights)
  assert recorded["test_accuracy"] == mnist_classifier.test_accuracy


def _stand_in(seed=0, weights_seed=5):
  """An untrained network registered as the MNIST classifier of `seed` (no data needed)."""
  return classifier.Classifier("mnist", classifier.build_network(weights_seed), seed,
                               test_accuracy=0.5, train_seconds=1.0)


def _same_weights(a, b):
  return all(np.array_equal(x, y) for x, y in zip(a.network.get_weights(),
                                                  b.network.get_weights()))


@pytest.fixture
def no_training(monkeypatch):
  """Replaces train_classifier by a stand-in; returns the list of its calls' arguments."""
  calls = []

  def train(name, seed, *args, **kwargs):
    del args, kwargs
    calls.append((name, seed))
    return _stand_in(seed, weights_seed=9)

  monkeypatch.setattr(classifier, "train_classifier", train)
  return calls


def test_a_saved_classifier_is_read_back_without_training(tmp_path, no_training):
  saved = _stand_in()
  weights_path = classifier.save_classifier(saved, tmp_path)
  assert weights_path == tmp_path / "mnist_convnet_v1_seed0.weights.npz"
  loaded = classifier.load_classifier("static_mnist", cache_dir=tmp_path)
  assert not no_training and _same_weights(saved, loaded)
  assert loaded.test_accuracy == 0.5 and loaded.train_seconds == 1.0
  x = np.random.RandomState(0).uniform(size=[3, 784]).astype(np.float32)
  for a, b in zip(saved.predict(x), loaded.predict(x)):
    np.testing.assert_array_equal(a, b)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "mnist_convnet_v1_seed0.json", "mnist_convnet_v1_seed0.weights.npz"]  # no leftovers


@pytest.mark.parametrize("damage", ["flip_a_byte", "truncate", "manifest_garbage",
                                    "other_settings", "missing_manifest", "pickle"])
def test_a_damaged_cache_is_retrained_and_rewritten(tmp_path, no_training, damage):
  weights_path = classifier.save_classifier(_stand_in(), tmp_path)
  manifest_path = classifier.cache_paths("mnist", 0, tmp_path)[1]
  data = bytearray(weights_path.read_bytes())
  if damage == "flip_a_byte":
    data[len(data) // 2] ^= 0xFF
    weights_path.write_bytes(bytes(data))
  elif damage == "truncate":
    weights_path.write_bytes(bytes(data[:100]))
  elif damage == "manifest_garbage":
    manifest_path.write_text("{not json")
  elif damage == "other_settings":
    manifest = json.loads(manifest_path.read_text())
    manifest["settings"]["epochs"] = 1
    manifest_path.write_text(json.dumps(manifest))
  elif damage == "missing_manifest":
    manifest_path.unlink()
  else:  # an object array (a pickle) whose manifest vouches for it: refused by allow_pickle
    np.savez(weights_path, np.array([object()], dtype=object))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = classifier.files.sha256_of(weights_path)
    manifest_path.write_text(json.dumps(manifest))
  assert classifier.read_cached("mnist", 0, tmp_path)[0] is None
  loaded = classifier.load_classifier("mnist", cache_dir=tmp_path)
  assert no_training == [("mnist", 0)]
  assert _same_weights(loaded, _stand_in(weights_seed=9))
  again, why = classifier.read_cached("mnist", 0, tmp_path)  # rewritten, intact
  assert why is None and _same_weights(again, loaded)


def test_data_sets_without_a_classifier_are_refused_in_one_line():
  assert classifier.classifier_name("dynamic_mnist") == "mnist"
  assert classifier.classifier_name("static_mnist") == "mnist"
  assert classifier.classifier_name("fashion_mnist") == "fashion_mnist"
  for name in ("omniglot", "frey_faces", "onehot"):
    with pytest.raises(ValueError, match="no sample-quality classifier") as raised:
      classifier.classifier_name(name)
    assert "\n" not in str(raised.value)
  with pytest.raises(ValueError, match=r"\[N, 784\]"):
    _stand_in().predict(np.zeros([2, 28, 28]))


def test_a_partial_mnist_copy_is_passed_over(tmp_path, monkeypatch):
  # The tests' 1,000-image slice is not what the classifier trains on.
  from support import SLICE_DIR  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(classifier.files, "DEFAULT_DATA_DIR", tmp_path / "cache")
  monkeypatch.delenv(classifier.files.ENV_DATA_DIR)
  with pytest.raises(classifier.files.DatasetNotFoundError, match="60,000 training images"):
    classifier.SPECS["mnist"].load(SLICE_DIR, False)


def test_fashion_labels_pair_with_the_images():
  if fashion_mnist.find_files() is None:
    pytest.skip("Fashion-MNIST IDX files not on disk (see tests/test_fashion_omniglot.py)")
  labels = fashion_mnist.load_fashion_mnist_labels()
  assert {k: len(v) for k, v in labels.items()} == fashion_mnist.SPLIT_SIZES
  np.testing.assert_array_equal(np.bincount(labels["test"]), [1000] * 10)
  assert labels["train"][:3].tolist() == [9, 0, 0]  # Zalando's first three: boot, top, top
