"""The PyTorch models of benchmarks/peer_pytorch.py are ours: same parameter counts, and with our
weights copied in, the same encoder, decoder, VampPrior density and IWAE NLL.

Needs the optional `bench` extra (torch, pythae), which CI never installs: skipped without it.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

torch = pytest.importorskip("torch")

from benchmarks import peer_pytorch  # noqa: E402
from tfp_priors import objectives  # noqa: E402
from tfp_priors.models import VAE  # noqa: E402
from tfp_priors.priors import VampPrior  # noqa: E402
from tfp_priors.priors import build_prior  # noqa: E402


def _binary(shape, seed):
  return (np.random.default_rng(seed).uniform(size=shape) < 0.3).astype(np.float32)


def _ours():
  model = VAE(input_size=784, latent_size=50, hidden_sizes=(300, 300),
              train_mean=np.full([784], 0.2, np.float32))
  return model, peer_pytorch.torch_lib()


def test_vae_has_our_size_and_computes_our_networks():
  model, t = _ours()
  net = t.TorchVAE().load(peer_pytorch._vae_arrays(model))  # pylint: disable=protected-access
  assert (sum(p.numel() for p in net.parameters())
          == peer_pytorch.num_parameters(model.trainable_variables) == 697484)
  x = _binary([5, 784], 0)
  mu, log_std = net.encode(torch.from_numpy(x))
  ours = model.encode_top(x)
  np.testing.assert_allclose(mu.detach().numpy(), ours.mean(), atol=1e-5)
  np.testing.assert_allclose(log_std.exp().detach().numpy(), ours.stddev(), rtol=1e-5)
  z = np.random.default_rng(1).standard_normal([5, 50]).astype(np.float32)
  np.testing.assert_allclose(torch.sigmoid(net.decoder(torch.from_numpy(z))).detach().numpy(),
                             model.decode(z), atol=1e-5)


def test_vamp_prior_density_is_ours():
  model, t = _ours()
  prior = VampPrior(50, model=model, num_pseudo_inputs=500, seed=3)
  arrays = peer_pytorch._vae_arrays(model)  # pylint: disable=protected-access
  arrays["pseudo_input_weights"] = prior.pseudo_input_weights.numpy()
  net = t.TorchVampVAE(num_pseudo_inputs=500).load(arrays)
  assert sum(p.numel() for p in net.parameters()) == peer_pytorch.num_parameters(
      model.trainable_variables + prior.trainable_variables) == 1089484
  z = np.random.default_rng(2).standard_normal([7, 50]).astype(np.float32)
  np.testing.assert_allclose(net.log_prior(torch.from_numpy(z)).detach().numpy(),
                             prior.distribution().log_prob(z), rtol=1e-4, atol=1e-3)


def test_iwae_nll_agrees_with_ours():
  model, t = _ours()
  net = t.TorchVAE().load(peer_pytorch._vae_arrays(model))  # pylint: disable=protected-access
  x = _binary([4, 784], 4)
  k = 2000
  ours = -float(tf.reduce_mean(objectives.iwae_bound(
      model, build_prior(50, name="normal").distribution(), tf.constant(x), k, seed=[0, 1])))
  torch.manual_seed(0)
  peer = t.iwae_nll(net, torch.from_numpy(x), k)
  # Monte Carlo noise of either estimate at random weights is about 1 nat; a formula slip
  # (a missing log K = 7.6 nats, or a Gaussian normaliser) is more than 3.
  assert math.isfinite(peer) and abs(peer - ours) < 3.0, (peer, ours)
