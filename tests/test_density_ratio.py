"""Density-ratio priors: NCP (Aneja et al. 2021) and the implicit optimal prior (Takahashi et
al. 2019): the classifier learns log q - log p, the NCP density normalises with its estimated
Z, the alternating and two-stage schedules train only what they should."""
import math

import gin
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from support import checkpoint_variables
from tfp_priors import objectives
from tfp_priors.models import VAE
from tfp_priors.priors import ImplicitPrior, NCPPrior, StandardNormalPrior, density_ratio
from tfp_priors.training import checkpointing
from tfp_priors.training import strategies
from tfp_priors.training import trainer as train_lib

tfd = tfp.distributions

CENTRES = np.array([[-1.5, -1.0], [1.5, -1.0], [0.0, 1.5], [1.0, 1.0]], np.float32)
SPREAD = 0.45


class _MixtureEncoder:
  """A stand-in model whose aggregate posterior is a known mixture: x is a centre index, q(z|x)
  = N(CENTRES[x], SPREAD^2 I), so q(z) = mean_k N(c_k, SPREAD^2 I)."""

  def encode_top(self, x):
    return tfd.MultivariateNormalDiag(tf.gather(CENTRES, x), tf.fill([tf.shape(x)[0], 2], SPREAD))

  @staticmethod
  def aggregate_posterior():
    return tfd.MixtureSameFamily(
        tfd.Categorical(logits=tf.zeros(len(CENTRES))),
        tfd.MultivariateNormalDiag(CENTRES, tf.fill(CENTRES.shape, SPREAD)))


def _fit_classifier(prior, steps, seed=0):
  model = _MixtureEncoder()
  optimizer = tf_keras.optimizers.Adam(3e-3)
  variables = prior.objective_variables("noise_contrastive")

  @tf.function
  def step(i):
    x = tf.random.stateless_uniform([256], [seed, i], 0, len(CENTRES), dtype=tf.int32)
    with tf.GradientTape() as tape:
      loss, stats = prior.noise_contrastive_loss(model, x, seed=tf.stack([seed + 1, i]))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return stats

  for i in range(steps):
    stats = step(tf.constant(i))
  return model, stats


def _grid(limit=5.0, n=161):
  u = np.linspace(-limit, limit, n, dtype=np.float32)
  zz = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
  return zz, (u[1] - u[0]) ** 2


@pytest.fixture(scope="module")
def fitted_ncp():
  tf_keras.utils.set_random_seed(0)
  prior = NCPPrior(2, hidden_sizes=(64, 64), num_proposals=2000)
  _, stats = _fit_classifier(prior, 3000)
  return prior, stats


def test_ncp_classifier_learns_the_log_density_ratio_and_the_density_integrates_to_one(
    fitted_ncp):
  prior, stats = fitted_ncp
  q = _MixtureEncoder.aggregate_posterior()
  base = prior.base.distribution()
  z = q.sample(4000, seed=[1, 2])
  true_log_ratio = (q.log_prob(z) - base.log_prob(z)).numpy()
  learned = prior.log_ratio(z).numpy()
  # Where q has its mass, T(z) is log q - log p up to a few tenths of a nat.
  assert np.corrcoef(true_log_ratio, learned)[0, 1] > 0.97
  assert np.median(np.abs(learned - true_log_ratio)) < 0.3
  # Z = E_p[r] is about 1 for the optimal classifier; the estimate makes p_NCP integrate to 1.
  estimate = prior.estimate_log_normalizer(num_samples=10**6, seed=3)
  assert abs(float(estimate.normalizer) - 1.0) < 0.25
  zz, cell = _grid()
  mass = np.sum(np.exp(prior.distribution().log_prob(zz).numpy())) * cell
  assert mass == pytest.approx(1.0, abs=0.02)
  # p_NCP is much closer to q than the base: KL(q || p_NCP) << KL(q || p).
  kl_base = float(tf.reduce_mean(q.log_prob(z) - base.log_prob(z)))
  kl_ncp = float(tf.reduce_mean(q.log_prob(z) - prior.distribution().log_prob(z)))
  assert kl_ncp < 0.15 * kl_base
  # The NCE diagnostics: JSD = log 2 - L / 2 is positive and below log 2.
  assert 0.0 < float(stats["jensen_shannon"]) < math.log(2.0)
  assert float(stats["jensen_shannon"]) == pytest.approx(
      math.log(2.0) - 0.5 * float(stats["nce_loss"]), abs=1e-6)


