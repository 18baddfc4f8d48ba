"""trainers.sample: chunked sampling and the checks made before the export is loaded, on a
fake export (a tf.Module with a `sample` signature; no training)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfp_priors.evaluation.images import image_grid
from trainers import sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's own log lines on stderr (absl / glog format), not the CLI's message.
TF_LOG = re.compile(r"^(WARNING: All log messages|[IWEF]\d{4} |To enable the following)")


class _FakeExport(tf.Module):
  """`sample(num_samples, seed)` -> {'images': [n, 28, 28, 1] uniform in [0, 1) from seed}."""

  @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"),
                                tf.TensorSpec([], tf.int32, name="seed")])
  def sample(self, num_samples, seed):
    shape = tf.stack([num_samples, 28, 28, 1])
    return {"images": tf.random.stateless_uniform(shape, tf.stack([seed, 0]))}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("fake") / "export")
  module = _FakeExport()
  tf.saved_model.save(module, path, signatures={"sample": module.sample})
  return path


def _signature(export_dir):
  return tf.saved_model.load(export_dir).signatures["sample"]


def _todays_grid(export_dir, num_samples, seed, means):
  """The grid of the single signature call trainers.sample made before chunking."""
  images = _signature(export_dir)(num_samples=tf.constant(num_samples, tf.int32),
                                  seed=tf.constant(seed, tf.int32))["images"]
  if not means:
    images = tf.cast(tf.random.stateless_uniform(tf.shape(images), [seed, 1]) < images,
                     tf.float32)
  return tf.cast(tf.round(image_grid(images) * 255), tf.uint8).numpy()


@pytest.mark.parametrize("means", [True, False])
def test_one_chunk_is_the_single_call_of_before(export_dir, means):
  grid = sample.sample_grid(export_dir, 10, seed=3, means=means)
  np.testing.assert_array_equal(grid.numpy(), _todays_grid(export_dir, 10, 3, means))


@pytest.mark.parametrize("means", [True, False])
def test_chunks_are_the_grid_of_one_call_per_chunk(export_dir, means):
  seeds = sample.chunk_seeds(3, 3)
  assert seeds[0] == 3 and len(set(seeds)) == 3
  assert seeds == sample.chunk_seeds(3, 3)  # deterministic
  grid = sample.sample_grid(export_dir, 10, seed=3, means=means, chunk_size=4)
  signature = _signature(export_dir)
  expected = image_grid(tf.concat(
      [sample._chunk(signature, n, s, means) for n, s in zip((4, 4, 2), seeds)], 0))
  np.testing.assert_array_equal(grid.numpy(), expected.numpy())
  single = _todays_grid(export_dir, 10, 3, means)
  assert grid.shape == single.shape == (3 * 28, 4 * 28, 1)
  # The first chunk (images 0-3: grid row 0) is the single call's; the others differ.
  np.testing.assert_array_equal(grid[:28].numpy(), single[:28])
  assert not np.array_equal(grid[28:].numpy(), single[28:])


def test_the_limit_is_the_largest_grid_below_one_gib():
  limit = sample.max_num_samples()
  assert sample.grid_elements(limit) <= 2**30 < sample.grid_elements(limit + 1)
  assert sample.grid_elements(limit) < 2**31 - 1
  with pytest.raises(sample.SampleError, match=f"at most {limit}"):
    sample.check_num_samples(2_700_000)
  sample.check_num_samples(limit)


def test_writes_a_png_of_the_grid(export_dir, tmp_path):
  output = str(tmp_path / "new" / "folder" / "samples.png")
  sample.write_samples(export_dir, output, 5, seed=1)
  png = tf.io.decode_png(tf.io.read_file(output)).numpy()
  assert png.shape == (2 * 28, 3 * 28, 1)


def _bad_inputs(tmp_path):
  """{case: write_samples kwargs} of inputs refused before the export is loaded."""
  a_file = tmp_path / "some_file.txt"
  a_file.write_text("not a folder")
  empty = tmp_path / "empty"
  empty.mkdir()
  good = str(tmp_path / "out.png")
  return {
      "parent is a file": dict(output=f"{a_file}/x.png"),
      "ancestor is a file": dict(output=f"{a_file}/sub/x.png"),
      "output is a directory": dict(output=str(tmp_path)),
      "output ends with /": dict(output=str(tmp_path / "new") + "/"),
      "too many samples": dict(output=good, num_samples=2_700_000),
      "just above the limit": dict(output=good, num_samples=sample.max_num_samples() + 1),
      "no samples": dict(output=good, num_samples=0),
      "seed above int32": dict(output=good, seed=2**31),
      "missing export": dict(output=good, export_dir=str(tmp_path / "nowhere")),
      "not a SavedModel": dict(output=good, export_dir=str(empty)),
  }


CASES = ["parent is a file", "ancestor is a file", "output is a directory",
         "output ends with /", "too many samples", "just above the limit", "no samples",
         "seed above int32", "missing export", "not a SavedModel"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_loading(export_dir, tmp_path, monkeypatch, case):
  kwargs = dict(export_dir=export_dir, num_samples=4, seed=0)
  kwargs.update(_bad_inputs(tmp_path)[case])
  before = sorted(p for p in tmp_path.rglob("*"))
  monkeypatch.setattr(tf.saved_model, "load",
                      lambda *a, **k: pytest.fail("the export was loaded"))
  with pytest.raises(sample.SampleError) as info:
    sample.write_samples(**kwargs)
  assert "\n" not in str(info.value)
  assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_before_loading(export_dir, tmp_path, monkeypatch):
  folder = tmp_path / "read_only"
  folder.mkdir(mode=0o555)
  monkeypatch.setattr(tf.saved_model, "load",
                      lambda *a, **k: pytest.fail("the export was loaded"))
  with pytest.raises(sample.SampleError, match="not writable"):
    sample.write_samples(export_dir, str(folder / "sub" / "x.png"), 4)


def test_an_export_without_sample_signature_is_one_line(tmp_path):
  module = tf.Module()
  module.f = tf.function(lambda: {"x": tf.constant(1.0)}, input_signature=[])
  path = str(tmp_path / "export")
  tf.saved_model.save(module, path, signatures={"other": module.f})
  with pytest.raises(sample.SampleError, match="no 'sample' signature") as info:
    sample.write_samples(path, str(tmp_path / "x.png"), 4)
  assert "\n" not in str(info.value)
  assert not os.path.exists(tmp_path / "x.png")


def test_cli_prints_one_line_and_exits_1(export_dir, tmp_path):
  a_file = tmp_path / "some_file.txt"
  a_file.write_text("not a folder")
  result = subprocess.run(
      [sys.executable, "-m", "trainers.sample", f"--export_dir={export_dir}",
       f"--output={a_file}/x.png", "--num_samples=4"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 1, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip() and not TF_LOG.match(l)]
  assert len(lines) == 1 and lines[0].startswith("error: --output="), result.stderr[-2000:]
  assert "some_file.txt is a file" in lines[0]
