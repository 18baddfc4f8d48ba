"""The prior registry's former names (aliases), the seed helpers of `tfp_priors.seeds`, and the
light constructors: LarsPrior's <Z>_0 deferred to first use (`deferred_state`), VampPrior
without an encoder pass."""
import math

import gin
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_priors import seeds
from tfp_priors.models import VAE
from tfp_priors.models import LatentVariableModel
from tfp_priors.priors import (LarsPrior, NCPPrior, RealNVPPrior, VampPrior, XuRealNVPPrior,
                               build_prior, canonical_name, deferred_state, interface)
from tfp_priors.training import checkpointing


# ---- registry names --------------------------------------------------------------------

def test_former_name_rnvp_builds_xu_realnvp_and_realnvp_stays_lars_c2():
  assert XuRealNVPPrior.registry_name == "xu_realnvp"
  assert canonical_name("rnvp") == "xu_realnvp"
  assert canonical_name("xu_realnvp") == "xu_realnvp"
  assert canonical_name("realnvp") == "realnvp"
  assert canonical_name("no_such_prior") == "no_such_prior"
  old, new = build_prior(2, name="rnvp"), build_prior(2, name="xu_realnvp")
  assert type(old) is XuRealNVPPrior and old.registry_name == "xu_realnvp"
  for u, v in zip(old.variables, new.variables):  # the same prior, the same default seed
    np.testing.assert_array_equal(u.numpy(), v.numpy())
  assert type(build_prior(2, name="realnvp")) is RealNVPPrior


def test_an_old_config_with_rnvp_builds():
  gin.parse_config("""
      build_prior.name = 'rnvp'
      XuRealNVPPrior.flow_depth = 2
  """)
  prior = build_prior(2)
  assert isinstance(prior, XuRealNVPPrior) and prior.flow_depth == 2
  assert prior.registry_name == "xu_realnvp"
  gin.clear_config()
  gin.parse_config("""
      LarsPrior.proposal = 'rnvp'
      XuRealNVPPrior.flow_depth = 2
  """)
  assert isinstance(LarsPrior(2, hidden_sizes=(4,)).proposal, XuRealNVPPrior)
  assert isinstance(NCPPrior(2, base_prior="rnvp", hidden_sizes=(4,)).base, XuRealNVPPrior)


def test_an_old_run_directory_names_its_prior_rnvp_which_matches_the_renamed_class(tmp_path):
  (tmp_path / "config.gin").write_text("build_prior.name = 'rnvp'\n")
  trained_with = checkpointing.pretrained_prior_name(tmp_path)
  assert trained_with in ("rnvp", "xu_realnvp")  # as written, or already canonical
  assert canonical_name(trained_with) == XuRealNVPPrior.registry_name


def test_register_rejects_a_taken_name_or_alias_and_leaves_the_registry_alone():
  for name, aliases in (("rnvp", ()), ("lars", ()), ("a_new_name", ("rnvp",))):
    with pytest.raises(ValueError, match="already registered"):
      interface.register(name, aliases=aliases)(type("P", (interface.Prior,), {}))
  assert canonical_name("rnvp") == "xu_realnvp"
  assert type(build_prior(2, name="rnvp")) is XuRealNVPPrior
  with pytest.raises(ValueError, match="registered priors"):
    build_prior(2, name="a_new_name")


# ---- seeds -----------------------------------------------------------------------------

def test_stateless_seed_maps_an_int_to_a_fixed_pair():
  np.testing.assert_array_equal(seeds.stateless_seed(2**31 + 5).numpy(), [1, 5])
  np.testing.assert_array_equal(seeds.stateless_seed(7).numpy(), seeds.stateless_seed(7).numpy())
  np.testing.assert_array_equal(seeds.stateless_seed([3, 4]).numpy(), [3, 4])
  a = tf.random.stateless_normal([4], seeds.stateless_seed(11))
  np.testing.assert_array_equal(a, tf.random.stateless_normal([4], seeds.stateless_seed(11)))
  assert not np.allclose(a, tf.random.stateless_normal([4], seeds.stateless_seed(12)))


