"""Hierarchical VAE with two latent layers (LARS appendix C.2, "HVAE (L = 2)").

Generative: p(z2) p(z1|z2) p(x|z1, z2); inference: q(z2|x) q(z1|x, z2) (Tomczak & Welling's
structure, with plain tanh MLPs):
  q(z2|x)      = MLP[784 - 300 - 300 - d]
  q(z1|x, z2)  = MLP[[MLP[784 - 300], MLP[d - 300]] - 300 - d]
  p(z1|z2)     = MLP[d - 300 - 300 - d]
  p(x|z1, z2)  = MLP[[MLP[d - 300], MLP[d - 300]] - 300 - 784]
The learned prior is p(z2), the top latent.
"""
import gin
import tensorflow as tf

from tfp_priors import replicas
from tfp_priors import seeds
from tfp_priors.models import common
from tfp_priors.models import latent_variable_model
from tfp_priors.nets import MLP


class _Merge(tf.Module):
  """head([branch_a(a), branch_b(b)]): two branches, concatenated on the last axis, then a head.

  Call: a [..., A] (may lack b's leading importance-sample axis, e.g. x [B, D] against
  z2 [K, B, d]; it is broadcast), b [..., B'] -> head output [..., out].
  """

  def __init__(self, branch_a, branch_b, head, name=None):
    super().__init__(name=name)
    self.branch_a, self.branch_b, self.head = branch_a, branch_b, head

  def __call__(self, a, b):
    ha, hb = self.branch_a(a), self.branch_b(b)
    ha = tf.broadcast_to(ha, tf.concat([tf.shape(hb)[:-1], tf.shape(ha)[-1:]], 0))
    return self.head(tf.concat([ha, hb], axis=-1))


def _mlp_merge(size_a, size_b, hidden, output_size, output_bias_initializer="zeros", name=None):
  """MLP[[MLP[a - h], MLP[b - h]] - h - out] (tanh branches) as a `_Merge`."""
  return _Merge(MLP(size_a, (), hidden, output_activation="tanh", name="branch_a"),
                MLP(size_b, (), hidden, output_activation="tanh", name="branch_b"),
                MLP(2 * hidden, (hidden,), output_size,
                    output_bias_initializer=output_bias_initializer, name="head"), name=name)


