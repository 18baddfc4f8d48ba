"""The contract every latent variable model of the library fulfils.

The trainer, the objectives, the evaluation and the export call only these methods, so a
researcher's own model works everywhere once it subclasses `LatentVariableModel` and
implements the four abstract ones.
"""
import tensorflow as tf


class LatentVariableModel(tf.Module):
  """The contract of every latent variable model: p(x, z) with an encoder q(z | x).

  A VAE-like model p(x, z) = p(z_top) p(z_rest | z_top) p(x | z) with encoder q(z | x). The
  learned prior (`tfp_priors.priors.Prior`) models the top latent z_top [.., d]; the rest of
  the hierarchy (the HVAE's z1) belongs to the model. Subclasses set `input_size` (D, pixels
  of a flat image) and `latent_size` (d) and implement `forward`, `encode_top`,
  `posterior_mean` and `decode`. Their constructors take `input_size=` and `train_mean=` (the
  mean training image [D] or None): the trainer passes the data's event size and mean, so
  configs do not repeat the input size. The other methods have defaults that fit every model
  whose likelihood is its own (only `ResampledOutputs` overrides them). `forward(x [B, D], K)`
  returns a `tfp_priors.models.Forward` with z_top [K, B, d] and [K, B] log densities in nats.

  #### Mathematical details

  The objectives combine the model's `Forward` with the prior's log p(z_top), z ~ q(z|x):

  ```none
  ELBO(x) = log p(x|z) + log p(z_top) + log p(z_rest|z_top) - log q(z_top|x)
            - log q(z_rest|x, z_top)                      (Bauer & Mnih, Eq. 1),
  IWAE_K(x) = log 1/K sum_k exp(ELBO terms of sample k)   (Burda et al. 2016).
  ```

  #### Examples

  ```python
  from tfp_priors import objectives
  from tfp_priors.models import VAE
  from tfp_priors.priors import build_prior

  model = VAE(input_size=16, latent_size=2, hidden_sizes=(8,))
  prior = build_prior(model.latent_size, name="lars")
  terms, _ = objectives.elbo(model, prior, tf.zeros([8, 16]), seed=[0, 1])
  np.testing.assert_allclose(terms.elbo, terms.reconstruction - terms.kl, rtol=1e-5)
  assert terms.elbo.shape == (8,)
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428

  [2]: Yuri Burda, Roger Grosse, Ruslan Salakhutdinov. Importance Weighted Autoencoders. In
       _International Conference on Learning Representations (ICLR)_, 2016.
       https://arxiv.org/abs/1509.00519
  """

  input_size = None   # D
  latent_size = None  # d of z_top
  # Declared capability: a lower latent group z1 below z_top, with `posterior_lower`,
  # `conditional_prior`, `prior_context` and `likelihood_mean` (the HVAE; hierarchical NCP).
  has_lower_latent_group = False

  def forward(self, x, num_samples=1, seed=None):
    """K samples of q(z | x) and their log densities.

    Args:
      x: [B, D] images. num_samples: K >= 1. seed: stateless seed [2] or None.

    Returns:
      `tfp_priors.models.Forward`: z_top [K, B, d]; [K, B] log densities in nats.
    """
    raise NotImplementedError

  def encode_top(self, x):
    """q(z_top | x) as a `tfd.Distribution`: x [B, D] -> batch [B], event [d]."""
    raise NotImplementedError

  def posterior_mean(self, x):
    """E_q[z_top | x]: [B, D] -> [B, d]."""
    raise NotImplementedError

  def decode(self, z_top, seed=None):
    """Data-space means of p(x | z_top) (lower latents sampled with `seed`): [N, d] ->
    [N, D]."""
    raise NotImplementedError

  def training_forward(self, x, prior, seed=None):
    """The one-sample `Forward` of a training step and the model's own statistics.

    Default: `forward(x, 1, seed)` and no statistics; a model with training-time estimates
    (LARS on outputs: Z by Algorithm 1 over decoded prior samples) overrides it.

    Returns:
      (`Forward` with [1, B] fields, {name: scalar tensor}).
    """
    del prior
    return self.forward(x, 1, seed=seed), {}

  def sample_images(self, prior, num_samples, seed=None, decode_seed=None, statistics=False):
    """Images of the model's generative distribution with the latents they come from.

    Default: z_top from the prior, decoded to Bernoulli means by `prior.decode` (the
    hierarchical NCP also reweights the lower group).

    Args:
      prior: the trained `Prior` of z_top. num_samples: N >= 1.
      seed, decode_seed: stateless seeds of the latents and of the decoder's lower latents.
      statistics: also return the sampler's statistics (`Prior.sample_with_statistics`, run
        eagerly: LARS times its sampler); else they are {} and the call traces into a graph.

    Returns:
      (images [N, D], z_top [N, d], {name: scalar}).
    """
    if statistics:
      z, stats = prior.sample_with_statistics(num_samples, seed=seed)
    else:
      z, stats = prior.sample(num_samples, seed=seed), {}
    return prior.decode(self, z, seed=decode_seed), z, stats

  def finalize_outputs(self, prior, normalizer_samples=None, seed=0, log_fn=None):
    """Once after training (after `Prior.finalize`): estimates what the model's own output
    distribution needs (LARS on outputs: its log Z).

    Returns:
      dict of scalars for metrics.json; {} by default.
    """
    del prior, normalizer_samples, seed, log_fn
    return {}