def test_split_seed_is_deterministic_and_its_streams_differ():
  first, second = seeds.split_seed([1, 2], 3), seeds.split_seed(tf.constant([1, 2]), 3)
  # The values of tfp.random.split_seed, as before the helpers moved to one module.
  expected = [[1105988140, 1738052849], [-335576002, 370444179], [10670227, -246211131]]
  np.testing.assert_array_equal([s.numpy() for s in first], expected)
  np.testing.assert_array_equal([s.numpy() for s in second], expected)
  draws = [tf.random.stateless_normal([64], s).numpy() for s in first]
  for i in range(3):
    for j in range(i):
      assert not np.allclose(draws[i], draws[j])
  assert len(seeds.split_seed([1, 2])) == 2
  assert seeds.split_seed(None) == (None, None)
  assert seeds.split_seed(None, 3) == (None, None, None)


def test_derive_seed_is_deterministic_and_keys_give_distinct_seeds():
  # The values the flow priors' initial weights were drawn with before the move.
  assert seeds.derive_seed(0, 1, 2) == 3884055042
  assert seeds.derive_seed(7, 0) == 2083679832
  assert seeds.derive_seed(3, 0, 5) == 323678886
  assert seeds.derive_seed(np.int64(3), 0, 5) == seeds.derive_seed(3, 0, 5)
  # The keys the flow priors use are distinct streams: Xu's (0, k) rotations and (1, k)
  # couplings; RealNVP's / MAF's (0,) permutations and (1, k) networks.
  for s in (0, 1):
    xu = {seeds.derive_seed(s, i, k) for i in (0, 1) for k in range(5)}
    lars_c2 = {seeds.derive_seed(s, 0)} | {seeds.derive_seed(s, 1, k) for k in range(5)}
    assert len(xu) == 10 and len(lars_c2) == 6
  assert seeds.derive_seed(0, 1, 2) != seeds.derive_seed(1, 1, 2)
  # SeedSequence's property: a trailing zero key adds nothing.
  assert seeds.derive_seed(4, 1, 0) == seeds.derive_seed(4, 1)


# ---- light constructors ----------------------------------------------------------------

def _initial_z(prior):
  """<Z>_0 of the prior's current weights, as the float32 EMA variable stores it."""
  return float(np.float32(prior._initial_normalizer()))  # pylint: disable=protected-access


def test_lars_constructor_estimates_z0_and_a_deferred_one_on_first_use_the_same():
  tf_keras.utils.set_random_seed(5)
  eager = LarsPrior(3, hidden_sizes=(8,))
  assert float(eager.moving_average) == _initial_z(eager)  # complete at once
  tf_keras.utils.set_random_seed(5)
  with deferred_state():
    deferred = LarsPrior(3, hidden_sizes=(8,))
  for u, v in zip(eager.acceptance_net.variables, deferred.acceptance_net.variables):
    np.testing.assert_array_equal(u.numpy(), v.numpy())
  assert math.isnan(float(deferred.moving_average))  # nothing estimated yet
  log_p = deferred.distribution().log_prob(tf.zeros([2, 3]))
  assert float(deferred.moving_average) == float(eager.moving_average)
  np.testing.assert_array_equal(log_p.numpy(),
                                eager.distribution().log_prob(tf.zeros([2, 3])).numpy())
  assert deferred.initialize_state() is deferred and eager.initialize_state() is eager
  assert float(deferred.moving_average) == float(eager.moving_average)


def test_build_prior_defers_the_state_of_the_prior_and_of_priors_it_builds_by_name():
  gin.parse_config("LarsPrior.hidden_sizes = (4,)\nNCPPrior.base_prior = 'lars'")
  prior = build_prior(3, name="lars", defer_state=True)
  assert math.isnan(float(prior.moving_average))
  assert interface.state_deferred_depth() == 0  # the context closed
  prior.distribution()
  assert float(prior.moving_average) == _initial_z(prior)
  ncp = build_prior(3, name="ncp", defer_state=True)  # its LARS base prior built by name
  assert math.isnan(float(ncp.base.moving_average))
  ncp.base.distribution()
  assert float(ncp.base.moving_average) == _initial_z(ncp.base)
  assert not math.isnan(float(build_prior(3, name="lars").moving_average))