def test_ncp_sir_samples_follow_the_reweighted_density(fitted_ncp):
  prior, _ = fitted_ncp
  samples = prior.sample(3000, seed=[4, 5]).numpy()
  q_samples = _MixtureEncoder.aggregate_posterior().sample(3000, seed=[6, 7]).numpy()
  # SIR from N(0, I) with the learned r matches the aggregate posterior's moments.
  np.testing.assert_allclose(samples.mean(0), q_samples.mean(0), atol=0.12)
  np.testing.assert_allclose(np.cov(samples.T), np.cov(q_samples.T), atol=0.2)
  diagnostics = prior.sir_diagnostics(num_samples=20)
  assert 1.0 < diagnostics["sir_effective_sample_size"] < prior.num_proposals


def test_implicit_estimator_converges_to_the_log_ratio_with_dropout():
  tf_keras.utils.set_random_seed(1)
  # Dropout 0.5 (the paper's) on this small net regularises T towards a smoother ratio
  # (correlation ~0.9 here, 0.93 at 500-500); 0.2 keeps the test fast and tight.
  prior = ImplicitPrior(2, hidden_sizes=(64, 64), dropout_rate=0.2, bank_size=10)
  _fit_classifier(prior, 3000, seed=10)
  q = _MixtureEncoder.aggregate_posterior()
  z = q.sample(4000, seed=[8, 9])
  true_log_ratio = (q.log_prob(z) - prior.base.distribution().log_prob(z)).numpy()
  learned = prior.log_ratio(z).numpy()  # dropout off at evaluation
  assert np.corrcoef(true_log_ratio, learned)[0, 1] > 0.93
  assert np.median(np.abs(learned - true_log_ratio)) < 0.25
  # The density uses log Z = 0 (Takahashi et al.), so log_prob = log N(z) + T(z) exactly.
  np.testing.assert_allclose(
      prior.distribution().log_prob(z),
      prior.base.distribution().log_prob(z) + prior.log_ratio(z), rtol=1e-5, atol=1e-5)


def _numpy_log_ratio(prior, z):
  """T(z) of the classifier's dense layers (tanh hidden, linear output) in float64 numpy,
  dropout off: an independent evaluation of the network from its weights."""
  h = np.asarray(z, np.float64)
  dense = [l for l in prior.classifier.net.layers if l.get_weights()]
  for i, layer in enumerate(dense):
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    h = h @ kernel + bias
    if i < len(dense) - 1:
      h = np.tanh(h)
  return h[..., 0]


def test_implicit_training_log_prob_is_log_normal_plus_t_with_its_path_gradient():
  # Takahashi Eq. 18-19: the VAE term is log N(z) + T(z) at the reparameterised z, so
  # d/dz = -z + grad T(z); Eq. 21 only keeps T's own weights out of the ELBO update.
  tf_keras.utils.set_random_seed(3)
  prior = ImplicitPrior(2, hidden_sizes=(8, 8), dropout_rate=0.5, bank_size=4)
  z0 = np.array([[0.3, -0.2], [1.0, 0.5], [-1.2, 0.8]])
  z = tf.Variable(z0, dtype=tf.float32)
  with tf.GradientTape() as tape:
    log_p, _ = prior.training_log_prob(z, log_posterior=tf.zeros([3]))
  expected = -0.5 * np.sum(z0**2, -1) - math.log(2 * math.pi) + _numpy_log_ratio(prior, z0)
  np.testing.assert_allclose(log_p, expected, rtol=1e-5, atol=1e-5)  # dropout is off
  step = 1e-5
  grad_t = np.stack([(_numpy_log_ratio(prior, z0 + step * e) - _numpy_log_ratio(prior, z0 - step * e))
                     / (2 * step) for e in np.eye(2)], -1)
  assert np.max(np.abs(grad_t)) > 1e-2  # T has a gradient worth passing on
  np.testing.assert_allclose(tape.gradient(log_p, z), -z0 + grad_t, rtol=1e-4, atol=1e-5)
  # The ELBO does not train T: only the NCE objective does.
  assert prior.objective_variables("elbo") == []
  assert prior.objective_variables("maximum_likelihood") == []


