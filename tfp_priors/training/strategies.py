"""Training strategies for a learned prior: joint, post-hoc and iterative (Xu et al. 2019, B.3).

A strategy maps the global step to a `Phase` (which variables train, which prior the ELBO
uses, which objective) and a learning rate. The trainer runs one mechanism for all three:
  - `Joint`: encoder, decoder and prior trained together by the ELBO (LARS; Xu Eq. 5).
  - `PostHoc`: encoder and decoder loaded from a trained workdir and frozen; only the prior is
    trained, by the ELBO (LARS Table 2 / D.1) or by maximum likelihood on aggregate-posterior
    samples, E_{q(z)}[log p(z)] (Xu Eq. 6; LARS Eq. 6).
  - `Iterative`: Xu et al. Algorithm B.1.
  - `NoiseContrastive`: stage two of NCP (Aneja et al. 2021): a frozen stage-one VAE, the
    density-ratio classifier trained by NCE.
  - `Alternating`: Takahashi et al. (2019) Algorithm 1 for the implicit optimal prior.
"""
import collections

import gin

from tfp_priors import objectives
from tfp_priors.training import checkpointing

Phase = collections.namedtuple("Phase", [
    "name",           # str, logged
    "train_model",    # update encoder/decoder variables
    "train_prior",    # update prior variables
    "learned_prior",  # ELBO uses the learned prior (False: N(0, I), Alg. B.1 iteration 1a)
    "objective",      # 'elbo', 'maximum_likelihood' (-E_q(z)[log p(z)], prior-only phases)
                      # or 'noise_contrastive' (NCE of a density-ratio prior's classifier)
    "schedule_scale",  # steps of the train schedule's clock per step: the KL warm-up runs on
                       # step * schedule_scale (Iterative: the pretraining phase holds a
                       # whole standard run's schedule)
], defaults=(1.0,))

OBJECTIVES = (objectives.ELBO, objectives.MAXIMUM_LIKELIHOOD)  # those a prior phase may use
JOINT = Phase("joint", True, True, True, objectives.ELBO)


class Strategy:
  """A training schedule: `phase(step, num_steps, learning_rate_fn)` -> (Phase, rate)."""

  name = None

  def phase(self, step, num_steps, learning_rate_fn):
    raise NotImplementedError

  def prepare(self, model, prior):
    """Called once before the first step of a fresh run (e.g. loads a pretrained model)."""
    del model, prior

  def prior_initialization_step(self, num_steps):
    """The step at whose start the prior's data-dependent initialisation (`Prior.initialize`,
    e.g. ActNorm) runs on that step's posterior samples: 0, unless the prior first trains
    later, on an encoder trained by then."""
    del num_steps
    return 0


@gin.configurable
class Joint(Strategy):
  """Joint training: everything trained by the ELBO with the schedule of `train`.

  Encoder, decoder and prior are updated together at every step (LARS C.3; Xu B.3 "joint
  training"), with the learning rate of `train`'s schedule. The phase is always `JOINT`.

  #### Mathematical details

  Maximises the ELBO with the learned prior over all parameters (LARS Eq. 1; Xu Eq. 5 for a
  flow prior):

  ```none
  max_{theta, phi, lambda} E_x E_q(z|x)[log p(x|z) + log p_lambda(z) - log q(z|x)].
  ```

  #### Examples

  ```python
  from tfp_priors.training.strategies import Joint

  phase, rate = Joint().phase(10, 100, lambda step: 1e-3)
  assert phase.name == "joint" and phase.train_model and phase.train_prior
  assert phase.objective == "elbo" and rate == 1e-3
  ```

  #### References

  [1]: (Joint training, Sec. 4 and C.3.) Matthias Bauer, Andriy Mnih. Resampled Priors for
       Variational Autoencoders. In _International Conference on Artificial Intelligence and
       Statistics (AISTATS)_, 2019. https://arxiv.org/abs/1810.11428

  [2]: (Eq. 5.) Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian Zhao, Dan Pei. On the
       Necessity and Effectiveness of Learning the Prior of Variational Auto-Encoder.
       _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
  """

  name = "joint"

  def phase(self, step, num_steps, learning_rate_fn):
    del num_steps
    return JOINT, learning_rate_fn(step)


