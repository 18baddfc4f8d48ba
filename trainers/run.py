r"""Trains, evaluates and exports a VAE with a learned prior from gin configs.

  python -m trainers.run --gin_config=lars_hvae.gin --workdir=runs/lars_hvae \
      --gin_bindings='train.num_steps=1000'

A bare config name resolves inside configs/; a path works too. Rerunning with the same
--workdir resumes from its latest checkpoint.
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
import gin

from tfp_priors.training import runner as runner_lib
from tfp_priors.training import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_config", [], "Gin config file(s): a path, or a name in configs/.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, e.g. 'train.num_steps=1000'.")
flags.DEFINE_string("workdir", None, "Run directory (checkpoints, TensorBoard, export).")
flags.DEFINE_integer("seed", None, "Seed of initialisation, data order and sampling; also "
                     "makes every op deterministic, so two CPU runs with one seed are "
                     "bit-identical (train.seed, make_datasets.seed, train.deterministic).")

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "configs")


def resolve_config(name):
  """A path if it exists, else configs/<name> (adding .gin if missing).

  Raises:
    FileNotFoundError: naming both places looked at and the available configs.
  """
  if os.path.isfile(name):
    return name
  candidate = os.path.join(CONFIG_DIR, name if name.endswith(".gin") else name + ".gin")
  if os.path.isfile(candidate):
    return candidate
  available = sorted(f for f in os.listdir(CONFIG_DIR) if f.endswith(".gin"))
  raise FileNotFoundError(f"gin config {name!r} is neither a file nor in {CONFIG_DIR}; "
                          f"available: {', '.join(available)}")


def parse_config(configs, bindings):
  """Parses gin configs and bindings; unknown names raise ValueError with gin's message."""
  gin.add_config_file_search_path(CONFIG_DIR)
  try:
    gin.parse_config_files_and_bindings([resolve_config(c) for c in configs], bindings,
                                        finalize_config=False)
  except (ValueError, KeyError) as e:
    raise ValueError(f"bad gin configuration: {e}\nConfigurable names include train.*, "
                     "make_datasets.*, build_prior.name, LarsPrior.*, VAE.*, HVAE.*.") from e


def seed_bindings(seed):
  """Gin bindings of `--seed`: one seed for the model, the data and the ops' determinism."""
  if seed is None:
    return []
  return [f"train.seed = {int(seed)}", f"make_datasets.seed = {int(seed)}",
          "train.deterministic = True"]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required (the run directory).")
  if not FLAGS.gin_config:
    raise app.UsageError("--gin_config is required, e.g. --gin_config=lars_hvae.gin.")
  logging.set_verbosity(logging.WARNING)
  try:
    parse_config(FLAGS.gin_config, FLAGS.gin_bindings + seed_bindings(FLAGS.seed))
    runner_lib.train(FLAGS.workdir, print_fn=lambda s: print(s, flush=True))
  except (ValueError, FileNotFoundError, FloatingPointError,
          workdir_lib.WorkdirLockedError) as e:
    # Errors the user can fix: print the message without a traceback.
    print(f"error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
