"""Training strategies (joint, post-hoc, iterative), learning-rate schedules, weight decay."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from support import SLICE_DIR
from support import checkpoint_variables
from tfp_priors import objectives
from tfp_priors.data import pipelines
from tfp_priors.models import VAE
from tfp_priors.nets import regularization
from tfp_priors.priors import LarsPrior
from tfp_priors.training import checkpointing
from tfp_priors.training import strategies
from tfp_priors.training import trainer as train_lib

NO_EVAL = dict(evaluate=False, export=False)


@pytest.fixture(scope="module")
def pretrained(train_tiny, tmp_path_factory):
  """A tiny standard VAE trained for 20 steps: the VAE that post-hoc runs start from."""
  workdir = tmp_path_factory.mktemp("pretrained")
  train_tiny(workdir, "vae_standard", ["train.num_steps = 20"], **NO_EVAL)
  gin.clear_config()
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["elbo", "maximum_likelihood"])
def test_post_hoc_trains_only_the_prior_and_leaves_encoder_decoder_bit_identical(train_tiny, 
    tmp_path, pretrained, objective):
  before = checkpoint_variables(pretrained)
  results = train_tiny(tmp_path, "lars_vae", [
      "train.num_steps = 15", "train.strategy = @PostHoc()",
      f"PostHoc.pretrained_workdir = '{pretrained}'", f"PostHoc.objective = '{objective}'"],
      **NO_EVAL)
  assert results["strategy"] == "post_hoc"
  after = checkpoint_variables(tmp_path)
  model_keys = [k for k in before if k.startswith("model/")]
  assert len(model_keys) == 8  # VAE.hidden_sizes = (32,): 2 x (2 dense layers x kernel, bias)
  for k in model_keys:
    np.testing.assert_array_equal(before[k], after[k], err_msg=k)
  # The prior did train: its variables differ from an untrained run's with the same seed.
  train_tiny(tmp_path / "untrained", "lars_vae", ["train.num_steps = 0"], **NO_EVAL)
  untrained = checkpoint_variables(tmp_path / "untrained")
  prior_keys = [k for k in after if k.startswith("prior/acceptance_net")]
  assert prior_keys and all(not np.array_equal(after[k], untrained[k]) for k in prior_keys)
  # The pretrained workdir is only read.
  assert checkpoint_variables(pretrained).keys() == before.keys()


@pytest.mark.slow
def test_post_hoc_without_a_trained_vae_or_with_another_latent_size_is_refused(train_tiny, 
    tmp_path, pretrained):
  with pytest.raises(checkpointing.PretrainedModelError, match="holds no checkpoint"):
    train_tiny(tmp_path / "a", "lars_vae", [
        "train.num_steps = 2", "train.strategy = @PostHoc()",
        f"PostHoc.pretrained_workdir = '{tmp_path / 'empty'}'"], **NO_EVAL)
  with pytest.raises(checkpointing.PretrainedModelError, match="latent size 3"):
    train_tiny(tmp_path / "b", "lars_vae", [
        "train.num_steps = 2", "train.strategy = @PostHoc()", "VAE.latent_size = 3",
        f"PostHoc.pretrained_workdir = '{pretrained}'"], **NO_EVAL)
  # Nothing was trained or saved in the new workdirs.
  for d in ("a", "b"):
    assert tf.train.latest_checkpoint(str(tmp_path / d / "checkpoints")) is None


def test_iterative_schedule_follows_algorithm_b1():
  iterative = strategies.Iterative(iterations=3, pretrain_fraction=0.5, prior_learning_rate=1e-3,
                                   learning_rate=1e-4)
  num_steps = 100
  rate_fn = train_lib.learning_rate_function(num_steps, 3e-4, 1e-4, decay_step=50)
  pretrain, m = iterative.boundaries(num_steps)
  assert (pretrain, m) == (52, 8)  # 100 = P + 2 I M with M = floor(50 / 6)
  phases = [iterative.phase(s, num_steps, rate_fn) for s in range(num_steps)]
  names = [p.name for p, _ in phases]
  # 1a: the VAE with N(0, I); 1b: prior for 2M; then i = 2, 3: M model, M prior.
  expected = (["iteration_1a"] * pretrain + ["prior"] * (2 * m)
              + (["model"] * m + ["prior"] * m) * 2)
  assert names == expected
  first = phases[0][0]
  assert first.train_model and not first.train_prior and not first.learned_prior
  prior_phase, model_phase = phases[pretrain][0], phases[pretrain + 2 * m][0]
  assert prior_phase.train_prior and not prior_phase.train_model and prior_phase.learned_prior
  assert model_phase.train_model and not model_phase.train_prior and model_phase.learned_prior
  rates = [r for _, r in phases]
  # The pretraining phase runs the train schedule compressed into P steps.
  assert rates[0] == 3e-4 and rates[pretrain - 1] == 1e-4
  assert set(rates[pretrain:pretrain + m]) == {1e-3}
  assert set(rates[pretrain + m:]) == {1e-4}
  with pytest.raises(ValueError, match="leaves no step"):
    strategies.Iterative(iterations=16).boundaries(20)


def test_each_phase_updates_only_its_variables():
  x = next(iter(pipelines.make_datasets(data_dir=SLICE_DIR, allow_download=False,
                                        batch_size=16).train))
  model = VAE(latent_size=3, hidden_sizes=(16,))
  prior = LarsPrior(3, hidden_sizes=(8,), num_proposal_samples=32)
  trainer = train_lib.Trainer(model, prior, warmup_steps=0, seed=0)
  rate = tf.constant(1e-2)
  iterative = strategies.Iterative(iterations=2, pretrain_fraction=0.5)
  for step in (0, 50, 90):  # 1a, prior (1b), model (i = 2) of a 100-step budget
    phase, _ = iterative.phase(step, 100, lambda s: 1e-3)
    model_before = [v.numpy() for v in model.trainable_variables]
    prior_before = [v.numpy() for v in prior.trainable_variables]
    out = trainer.train_step(x, rate, phase)
    assert bool(out["finite"])
    model_changed = [not np.array_equal(a, v.numpy())
                     for a, v in zip(model_before, model.trainable_variables)]
    prior_changed = [not np.array_equal(a, v.numpy())
                     for a, v in zip(prior_before, prior.trainable_variables)]
    assert all(model_changed) if phase.train_model else not any(model_changed), phase
    assert all(prior_changed) if phase.train_prior else not any(prior_changed), phase
  # Iteration 1a scores z under N(0, I), not under the learned prior: no LARS statistics.
  out = trainer.train_step(x, rate, iterative.phase(0, 100, lambda s: 1e-3)[0])
  assert "normalizer" not in out


@pytest.mark.slow
def test_iterative_run_end_to_end(train_tiny, tmp_path):
  results = train_tiny(tmp_path, "lars_vae", [
      "train.num_steps = 24", "train.strategy = @Iterative()", "Iterative.iterations = 2"],
      **NO_EVAL)
  assert results["strategy"] == "iterative" and results["num_steps"] == 24


def test_learning_rate_function():
  default = train_lib.learning_rate_function(1000, 3e-4, 1e-4)
  assert default(0) == 3e-4 and default(99) == 3e-4 and default(100) == 1e-4
  xu = train_lib.learning_rate_function(
      2400, schedule=((0.0, 1e-3), (1 / 3, 1e-4), (2 / 3, 1e-5)))
  assert [xu(s) for s in (0, 799, 800, 1599, 1600, 2399)] == [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5]
  for bad in (((0.5, 1e-3),), ((0.0, 1e-3), (0.6, 1e-4), (0.3, 1e-5)), ((0.0, -1.0),)):
    with pytest.raises(ValueError, match="learning_rate_schedule"):
      train_lib.learning_rate_function(100, schedule=bad)


def test_kl_warmup_from_an_initial_weight():
  assert float(objectives.kl_weight(0, 100, 0.01)) == pytest.approx(0.01)
  assert float(objectives.kl_weight(50, 100, 0.01)) == pytest.approx(0.505)
  assert float(objectives.kl_weight(200, 100, 0.01)) == 1.0
  assert float(objectives.kl_weight(0, 100)) == 0.0


def test_weight_decay_covers_kernels_of_nonlinear_hidden_layers_only():
  model = VAE(latent_size=3, hidden_sizes=(16, 8))
  prior = LarsPrior(3, hidden_sizes=(8,))
  kernels = regularization.hidden_kernels(model, prior)
  # Encoder and decoder: 2 tanh layers each; a(z): 1 tanh layer. Output layers are linear.
  assert sorted(k.shape.as_list() for k in kernels) == sorted(
      [[784, 16], [16, 8], [3, 8], [8, 16], [3, 8]])
  x = tf.cast(tf.random.uniform([8, 784]) < 0.3, tf.float32)
  trainer = train_lib.Trainer(model, prior, warmup_steps=0, seed=0, weight_decay=1e-4)
  expected = 1e-4 * sum(float(np.sum(k.numpy() ** 2)) for k in kernels)
  out = trainer.train_step(x, tf.constant(1e-3), strategies.JOINT)
  assert float(out["weight_penalty"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_post_hoc_elbo_and_maximum_likelihood_give_the_same_prior(train_tiny, tmp_path, pretrained):
  # With encoder and decoder frozen, the ELBO's gradient w.r.t. the prior is that of
  # E_q[log p(z)]: with the same seeds the two objectives train the same prior.
  for objective in ("elbo", "maximum_likelihood"):
    train_tiny(tmp_path / objective, "lars_vae", [
        "train.num_steps = 8", "train.strategy = @PostHoc()",
        f"PostHoc.pretrained_workdir = '{pretrained}'", f"PostHoc.objective = '{objective}'"],
        **NO_EVAL)
  elbo = checkpoint_variables(tmp_path / "elbo")
  ml = checkpoint_variables(tmp_path / "maximum_likelihood")
  prior_keys = [k for k in elbo if k.startswith("prior/acceptance_net")]
  assert prior_keys
  for k in prior_keys:
    np.testing.assert_allclose(elbo[k], ml[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.slow
def test_iterative_initialises_the_prior_at_its_first_phase_from_the_pretrained_encoder(train_tiny, 
    tmp_path, monkeypatch):
  # Xu Algorithm B.1 trains the prior first in iteration 1b, on the encoder of 1a: its
  # data-dependent initialisation belongs there (as post hoc), not to the untrained encoder.
  calls = []
  initialize = LarsPrior.initialize
  monkeypatch.setattr(LarsPrior, "initialize",
                      lambda self, z: (calls.append(z.numpy()), initialize(self, z))[1])
  num_steps = 12
  iterative = strategies.Iterative(iterations=1, pretrain_fraction=0.8)
  pretrain, _ = iterative.boundaries(num_steps)
  assert iterative.prior_initialization_step(num_steps) == pretrain == 10
  train_tiny(tmp_path, "lars_vae", [
      f"train.num_steps = {num_steps}", "train.strategy = @Iterative()",
      "Iterative.iterations = 1", "Iterative.pretrain_fraction = 0.8"], **NO_EVAL)
  assert len(calls) == 1
  # The prior phases after P keep the encoder frozen: the final checkpoint holds the encoder
  # of step P. Its posterior samples of batch P (seed [0, P]) are what initialised the prior.
  data = pipelines.make_datasets(data_dir=SLICE_DIR, allow_download=False, batch_size=32,
                                 start_step=pretrain)
  model = VAE(latent_size=4, hidden_sizes=(32,), train_mean=data.train_mean)
  tf.train.Checkpoint(model=model).restore(
      tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))).expect_partial()
  x = next(iter(data.train))
  expected = model.forward(x, 1, seed=[0, pretrain]).z_top[0].numpy()
  np.testing.assert_allclose(calls[0], expected, rtol=1e-5, atol=1e-6)
  assert strategies.Joint().prior_initialization_step(num_steps) == 0


def test_iterative_kl_warmup_runs_on_the_pretraining_phase_clock():
  # Xu B.3: beta rises over 100 of the 2,400 pretraining epochs (1/24 of them). The configs
  # give train.warmup_steps = num_steps / 24, so within Algorithm B.1's pretraining phase of
  # P steps the warm-up must end after P / 24 steps, as the learning-rate schedule is
  # compressed into P.
  num_steps, warmup = 2400, 100
  iterative = strategies.Iterative(iterations=2, pretrain_fraction=0.5)
  pretrain, _ = iterative.boundaries(num_steps)
  model = VAE(input_size=6, latent_size=2, hidden_sizes=(8,))
  trainer = train_lib.Trainer(model, LarsPrior(2, hidden_sizes=(4,)), warmup_steps=warmup,
                              seed=0, kl_warmup_start=0.01)
  x = tf.cast(tf.random.uniform([8, 6]) < 0.5, tf.float32)

  def beta_at(step):
    trainer.step.assign(step)
    phase, _ = iterative.phase(step, num_steps, lambda s: 1e-3)
    return float(trainer.train_step(x, tf.constant(0.0), phase)["kl_weight"])

  half = round(pretrain / 24 / 2)
  assert beta_at(half) == pytest.approx(0.01 + 0.99 * half / (pretrain / 24), rel=1e-4)
  assert beta_at(int(np.ceil(pretrain / 24))) == 1.0
  assert beta_at(num_steps - 1) == 1.0  # the model phases after pretraining


@pytest.mark.slow
def test_ncp_stage_two_refuses_a_stage_one_trained_with_another_prior(train_tiny, tmp_path):
  train_tiny(tmp_path / "lars_stage_one", "lars_vae", ["train.num_steps = 3"], **NO_EVAL)
  assert checkpointing.pretrained_prior_name(tmp_path / "lars_stage_one") == "lars"
  with pytest.raises(checkpointing.PretrainedModelError, match=r"(?s)'lars'.*'normal'"):
    train_tiny(tmp_path / "ncp", "ncp_vae", [
        "train.num_steps = 3", "NCPPrior.hidden_sizes = (8,)",
        f"NoiseContrastive.pretrained_workdir = '{tmp_path / 'lars_stage_one'}'"], **NO_EVAL)
  assert tf.train.latest_checkpoint(str(tmp_path / "ncp" / "checkpoints")) is None
  with pytest.raises(checkpointing.PretrainedModelError, match="config.gin"):
    checkpointing.pretrained_prior_name(tmp_path / "nothing_here")
