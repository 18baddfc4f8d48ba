"""Properties every registered prior, model and dataset must have, tested over the registries.

TFP's habit: one property, every member. A new prior or model is covered once it is
registered (priors, datasets) or exported from `tfp_priors.models` as a `LatentVariableModel`.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import support
from tfp_priors import models as models_lib
from tfp_priors import objectives
from tfp_priors.data import DatasetNotFoundError
from tfp_priors.data import files
from tfp_priors.data import make_datasets
from tfp_priors.data import omniglot
from tfp_priors.data import registry as data_registry
from tfp_priors.priors import interface as prior_base
from tfp_priors.priors import build_prior

LATENT = 3
INPUT = 784  # the conv models take 28 x 28 images
TINY_VAE = dict(input_size=INPUT, latent_size=LATENT, hidden_sizes=(8,))

# Small constructor arguments per prior class, so that every property runs in seconds.
PRIOR_ARGS = {
    "LarsPrior": dict(hidden_sizes=(8,), num_proposal_samples=32),
    "RealNVPPrior": dict(num_couplings=2, hidden_sizes=(8,)),
    "XuRealNVPPrior": dict(flow_depth=2, hidden_size=8),
    "MAFPrior": dict(num_blocks=2, hidden_sizes=(8,)),
    "NCPPrior": dict(hidden_sizes=(8,), num_proposals=16),
    "ImplicitPrior": dict(hidden_sizes=(8,), bank_size=16, num_proposals=16),
    "HierarchicalNCPPrior": dict(hidden_sizes=(8,), num_proposals=16, lower_num_proposals=4),
    "MixtureOfGaussiansPrior": dict(num_components=3),
    "VampPrior": dict(num_pseudo_inputs=4),
    "SnisPrior": dict(hidden_sizes=(8,), num_proposals=16),
}

MODELS = {
    "VAE": lambda: models_lib.VAE(**TINY_VAE),
    "DenseVAE": lambda: models_lib.DenseVAE(**TINY_VAE),
    "GatedVAE": lambda: models_lib.GatedVAE(input_size=INPUT, latent_size=LATENT,
                                            hidden_sizes=(8,)),
    "HVAE": lambda: models_lib.HVAE(input_size=INPUT, latent_size=LATENT, hidden_size=8),
    "ConvHVAE": lambda: models_lib.ConvHVAE(input_size=INPUT, latent_size=LATENT,
                                            hidden_size=8),
    "ConvVAE": lambda: models_lib.ConvVAE(latent_size=LATENT),
    "ResnetVAE": lambda: models_lib.ResnetVAE(latent_size=LATENT),
    "ResampledOutputs": lambda: models_lib.ResampledOutputs(
        lambda train_mean: models_lib.VAE(**TINY_VAE), hidden_sizes=(8,),
        num_proposal_samples=8),
}


def _prior_classes():
  """{class name: class} of every registered prior (aliases collapse to one class)."""
  registry = prior_base._REGISTRY  # pylint: disable=protected-access
  return {cls.__name__: cls for cls in registry.values()}


def _model_for(cls):
  """The model a prior class is built with: an HVAE for the hierarchical NCP, else a VAE."""
  if cls.__name__ == "HierarchicalNCPPrior":
    return models_lib.HVAE(input_size=INPUT, latent_size=LATENT, hidden_size=8)
  return models_lib.VAE(**TINY_VAE)


def _build(cls, model, seed=0):
  tf_keras.utils.set_random_seed(seed)
  kwargs = dict(PRIOR_ARGS.get(cls.__name__, {}))
  if cls.requires_model:
    kwargs["model"] = model
  return cls(latent_size=LATENT, **kwargs)


def _images(batch=4, seed=0):
  return tf.constant(np.random.RandomState(seed).binomial(1, 0.3, (batch, INPUT)), tf.float32)


PRIORS = sorted(_prior_classes())


def test_the_contract_tables_cover_every_registered_prior_and_exported_model():
  assert set(PRIORS) >= {"StandardNormalPrior", "LarsPrior", "NCPPrior", "VampPrior"}
  assert set(PRIORS) - {"StandardNormalPrior"} <= set(PRIOR_ARGS)
  exported = {name for name in dir(models_lib)
              if isinstance(getattr(models_lib, name), type)
              and issubclass(getattr(models_lib, name), models_lib.LatentVariableModel)
              and name != "LatentVariableModel"}
  assert exported == set(MODELS)


@pytest.mark.parametrize("name", PRIORS)
def test_prior_builds_by_its_registry_name_and_samples_and_scores_in_shape(name):
  cls = _prior_classes()[name]
  model = _model_for(cls)
  prior = build_prior(LATENT, name=cls.registry_name, model=model)
  assert type(prior) is cls and prior.latent_size == LATENT
  z = prior.sample(5, seed=[1, 2])
  assert z.shape == (5, LATENT)
  log_prob = prior.distribution().log_prob(z)
  assert log_prob.shape == (5,)
  # log Z may be unknown (NaN) before training / finalize; the unnormalised part is finite.
  assert np.all(np.isfinite(log_prob.numpy())) or not np.isfinite(
      float(prior.log_normalizer()))
  f = model.forward(_images(), 1, seed=[3, 4])
  log_p, stats = prior.training_log_prob(f.z_top[0], f.log_posterior_top[0], seed=[5, 6])
  assert log_p.shape == (4,) and np.all(np.isfinite(log_p.numpy()))
  assert all(np.isfinite(float(v)) for v in stats.values())


def _objectives_of(prior):
  return ([objectives.ELBO]
          + ([objectives.NOISE_CONTRASTIVE] if prior.has_noise_contrastive_loss else []))


@pytest.mark.parametrize("name", PRIORS)
def test_every_prior_variable_gets_a_finite_gradient_from_its_objectives(name):
  cls = _prior_classes()[name]
  model = _model_for(cls)
  prior = _build(cls, model)
  trained = set()
  for objective_name in _objectives_of(prior):
    variables = prior.objective_variables(objective_name)
    with tf.GradientTape() as tape:
      loss, _, _ = objectives.training_objective(objective_name).loss(
          model, prior, _images(), tf.constant(1.0), tf.constant([7, 8]))
    grads = tape.gradient(loss, variables)
    missing = [v.name for v, g in zip(variables, grads) if g is None]
    assert not missing, f"{objective_name}: no gradient for {missing}"
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads)
    trained |= {id(v) for v in variables}
  untrained = [v.name for v in prior.trainable_variables if id(v) not in trained]
  assert not untrained, f"no objective trains {untrained}"


@pytest.mark.parametrize("name", PRIORS)
def test_prior_checkpoint_round_trip_restores_the_density(name, tmp_path):
  cls = _prior_classes()[name]
  model = _model_for(cls)
  saved = _build(cls, model, seed=1)
  for v in saved.trainable_variables:
    v.assign_add(0.1 * tf.ones_like(v))
  saved.refresh_log_normalizer(num_samples=4096, seed=0)  # LARS, NCP: log Z of these weights
  z = tf.constant(np.random.RandomState(2).normal(size=(6, LATENT)), tf.float32)
  # A bound (SNIS) draws its proposals: the same seed before and after.
  kwargs = {"seed": [0, 3]} if cls.log_prob_is_lower_bound else {}
  expected = saved.distribution().log_prob(z, **kwargs).numpy()
  assert np.all(np.isfinite(expected))
  path = tf.train.Checkpoint(prior=saved).save(str(tmp_path / "ckpt"))
  restored = _build(cls, model, seed=2)
  tf.train.Checkpoint(prior=restored).restore(path).assert_existing_objects_matched()
  np.testing.assert_allclose(restored.distribution().log_prob(z, **kwargs).numpy(), expected,
                             rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_forward_encode_decode_and_sampling_agree_in_shape(name):
  model = MODELS[name]()
  x = _images()
  prior = build_prior(LATENT, name="normal")
  # A training forward first: LARS on outputs has no log Z (NaN) before its first EMA update.
  f_train, _ = model.training_forward(x, prior, seed=[9, 10])
  assert f_train.z_top.shape == (1, 4, LATENT)
  f = model.forward(x, 2, seed=[1, 2])
  assert f.z_top.shape == (2, 4, LATENT)
  for field in ("log_posterior_top", "log_likelihood", "log_posterior_rest", "log_prior_rest"):
    value = getattr(f, field).numpy()
    assert value.shape == (2, 4) and np.all(np.isfinite(value)), field
  assert model.encode_top(x).event_shape == (LATENT,)
  assert model.posterior_mean(x).shape == (4, LATENT)
  means = model.decode(tf.zeros([3, LATENT]), seed=[3, 4]).numpy()
  assert means.shape == (3, INPUT) and np.all((means >= 0) & (means <= 1))
  images, z, stats = model.sample_images(prior, 3, seed=[5, 6], decode_seed=[7, 8],
                                         statistics=True)
  assert images.shape == (3, INPUT) and z.shape == (3, LATENT)
  assert all(np.isfinite(float(v)) for v in stats.values())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_variable_gets_a_finite_gradient_from_the_elbo(name):
  model = MODELS[name]()
  prior = build_prior(LATENT, name="normal")
  with tf.GradientTape() as tape:
    loss, _, _ = objectives.training_objective(objectives.ELBO).loss(
        model, prior, _images(), tf.constant(1.0), tf.constant([1, 2]))
  grads = tape.gradient(loss, model.trainable_variables)
  missing = [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
  assert not missing, f"no ELBO gradient for {missing}"
  assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_checkpoint_round_trip_restores_the_bound(name, tmp_path):
  tf_keras.utils.set_random_seed(1)
  saved = MODELS[name]()
  x = _images()
  expected = saved.forward(x, 1, seed=[1, 2]).log_likelihood.numpy()
  path = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
  tf_keras.utils.set_random_seed(2)
  restored = MODELS[name]()
  tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
  np.testing.assert_allclose(restored.forward(x, 1, seed=[1, 2]).log_likelihood.numpy(),
                             expected, rtol=1e-5, equal_nan=True)


def _dataset_dir(name, tmp_path):
  """A data directory holding the data set `name` without writing to the project's data
  folder: the MNIST slice for dynamic MNIST, links to the Omniglot zips in a fresh folder (its
  npz cache goes there), and support.DATA_DIR for the others (None for OneHot)."""
  if name == "dynamic_mnist":
    return support.SLICE_DIR
  if name == "omniglot":
    (tmp_path / omniglot.SUBDIR).mkdir()
    for file_name in omniglot.ZIP_FILES:
      source = support.DATA_DIR / omniglot.SUBDIR / file_name
      if source.is_file():
        (tmp_path / omniglot.SUBDIR / file_name).symlink_to(source)
    return str(tmp_path)
  return None if name == "onehot" else str(support.DATA_DIR)


@pytest.mark.parametrize("name", data_registry.names())
def test_every_registered_dataset_loads_in_the_shape_and_range_its_spec_declares(
    name, tmp_path, monkeypatch):
  spec = data_registry.get_spec(name)
  assert spec.event_size == int(np.prod(spec.image_shape))
  data_dir = _dataset_dir(name, tmp_path)
  monkeypatch.setenv(files.ENV_DATA_DIR, str(tmp_path / "nothing"))  # only data_dir counts
  try:
    data = make_datasets(name, batch_size=8, data_dir=data_dir, allow_download=False)
  except DatasetNotFoundError as e:
    pytest.skip(f"{name} is not available here: {str(e).splitlines()[0][:200]}")
  assert data.image_shape == spec.image_shape and data.event_size == spec.event_size
  train = next(iter(data.train)).numpy()
  test = np.concatenate([b.numpy() for b in data.test])
  assert train.shape == (8, spec.event_size) and test.shape == (data.num_test, spec.event_size)
  assert 0.0 <= test.min() and test.max() <= 1.0
  binary = spec.binarization != "none"
  assert np.all(np.isin(train, (0.0, 1.0))) == binary
  assert np.all(np.isin(test, (0.0, 1.0))) == binary
  assert data.train_mean.shape == (spec.event_size,)