@gin.configurable
class HVAE(latent_variable_model.LatentVariableModel):
  """Two-latent-layer VAE of the LARS paper (Bauer & Mnih, appendix C.2, "HVAE (L = 2)").

  Generative p(z2) p(z1|z2) p(x|z1, z2), inference q(z2|x) q(z1|x, z2) (Tomczak & Welling's
  structure with plain tanh MLPs, see the module docstring); z_top = z2, the latent the
  learned prior models, while p(z1|z2) belongs to the model. Bernoulli likelihood; d = 50 per
  latent layer and hidden_size = 300 by default.

  The four networks come from `_networks`, which subclasses with other architectures (e.g.
  `ConvHVAE`) override; forward, decode and the hierarchical-NCP pieces
  (`has_lower_latent_group`: `posterior_lower`, `conditional_prior`, `prior_context`,
  `likelihood_mean`) are shared.

  Shapes: `forward(x [B, D], K)` -> `common.Forward` with [K, B] fields in nats, z_top
  [K, B, d], z_rest (z1) [K, B, d]; `decode(z2 [N, d])` samples z1 ~ p(z1|z2) and returns
  pixel probabilities [N, D].

  Raises:
    ValueError: `forward` of an x that is not [B, input_size].

  #### Mathematical details

  ```none
  ELBO(x) = E_q[log p(x|z1, z2) + log p(z2) + log p(z1|z2) - log q(z2|x) - log q(z1|x, z2)],
  ```

  with log p(z2) from the prior and the other terms in `common.Forward` (log_posterior_top,
  log_posterior_rest, log_prior_rest, log_likelihood).

  #### Examples

  ```python
  from tfp_priors.models import HVAE

  model = HVAE(input_size=16, latent_size=2, hidden_size=8)
  x = tf.cast(tf.random.stateless_uniform([4, 16], seed=[0, 1]) < 0.5, tf.float32)
  forward = model.forward(x, 3, seed=[1, 2])
  assert forward.z_top.shape == (3, 4, 2) and forward.z_rest.shape == (3, 4, 2)
  assert forward.log_prior_rest.shape == (3, 4) and model.has_lower_latent_group
  assert model.decode(tf.zeros([5, 2]), seed=[2, 3]).shape == (5, 16)
  ```

  #### References

  [1]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428

  [2]: Jakub M. Tomczak, Max Welling. VAE with a VampPrior. In _International Conference on
       Artificial Intelligence and Statistics (AISTATS)_, 2018.
       https://arxiv.org/abs/1705.07120
  """

  has_lower_latent_group = True

  def __init__(self, input_size=784, latent_size=50, hidden_size=300, train_mean=None,
               name="hvae"):
    super().__init__(name=name)
    self.input_size, self.latent_size = input_size, latent_size
    self.q_z2, self.q_z1, self.p_z1, self.p_x = self._networks(hidden_size, train_mean)

  def _networks(self, hidden_size, train_mean):
    """(q_z2, q_z1, p_z1, p_x) with the call signatures
      q_z2(x): [B, D] -> [B, 2d] (mean, log std);
      q_z1(x, z2): [B, D], [..., B, d] -> [..., B, 2d];
      p_z1(z2): [..., d] -> [..., 2d], an `MLP` (its `hidden` gives `prior_context`);
      p_x(z1, z2): [..., d], [..., d] -> Bernoulli logits [..., D].
    """
    d, h, D = self.latent_size, hidden_size, self.input_size
    return (MLP(D, (h, h), 2 * d, name="q_z2"),
            _mlp_merge(D, d, h, 2 * d, name="q_z1"),
            MLP(d, (h, h), 2 * d, name="p_z1"),
            _mlp_merge(d, d, h, D, common.output_bias(train_mean), name="p_x"))

  def forward(self, x, num_samples=1, seed=None):
    """x [B, 784] -> `common.Forward` with [K, B] fields; z_top = z2."""
    common.check_input(x, self.input_size)
    seed2, seed1 = seeds.split_seed(seed)
    q2 = common.diagonal_normal(self.q_z2(x))
    z2 = replicas.sample_diagonal_normal(q2, seed2, num_samples)
    q1 = common.diagonal_normal(self.q_z1(x, z2))
    z1 = replicas.sample_diagonal_normal(q1, seed1)
    p1 = common.diagonal_normal(self.p_z1(z2))
    log_lik = common.bernoulli_log_likelihood(self.p_x(z1, z2), x)
    return common.Forward(z2, q2.log_prob(z2), log_lik, q1.log_prob(z1), p1.log_prob(z1), z1)

  def encode_top(self, x):
    """q(z_top|x) as a `tfd.MultivariateNormalDiag`: x [B, D] -> batch [B], event [d]."""
    return common.diagonal_normal(self.q_z2(x))

  def posterior_mean(self, x):
    """E_q[z2|x]: [B, D] -> [B, d]."""
    return self.encode_top(x).mean()

  def decode(self, z_top, seed=None):
    """Samples z1 ~ p(z1|z2) and returns p(x|z1, z2) probabilities: [N, d] -> [N, 784]."""
    z1 = self.conditional_prior(z_top).sample(seed=seed)
    return self.likelihood_mean(z1, z_top)

  # The pieces hierarchical NCP (Aneja et al. Sec. 4.4) reweights, group by group.
  def posterior_lower(self, x, z2):
    """q(z1|x, z2): x [B, D], z2 [..., B, d] -> diagonal Normal, batch [..., B], event [d]."""
    return common.diagonal_normal(self.q_z1(x, z2))

  def conditional_prior(self, z2):
    """p(z1|z2): z2 [..., d] -> diagonal Normal, batch [...], event [d]."""
    return common.diagonal_normal(self.p_z1(z2))

  def prior_context(self, z2):
    """c(z2): the last hidden layer of p(z1|z2)'s MLP, [..., d] -> [..., hidden_size]; the
    context of the lower group's NCP classifier (Aneja Sec. 4.4: the representation stage
    one learned, not a new one)."""
    return self.p_z1.hidden(z2)

  def likelihood_mean(self, z1, z2):
    """p(x|z1, z2) pixel probabilities: [N, d], [N, d] -> [N, 784]."""
    return tf.sigmoid(self.p_x(z1, z2))