@gin.configurable
class PostHoc(Strategy):
  """Post-hoc training: the prior trained on a frozen, pretrained encoder/decoder.

  LARS D.1 (Table 2), Xu B.3 "post-hoc". `prepare` loads the encoder/decoder weights of the
  latest checkpoint of `pretrained_workdir`; every phase then trains the prior alone
  (`train_model` False) by `objective`. The run's own workdir is separate from
  `pretrained_workdir`, which is only read. For the prior the two objectives have the same
  expected gradient (the reconstruction term and log q(z|x) do not depend on it); 'elbo'
  reports the ELBO, 'maximum_likelihood' reports the cross-entropy
  -E_{q(z)}[log p(z)] = KL(q(z) || p(z)) + H[q(z)] in nats and uses no KL warm-up.

  Raises:
    ValueError: an objective other than 'elbo' or 'maximum_likelihood' (in the constructor).
    PretrainedModelError: `prepare` finds no checkpoint in pretrained_workdir, or its model
      differs from this config's (e.g. another latent size); nothing is written anywhere.

  #### Mathematical details

  With the encoder fixed, the ELBO depends on the prior only through E_{q(z)}[log p(z)], the
  maximum-likelihood objective on aggregate-posterior samples (LARS Eq. 6; Xu Eq. 6, whose
  term KL(q(z) || p(z)) is the only one that depends on the prior):

  ```none
  max_lambda E_{q(z)}[log p_lambda(z)],  q(z) = E_x q(z|x).
  ```

  #### Examples

  ```python
  from tfp_priors.training.strategies import PostHoc

  strategy = PostHoc(pretrained_workdir="/tmp/pretrained_vae", objective="maximum_likelihood")
  phase, rate = strategy.phase(0, 100, lambda step: 1e-3)
  assert phase.name == "post_hoc" and not phase.train_model and phase.train_prior
  assert phase.objective == "maximum_likelihood" and rate == 1e-3
  ```

  #### References

  The two papers of `Joint`'s references: Bauer & Mnih (2019), Table 2 and D.1 (post-hoc
  LARS by the ELBO); Xu et al. (2019), Eq. 6 (a prior fitted to the aggregate posterior by
  maximum likelihood).
  """

  name = "post_hoc"

  def __init__(self, pretrained_workdir=gin.REQUIRED, objective=objectives.ELBO):
    """Raises ValueError for an objective other than 'elbo' or 'maximum_likelihood'."""
    if objective not in OBJECTIVES:
      raise ValueError(f"PostHoc.objective must be one of {OBJECTIVES}, got {objective!r}.")
    self.pretrained_workdir = pretrained_workdir
    self.objective = objective

  def phase(self, step, num_steps, learning_rate_fn):
    del num_steps
    return Phase("post_hoc", False, True, True, self.objective), learning_rate_fn(step)

  def prepare(self, model, prior):
    """Loads the encoder/decoder weights of the latest checkpoint of `pretrained_workdir`.

    Raises:
      PretrainedModelError: no checkpoint there, or its model differs from this config's
        (e.g. another latent size); nothing is written anywhere.
    """
    del prior
    checkpointing.load_pretrained_model(model, self.pretrained_workdir)