def test_implicit_prior_encoder_gradient_is_that_of_log_normal_plus_fixed_t():
  tf_keras.utils.set_random_seed(4)
  model = VAE(input_size=6, latent_size=2, hidden_sizes=(8,))
  prior = ImplicitPrior(2, hidden_sizes=(8,), bank_size=4)
  x = tf.constant(np.random.RandomState(0).binomial(1, 0.5, (16, 6)), tf.float32)
  seed = tf.constant([5, 6])
  # T with its weights copied to constants: "T's variables held fixed".
  dense = [l for l in prior.classifier.net.layers if l.get_weights()]
  weights = [[tf.constant(w) for w in l.get_weights()] for l in dense]

  def fixed_t(z):
    h = z
    for i, (kernel, bias) in enumerate(weights):
      h = tf.matmul(h, kernel) + bias
      h = tf.tanh(h) if i < len(weights) - 1 else h
    return h[..., 0]

  def encoder_grads(loss_fn):
    with tf.GradientTape() as tape:
      loss = loss_fn()
    return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]

  def by_hand(extra_log_prior):
    seed_model, _ = tfp.random.split_seed(seed, 2)  # as objectives.elbo splits its seed
    f = model.forward(x, 1, seed=seed_model)
    z = f.z_top[0]
    log_p = tfd.MultivariateNormalDiag(tf.zeros(2)).log_prob(z) + extra_log_prior(z)
    return -tf.reduce_mean(f.log_likelihood[0] - (f.log_posterior_top[0] - log_p))

  def library(p):
    return -tf.reduce_mean(objectives.elbo(model, p, x, training=True, seed=seed)[0].elbo)

  implicit = encoder_grads(lambda: library(prior))
  standard = encoder_grads(lambda: library(StandardNormalPrior(2)))
  expected = encoder_grads(lambda: by_hand(fixed_t))
  for got, want in zip(implicit, expected):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  # The encoder's gradient is not that of the N(0, I) VAE (the bug: max |difference| = 0).
  encoder_refs = {v.ref() for v in model.encoder.trainable_variables}
  encoder = [i for i, v in enumerate(model.trainable_variables) if v.ref() in encoder_refs]
  assert encoder
  assert max(np.max(np.abs(implicit[i] - standard[i])) for i in encoder) > 1e-4


def test_noise_contrastive_objective_trains_only_the_classifier():
  prior = NCPPrior(2, base_prior="normal", hidden_sizes=(8,))
  assert {v.ref() for v in prior.objective_variables("noise_contrastive")} == {
      v.ref() for v in prior.classifier.trainable_variables}
  with tf.GradientTape() as tape:
    loss, _ = prior.noise_contrastive_loss(_MixtureEncoder(), tf.constant([0, 1, 2, 3]),
                                           seed=[0, 1])
  grads = tape.gradient(loss, prior.classifier.trainable_variables)
  assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_alternating_schedule_follows_algorithm_1_and_updates_only_its_phase_variables():
  alternating = strategies.Alternating(model_steps=2, estimator_steps=5)
  names = [alternating.phase(s, 100, lambda _: 1e-3)[0].name for s in range(14)]
  assert names == ["vae"] * 2 + ["density_ratio"] * 5 + ["vae"] * 2 + ["density_ratio"] * 5
  tf_keras.utils.set_random_seed(0)
  model = VAE(input_size=6, latent_size=2, hidden_sizes=(8,))
  prior = ImplicitPrior(2, hidden_sizes=(8,), bank_size=4)
  trainer = train_lib.Trainer(model, prior, warmup_steps=0, seed=0)
  x = tf.constant(np.random.RandomState(0).binomial(1, 0.5, (16, 6)), tf.float32)
  for phase_step, trained, frozen in [(0, model, prior), (2, prior, model)]:
    phase, _ = alternating.phase(phase_step, 100, lambda _: 1e-3)
    before_trained = [v.numpy() for v in trained.trainable_variables]
    before_frozen = [v.numpy() for v in frozen.trainable_variables]
    out = trainer.train_step(x, tf.constant(1e-2), phase)
    assert bool(out["finite"])
    assert all(not np.array_equal(b, v.numpy())
               for b, v in zip(before_trained, trained.trainable_variables))
    for b, v in zip(before_frozen, frozen.trainable_variables):
      np.testing.assert_array_equal(b, v.numpy())
  assert "nce_loss" in out and "jensen_shannon" in out


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="at least one proposal"):
    NCPPrior(2, num_proposals=0)
  with pytest.raises(ValueError, match="model_steps and estimator_steps"):
    strategies.Alternating(model_steps=0)
  with pytest.raises(ValueError, match="bank_size"):
    ImplicitPrior(2, bank_size=0)
  with pytest.raises(ValueError, match="dropout_rate"):
    ImplicitPrior(2, dropout_rate=1.0)


