"""ConvHVAE of LARS appendix C.2: shapes, feature maps, gradients, bounds, a tiny trainer run."""
import gin
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_priors import objectives
from tfp_priors.models import HVAE, ConvHVAE
from tfp_priors.nets import regularization
from tfp_priors.priors import LarsPrior

LATENT = 4
HIDDEN = 32


def _batch(n=4, seed=0):
  return tf.cast(tf.random.stateless_uniform([n, 784], [seed, 1]) < 0.3, tf.float32)


@pytest.fixture(scope="module")
def model():
  return ConvHVAE(latent_size=LATENT, hidden_size=HIDDEN, train_mean=np.full(784, 0.2))


@pytest.mark.parametrize("k", [1, 3])
def test_forward_shapes(model, k):
  f = model.forward(_batch(5), num_samples=k, seed=[0, 1])
  assert f.z_top.shape == (k, 5, LATENT)
  for t in (f.log_posterior_top, f.log_likelihood, f.log_posterior_rest, f.log_prior_rest):
    assert t.shape == (k, 5)
    assert np.all(np.isfinite(t.numpy()))
  assert np.all(f.log_likelihood.numpy() < 0)
  assert model.posterior_mean(_batch(5)).shape == (5, LATENT)


def test_decode_gives_pixel_probabilities(model):
  probs = model.decode(tf.random.stateless_normal([3, LATENT], [2, 3]), seed=[0, 0]).numpy()
  assert probs.shape == (3, 784)
  assert np.all((probs > 0) & (probs < 1))
  # The untied output bias starts at the logit of the mean training image (0.2 here).
  np.testing.assert_allclose(model.p_x.pixel_bias.numpy(), np.log(0.2 / 0.8), rtol=1e-5)


def _run(blocks, h):
  shapes = []
  for block in blocks:
    h = block(h)
    shapes.append(tuple(h.shape[1:]))
  return h, shapes


def test_feature_maps_are_those_of_the_paper(model):
  images = tf.reshape(_batch(2), [2, 28, 28, 1])
  for cnn in (model.q_z2.features, model.q_z1.branch_a):  # the two encoder CNNs
    _, shapes = _run(cnn.blocks, images)
    assert shapes == [(14, 14, 32), (7, 7, 32), (4, 4, 32)]
  assert model.q_z2(_batch(2)).shape == (2, 2 * LATENT)  # MLP[CNN[...] - d]: mean, log std
  decoder = model.p_x
  z = tf.zeros([2, LATENT])
  h = tf.reshape(decoder.merge(z, z), [2, 4, 4, 32])  # MLP[[MLP[d - h], MLP[d - h]] - 4x4x32]
  h, shapes = _run(decoder.blocks, h)
  shapes.append(tuple(decoder.output_conv(h).shape[1:]))
  assert shapes == [(7, 7, 32), (14, 14, 32), (28, 28, 1)]
  convs = ([b.conv1 for b in model.q_z2.features.blocks + model.q_z1.branch_a.blocks
            + decoder.blocks] + [decoder.output_conv])
  for layer in convs:
    assert layer.kernel_size == (4, 4) and layer.strides == (2, 2)
  for layer in convs[:-1]:
    assert layer.activation is tf_keras.activations.relu
  assert decoder.output_conv.activation is tf_keras.activations.linear  # logits


def test_decoder_4_to_7_is_the_exact_transpose_of_the_encoder_7_to_4(model):
  """The 4 -> 7 transposed convolution is the adjoint of the encoder's 'same' 7 -> 4
  convolution, <conv(x; W), y> = <conv_transpose(y; W), x>: no cropping or shift."""
  encoder_layer, decoder_layer = model.q_z2.features.blocks[2].conv1, model.p_x.blocks[0].conv1
  x = tf.random.stateless_normal([2, 7, 7, 32], [1, 5])
  y = tf.random.stateless_normal([2, 4, 4, 32], [2, 5])
  # Each layer computes relu(op(input; its kernel) + bias) with the ops below.
  np.testing.assert_allclose(
      encoder_layer(x).numpy(),
      tf.nn.relu(tf.nn.conv2d(x, encoder_layer.kernel, 2, "SAME") + encoder_layer.bias),
      rtol=1e-4, atol=1e-5)
  w = decoder_layer.kernel
  adjoint = tf.nn.conv2d_transpose(y, w, [2, 7, 7, 32], 2, "SAME")
  np.testing.assert_allclose(decoder_layer(y).numpy(),
                             tf.nn.relu(adjoint + decoder_layer.bias), rtol=1e-4, atol=1e-5)
  forward = tf.nn.conv2d(x, w, 2, "SAME")
  assert forward.shape[1:3] == (4, 4)
  np.testing.assert_allclose(float(tf.reduce_sum(forward * y)),
                             float(tf.reduce_sum(adjoint * x)), rtol=1e-4)


