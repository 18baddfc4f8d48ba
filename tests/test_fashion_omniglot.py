"""Tests of the Fashion-MNIST and Omniglot loaders and pipelines (CPU, never downloads).

Real files: Fashion-MNIST's IDX files (fetched once by .ci/run into ~/.cache/tfp_priors, or the
installed Debian package) and the Omniglot zips of $TFP_PRIORS_DATA_DIR/omniglot (conftest's
DATA_DIR, ../shared/data); the tests that need them skip, saying why, when they are absent.
"""

import gzip
import hashlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from support import DATA_DIR
from tfp_priors.data import fashion_mnist
from tfp_priors.data import files
from tfp_priors.data import idx
from tfp_priors.data import omniglot
from tfp_priors.data import pipelines
from tfp_priors.data import tfds_source
from tfp_priors.data import DatasetNotFoundError
from tfp_priors.data import make_datasets

SLICE_DIR = pathlib.Path(__file__).parent / 'data'  # 1,000 MNIST images (not Fashion-MNIST).
FETCH_HINT = ("python -c 'from tfp_priors.data import fashion_mnist as f; "
              "f.fetch_fashion_mnist()' (as .ci/run does)")


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
  monkeypatch.delenv(files.ENV_DATA_DIR, raising=False)


def _concat(ds):
  return np.concatenate(list(ds.as_numpy_iterator()))