@gin.configurable
class NoiseContrastive(Strategy):
  """Stage two of NCP: the density-ratio classifier trained by NCE on a frozen VAE.

  Stage two of NCP (Aneja et al. 2021, Sec. 4.1): the VAE and its base prior come from a
  stage-one run in `pretrained_workdir` (only read; `prepare` loads them) and stay frozen;
  the classifier of the density-ratio prior (`NCPPrior`) is trained by NCE (Eq. 3) for all
  `train.num_steps`.

  Raises:
    PretrainedModelError: `prepare` finds no checkpoint in pretrained_workdir, a stage one
      trained with another prior than this NCP's base (read from its config.gin), or a model
      / base prior that does not match this configuration; nothing is written anywhere.
    ValueError: `prepare` with a prior that is not a density-ratio prior (it has no `base`).

  #### Mathematical details

  Aneja et al. Eq. 3, over the classifier D = sigmoid(T) only:

  ```none
  min_D -E_{z ~ q(z)}[log D(z)] - E_{z ~ p(z)}[log(1 - D(z))].
  ```

  #### Examples

  ```python
  from tfp_priors.training.strategies import NoiseContrastive

  strategy = NoiseContrastive(pretrained_workdir="/tmp/stage_one_vae")
  phase, rate = strategy.phase(5, 100, lambda step: 1e-3)
  assert phase.objective == "noise_contrastive" and not phase.train_model
  assert phase.train_prior and rate == 1e-3
  ```

  #### References

  [1]: Jyoti Aneja, Alexander G. Schwing, Jan Kautz, Arash Vahdat. A Contrastive Learning
       Approach for Training Variational Autoencoder Priors. In _Advances in Neural
       Information Processing Systems (NeurIPS)_, 2021. https://arxiv.org/abs/2010.02917
  """

  name = "noise_contrastive"

  def __init__(self, pretrained_workdir=gin.REQUIRED):
    self.pretrained_workdir = pretrained_workdir

  def phase(self, step, num_steps, learning_rate_fn):
    del num_steps
    phase = Phase("noise_contrastive", False, True, True, objectives.NOISE_CONTRASTIVE)
    return phase, learning_rate_fn(step)

  def prepare(self, model, prior):
    """Loads the stage-one model and base prior (`prior.base`).

    Raises:
      PretrainedModelError: no checkpoint in pretrained_workdir, a stage one trained with
        another prior than this NCP's base (read from its config.gin), or a model / base
        prior that does not match this configuration; nothing is written anywhere.
      ValueError: the prior is not a density-ratio prior (it has no `base`).
    """
    if not prior.has_noise_contrastive_loss:
      raise ValueError(f"NoiseContrastive training needs a density-ratio prior (e.g. "
                       f"build_prior.name = 'ncp'), got {type(prior).__name__}.")
    checkpointing.load_pretrained_model(model, self.pretrained_workdir, prior=prior.base)
    trained_with = checkpointing.pretrained_prior_name(self.pretrained_workdir)
    if trained_with != prior.base.registry_name:
      raise checkpointing.PretrainedModelError(
          f"the stage-one run in {self.pretrained_workdir} trained its VAE with the prior "
          f"{trained_with!r}, but this NCP reweights the base prior "
          f"{prior.base.registry_name!r}: NCP's classifier learns q(z) / b(z) for the prior b "
          f"the VAE was trained with. Point NoiseContrastive.pretrained_workdir at a run "
          f"with build_prior.name = {prior.base.registry_name!r}, or set the base prior to "
          f"{trained_with!r} (NCPPrior.base_prior). Nothing was written.")