def test_a_deferred_lars_first_used_inside_a_tf_function_and_in_training_log_prob():
  with deferred_state():
    prior = LarsPrior(3, hidden_sizes=(8,), num_proposal_samples=16, ema_epsilon=1e-6)
  expected = _initial_z(prior)
  step = tf.function(lambda z: prior.training_log_prob(z, tf.zeros([4]), seed=[1, 2]))
  log_p, stats = step(tf.zeros([4, 3]))
  assert np.all(np.isfinite(log_p.numpy()))
  # A tiny epsilon: the EMA moved from <Z>_0 by at most eps |Z_batch - <Z>_0|.
  assert float(stats["normalizer"]) == pytest.approx(expected, abs=1e-5)


def test_a_deferred_lars_keeps_a_restored_ema_and_initialize_sets_it(tmp_path):
  tf_keras.utils.set_random_seed(0)
  trained = LarsPrior(3, hidden_sizes=(8,))
  trained.moving_average.assign(0.3)
  path = tf.train.Checkpoint(prior=trained).save(str(tmp_path / "ckpt"))
  with deferred_state():
    fresh = LarsPrior(3, hidden_sizes=(8,))
  tf.train.Checkpoint(prior=fresh).restore(path).assert_consumed()
  fresh.distribution()
  assert float(fresh.moving_average) == pytest.approx(0.3)  # not re-estimated
  # initialize(z) sets <Z> from the initialised proposal; no estimate happens before.
  with deferred_state():
    prior = LarsPrior(3, proposal=XuRealNVPPrior(3, flow_depth=2), hidden_sizes=(8,))
  prior.initialize(tf.random.stateless_normal([256, 3], seed=[2, 3]) * 3.0 + 5.0)
  assert float(prior.moving_average) == _initial_z(prior)
  assert not prior._state_pending  # pylint: disable=protected-access


class _CountingEncoder(LatentVariableModel):
  """A model whose encode_top counts its calls; `latent_size` as declared (or not declared:
  the base class's None)."""

  def __init__(self, model, declared_latent_size="same"):
    super().__init__()
    self.model, self.calls, self.input_size = model, 0, model.input_size
    if declared_latent_size == "same":
      self.latent_size = model.latent_size
    elif declared_latent_size is not None:
      self.latent_size = declared_latent_size

  def encode_top(self, x):
    self.calls += 1
    return self.model.encode_top(x)


def test_vamp_constructor_runs_no_encoder_pass_for_a_model_that_declares_its_latent_size():
  tf_keras.utils.set_random_seed(0)
  model = _CountingEncoder(VAE(input_size=6, latent_size=2, hidden_sizes=(8,)))
  prior = VampPrior(2, model, num_pseudo_inputs=5)
  assert model.calls == 0
  assert prior.distribution().event_shape == [2] and model.calls == 1
  with pytest.raises(ValueError, match="latents of size 2.*latent_size = 3"):
    VampPrior(3, model)
  assert model.calls == 1
  # A model that declares no latent_size: one pseudo-input is encoded to check it.
  undeclared = _CountingEncoder(model.model, declared_latent_size=None)
  VampPrior(2, undeclared, num_pseudo_inputs=5)
  assert undeclared.calls == 1
  with pytest.raises(ValueError, match="latents of size 2.*latent_size = 3"):
    VampPrior(3, undeclared)
  # A declared size the encoder does not give: distribution() says so.
  wrong = _CountingEncoder(model.model, declared_latent_size=3)
  with pytest.raises(ValueError, match="latents of size 2.*latent_size = 3"):
    VampPrior(3, wrong, num_pseudo_inputs=5).distribution()