NO_EVAL = dict(evaluate=False, export=False)


@pytest.fixture(scope="module")
def stage_one(train_tiny, tmp_path_factory):
  """A tiny standard VAE: NCP's stage one."""
  workdir = tmp_path_factory.mktemp("stage_one")
  train_tiny(workdir, "vae_standard", ["train.num_steps = 20"], **NO_EVAL)
  gin.clear_config()
  return workdir


NCP_TINY = ["NCPPrior.hidden_sizes = (16,)", "NCPPrior.num_proposals = 50"]


@pytest.mark.slow
def test_ncp_stage_two_freezes_the_vae_estimates_z_and_exports_sir_and_langevin(train_tiny, 
    tmp_path, stage_one):
  results = train_tiny(tmp_path, "ncp_vae", NCP_TINY + [
      "train.num_steps = 30", f"NoiseContrastive.pretrained_workdir = '{stage_one}'"])
  assert results["strategy"] == "noise_contrastive"
  before = checkpoint_variables(stage_one, ["model/"])
  after = checkpoint_variables(tmp_path, ["model/"])
  assert before.keys() == after.keys() and before
  for k in before:
    np.testing.assert_array_equal(before[k], after[k], err_msg=k)
  for key in ("log_normalizer", "log_normalizer_standard_error", "nce_loss", "jensen_shannon",
              "sir_effective_sample_size", "nll"):
    assert np.isfinite(results[key]), key
  assert results["jensen_shannon"] == pytest.approx(math.log(2) - results["nce_loss"] / 2)
  loaded = tf.saved_model.load(str(tmp_path / "export"))
  sir = loaded.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(0))
  langevin = loaded.signatures["sample_langevin"](
      num_samples=tf.constant(3), seed=tf.constant(0), step_size=tf.constant(0.01),
      num_steps=tf.constant(5))
  for out in (sir, langevin):
    assert out["images"].shape == (3, 28, 28, 1) and out["latents"].shape == (3, 4)
    assert np.all(np.isfinite(out["latents"].numpy()))
  with pytest.raises(tf.errors.InvalidArgumentError, match="positive step size"):
    loaded.signatures["sample_langevin"](
        num_samples=tf.constant(3), seed=tf.constant(0), step_size=tf.constant(0.0),
        num_steps=tf.constant(5))


def test_ncp_stage_two_without_a_stage_one_vae_is_refused_and_writes_nothing(train_tiny, tmp_path):
  with pytest.raises(checkpointing.PretrainedModelError, match="holds no checkpoint"):
    train_tiny(tmp_path / "run", "ncp_vae", NCP_TINY + [
        "train.num_steps = 5", f"NoiseContrastive.pretrained_workdir = '{tmp_path / 'none'}'"],
        **NO_EVAL)
  assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")) is None


@pytest.mark.slow
def test_implicit_prior_full_run_fills_the_aggregate_posterior_bank_and_exports(train_tiny, tmp_path):
  results = train_tiny(tmp_path, "implicit_vae", [
      "ImplicitPrior.hidden_sizes = (16,)", "ImplicitPrior.bank_size = 100",
      "Alternating.model_steps = 3", "Alternating.estimator_steps = 6", "train.num_steps = 27"])
  assert results["strategy"] == "alternating"
  assert results["aggregate_posterior_bank"] == 100
  for key in ("implicit_log_normalizer", "nce_loss", "jensen_shannon", "nll", "elbo"):
    assert np.isfinite(results[key]), key
  loaded = tf.saved_model.load(str(tmp_path / "export"))
  out = loaded.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(1))
  assert out["images"].shape == (5, 28, 28, 1)
  assert "sample_langevin" in loaded.signatures