def _epoch_pixel_sums(train, steps_per_epoch, num_epochs):
  """Per-pixel sums of the bits of each epoch: (num_epochs, 784)."""
  sums = np.zeros((num_epochs, 784))
  for step, batch in enumerate(train.take(steps_per_epoch * num_epochs).as_numpy_iterator()):
    sums[step // steps_per_epoch] += batch.sum(axis=0)
  return sums


# ------------------------------------------------------------------------ Fashion-MNIST


@pytest.fixture(scope='module')
def fashion_dir():
  found = fashion_mnist.find_files()
  if found is None:
    pytest.skip('Fashion-MNIST IDX files not on disk (~/.cache/tfp_priors/fashion_mnist or '
                f'/usr/share/datasets/fashion-mnist); fetch them with {FETCH_HINT}')
  return found


@pytest.fixture(scope='module')
def fashion_ds(fashion_dir):  # pylint: disable=unused-argument
  return make_datasets('fashion_mnist', batch_size=10000, eval_batch_size=2500,
                       allow_download=False)


def test_fashion_files_are_zalandos(fashion_dir):
  # The content (not the gzip wrapper) of every image and label file is the pinned one.
  for name in fashion_mnist.FILES:
    path = fashion_dir / name
    if not path.is_file():
      path = fashion_dir / name[:-3]
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw
    assert hashlib.sha256(raw).hexdigest() == fashion_mnist.IDX_SHA256[name], name


def test_fashion_split_is_file_order(fashion_dir):
  data = fashion_mnist.load_fashion_mnist(allow_download=False)
  assert {k: v.shape for k, v in data.items()} == {
      'train': (50000, 784), 'valid': (10000, 784), 'test': (10000, 784)}
  raw = idx.read_idx(fashion_dir / idx.TRAIN_IMAGES).reshape(60000, 784)
  # First 50,000 training images = train, last 10,000 = valid, pixel / 255.
  np.testing.assert_array_equal(data['train'][[0, 49999]] * 255, raw[[0, 49999]])
  np.testing.assert_array_equal(data['valid'][[0, -1]] * 255, raw[[50000, -1]])
  for x in data.values():
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
  # Fashion-MNIST's mean intensity is ~0.286 (MNIST's ~0.13): not MNIST by mistake.
  assert 0.27 < data['train'].mean() < 0.30


def test_fashion_pipeline_shapes_and_values(fashion_ds):
  ds = fashion_ds
  assert (ds.num_train, ds.num_valid, ds.num_test) == (50000, 10000, 10000)
  assert ds.name == 'fashion_mnist'
  assert ds.image_shape == (28, 28, 1) and ds.event_size == 784
  assert ds.train_mean.shape == (784,) and ds.train_mean.dtype == np.float32
  batch = next(iter(ds.train)).numpy()
  assert batch.shape == (10000, 784) and batch.dtype == np.float32
  assert set(np.unique(batch)) == {0.0, 1.0}
  assert [len(b) for b in ds.valid.as_numpy_iterator()] == [2500] * 4
  test = _concat(ds.test)
  assert test.shape == (10000, 784) and set(np.unique(test)) == {0.0, 1.0}


def test_fashion_rebinarized_every_epoch_test_fixed(fashion_ds):
  ds = fashion_ds
  # Two epochs (5 batches of 10,000 each) hold the same 50,000 images: with bits fixed once,
  # their per-pixel sums would be equal. They differ, by Bernoulli noise only.
  sums = _epoch_pixel_sums(ds.train, 5, 2)
  assert not np.array_equal(sums[0], sums[1])
  assert np.abs(sums[0] - sums[1]).max() < 1000  # sd of a difference <= sqrt(2 * 12500)
  np.testing.assert_allclose(sums.mean(axis=0) / 50000, ds.train_mean, atol=0.01)
  # A second pipeline (another seed) gives bit-identical valid and test sets.
  other = make_datasets('fashion_mnist', batch_size=10000, eval_batch_size=2500, seed=1,
                        allow_download=False)
  for split in ('valid', 'test'):
    np.testing.assert_array_equal(_concat(getattr(ds, split)), _concat(getattr(other, split)))
  assert not np.array_equal(next(iter(ds.train)).numpy(), next(iter(other.train)).numpy())


def _isolate_fashion(monkeypatch, tmp_path):
  monkeypatch.setattr(fashion_mnist, 'SYSTEM_DIR', tmp_path / 'no_system')
  monkeypatch.setattr(fashion_mnist, 'DEFAULT_DATA_DIR', tmp_path / 'no_cache')


def test_missing_fashion_names_source(tmp_path, monkeypatch):
  _isolate_fashion(monkeypatch, tmp_path)
  with pytest.raises(DatasetNotFoundError) as info:
    fashion_mnist.load_fashion_mnist(tmp_path, allow_download=False)
  message = str(info.value)
  for needle in ('apt-get download dataset-fashion-mnist', 'dpkg -x',
                 '/usr/share/datasets/fashion-mnist', str(tmp_path / 'fashion_mnist'),
                 idx.TRAIN_IMAGES, idx.TEST_IMAGES, 'TFP_PRIORS_DATA_DIR', 'Zalando'):
    assert needle in message
  with pytest.raises(DatasetNotFoundError, match='dataset-fashion-mnist'):
    make_datasets('fashion_mnist', data_dir=tmp_path, allow_download=False)


def test_fashion_offline_fallbacks_skip_tfds(tmp_path, monkeypatch):
  # allow_download=True but offline and no Debian package: tfds is never called (it would
  # retry for minutes), and the error still names the source.
  _isolate_fashion(monkeypatch, tmp_path)
  calls = []
  fake_tfds = types.SimpleNamespace(load=lambda *a, **k: calls.append('load'),
                                    as_numpy=lambda x: x)
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', fake_tfds)
  monkeypatch.setattr(tfds_source, 'online', lambda: False)
  monkeypatch.setattr(fashion_mnist, 'fetch_from_debian', lambda target: calls.append(target))
  with pytest.raises(DatasetNotFoundError, match='dataset-fashion-mnist'):
    fashion_mnist.load_fashion_mnist(tmp_path, allow_download=True)
  assert calls == [tmp_path / 'fashion_mnist']  # Only the Debian fetch, into <data_dir>.


def test_mnist_files_are_not_taken_for_fashion(tmp_path, monkeypatch):
  # tests/data holds MNIST files of the same names, at its top and in no fashion_mnist/
  # folder: they must not be loaded as Fashion-MNIST.
  _isolate_fashion(monkeypatch, tmp_path)
  assert fashion_mnist.find_files(SLICE_DIR) is None
  with pytest.raises(DatasetNotFoundError):
    fashion_mnist.load_fashion_mnist(SLICE_DIR, allow_download=False)


@pytest.mark.skipif(shutil.which('dpkg-deb') is None, reason='dpkg-deb not installed')
def test_extract_from_deb_checks_sha256(tmp_path, monkeypatch):
  # A fake dataset-fashion-mnist package holding the MNIST test slice under the package path.
  root = tmp_path / 'pkg'
  member_dir = root / fashion_mnist.DEBIAN_MEMBER_DIR
  member_dir.mkdir(parents=True)
  for name in fashion_mnist.FILES:
    shutil.copy(SLICE_DIR / name, member_dir / name)
  (root / 'DEBIAN').mkdir()
  (root / 'DEBIAN' / 'control').write_text(
      'Package: dataset-fashion-mnist\nVersion: 0.0-1\nArchitecture: all\n'
      'Maintainer: test <t@example.org>\nDescription: fake\n')
  deb = tmp_path / 'dataset-fashion-mnist_0.0-1_all.deb'
  subprocess.run(['dpkg-deb', '--build', '--root-owner-group', str(root), str(deb)],
                 check=True, capture_output=True)
  target = tmp_path / 'data' / 'fashion_mnist'
  with pytest.raises(ValueError, match='sha256'):
    fashion_mnist.extract_from_deb(deb, target)  # Pinned hashes are Zalando's, not these.
  assert not target.exists()
  digests = {n: hashlib.sha256(gzip.decompress((SLICE_DIR / n).read_bytes())).hexdigest()
             for n in fashion_mnist.FILES}
  written = fashion_mnist.extract_from_deb(deb, target, sha256=digests)
  assert sorted(p.name for p in written) == sorted(fashion_mnist.FILES)
  _isolate_fashion(monkeypatch, tmp_path)
  data = fashion_mnist.load_fashion_mnist(tmp_path / 'data', allow_download=False)
  assert {k: len(v) for k, v in data.items()} == {'train': 834, 'valid': 166, 'test': 1000}


# ----------------------------------------------------------------------------- Omniglot

OMNIGLOT_DIR = DATA_DIR / omniglot.SUBDIR
needs_omniglot = pytest.mark.skipif(
    not all((OMNIGLOT_DIR / n).is_file() for n in omniglot.ZIP_FILES),
    reason=f'Omniglot zips absent from {OMNIGLOT_DIR} ($TFP_PRIORS_DATA_DIR/omniglot)')


@pytest.fixture(scope='module')
def omniglot_cache(tmp_path_factory):
  """A fresh data directory (for the npz cache) holding links to the real zips in its
  omniglot/ folder, and the arrays decoded from them."""
  cache = tmp_path_factory.mktemp('omniglot_cache')
  (cache / omniglot.SUBDIR).mkdir()
  for name in omniglot.ZIP_FILES:
    (cache / omniglot.SUBDIR / name).symlink_to(OMNIGLOT_DIR / name)
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv(files.ENV_DATA_DIR, str(cache))
    mp.setattr(omniglot, 'DEFAULT_DATA_DIR', cache / 'no_default')
    data = omniglot.load_omniglot(allow_download=False)
  return cache, data


@pytest.fixture
def omniglot_env(omniglot_cache, monkeypatch):
  cache, _ = omniglot_cache
  monkeypatch.setenv(files.ENV_DATA_DIR, str(cache))
  monkeypatch.setattr(omniglot, 'DEFAULT_DATA_DIR', cache / 'no_default')
  return cache


@needs_omniglot
def test_omniglot_split_sizes_and_values(omniglot_cache):
  _, data = omniglot_cache
  assert {k: v.shape for k, v in data.items()} == {
      'train': (4000, 784), 'valid': (840, 784), 'test': (800, 784)}
  assert {k: len(v) for k, v in data.items()} == omniglot.SPLIT_SIZES['small']
  for x in data.values():
    assert x.dtype == np.float32 and x.min() == 0.0 and 0.99 < x.max() <= 1.0
    # Strokes are 1 on a 0 background: a low mean, the border nearly empty.
    assert 0.05 < x.mean() < 0.3
    border = x.reshape(-1, 28, 28)[:, [0, -1], :]
    assert border.mean() < 0.01
  # The 1,000 files duplicated between the two background zips are kept once: no image
  # appears twice in train + valid, and no test image occurs in training.
  hashes = {k: {hashlib.sha256(row.tobytes()).digest() for row in v} for k, v in data.items()}
  assert len(hashes['train']) == 4000 and len(hashes['valid']) == 840
  assert not hashes['train'] & hashes['valid'] and not hashes['test'] & hashes['train']


@needs_omniglot
def test_omniglot_resize_keeps_strokes(omniglot_cache):
  # Independent check on the first test image (sorted: run01/test/item01.png): decode the
  # 1-bit PNG with Pillow, invert, and average 4 x 4 blocks of the image padded to 112 px.
  image_module = pytest.importorskip('PIL.Image')
  _, data = omniglot_cache
  with zipfile.ZipFile(OMNIGLOT_DIR / omniglot.TEST_ZIP) as archive:
    png = archive.read('run01/test/item01.png')
  strokes = 1.0 - np.asarray(image_module.open(io.BytesIO(png)).convert('L'), np.float64) / 255
  assert strokes.shape == (105, 105) and 0.01 < strokes.mean() < 0.2
  padded = np.pad(strokes, ((3, 4), (3, 4)))
  blocks = padded.reshape(28, 4, 28, 4).mean(axis=(1, 3))
  ours = data['test'][0].reshape(28, 28)
  assert np.corrcoef(blocks.ravel(), ours.ravel())[0, 1] > 0.8
  # Ink is roughly preserved by the resize (a fraction of the image area).
  assert abs(ours.mean() - strokes.mean()) < 0.02


@needs_omniglot
def test_omniglot_cache_is_used(omniglot_cache, omniglot_env, monkeypatch):
  _, data = omniglot_cache
  assert omniglot.cache_path().is_file()
  assert omniglot.cache_path().parent == omniglot_env / 'omniglot'

  def no_decoding(*args, **kwargs):
    raise AssertionError('decoded again despite the cache')

  monkeypatch.setattr(omniglot, 'decode_pngs', no_decoding)
  again = omniglot.load_omniglot(allow_download=False, source='small')
  for split in omniglot.SPLITS:
    np.testing.assert_array_equal(again[split], data[split])


@needs_omniglot
def test_omniglot_pipeline(omniglot_env):  # pylint: disable=unused-argument
  ds = make_datasets('omniglot', batch_size=4000, eval_batch_size=400, allow_download=False)
  assert (ds.num_train, ds.num_valid, ds.num_test) == (4000, 840, 800)
  assert ds.name == 'omniglot' and ds.image_shape == (28, 28, 1) and ds.event_size == 784
  assert [len(b) for b in ds.valid.as_numpy_iterator()] == [400, 400, 40]
  # One batch is one epoch of all 4,000 images: fixed bits would repeat the per-pixel sums.
  epochs = [b.numpy() for b in ds.train.take(2)]
  for bits in epochs:
    assert bits.shape == (4000, 784) and set(np.unique(bits)) == {0.0, 1.0}
  assert not np.array_equal(epochs[0].sum(axis=0), epochs[1].sum(axis=0))
  np.testing.assert_allclose(np.mean(epochs, axis=(0, 1)), ds.train_mean, atol=0.05)
  assert 0.05 < ds.train_mean.mean() < 0.3
  other = make_datasets('omniglot', batch_size=100, eval_batch_size=800, seed=7,
                        allow_download=False)
  for split in ('valid', 'test'):
    a, b = _concat(getattr(ds, split)), _concat(getattr(other, split))
    assert set(np.unique(a)) == {0.0, 1.0}
    np.testing.assert_array_equal(a, b)


def test_missing_omniglot_names_source(tmp_path, monkeypatch):
  monkeypatch.setattr(omniglot, 'DEFAULT_DATA_DIR', tmp_path / 'no_cache')
  with pytest.raises(DatasetNotFoundError) as info:
    omniglot.load_omniglot(tmp_path, allow_download=False)
  message = str(info.value)
  for needle in ('<data_dir>/omniglot/', 'images_background_small1.zip',
                 'images_background_small2.zip', 'all_runs.zip', "builder 'omniglot'",
                 str(tmp_path), 'TFP_PRIORS_DATA_DIR', 'brendenlake/omniglot'):
    assert needle in message
  with pytest.raises(DatasetNotFoundError, match='<data_dir>/omniglot/'):
    make_datasets('omniglot', data_dir=tmp_path, allow_download=False)
  with pytest.raises(ValueError, match='source'):
    omniglot.load_omniglot(tmp_path, source='chardata')


def test_omniglot_offline_never_calls_tfds(tmp_path, monkeypatch):
  monkeypatch.setattr(omniglot, 'DEFAULT_DATA_DIR', tmp_path / 'no_cache')
  monkeypatch.setattr(tfds_source, 'online', lambda: False)
  calls = []
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', types.SimpleNamespace(
      load=lambda *a, **k: calls.append('load')))
  with pytest.raises(DatasetNotFoundError):
    omniglot.load_omniglot(tmp_path, allow_download=True)
  assert not calls


