"""Where the loaders look for data files: the search order shared by the file-based data sets."""
import os
import pathlib

from tfp_priors.data.mnist import ENV_DATA_DIR

# <repo>/../shared/data, the project's folder of data no registry carries (README there).
SHARED_DATA_DIR = pathlib.Path(__file__).resolve().parents[2].parent / 'shared' / 'data'


def search_dirs(subdir, data_dir, cache_dir, last_dirs=(), include_root=True):
  """Directories to search, in order, without repeats: `data_dir`/subdir and `data_dir`,
  $TFP_PRIORS_DATA_DIR/subdir and $TFP_PRIORS_DATA_DIR, `cache_dir`/subdir, then `last_dirs`
  (e.g. `SHARED_DATA_DIR / subdir`).

  Args:
    subdir: the data set's folder name, e.g. 'binarized_mnist', or a tuple of accepted names
      (the first is the one used under `cache_dir`).
    data_dir: a user-given directory or None. cache_dir: the default data directory.
    last_dirs: fallback directories searched last.
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