@gin.configurable
class Alternating(Strategy):
  """Alternating training of the implicit optimal prior (Takahashi et al. 2019, Algorithm 1).

  `model_steps` (J1) VAE steps with the density-ratio prior held fixed (phase 'vae', by the
  ELBO), then `estimator_steps` (J2 > J1) steps of its classifier by Eq. 20 with the VAE fixed
  (phase 'density_ratio', by NCE), repeated. The paper: 10 estimator epochs per VAE epoch
  (J2 = 10 J1).

  `train.num_steps` counts both kinds, so the VAE gets num_steps * J1 / (J1 + J2) updates; the
  learning-rate schedule and KL warm-up run on the same global step.

  Raises:
    ValueError: a step count < 1 (in the constructor); `prepare` with a prior that is not a
      density-ratio prior.

  #### Mathematical details

  Algorithm 1 alternates the maximisation of Eq. 19 over the encoder and decoder (theta,
  phi) with T fixed, and of Eq. 20 over the classifier (psi) with the VAE fixed:

  ```none
  max_psi 1/M sum_i log sigmoid(T_psi(z_1^(i))) + 1/M sum_j log(1 - sigmoid(T_psi(z_0^(j)))),
  z_1 ~ q_phi(z),  z_0 ~ p(z) = N(0, I).
  ```

  #### Examples

  ```python
  from tfp_priors.training.strategies import Alternating

  strategy = Alternating(model_steps=2, estimator_steps=3)
  names = [strategy.phase(step, 100, lambda s: 1e-3)[0].name for step in range(6)]
  assert names == ["vae", "vae", "density_ratio", "density_ratio", "density_ratio", "vae"]
  ```

  #### References

  [1]: Hiroshi Takahashi, Tomoharu Iwata, Yuki Yamanaka, Masanori Yamada, Satoshi Yagi.
       Variational Autoencoder with Implicit Optimal Priors. In _AAAI Conference on
       Artificial Intelligence_, 2019. https://arxiv.org/abs/1809.05284
  """

  name = "alternating"

  def __init__(self, model_steps=500, estimator_steps=5000):
    """Raises ValueError: a step count < 1."""
    if int(model_steps) < 1 or int(estimator_steps) < 1:
      raise ValueError(f"Alternating.model_steps and estimator_steps must be >= 1, got "
                       f"{model_steps} and {estimator_steps}.")
    self.model_steps, self.estimator_steps = int(model_steps), int(estimator_steps)

  def phase(self, step, num_steps, learning_rate_fn):
    del num_steps
    if step % (self.model_steps + self.estimator_steps) < self.model_steps:
      return Phase("vae", True, False, True, objectives.ELBO), learning_rate_fn(step)
    return (Phase("density_ratio", False, True, True, objectives.NOISE_CONTRASTIVE),
            learning_rate_fn(step))

  def prepare(self, model, prior):
    if not prior.has_noise_contrastive_loss:
      raise ValueError(f"Alternating training needs a density-ratio prior (e.g. "
                       f"build_prior.name = 'implicit'), got {type(prior).__name__}.")
    del model