def test_unknown_name_lists_new_datasets():
  with pytest.raises(ValueError, match='dynamic_mnist, static_mnist, onehot, frey_faces, '
                     'fashion_mnist, omniglot'):
    make_datasets('mnist')
  assert {'fashion_mnist', 'omniglot'} <= set(pipelines.DATASET_NAMES)


def test_env_data_dir_is_searched(tmp_path, monkeypatch):
  # $TFP_PRIORS_DATA_DIR/omniglot and $TFP_PRIORS_DATA_DIR/fashion_mnist are searched first.
  monkeypatch.setenv(files.ENV_DATA_DIR, str(tmp_path))
  assert omniglot.candidate_dirs()[0] == tmp_path / 'omniglot'
  assert fashion_mnist.candidate_dirs()[0] == tmp_path / 'fashion_mnist'
  assert fashion_mnist.candidate_dirs()[-1] == fashion_mnist.SYSTEM_DIR
  assert omniglot.candidate_dirs()[-1] == omniglot.DEFAULT_DATA_DIR.expanduser() / 'omniglot'
  assert os.environ[files.ENV_DATA_DIR] == str(tmp_path)


# ------------------------------------------------------ tfds paths (fake tfds, no network)


def test_fashion_tfds_when_online(tmp_path, monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  _isolate_fashion(monkeypatch, tmp_path)
  images = np.random.RandomState(0).randint(0, 256, size=(600, 28, 28, 1)).astype(np.uint8)
  calls = []

  def load(name, split, download):
    calls.append((name, tuple(split), download))
    return [tf.data.Dataset.from_tensor_slices({'image': images[:n]}) for n in (600, 100)]

  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', types.SimpleNamespace(load=load))
  monkeypatch.setattr(tfds_source, 'online', lambda: True)
  monkeypatch.setattr(fashion_mnist, 'fetch_from_debian', lambda target: 1 / 0)
  data = fashion_mnist.load_fashion_mnist(tmp_path, allow_download=True)
  assert calls == [('fashion_mnist', ('train', 'test'), True)]
  assert {k: v.shape for k, v in data.items()} == {
      'train': (500, 784), 'valid': (100, 784), 'test': (100, 784)}
  np.testing.assert_array_equal(data['valid'] * 255, images[500:].reshape(100, 784))


def test_omniglot_tfds_when_online_then_cached(tmp_path, monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(omniglot, 'DEFAULT_DATA_DIR', tmp_path / 'no_cache')
  monkeypatch.setitem(omniglot.NUM_VALID, 'tfds', 5)
  # White RGB images with one black 15 x 15 square: 225 / 105^2 of ink each.
  images = np.full((20, 105, 105, 3), 255, np.uint8)
  images[:, 45:60, 45:60] = 0
  calls = []

  def load(name, split, download):
    calls.append((name, tuple(split), download))
    return [tf.data.Dataset.from_tensor_slices({'image': images[:n]}) for n in (20, 8)]

  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', types.SimpleNamespace(load=load))
  monkeypatch.setattr(tfds_source, 'online', lambda: True)
  data = omniglot.load_omniglot(tmp_path, allow_download=True)
  assert calls == [('omniglot', ('train', 'test'), True)]
  assert {k: v.shape for k, v in data.items()} == {
      'train': (15, 784), 'valid': (5, 784), 'test': (8, 784)}
  np.testing.assert_allclose(data['test'].mean(axis=1), 225 / 105**2, atol=2e-3)
  assert data['test'].reshape(-1, 28, 28)[:, 0, 0].max() == 0.0  # Background is 0.
  # Offline afterwards: the converted tfds arrays are read from the cache, tfds is not called;
  # source='small' ignores them (and finds no zips here).
  monkeypatch.setattr(tfds_source, 'online', lambda: False)
  again = omniglot.load_omniglot(tmp_path, allow_download=False)
  assert len(calls) == 1 and omniglot.cache_path(tmp_path, 'tfds').is_file()
  np.testing.assert_array_equal(again['test'], data['test'])
  with pytest.raises(DatasetNotFoundError):
    omniglot.load_omniglot(tmp_path, allow_download=False, source='small')
