"""Hierarchical NCP on the two-group HVAE (Aneja et al. 2021, Sec. 4.4, Eq. 4).

One classifier per latent group: D_2(z2) for the top group against N(0, I), and D_1(z1, c(z2))
for the lower group against p(z1|z2), conditioned on the context c(z2) that stage one's
p(z1|z2) network already extracts (the last hidden layer of its MLP). Both are trained in one
pass on the same x and the same posterior sample z2 ~ q(z2|x) (Eq. 4: the lower group's
aggregate-posterior and base samples share z_<k). Ancestral sampling uses SIR in each group.
"""
import math

import gin
import tensorflow as tf

from tfp_priors import objectives
from tfp_priors import replicas
from tfp_priors.estimators import normalizer as normalizer_lib
from tfp_priors.nets import MLP
from tfp_priors.priors import interface
from tfp_priors.priors import density_ratio


@gin.configurable
@interface.register("hierarchical_ncp")
class HierarchicalNCPPrior(density_ratio.NCPPrior):
  """Hierarchical NCP on the two-group HVAE (Aneja et al. Sec. 4.4), 'hierarchical_ncp'.

  An `NCPPrior` with one classifier per latent group of an HVAE (`requires_model`: built
  from the model, which must have `has_lower_latent_group`): D_2(z2) = sigmoid(T_2(z2)) for
  the top group against N(0, I) (`classifier`), and D_1(z1, c(z2)) = sigmoid(T_1) for the
  lower group against stage one's p(z1|z2) (`lower_classifier`), with c(z2) the context that
  p(z1|z2)'s network already extracts (`model.prior_context`). Both are trained in one pass
  (`noise_contrastive_loss`, Eq. 4 for each group; the loss is their sum).

  The paper defines the hierarchical NCP as prod_k r_k p_k / Z with one normaliser
  Z = E_{N(z2) p(z1|z2)}[r_2(z2) r_1(z1, c(z2))]. `finalize` estimates it with the streaming
  float64 estimator (S ancestral draws of stage one's prior, with its standard error; stored
  in `joint_log_normalizer`, NaN before), and `latent_log_prob` (the ELBO, the IWAE test NLL
  'nll') uses this joint density. The top group reweighted alone, r_2(z2) N(z2) / Z_2 times
  stage one's p(z1|z2), with Z_2 = E_N[r_2], is reported beside it as
  'nll_top_group_only'; `distribution()` (SIR for z2, the export's `log_prob(z2)`) is that
  top-group density.

  Sampling is ancestral, as the paper samples: `sample` draws z2 by SIR from r_2 N and
  `decode` draws z1 ~ r_1(z1|z2) p(z1|z2) by SIR for each z2. As M grows this samples
  r_2 N / Z_2 times r_1 p / Z_1(z2), Z_1(z2) = E_{p(z1|z2)}[r_1]; that equals the one-Z
  joint exactly when Z_1(z2) does not depend on z2, as at the NCE optimum (r_1 the ratio of
  two conditional densities: Z_1 = 1). `log_normalizer` and `top_group_log_normalizer` in
  metrics.json tell how far the learned classifiers are from that.

  Shapes: `latent_log_prob(forward)` -> [K, B] nats; `decode(model, z_top [N, d])` -> [N, D].

  Raises:
    ValueError: a model without a lower latent group (`has_lower_latent_group`: not an
      HVAE), M < 1; `latent_log_prob` of a `Forward` without lower latents.

  #### Mathematical details

  Hierarchical NCP (Sec. 4.4) for the HVAE of Bauer & Mnih (appendix C.2), whose groups are
  the paper's k = 1 (the top group, z2 here; the stats' suffix '_group_1') and k = 2 (z1 here,
  z_<2 = z2; '_group_2'):

  ```none
  p_NCP(z1, z2) = r_2(z2) N(z2; 0, I) r_1(z1|z2) p(z1|z2) / Z,
  Z = E_{N(z2) p(z1|z2)}[r_2(z2) r_1(z1, c(z2))],
  ```

  and each classifier D_k minimises Eq. 4, the NCE loss of its group with the aggregate
  posterior and the base samples conditioned on the same z_<k (here the same z2 ~ q(z2|x)):

  ```none
  E_{p_d(x) q(z_<k|x)}[-E_{q(z_k|z_<k, x)}[log D_k(z_k, c(z_<k))]
                       - E_{p(z_k|z_<k)}[log(1 - D_k(z_k, c(z_<k)))]],
  ```

  minimised when r_k = D_k / (1 - D_k) = q(z_k|z_<k) / p(z_k|z_<k).

  #### Examples

  ```python
  from tfp_priors.models import HVAE
  from tfp_priors.priors import HierarchicalNCPPrior

  model = HVAE(input_size=16, latent_size=2, hidden_size=8)
  prior = HierarchicalNCPPrior(latent_size=2, model=model, hidden_sizes=(8,),
                               num_proposals=16, lower_num_proposals=4)
  x = tf.cast(tf.random.stateless_uniform([8, 16], seed=[0, 1]) < 0.5, tf.float32)
  loss, statistics = prior.noise_contrastive_loss(model, x, seed=[1, 2])
  prior.estimate_joint_log_normalizer(num_samples=1024, chunk_size=1024, seed=0)
  log_p = prior.latent_log_prob(model.forward(x, 3, seed=[2, 3]))
  images = prior.decode(model, prior.sample(5, seed=[3, 4]), seed=[4, 5])
  assert log_p.shape == (3, 8) and images.shape == (5, 16)
  assert np.isclose(float(loss), float(statistics["nce_loss_sum"]))
  ```

  #### References

  [1]: Jyoti Aneja, Alexander G. Schwing, Jan Kautz, Arash Vahdat. A Contrastive Learning
       Approach for Training Variational Autoencoder Priors. In _Advances in Neural
       Information Processing Systems (NeurIPS)_, 2021. https://arxiv.org/abs/2010.02917

  [2]: Matthias Bauer, Andriy Mnih. Resampled Priors for Variational Autoencoders. In
       _International Conference on Artificial Intelligence and Statistics (AISTATS)_, 2019.
       https://arxiv.org/abs/1810.11428
  """

  requires_model = True

  def __init__(self, latent_size, model, hidden_sizes=(100, 100), activation="tanh",
               num_proposals=5000, lower_num_proposals=500, name="hierarchical_ncp_prior"):
    """Args:
      latent_size: d of z2. model: the HVAE (`has_lower_latent_group`: `posterior_lower`,
        `conditional_prior`, `prior_context`, `likelihood_mean`).
      hidden_sizes, activation: both classifiers' hidden layers.
      num_proposals: M of SIR for z2; lower_num_proposals: M for z1 given each z2 (memory is
        O(N M d) for N samples).

    Raises:
      ValueError: a model without a lower latent group (`has_lower_latent_group`: not an
        HVAE), M < 1.
    """
    if not model.has_lower_latent_group:
      raise ValueError(f"hierarchical NCP needs a hierarchical model (train.model_fn = @HVAE); "
                       f"{type(model).__name__} has one latent group. Use 'ncp' for it.")
    if int(lower_num_proposals) < 1:
      raise ValueError(f"SIR needs at least one proposal; got lower_num_proposals="
                       f"{lower_num_proposals}.")
    super().__init__(latent_size, "normal", hidden_sizes, activation, num_proposals, name)
    self.lower_num_proposals = int(lower_num_proposals)
    context_size = int(model.prior_context(tf.zeros([1, latent_size])).shape[-1])
    lower_size = int(model.conditional_prior(tf.zeros([1, latent_size])).event_shape[-1])
    self.lower_classifier = MLP(lower_size + context_size, hidden_sizes, 1,
                                activation=activation, name="lower_classifier")
    self.joint_log_normalizer = tf.Variable(math.nan, trainable=False,
                                            name="joint_log_normalizer")
    # Closures, not attributes: the model's variables must not become the prior's.
    self._conditional_prior = model.conditional_prior
    self._context = model.prior_context

  def lower_log_ratio(self, z1, z2):
    """log r_1(z1|z2) = T_1(z1, c(z2)): z1 [..., d1], z2 [..., d] -> [...] nats."""
    context = tf.stop_gradient(self._context(z2))
    context = tf.broadcast_to(context, tf.concat([tf.shape(z1)[:-1], tf.shape(context)[-1:]], 0))
    return self.lower_classifier(tf.concat([z1, context], -1))[..., 0]

  def latent_log_prob(self, forward):
    """log p_NCP(z1, z2) = log N(z2) + T_2(z2) + log p(z1|z2) + T_1(z1, c(z2)) - log Z, with
    the joint log Z of `finalize` (NaN before): `Forward` -> [K, B] nats.

    Raises:
      ValueError: a `Forward` without the lower latents (z_rest None: not an HVAE's).
    """
    if forward.z_rest is None:
      raise ValueError("hierarchical NCP scores both latent groups; the model's Forward has "
                       "no z_rest (lower latents). Use an HVAE (train.model_fn = @HVAE).")
    z2, z1 = forward.z_top, forward.z_rest
    return (self.base.distribution().log_prob(z2) + self.log_ratio(z2) + forward.log_prior_rest
            + self.lower_log_ratio(z1, z2) - self.joint_log_normalizer)

  def extra_evaluation_densities(self):
    """{'top_group_only': r_2(z2) N(z2) / Z_2 times p(z1|z2) of stage one}."""
    return {"top_group_only": super().latent_log_prob}

  def _ancestral_base_sample(self, num_samples, seed):
    """(z2 [n, d] ~ N(0, I), z1 [n, d1] ~ p(z1|z2)): stage one's prior, ancestrally."""
    seed_top, seed_lower = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    z2 = self.base.distribution().sample(num_samples, seed=seed_top)
    return z2, self._conditional_prior(z2).sample(seed=seed_lower)

  def estimate_joint_log_normalizer(self, num_samples=None, chunk_size=10**5, seed=0):
    """Z = E_{N(z2) p(z1|z2)}[r_2(z2) r_1(z1, c(z2))] from S ancestral draws (streaming,
    float64 sums, standard error), stored for `latent_log_prob`. Returns
    `NormalizerEstimate`."""
    estimate = normalizer_lib.estimate_log_normalizer(
        self._ancestral_base_sample,
        lambda z: self.log_ratio(z[0]) + self.lower_log_ratio(z[1], z[0]),
        num_samples, chunk_size, seed=seed)
    self.joint_log_normalizer.assign(tf.cast(estimate.log_normalizer, tf.float32))
    return estimate

  def refresh_log_normalizer(self, num_samples=None, seed=0):
    """Re-estimates Z_2 and the joint Z; returns the joint `NormalizerEstimate`."""
    self.estimate_log_normalizer(num_samples, seed=seed)
    return self.estimate_joint_log_normalizer(num_samples, seed=seed)

  def objective_variables(self, objective):
    if objective == objectives.NOISE_CONTRASTIVE:
      return (list(self.classifier.trainable_variables)
              + list(self.lower_classifier.trainable_variables))
    return super().objective_variables(objective)

  def noise_contrastive_loss(self, model, x, seed=None, training=True):
    """Eq. 4 for both groups in one pass; the loss is their sum.

    Returns:
      (loss scalar, stats: 'nce_loss_sum', and per group k = 1 (z2, top), 2 (z1):
      'nce_loss_group_k', 'jensen_shannon_group_k', 'classifier_accuracy_group_k'). A
      Jensen-Shannon divergence is reported per group only: log 2 - L/2 of the summed loss
      is none.
    """
    del training  # no dropout here
    seeds = tf.unstack(tf.random.experimental.stateless_split(
        tf.constant([0, 0]) if seed is None else seed, 4))
    z2 = tf.stop_gradient(replicas.sample_diagonal_normal(model.encode_top(x), seeds[0]))
    z2_noise = tf.stop_gradient(replicas.replica_rows(
        lambda m: self.base.distribution().sample(m, seed=seeds[1]), tf.shape(z2)[0]))
    logits_top = self.log_ratio(tf.concat([z2, z2_noise], 0))
    loss_top, stats = density_ratio.nce_statistics(*tf.split(logits_top, 2), suffix="_group_1")
    z1 = tf.stop_gradient(replicas.sample_diagonal_normal(model.posterior_lower(x, z2),
                                                          seeds[2]))
    z1_noise = tf.stop_gradient(replicas.sample_diagonal_normal(self._conditional_prior(z2),
                                                                seeds[3]))
    logits_lower = self.lower_log_ratio(tf.concat([z1, z1_noise], 0), tf.concat([z2, z2], 0))
    loss_lower, lower_stats = density_ratio.nce_statistics(*tf.split(logits_lower, 2),
                                                           suffix="_group_2")
    stats.update(lower_stats)
    loss = loss_top + loss_lower
    stats["nce_loss_sum"] = loss
    return loss, stats

  def normalizer_metrics(self, num_samples, seed):
    """The joint log Z ('log_normalizer...', for the NLL) and Z_2 of the top group alone
    ('top_group_log_normalizer...'), both stored."""
    top = self.estimate_log_normalizer(num_samples, seed=seed)
    results = normalizer_lib.as_metrics(self.estimate_joint_log_normalizer(num_samples, seed=seed))
    results.update({f"top_group_{k}": v for k, v in normalizer_lib.as_metrics(top).items()})
    return results

  def finalize_summary(self, results):
    groups = ", ".join(f"{results[f'nce_loss_group_{k}']:.4f} / "
                       f"{results[f'jensen_shannon_group_{k}']:.4f}" for k in (1, 2))
    return (f"joint log Z = {results['log_normalizer']:.4f} +- "
            f"{results['log_normalizer_standard_error']:.1e}, top group alone "
            f"{results['top_group_log_normalizer']:.4f} (S = "
            f"{results['normalizer_samples']:.1e}); final NCE loss / JSD per group: "
            f"{groups} nats")

  def decode(self, model, z_top, seed=None):
    """z1 ~ r_1(z1|z2) p(z1|z2) by SIR with `lower_num_proposals` per z2, then p(x|z1, z2)
    means: z_top [N, d] -> [N, D]."""
    seed = tf.constant([0, 0]) if seed is None else seed
    seed_proposals, seed_pick = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    proposals = self._conditional_prior(z_top).sample(self.lower_num_proposals,
                                                      seed=seed_proposals)  # [M, N, d1]
    log_w = self.lower_log_ratio(proposals, z_top)  # [M, N]
    index = tf.random.stateless_categorical(tf.transpose(log_w), 1, seed_pick)[:, 0]
    z1 = tf.gather(tf.transpose(proposals, [1, 0, 2]), index, batch_dims=1)
    return model.likelihood_mean(z1, z_top)
