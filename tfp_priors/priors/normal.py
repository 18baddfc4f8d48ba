"""The standard Normal prior N(0, I), the baseline of every paper."""
import gin
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.priors import interface

tfd = tfp.distributions


@gin.configurable
@interface.register("normal")
class StandardNormalPrior(interface.Prior):
  """The standard Normal prior p(z) = N(0, I_d), registered as 'normal'.

  The baseline of every paper, and the default proposal of `LarsPrior` and base prior of
  `NCPPrior`. No variables. Symmetric about the origin (`symmetric = True`: LARS's
  evaluation estimate of Z over it uses antithetic samples, Bauer & Mnih appendix A.4).
  `distribution()` is a `tfd.MultivariateNormalDiag` with event shape [latent_size];
  log_prob: z [..., d] -> [...] nats.

  #### Mathematical details

  ```none
  log p(z) = -0.5 (d log(2 pi) + ||z||^2),
  ```

  the prior of the original VAE (Kingma & Welling, 2014; Bauer & Mnih, Eq. 1 with
  p(z) = N(0, I)).

  #### Examples

  ```python
  from tfp_priors.priors import build_prior

  prior = build_prior(2, name="normal")
  log_p = prior.distribution().log_prob(tf.zeros([3, 2]))
  np.testing.assert_allclose(log_p, np.full(3, -np.log(2 * np.pi)), rtol=1e-6)
  assert prior.sample(4, seed=[0, 1]).shape == (4, 2) and not prior.trainable_variables
  ```

  #### References

  [1]: Diederik P. Kingma, Max Welling. Auto-Encoding Variational Bayes. In _International
       Conference on Learning Representations (ICLR)_, 2014. https://arxiv.org/abs/1312.6114

  [2]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  symmetric = True

  def __init__(self, latent_size, name="normal_prior"):
    super().__init__(latent_size, name=name)

  def distribution(self):
    return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_size]))