def test_elbo_gradient_reaches_every_variable_of_model_and_lars_prior(model):
  prior = LarsPrior(LATENT, hidden_sizes=(16,), num_proposal_samples=64)
  variables = model.trainable_variables + prior.trainable_variables
  # Kernel + bias per layer unless noted. q(z2|x): 3 convs + linear head = 8; q(z1|x, z2):
  # 3 convs, MLP[d - 512], Dense[300], linear head = 12; p(z1|z2): 3 dense = 6; p(x|z1, z2):
  # 2 branches + Dense[512], 2 deconvs, output deconv (kernel only), pixel bias = 12.
  assert len(model.trainable_variables) == 8 + 12 + 6 + 12
  assert len(prior.trainable_variables) == 4  # a(z) = MLP[d - 16 - 1]
  with tf.GradientTape() as tape:
    terms, _ = objectives.elbo(model, prior, _batch(8), training=True, seed=[1, 2])
    loss = -tf.reduce_mean(terms.elbo)
  grads = tape.gradient(loss, variables)
  for v, g in zip(variables, grads):
    assert g is not None, v.name
    g = tf.convert_to_tensor(g).numpy()
    assert np.all(np.isfinite(g)), v.name
    assert np.any(g != 0), v.name


def test_weight_decay_selects_the_nonlinear_kernels(model):
  kernels = regularization.hidden_kernels(model)
  # ReLU convs: 3 + 3 encoder, 2 decoder; tanh dense: q(z1) MLP[d - 512] and Dense[300],
  # p(z1|z2) 2 hidden, p(x) 2 branches and Dense[512]. Linear heads and the output deconv
  # are left out.
  assert len(kernels) == 6 + 2 + 2 + 2 + 3
  ids = {id(k) for k in kernels}
  assert id(model.p_x.output_conv.kernel) not in ids
  assert id(model.q_z2.head.net.layers[-1].kernel) not in ids


def test_iwae_bound_is_above_the_elbo_on_average(model):
  x = _batch(16, seed=3)
  prior = LarsPrior(LATENT, hidden_sizes=(16,), num_proposal_samples=64)
  distribution = prior.distribution()

  # Compiled with an unknown batch size, as the evaluation runs it.
  @tf.function(input_signature=[tf.TensorSpec([None, 784]), tf.TensorSpec([2], tf.int32)])
  def iwae(x, seed):
    return objectives.iwae_bound(model, distribution, x, 10, seed=seed)

  bound = float(tf.reduce_mean(iwae(x, tf.constant([4, 5]))))
  elbo = np.mean([float(tf.reduce_mean(objectives.elbo(model, prior, x, seed=[s, 6])[0].elbo))
                  for s in range(3)])
  assert np.isfinite(bound) and bound >= elbo


def test_bad_input_shape_raises(model):
  with pytest.raises(ValueError, match=r"\[batch, 784\]"):
    model.forward(tf.zeros([4, 28, 28]))
  with pytest.raises(ValueError, match=r"\[batch, 784\]"):
    model.forward(tf.zeros([4, 783]))
  with pytest.raises(ValueError, match="784"):
    ConvHVAE(input_size=100, latent_size=LATENT, hidden_size=HIDDEN)


def test_gin_bindings_of_hvae_do_not_reach_conv_hvae():
  gin.parse_config(["HVAE.latent_size = 3", "HVAE.hidden_size = 8"])
  m = ConvHVAE()
  assert isinstance(m, HVAE) and m.latent_size == 50 and m.p_z1.output_size == 100
  assert m.p_z1.net.layers[0].units == 300


@pytest.mark.slow
def test_tiny_lars_training_run_exports_28x28_samples(train_tiny, tmp_path):
  # The test-set evaluation is left out for speed (the IWAE bound is compiled above).
  results = train_tiny(tmp_path, "lars_convhvae", [
      f"ConvHVAE.latent_size = {LATENT}", f"ConvHVAE.hidden_size = {HIDDEN}",
      "train.num_steps = 4"], evaluate=False)
  assert results["model"] == "ConvHVAE" and results["prior"] == "lars"
  assert results["num_steps"] == 4
  loaded = tf.saved_model.load(str(tmp_path / "export"))
  out = loaded.sample(tf.constant(5), tf.constant(1))
  images = out["images"].numpy()
  assert images.shape == (5, 28, 28, 1)
  assert np.all((images >= 0) & (images <= 1))
  assert out["latents"].shape == (5, LATENT)


def test_initial_signal_reaches_through_the_convolutions():
  """He initialisation keeps the ReLU convolutions' signal: at initialisation the decoder's
  logits vary with z, and the encoder's means with x, on the scale of the MLP HVAE's (with
  Glorot's the logits' spread across z was ~0.02 and short runs collapsed to the mean image)."""
  tf.random.set_seed(0)
  conv_model, mlp_model = ConvHVAE(), HVAE()
  z1, z2 = tf.random.normal([64, 50]), tf.random.normal([64, 50])
  x = _batch(64)
  for m in (conv_model, mlp_model):
    logit_spread = float(tf.reduce_mean(tf.math.reduce_std(m.p_x(z1, z2), axis=0)))
    mean_spread = float(tf.reduce_mean(tf.math.reduce_std(m.posterior_mean(x), axis=0)))
    assert logit_spread > 0.1 and mean_spread > 0.05, (type(m).__name__, logit_spread,
                                                       mean_spread)
