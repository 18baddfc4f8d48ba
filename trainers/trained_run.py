"""A finished training run read back for the figure scripts (`trainers.figures`,
`trainers.plot_onehot`).

`load_run` rebuilds the data, the model and (optionally) the prior of a run from
workdir/config.gin (written by `tfp_priors.training.runner.train`; the layout is
`tfp_priors.training.workdir`'s) and restores their weights from the latest checkpoint in
workdir/checkpoints (`Trainer.checkpoint`: model=, prior=, ...; read by
`tfp_priors.training.checkpointing.load_pretrained_model`).
"""
import collections

from tfp_priors.priors import canonical_name
from tfp_priors.training import checkpointing
from tfp_priors.training import workdir as workdir_lib

Run = collections.namedtuple("Run", [
    "workdir",         # the run directory, str
    "model",           # the restored model
    "prior",           # the restored prior; None with load_run(..., with_prior=False)
    "prior_name",      # registry name of the prior (build_prior.name)
    "data",            # `Datasets` of the run's make_datasets bindings
    "dataset",         # the data set's name
    "data_dir",        # the make_datasets.data_dir binding (None if unbound)
    "allow_download",  # the make_datasets.allow_download binding (True if unbound)
    "step",            # training step of the restored checkpoint
])

# Message of a checkpoint that does not match the config. Keys: checkpoint (its path),
# workdir, config (workdir/config.gin) and reason (the `PretrainedModelError`).
MISMATCH = "cannot restore {checkpoint} with {workdir}/config.gin: {reason}"


def load_run(workdir, error=ValueError, example_config="...", check=None, with_prior=True,
             mismatch=MISMATCH):
  """Rebuilds the model, prior and data of a training run and restores its checkpoint.

  Parses the run's config into the global gin state (after clearing it).

  Args:
    workdir: the run directory.
    error: the exception class raised (a ValueError subclass of the caller).
    example_config: a config named in the message for a missing workdir.
    check: None, or fn(model, data) raising `error` for a run the caller cannot use; called
      before the prior is built and before anything is restored.
    with_prior: also build the prior (`build_prior`) and restore it; False: the model only
      (prior None, prior_name the build_prior.name binding).
    mismatch: the message of a checkpoint that does not match the config (see MISMATCH).

  Returns:
    `Run`.

  Raises:
    error: no workdir, config.gin or checkpoint, or a config that does not parse (see
      `tfp_priors.training.workdir.open_run`); a run refused by `check`; a checkpoint that
      does not match the config.
    DatasetNotFoundError: the run's data set is not available.
  """
  from tfp_priors.data import pipelines  # pylint: disable=g-import-not-at-top

  checkpoint = workdir_lib.open_run(workdir, error, example_config)
  workdir = str(workdir)
  data = pipelines.make_datasets()
  model = workdir_lib.model_fn()(input_size=data.event_size, train_mean=data.train_mean)
  if check is not None:
    check(model, data)
  prior = _build_prior(model) if with_prior else None
  try:
    checkpointing.load_pretrained_model(model, workdir, prior=prior)
  except checkpointing.PretrainedModelError as e:
    raise error(mismatch.format(
        checkpoint=checkpoint, workdir=workdir, reason=e,
        config=workdir_lib.path(workdir, workdir_lib.CONFIG))) from e
  prior_name = (prior.registry_name if with_prior
                else canonical_name(workdir_lib.binding("build_prior.name", "normal")))
  return Run(workdir, model, prior, prior_name, data, data.name,
             workdir_lib.binding("make_datasets.data_dir", None),
             workdir_lib.binding("make_datasets.allow_download", True),
             workdir_lib.checkpoint_step(checkpoint))


def _build_prior(model):
  """The run's prior (`build_prior` with the parsed bindings) over the model's top latent."""
  from tfp_priors.priors import build_prior  # pylint: disable=g-import-not-at-top
  return build_prior(model.latent_size, model=model, defer_state=True)  # restored next