@pytest.mark.slow
def test_hierarchical_ncp_trains_one_classifier_per_group_in_one_pass_and_samples_by_sir(train_tiny, 
    tmp_path_factory):
  stage_one_hvae = tmp_path_factory.mktemp("stage_one_hvae")
  train_tiny(stage_one_hvae, "hvae_standard", ["train.num_steps = 10"], **NO_EVAL)
  before = checkpoint_variables(stage_one_hvae, ["model/"])
  workdir = tmp_path_factory.mktemp("hncp")
  results = train_tiny(workdir, "hierarchical_ncp_hvae", [
      "HierarchicalNCPPrior.hidden_sizes = (16,)", "HierarchicalNCPPrior.num_proposals = 50",
      "HierarchicalNCPPrior.lower_num_proposals = 20", "train.num_steps = 20",
      f"NoiseContrastive.pretrained_workdir = '{stage_one_hvae}'"])
  after = checkpoint_variables(workdir, ["model/"])
  for k in before:
    np.testing.assert_array_equal(before[k], after[k], err_msg=k)
  for group in (1, 2):
    loss = results[f"nce_loss_group_{group}"]
    assert results[f"jensen_shannon_group_{group}"] == pytest.approx(math.log(2) - loss / 2)
  assert results["nce_loss_sum"] == pytest.approx(
      results["nce_loss_group_1"] + results["nce_loss_group_2"], rel=1e-5)
  # A JSD belongs to one classifier: log 2 - (L1 + L2) / 2 is not reported.
  assert "jensen_shannon" not in results and "nce_loss" not in results
  for key in ("nll", "nll_top_group_only", "log_normalizer", "log_normalizer_standard_error",
              "top_group_log_normalizer"):
    assert np.isfinite(results[key]), key
  loaded = tf.saved_model.load(str(workdir / "export"))
  out = loaded.signatures["sample"](num_samples=tf.constant(4), seed=tf.constant(0))
  assert out["images"].shape == (4, 28, 28, 1)


def test_hierarchical_ncp_gradients_reach_both_classifiers_only_and_lower_sir_reweights():
  from tfp_priors.models import HVAE  # pylint: disable=g-import-not-at-top
  from tfp_priors.priors import HierarchicalNCPPrior  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(0)
  model = HVAE(input_size=6, latent_size=2, hidden_size=8)
  prior = HierarchicalNCPPrior(2, model=model, hidden_sizes=(8,), lower_num_proposals=400)
  assert not {v.ref() for v in prior.trainable_variables} & {
      v.ref() for v in model.trainable_variables}
  x = tf.constant(np.random.RandomState(0).binomial(1, 0.5, (16, 6)), tf.float32)
  variables = prior.objective_variables("noise_contrastive")
  with tf.GradientTape() as tape:
    loss, _ = prior.noise_contrastive_loss(model, x, seed=[1, 2])
  grads = tape.gradient(loss, variables + list(model.trainable_variables))
  assert all(g is not None for g in grads[:len(variables)])
  assert all(g is None for g in grads[len(variables):])
  with pytest.raises(ValueError, match="hierarchical model"):
    HierarchicalNCPPrior(2, model=VAE(input_size=6, latent_size=2, hidden_sizes=(8,)))
  # decode's SIR over p(z1|z2): with r_1 favouring z1[0] > 0 it picks z1 there (p alone: half).
  prior.lower_log_ratio = lambda z1, z2: 5.0 * tf.sign(z1[..., 0])

  class _Echo:
    likelihood_mean = staticmethod(lambda z1, z2: z1)

  z1 = prior.decode(_Echo(), tf.zeros([200, 2]), seed=[3, 4])
  assert float(tf.reduce_mean(tf.cast(z1[:, 0] > 0, tf.float32))) > 0.95
