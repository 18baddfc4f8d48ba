r"""Sample-quality metrics of a finished training run: how many prior samples fall into holes.

  python -m trainers.evaluate_samples --workdir=runs/lars_hvae [--num_samples=10000]

Rebuilds the run's model and prior from workdir/config.gin and its latest checkpoint
(`trainers.trained_run.load_run`), draws N prior samples through the prior (its own sampler:
exact rejection sampling for LARS, SIR for NCP, the aggregate-posterior bank for the implicit
prior; density-ratio priors also by Langevin dynamics, keys suffixed `_langevin`), decodes them
to Bernoulli means and compares them with the first N test images of the run's data set in the
features of that data set's classifier (`tfp_priors.evaluation.prior_samples`; MNIST's convnet
for dynamic and static MNIST, Fashion-MNIST's for Fashion-MNIST; trained once, in about a
minute, and cached in ~/.cache/tfp_priors/classifiers). The metrics (Fréchet distance,
precision and recall, the classifier's predictive entropy and class histogram;
docs/sample_quality.md) are merged into workdir/metrics.json (atomically, holding the
workdir's lock) and written to TensorBoard as `samples/<key>` at the checkpoint's step
(default: the run's workdir/train).

Every flag and the workdir (config.gin, a checkpoint, metrics.json, a data set with a
classifier) are checked before any work: a bad one is a one-line `error:` and exit status 1.
"""
import sys

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from tfp_priors.data import files
from tfp_priors.evaluation import classifier as classifier_lib
from tfp_priors.evaluation import prior_samples
from tfp_priors.evaluation import sample_quality
from tfp_priors.training import workdir as workdir_lib
from trainers import console
from trainers import trained_run

FLAGS = flags.FLAGS


def define_flags():
  """Defines the CLI flags; only when run as a script, so that importing this module next to
  trainers.run or trainers.sample (which define --workdir, --seed, ...) does not clash."""
  flags.DEFINE_string("workdir", None, "Run directory of a finished training run.")
  flags.DEFINE_integer("num_samples", None, "Prior samples per sampler, compared with as many "
                       "test images (default: the whole test split, 10,000 for MNIST).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_integer("k", sample_quality.NEAREST_NEIGHBORS,
                       "Nearest neighbours of precision and recall (Kynkäänniemi et al.: 3).")
  flags.DEFINE_float("langevin_step_size", prior_samples.LANGEVIN_STEP_SIZE,
                     "Step size lambda of Langevin dynamics (density-ratio priors).")
  flags.DEFINE_integer("langevin_steps", prior_samples.LANGEVIN_STEPS,
                       "Steps of Langevin dynamics (density-ratio priors).")
  flags.DEFINE_string("logdir", None, "TensorBoard folder (default: <workdir>/train).")
  flags.DEFINE_string("classifier_dir", None, "Cache of the trained classifiers (default: "
                      "~/.cache/tfp_priors/classifiers).")


class EvaluateError(ValueError):
  """Bad flags, or a workdir that holds no finished run of a data set with a classifier; the
  message is one line."""


def check_workdir(workdir):
  """Checks, before any work, that `workdir` holds a finished run (config.gin, a checkpoint,
  metrics.json) of a data set with a classifier; parses its config.gin into gin.

  Returns:
    The existing metrics (dict).

  Raises:
    EvaluateError: naming what is missing.
  """
  workdir_lib.open_run(workdir, EvaluateError)
  metrics_path = workdir_lib.path(workdir, workdir_lib.METRICS)
  try:
    metrics = workdir_lib.read_metrics(workdir)
  except (OSError, ValueError) as e:
    raise EvaluateError(f"cannot read {metrics_path}: {e}") from None
  if metrics is None:
    raise EvaluateError(f"{metrics_path} not found: the run in {workdir} has not finished "
                        f"(trainers.run writes metrics.json at its end).")
  if not isinstance(metrics, dict):
    raise EvaluateError(f"{metrics_path} does not hold a JSON object of metrics.")
  try:
    classifier_lib.classifier_name(workdir_lib.binding("make_datasets.name", "dynamic_mnist"))
  except ValueError as e:
    raise EvaluateError(str(e)) from None
  return metrics


def evaluate_workdir(workdir, num_samples=None, seed=0, k=sample_quality.NEAREST_NEIGHBORS,
                     langevin_step_size=prior_samples.LANGEVIN_STEP_SIZE,
                     langevin_steps=prior_samples.LANGEVIN_STEPS, logdir=None,
                     classifier_dir=None, print_fn=print):
  """Scores the prior samples of the run in `workdir` and merges the metrics into its
  metrics.json (see the module docstring).

  Returns:
    The new metrics (`prior_samples.evaluate_samples`).

  Raises:
    EvaluateError: a bad setting, no finished run, a data set without a classifier, more
      samples than test images.
    WorkdirLockedError: another process uses the workdir.
    DatasetNotFoundError: the test images or the classifier's training data are missing.
  """
  print_fn = print_fn or (lambda _: None)
  try:
    prior_samples.check_settings(num_samples, k, langevin_step_size, langevin_steps)
  except ValueError as e:
    raise EvaluateError(str(e)) from None
  workdir = str(workdir)
  check_workdir(workdir)
  with workdir_lib.locked(workdir):
    run = trained_run.load_run(workdir, EvaluateError)
    try:
      num_samples = prior_samples.number_of_samples(num_samples, run.data.num_test)
    except ValueError as e:
      raise EvaluateError(str(e)) from None
    classifier = classifier_lib.load_classifier(
        run.dataset, cache_dir=classifier_dir, data_dir=run.data_dir,
        allow_download=run.allow_download, log_fn=print_fn)
    writer = tf.summary.create_file_writer(
        logdir or workdir_lib.path(workdir, workdir_lib.TRAIN_EVENTS))
    with writer.as_default():
      results = prior_samples.evaluate_samples(
          run.model, run.prior, run.dataset, num_samples, seed, run.data_dir,
          run.allow_download, classifier, k=k, langevin_step_size=langevin_step_size,
          langevin_steps=langevin_steps, step=run.step, log_fn=print_fn)
    writer.close()
    metrics = workdir_lib.read_metrics(workdir)  # read again under the lock
    workdir_lib.write_metrics(workdir, {**metrics, **results})
  print_fn(f"wrote {len(results)} sample-quality metrics to "
           f"{workdir_lib.path(workdir, workdir_lib.METRICS)}")
  return results


USER_ERRORS = (ValueError, FileNotFoundError, OSError, workdir_lib.WorkdirLockedError)


def main(argv):
  try:
    if len(argv) > 1:
      raise EvaluateError(f"unexpected arguments: {argv[1:]}; pass options as --name=value.")
    if not FLAGS.workdir:
      raise EvaluateError("--workdir is required (the run directory of a finished run).")
    if not console.verbose_requested():
      logging.set_verbosity(logging.WARNING)
    evaluate_workdir(FLAGS.workdir, FLAGS.num_samples, FLAGS.seed, FLAGS.k,
                     FLAGS.langevin_step_size, FLAGS.langevin_steps, FLAGS.logdir,
                     FLAGS.classifier_dir, print_fn=lambda s: print(s, flush=True))
  except USER_ERRORS as e:
    message = " ".join(str(e).split()) if isinstance(e, files.DatasetNotFoundError) else e
    print(f"error: {type(e).__name__}: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
