"""Masked autoregressive flow (MAF) prior of the LARS paper.

Source: Bauer & Mnih (2019), appendix C.2 ("Masked Autoregressive Flows"): TFP's reference
implementation, a stack of 5 MAFs with MADE networks MLP[100 - 100], random permutations
between the blocks (Papamakarios et al. 2017). ReLU hidden units, as TFP's reference template.
"""
import gin
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_priors import seeds
from tfp_priors.priors import interface
from tfp_priors.priors import flow

tfb = tfp.bijectors


@gin.configurable
@interface.register("maf")
class MAFPrior(flow.FlowPrior):
  """Masked autoregressive flow prior of the LARS paper (appendix C.2), registered as 'maf'.

  A `FlowPrior`: w ~ N(0, I_d), z = (M_K o P_{K-1} o ... o P_1 o M_1)(w), with M_k
  `tfb.MaskedAutoregressiveFlow` blocks (MADE networks, `made_networks`) and random
  permutations P_k in between (Papamakarios et al. 2017). LARS's defaults: K = 5 blocks,
  MADE MLP[100 - 100] with ReLU units, as TFP's reference template. log_prob: z [..., d] ->
  [...] nats; sample(n) -> [n, d]. log_prob(z) uses the inverse direction, one MADE pass per
  block (the fast direction, for posterior samples during training); `sample` uses the
  forward direction, d sequential MADE passes per block (a `tf.while_loop`; slow for large d).

  State (checkpointed): the MADE networks and the permutations (non-trainable int32
  variables). The MADE masks are enforced by the `kernel_constraint` of its tf_keras Dense
  layers, which tf_keras optimizers apply after each update. An update that ignores
  `variable.constraint` (a Keras 3 optimizer, a hand-written assign) breaks the
  autoregressive property and with it the normalisation of p(z).

  Raises:
    ValueError: num_blocks < 1 or empty hidden_sizes.

  #### Mathematical details

  Each block is autoregressive (Papamakarios et al. 2017):

  ```none
  M_k.forward: z_i = w_i exp(log_scale_i) + shift_i,  (shift_i, log_scale_i) = MADE(z_{<i}),
  log |det dz/dw| = sum_i log_scale_i,
  ```

  and p(z) follows by the change of variables of `FlowPrior`.

  #### Examples

  ```python
  from tfp_priors.priors import MAFPrior

  prior = MAFPrior(latent_size=3, num_blocks=2, hidden_sizes=(8,), seed=1)
  z = tf.random.stateless_normal([4, 3], seed=[2, 3])
  standard_normal = tfd.MultivariateNormalDiag(loc=tf.zeros(3))
  gap = prior.distribution().log_prob(z) - standard_normal.log_prob(z)
  assert np.max(np.abs(gap)) < 0.5
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428

  [2]: George Papamakarios, Theo Pavlakou, Iain Murray. Masked Autoregressive Flow for Density
       Estimation. In _Advances in Neural Information Processing Systems (NeurIPS)_, 2017.
       https://arxiv.org/abs/1705.07057

  [3]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder
       for Distribution Estimation. In _International Conference on Machine Learning (ICML)_,
       2015. https://arxiv.org/abs/1502.03509
  """

  def __init__(self, latent_size, num_blocks=5, hidden_sizes=(100, 100), activation="relu",
               output_scale=1e-2, seed=0, name="maf_prior"):
    """Args:
      latent_size: d >= 1.
      num_blocks: K >= 1 MAF blocks (LARS: 5).
      hidden_sizes: hidden units of each MADE (LARS: (100, 100)).
      activation: hidden nonlinearity.
      output_scale: factor on the Glorot-initialised MADE output kernel (near-identity start).
      seed: integer seed of the permutations and weight initialisation.
      name: module name.

    Raises:
      ValueError: num_blocks < 1 or empty hidden_sizes.
    """
    super().__init__(latent_size, name=name)
    if int(num_blocks) < 1:
      raise ValueError(f"num_blocks must be >= 1, got {num_blocks}.")
    if not hidden_sizes:
      raise ValueError("MADE needs at least one hidden layer (hidden_sizes is empty).")
    d = self.latent_size
    rng = np.random.default_rng(seeds.derive_seed(seed, 0))
    self.made_networks, self.blocks, self.permutations = [], [], []
    steps = []  # in the w -> z order
    for k in range(int(num_blocks)):
      if k > 0:
        self.permutations.append(flow.permute(rng.permutation(d), name=f"permute_{k}"))
        steps.append(self.permutations[-1])
      made = tfb.AutoregressiveNetwork(
          params=2, event_shape=[d], hidden_units=list(hidden_sizes), activation=activation,
          kernel_initializer=flow.glorot_uniform_sequence(seeds.derive_seed(seed, 1, k)),
          name=f"made_{k}")
      made(tf.zeros([1, d]))  # Builds the network: its variables exist from here on.
      output_layer = [layer for layer in made._network.layers  # pylint: disable=protected-access
                      if isinstance(layer, tf_keras.layers.Dense)][-1]
      output_layer.kernel.assign(output_layer.kernel * output_scale)  # keeps masked zeros
      self.made_networks.append(made)
      self.blocks.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=made,
                                                      name=f"maf_{k}"))
      steps.append(self.blocks[-1])
    self.bijector = tfb.Chain(list(reversed(steps)), name="maf_flow")

  def flow_to_base(self, z):
    """z -> w through M_K^{-1}, P_{K-1}^{-1}, ..., M_1^{-1}, one MADE pass per block.

    Args:
      z: [N, d] latents.

    Returns:
      (w [N, d], log |det dw/dz| [N] nats).
    """
    def block_inverse(k, h):
      shift, log_scale = tf.unstack(self.made_networks[k](h), num=2, axis=-1)
      return flow.affine_inverse(h, shift, log_scale)
    return flow.inverse_through_blocks(z, len(self.blocks), block_inverse, self.permutations)