@gin.configurable
class Iterative(Strategy):
  """Iterative training of Xu et al. (Algorithm B.1), with `num_steps` of `train` as the budget.

  Iteration 1a: encoder/decoder with p(z) = N(0, I) for `pretrain_fraction` of the steps, on
  the schedule of `train` (rescaled to this phase). The remaining steps are split into 2 I
  phases of M steps: iteration 1b trains the prior for 2M steps (`prior_learning_rate` for M,
  then `learning_rate`); iterations i = 2..I alternate M steps of encoder/decoder (prior
  fixed) and M steps of prior (encoder/decoder fixed) at `learning_rate`.
  Xu's values: I = 16, M = 100 epochs after 2,400 pretraining epochs (pretrain 3/7 of all),
  1e-3 then 1e-4. The prior's data-dependent initialisation runs at the start of iteration
  1b (`prior_initialization_step`), on the encoder that pretraining trained.

  Raises:
    ValueError: iterations < 1, pretrain_fraction outside [0, 1), or a bad objective (in the
      constructor); a budget that leaves fewer than one step per phase (`boundaries`,
      `phase`).

  #### Mathematical details

  With P = num_steps - 2 I M pretraining steps and M = (num_steps - round(f num_steps)) //
  (2 I) steps per phase (f = `pretrain_fraction`), Algorithm B.1:

  ```none
  Iteration 1a: train q(z|x) and p(x|z) with p(z) = N(0, I)           (steps [0, P)),
  Iteration 1b: train p(z) for 2M steps, q(z|x), p(x|z) fixed          (steps [P, P + 2M)),
  for i = 2..I: train q(z|x), p(x|z) for M steps with p(z) fixed,
                then p(z) for M steps with q(z|x), p(x|z) fixed.
  ```

  #### Examples

  ```python
  from tfp_priors.training.strategies import Iterative

  strategy = Iterative(iterations=2, pretrain_fraction=0.5)
  assert strategy.boundaries(100) == (52, 12)
  phases = [strategy.phase(step, 100, lambda s: 1e-3) for step in (0, 52, 64, 76, 88)]
  assert [phase.name for phase, _ in phases] == [
      "iteration_1a", "prior", "prior", "model", "prior"]
  assert [rate for _, rate in phases] == [1e-3, 1e-3, 1e-4, 1e-4, 1e-4]
  assert strategy.prior_initialization_step(100) == 52
  ```

  #### References

  [1]: Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian Zhao, Dan Pei. On the
       Necessity and Effectiveness of Learning the Prior of Variational Auto-Encoder.
       _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
  """

  name = "iterative"

  def __init__(self, iterations=16, pretrain_fraction=3 / 7, prior_learning_rate=1e-3,
               learning_rate=1e-4, prior_objective=objectives.ELBO):
    """Raises ValueError: iterations < 1, pretrain_fraction outside [0, 1), bad objective."""
    if int(iterations) < 1:
      raise ValueError(f"Iterative.iterations must be >= 1, got {iterations}.")
    if not 0.0 <= float(pretrain_fraction) < 1.0:
      raise ValueError(f"Iterative.pretrain_fraction must be in [0, 1), got {pretrain_fraction}.")
    if prior_objective not in OBJECTIVES:
      raise ValueError(f"Iterative.prior_objective must be one of {OBJECTIVES}, got "
                       f"{prior_objective!r}.")
    self.iterations = int(iterations)
    self.pretrain_fraction = float(pretrain_fraction)
    self.prior_learning_rate = float(prior_learning_rate)
    self.learning_rate = float(learning_rate)
    self.prior_objective = prior_objective

  def boundaries(self, num_steps):
    """(pretrain_steps P, phase_steps M) for a budget of num_steps = P + 2 I M (M >= 1).

    Raises ValueError if the budget leaves fewer than one step per phase.
    """
    pretrain = int(round(self.pretrain_fraction * num_steps))
    phase_steps = (num_steps - pretrain) // (2 * self.iterations)
    if phase_steps < 1:
      raise ValueError(f"train.num_steps = {num_steps} leaves no step for the {2 * self.iterations}"
                       f" prior/model phases of Iterative(iterations={self.iterations}); raise "
                       f"num_steps or lower Iterative.iterations / pretrain_fraction.")
    return num_steps - 2 * self.iterations * phase_steps, phase_steps

  def phase(self, step, num_steps, learning_rate_fn):
    pretrain, m = self.boundaries(num_steps)
    # The train schedule (learning rate and KL warm-up, e.g. Xu B.3's 100 of 2,400 epochs)
    # applies to the pretraining phase, a whole standard run, compressed into its P steps.
    scale = num_steps / max(pretrain, 1)
    if step < pretrain:
      return (Phase("iteration_1a", True, False, False, objectives.ELBO, scale),
              learning_rate_fn(step * num_steps // max(pretrain, 1)))
    k = (step - pretrain) // m  # 0, 1: iteration 1b; then model / prior alternately
    prior_phase = Phase("prior", False, True, True, self.prior_objective)
    if k < 2:
      return prior_phase, self.prior_learning_rate if k == 0 else self.learning_rate
    if k % 2 == 0:
      return Phase("model", True, False, True, objectives.ELBO, scale), self.learning_rate
    return prior_phase, self.learning_rate

  def prior_initialization_step(self, num_steps):
    """The first prior phase (iteration 1b), on the encoder that pretraining trained, as a
    post-hoc run initialises on a trained encoder."""
    return self.boundaries(num_steps)[0]
