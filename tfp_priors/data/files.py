"""Where the file-based loaders look for data, and how they write and check files.

Search order of every file-based loader (MNIST, Fashion-MNIST, static MNIST, Frey Faces,
Omniglot): the `data_dir` argument (gin: make_datasets.data_dir), then $TFP_PRIORS_DATA_DIR,
then the cache directory ~/.cache/tfp_priors, each with the data set's folder name (e.g.
`frey_faces/`); see `search_dirs`. Files fetched by a loader go to the data directory of
`resolve_data_dir`.
"""
import contextlib
import hashlib
import os
import pathlib
import shutil
import tempfile

ENV_DATA_DIR = 'TFP_PRIORS_DATA_DIR'
DEFAULT_DATA_DIR = pathlib.Path('~/.cache/tfp_priors')


class DatasetNotFoundError(FileNotFoundError):
  """Raised when a data set is neither on disk nor obtainable."""


def resolve_data_dir(data_dir=None):
  """Returns the data directory: `data_dir`, else $TFP_PRIORS_DATA_DIR, else ~/.cache/tfp_priors.

  Returns:
    `pathlib.Path`, with `~` expanded.
  """
  if data_dir is None:
    data_dir = os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR
  return pathlib.Path(data_dir).expanduser()


def search_dirs(subdir, data_dir, cache_dir, last_dirs=(), include_root=True):
  """Directories to search, in order, without repeats: `data_dir`/subdir and `data_dir`,
  $TFP_PRIORS_DATA_DIR/subdir and $TFP_PRIORS_DATA_DIR, `cache_dir`/subdir, then `last_dirs`.

  Args:
    subdir: the data set's folder name, e.g. 'binarized_mnist', or a tuple of accepted names
      (the first is the one used under `cache_dir`).
    data_dir: a user-given directory or None.
    cache_dir: the cache directory (the loaders pass their `DEFAULT_DATA_DIR`).
    last_dirs: system directories searched last (e.g. a Debian package's install folder).
    include_root: also search `data_dir` and $TFP_PRIORS_DATA_DIR themselves (False for data
      whose file names clash with another data set's, e.g. Fashion-MNIST's with MNIST's).

  Returns:
    list of `pathlib.Path`.
  """
  subdirs = (subdir,) if isinstance(subdir, str) else tuple(subdir)
  dirs = []
  for root in (data_dir, os.environ.get(ENV_DATA_DIR)):
    if root:
      root = pathlib.Path(root).expanduser()
      dirs += [root / name for name in subdirs] + ([root] if include_root else [])
  dirs += [pathlib.Path(cache_dir).expanduser() / subdirs[0], *map(pathlib.Path, last_dirs)]
  return list(dict.fromkeys(dirs))


def first_dir_holding(dirs, names):
  """Returns the first directory of `dirs` holding every file of `names`, or None."""
  for directory in dirs:
    if all((directory / name).is_file() for name in names):
      return directory
  return None


def nearest_existing(path):
  """`path` if it exists, else its nearest ancestor that does (absolute)."""
  existing = os.path.abspath(str(path))
  while not os.path.lexists(existing):
    existing = os.path.dirname(existing)
  return existing


def sha256_of(path):
  """Hex sha256 digest of a file's bytes."""
  return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def atomic_write(path, data):
  """Writes bytes `data` to `path` (parents created) atomically: a uniquely named temporary
  file in the same directory, fsync, `os.replace`, then fsync of the directory. A reader (or a
  run killed mid-write) sees the old file or the new one, never half of one, and two writers
  never share a temporary file.

  Raises:
    OSError: the directory is not writable (the temporary file is removed, `path` untouched).
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + '.', suffix='.part')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise
  directory = os.open(path.parent, os.O_RDONLY)
  try:
    os.fsync(directory)
  finally:
    os.close(directory)


@contextlib.contextmanager
def atomic_directory(path):
  """Yields a new, uniquely named folder beside `path` to write into; when the block ends
  without an error, it takes the place of `path` (a previous `path` is moved aside to
  `<staging>.old` and removed), else it is removed and `path` is untouched. A run killed
  while writing leaves `path` whole (old or new) beside `*.part` / `*.part.old` leftovers,
  except in the instant between the two renames, when the complete new folder is the `.part`
  one (`training.workdir.remove_leftovers` removes them at the next start).

  Raises:
    OSError: the parent folder is not writable.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  staging = tempfile.mkdtemp(dir=path.parent, prefix=path.name + '.', suffix='.part')
  try:
    yield staging
    if path.exists():
      os.rename(path, staging + '.old')
    os.rename(staging, path)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  shutil.rmtree(staging + '.old', ignore_errors=True)

