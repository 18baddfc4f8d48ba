"""Xu et al. (2019) B.2 models: DenseVAE, ConvVAE, ResnetVAE (shapes, q(z|x), gradients, layers)."""
import math

import gin
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_priors import objectives
from tfp_priors.models import VAE, ConvVAE, DenseVAE, ResnetVAE
from tfp_priors.priors import build_prior

MODELS = [DenseVAE, ConvVAE, ResnetVAE]
LATENT = 6

# Trainable variables (kernel + bias per layer unless noted), from the architectures of B.2.
# DenseVAE: 3 dense layers each way. ConvVAE: encoder 6 convs + Linear[2d]; decoder Dense[784]
# + 5 deconvs + LinearConv1x1 (kernel only) + per-pixel output bias. ResnetVAE: 2 (de)convs per
# block, plus a 1x1 shortcut where the shape changes (encoder blocks 1, 3, 5, 6; decoder blocks
# 1, 2, 4).
EXPECTED_VARIABLES = {
    DenseVAE: 2 * 3 + 2 * 3,
    ConvVAE: (2 * 6 + 2) + (2 + 2 * 5 + 2),
    ResnetVAE: (4 * 6 + 2 * 4 + 2) + (2 + 4 * 5 + 2 * 3 + 2),
}
# Non-linear layers, whose kernels get Xu B.3's L2 penalty: DenseVAE 2 + 2 hidden dense layers;
# ConvVAE 6 convs + Dense[784] + 5 deconvs; ResnetVAE twice the (de)convs.
EXPECTED_HIDDEN_KERNELS = {DenseVAE: 4, ConvVAE: 6 + 1 + 5, ResnetVAE: 12 + 1 + 10}


def _batch(n=4, seed=0):
  return tf.cast(tf.random.stateless_uniform([n, 784], [seed, 1]) < 0.3, tf.float32)


def _layers(model):
  return [m for m in model.submodules if isinstance(m, tf_keras.layers.Layer)]


def _hidden_kernels(model):
  """Kernels of layers whose own activation is non-linear (the trainer's L2 convention)."""
  return [l.kernel for l in _layers(model) if getattr(l, "kernel", None) is not None
          and getattr(l, "activation", None) not in (None, tf_keras.activations.linear)]


@pytest.fixture(scope="module")
def models():
  train_mean = np.full(784, 0.2, np.float32)
  return {cls: cls(latent_size=LATENT, train_mean=train_mean) for cls in MODELS}


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("k", [1, 3])
def test_output_shapes(models, cls, k):
  model = models[cls]
  f = model.forward(_batch(5), num_samples=k, seed=[0, 1])
  assert f.z_top.shape == (k, 5, LATENT)
  for t in (f.log_posterior_top, f.log_likelihood, f.log_posterior_rest, f.log_prior_rest):
    assert t.shape == (k, 5)
  assert np.all(f.log_likelihood.numpy() < 0)
  assert model.posterior_mean(_batch(5)).shape == (5, LATENT)
  probs = model.decode(tf.zeros([2, LATENT]), seed=[0, 0]).numpy()
  assert probs.shape == (2, 784) and np.all((probs >= 0) & (probs <= 1))


