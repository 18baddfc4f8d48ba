"""DenseVAE of Xu et al. (2019), appendix B.2: the one-latent-layer `VAE` with their sizes.

q(z|x) = N(mu, sigma) from x -> Dense[500 -> 500] -> Linear mean / Linear log std (one
Linear[2d] layer, split), p(x|z) = Bernoulli(z -> Dense[500 -> 500] -> Linear[784] logits),
leaky relu, d = 40 on MNIST. Test NLL on dynamic MNIST (Xu Table 1): 84.48 standard prior,
80.43 RNVP prior (K = 20).
"""
import gin

from tfp_priors.models.vae import VAE


@gin.configurable
class DenseVAE(VAE):
  """`VAE` with Xu B.2's defaults; forward / posterior_mean / decode are VAE's."""

  def __init__(self, input_size=784, latent_size=40, hidden_sizes=(500, 500),
               activation="leaky_relu", train_mean=None, name="dense_vae"):
    # Every argument is passed on explicitly, so gin bindings of VAE do not reach DenseVAE.
    super().__init__(input_size=input_size, latent_size=latent_size,
                     hidden_sizes=hidden_sizes, activation=activation, train_mean=train_mean,
                     name=name)
