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
import tensorflow as tf

from tfp_priors import checks
from tfp_priors.training import runner as runner_lib
from tfp_priors.training import workdir as workdir_lib
from trainers import console
from trainers import reproduce_tables

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


class ConfigError(ValueError):
  """A gin config file or a --gin_bindings string does not parse, or names an unknown
  configurable or parameter."""


def parse_config(configs, bindings):
  """Parses the gin config files (in order), then the bindings.

  Raises:
    FileNotFoundError: a config that is neither a file nor in configs/ (`resolve_config`).
    ConfigError: a syntax error, an unclosed bracket or an unknown name, in one line naming
      the file (or --gin_bindings), the line and gin's reason.
  """
  gin.add_config_file_search_path(CONFIG_DIR)
  for path in [resolve_config(c) for c in configs]:
    _parse(path, lambda path=path: gin.parse_config_file(path))
  _parse("--gin_bindings", lambda: gin.parse_config(list(bindings)))


def _parse(source, parse):
  """Runs `parse`, turning gin's errors into a one-line ConfigError naming `source` (a file
  or '--gin_bindings')."""
  try:
    parse()
  except checks.GIN_PARSE_ERRORS as e:
    raise ConfigError(f"{checks.describe_gin_error(source, e)}. Fix it (strings need quotes, "
                      f"references start with @; configurable names include train.*, "
                      f"make_datasets.*, build_prior.name, LarsPrior.*, VAE.*).") from None


def seed_bindings(seed):
  """Gin bindings of `--seed`: one seed for the model, the data and the ops' determinism."""
  if seed is None:
    return []
  return [f"train.seed = {int(seed)}", f"make_datasets.seed = {int(seed)}",
          "train.deterministic = True"]


# Errors a user can fix: printed as one line, without a traceback, with exit code 1.
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError, workdir_lib.WorkdirLockedError)


def main(argv):
  try:
    if len(argv) > 1:
      raise ValueError(f"unexpected arguments: {argv[1:]}; pass options as --name=value.")
    if not FLAGS.workdir:
      raise ValueError("--workdir is required (the run directory).")
    if not any(FLAGS.gin_config):
      raise ValueError("--gin_config is required, e.g. --gin_config=lars_hvae.gin.")
    if not console.verbose_requested():
      logging.set_verbosity(logging.WARNING)
    parse_config(FLAGS.gin_config, FLAGS.gin_bindings + seed_bindings(FLAGS.seed))
    results = runner_lib.train(FLAGS.workdir, print_fn=lambda s: print(s, flush=True))
  except USER_ERRORS as e:
    fail(e)
  for line in summary(results, FLAGS.gin_config, FLAGS.gin_bindings):
    print(line, flush=True)


# Bindings that leave a run comparable with the paper's row of its configs: where the data
# lie, and the train.* budget, intervals and evaluation settings.
_COMPARABLE = ("train.", "make_datasets.data_dir", "make_datasets.allow_download")


def summary(results, configs, bindings=()):
  """The final console lines: the test figures, then the paper's figure for these configs
  (`reproduce_tables.paper_row`) with the difference and the budget ratio, or why not.

  Args:
    results: the run's metrics (metrics.json). configs: the --gin_config values.
    bindings: the --gin_bindings; any outside `_COMPARABLE` changes the setup, and then no
      paper figure is shown.
  """
  if "nll" not in results:
    return []
  z = (f", Z {results['normalizer']:.4g} +- {results['normalizer_standard_error']:.2g}"
       if "normalizer" in results and "normalizer_standard_error" in results else "")
  k = results.get("num_importance_samples")
  lines = [f"summary: test NLL {results['nll']:.2f} nats (K = {k}) on "
           f"{results['num_examples']:,} test images, ELBO {results['elbo']:.2f}, KL "
           f"{results['kl']:.2f}, active units "
           f"{results['active_units']}{z}"]
  found = reproduce_tables.paper_row(configs)
  changed = [b.split("=")[0].strip() for b in bindings
             if not b.strip().startswith(_COMPARABLE)]
  if found is None or changed:
    why = (f"the bindings {', '.join(changed)} change the setup" if found and changed
           else "no paper row trains exactly these configs")
    return lines + [f"paper: not compared ({why})."]
  table, row = found
  ours = table.sign * results[table.metric_key]
  budget = results["num_steps"] / row.paper_steps
  return lines + [
      f"paper: {row.paper:.2f} ({table.title.split(' Table')[0]}, {row.source}, K = "
      f"{table.num_importance_samples}); ours - paper = {ours - row.paper:+.2f} nats after "
      f"{results['num_steps']:,} of the paper's {row.paper_steps:,} steps (budget ratio "
      f"{budget:.2g})"]


def fail(error):
  """Prints `error` as the last line of the run (TensorFlow's warnings at exit silenced) and
  exits with status 1."""
  logging.set_verbosity(logging.FATAL)
  tf.get_logger().setLevel("FATAL")
  message = "\n".join(line for line in str(error).splitlines()  # less gin's call context
                      if not line.strip().startswith("In call to configurable"))
  print(f"error: {type(error).__name__}: {message}", file=sys.stderr, flush=True)
  sys.exit(1)


if __name__ == "__main__":
  app.run(main)