@pytest.mark.parametrize("cls", MODELS)
def test_log_posterior_top_is_the_diagonal_normal_density_of_the_encoder(models, cls):
  model = models[cls]
  x = _batch(3)
  f = model.forward(x, num_samples=2, seed=[4, 5])
  params = model.encoder(x).numpy().astype(np.float64)
  mean, log_std = params[:, :LATENT], params[:, LATENT:]
  z = f.z_top.numpy().astype(np.float64)
  expected = np.sum(-0.5 * ((z - mean) / np.exp(log_std)) ** 2 - log_std
                    - 0.5 * math.log(2 * math.pi), axis=-1)
  np.testing.assert_allclose(f.log_posterior_top.numpy(), expected, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(model.posterior_mean(x).numpy(), mean, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_every_trainable_variable_gets_a_finite_nonzero_gradient(models, cls):
  model = models[cls]
  prior = build_prior(LATENT, name="normal")
  variables = model.trainable_variables + prior.trainable_variables
  assert len(model.trainable_variables) == EXPECTED_VARIABLES[cls]
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, _batch(8), training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  for v, g in zip(variables, tape.gradient(loss, variables)):
    assert g is not None, v.name
    assert np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0), v.name


@pytest.mark.parametrize("cls", MODELS)
def test_nonlinear_layers_carry_their_activation_for_weight_decay(models, cls):
  layers = _layers(models[cls])
  assert not any(isinstance(l, (tf_keras.layers.Activation, tf_keras.layers.LeakyReLU))
                 for l in layers)
  assert len(_hidden_kernels(models[cls])) == EXPECTED_HIDDEN_KERNELS[cls]
  for l in layers:
    if getattr(l, "activation", None) not in (None, tf_keras.activations.linear):
      assert l.activation is tf_keras.activations.get("leaky_relu"), l.name


def test_resnet_blocks_differ_from_conv_blocks(models):
  conv, resnet = models[ConvVAE], models[ResnetVAE]
  for model, residual in ((conv, False), (resnet, True)):
    blocks = model.encoder.blocks + model.decoder.blocks
    assert all((b.conv2 is not None) == residual for b in blocks)
  shortcuts = [b.shortcut for b in resnet.encoder.blocks + resnet.decoder.blocks]
  assert [s is not None for s in shortcuts] == [True, False, True, False, True, True,
                                                True, True, False, True, False]
  for s in filter(None, shortcuts):
    assert s.kernel.shape[:2] == (1, 1) and s.activation is tf_keras.activations.linear
  # A shape-preserving residual block is x + conv2(conv1(x)).
  block = resnet.encoder.blocks[1]
  h = tf.random.stateless_normal([2, 28, 28, 32], [0, 3])
  np.testing.assert_allclose(block(h).numpy(), (h + block.conv2(block.conv1(h))).numpy(),
                             rtol=1e-5, atol=1e-5)
  conv_sizes = [v.shape for v in conv.encoder.trainable_variables]
  assert conv_sizes != [v.shape for v in resnet.encoder.trainable_variables]


def test_chunked_decoding_equals_one_pass(models):
  model = models[ConvVAE]
  chunked = ConvVAE(latent_size=LATENT, decode_batch_size=5)
  for v, w in zip(chunked.trainable_variables, model.trainable_variables):
    v.assign(w)
  x = _batch(4)
  want = model.forward(x, num_samples=3, seed=[7, 8])  # 12 <= 1000 images: one pass
  got = chunked.forward(x, num_samples=3, seed=[7, 8])  # chunks of 5, 5, 2
  np.testing.assert_allclose(got.log_likelihood.numpy(), want.log_likelihood.numpy(),
                             rtol=1e-5, atol=1e-3)
  # Unknown batch size in a tf.function takes the chunked path too.
  fn = tf.function(lambda x: chunked.forward(x, 3, seed=[7, 8]).log_likelihood,
                   input_signature=[tf.TensorSpec([None, 784])])
  np.testing.assert_allclose(fn(x).numpy(), want.log_likelihood.numpy(), rtol=1e-5, atol=1e-3)


def test_dense_vae_is_the_vae_with_xu_sizes():
  model = DenseVAE(train_mean=None)
  assert isinstance(model, VAE) and model.latent_size == 40
  sizes = sorted(tuple(v.shape) for v in model.encoder.trainable_variables)
  assert sizes == sorted([(784, 500), (500,), (500, 500), (500,), (500, 80), (80,)])
  assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 1346864


def test_parameter_counts_of_the_paper_sizes():
  counts = {cls: sum(int(np.prod(v.shape)) for v in cls().trainable_variables)
            for cls in (ConvVAE, ResnetVAE)}
  assert counts == {ConvVAE: 317760, ResnetVAE: 593344}


@pytest.mark.parametrize("cls", MODELS)
def test_bad_input_shape_raises(models, cls):
  with pytest.raises(ValueError, match=r"\[batch, 784\]"):
    models[cls].forward(tf.zeros([4, 28, 28]))
  with pytest.raises(ValueError, match=r"\[batch, 784\]"):
    models[cls].forward(tf.zeros([4, 783]))


def test_gin_bindings_of_the_base_classes_do_not_reach_the_subclasses():
  gin.parse_config(["VAE.latent_size = 3", "ConvVAE.latent_size = 5", "ConvVAE.block = 'conv'",
                    "ResnetVAE.latent_size = 7"])
  assert DenseVAE().latent_size == 40
  resnet = ResnetVAE()
  assert resnet.latent_size == 7 and resnet.block == "resnet"


def test_unknown_block_raises():
  with pytest.raises(ValueError, match="block"):
    ConvVAE(block="dense")
