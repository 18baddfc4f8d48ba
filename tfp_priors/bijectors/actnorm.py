"""ActNorm: a per-dimension affine bijector with data-dependent initialisation.

Source: Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1 Convolutions",
section 3.1 (actnorm): y = (x + bias) * exp(log_scale), with bias and log_scale initialised so
that the outputs of an initial batch have zero mean and unit variance per dimension. Used in
every block of the Real NVP prior of Xu et al. (2019), appendix B.2.
"""
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_priors.bijectors import caching

tfb = tfp.bijectors

# Added to the batch variance in `initialize`, so that a constant dimension gets a finite scale.
_VARIANCE_EPSILON = 1e-6


class ActNorm(tfb.Bijector):
  """Glow's activation normalisation: y = (x + bias) * exp(log_scale), per dimension.

  A `tfb.Bijector` acting elementwise over the last axis, with data-dependent initialisation
  (`initialize`): bias and log_scale are set so that the outputs of an initial batch have zero
  mean and unit variance per dimension (Kingma & Dhariwal 2018, Sec. 3.1). Used in every
  block of `XuRealNVPPrior` (Xu et al. 2019, appendix B.2).

  Variables (plain `tf.Variable`s, tracked by `tf.Module` and checkpoints): trainable
  `bias` [d] and `log_scale` [d] (both zero at construction: the identity), non-trainable
  `initialized` (bool), set by `initialize`.

  Shapes: x, y [..., d]; forward_log_det_jacobian = sum(log_scale) nats, the same for every
  x (broadcast against the batch shape).

  Raises:
    ValueError: event_size < 1 (in the constructor); `initialize` of an x with rank < 2 or a
      last axis != d.

  #### Mathematical details

  ```none
  forward(x) = (x + bias) * exp(log_scale),  inverse(y) = y * exp(-log_scale) - bias,
  log |det d forward / dx| = sum_i log_scale_i,
  initialize(x): bias = -mean(x),  log_scale = -log(std(x))  (moments over all but the last
                 axis; 1e-6 is added to the variance).
  ```

  #### Examples

  ```python
  from tfp_priors.bijectors import ActNorm

  act_norm = ActNorm(event_size=3)
  x = tf.random.stateless_normal([256, 3], seed=[0, 1]) * 5.0 + 2.0
  y = act_norm.initialize(x)
  np.testing.assert_allclose(tf.reduce_mean(y, 0), np.zeros(3), atol=1e-4)
  np.testing.assert_allclose(tf.math.reduce_std(y, 0), np.ones(3), atol=1e-4)
  np.testing.assert_allclose(act_norm.inverse(act_norm.forward(x)), x, rtol=1e-5, atol=1e-5)
  assert bool(act_norm.initialized) and act_norm.forward_log_det_jacobian(x).shape == ()
  ```

  #### References

  [1]: (Actnorm, Sec. 3.1.) Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with
       Invertible 1x1 Convolutions. In _Advances in Neural Information Processing Systems
       (NeurIPS)_, 2018. https://arxiv.org/abs/1807.03039

  [2]: (ActNorm in the RNVP prior, B.2.) Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan Li, Youjian
       Zhao, Dan Pei. On the Necessity and Effectiveness of Learning the Prior of Variational
       Auto- Encoder. _arXiv preprint arXiv:1905.13452_, 2019. https://arxiv.org/abs/1905.13452
  """

  def __init__(self, event_size, validate_args=False, name="act_norm"):
    """Args:
      event_size: d, the size of the last axis.
      validate_args: passed to `tfb.Bijector`.
      name: bijector (and variable scope) name.

    Raises:
      ValueError: event_size < 1.
    """
    parameters = dict(locals())
    if int(event_size) < 1:
      raise ValueError(f"ActNorm event_size must be >= 1, got {event_size}.")
    self.event_size = int(event_size)
    self.bias = tf.Variable(tf.zeros([self.event_size]), name="bias")
    self.log_scale = tf.Variable(tf.zeros([self.event_size]), name="log_scale")
    self.initialized = tf.Variable(False, trainable=False, name="initialized")
    super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True,
                     validate_args=validate_args, parameters=parameters, name=name)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  def initialize(self, x, overwrite=True):
    """Data-dependent initialisation: forward(x) gets zero mean and unit variance per dimension.

    bias = -mean(x), log_scale = -log(std(x)) with moments over all axes but the last. Works
    eagerly and inside `tf.function`.

    Args:
      x: [..., d] a batch (e.g. posterior samples, or the outputs of the preceding bijector).
      overwrite: if False and `initialized` is already True, the variables are left unchanged.

    Returns:
      [..., d] the ActNorm outputs for x after (possibly) initialising.

    Raises:
      ValueError: x has rank < 2 (no batch to take moments over) or a last axis != d.
    """
    x = tf.convert_to_tensor(x, dtype=self.bias.dtype)
    if x.shape.rank is None or x.shape.rank < 2 or x.shape[-1] != self.event_size:
      raise ValueError(f"ActNorm.initialize needs a batch [N, {self.event_size}], got shape "
                       f"{x.shape}.")
    mean, variance = tf.nn.moments(x, axes=list(range(x.shape.rank - 1)))
    bias, log_scale = -mean, -0.5 * tf.math.log(variance + _VARIANCE_EPSILON)
    if not overwrite:
      bias = tf.where(self.initialized, self.bias, bias)
      log_scale = tf.where(self.initialized, self.log_scale, log_scale)
    self.bias.assign(bias)
    self.log_scale.assign(log_scale)
    self.initialized.assign(True)
    caching.clear_caches([self])  # results cached with the old values are stale now
    # Computed directly rather than through `forward`, whose cache would hold on to x.
    return (x + self.bias) * tf.exp(self.log_scale)

  def _forward(self, x):
    return (x + self.bias) * tf.exp(self.log_scale)

  def _inverse(self, y):
    return y * tf.exp(-self.log_scale) - self.bias

  def _forward_log_det_jacobian(self, x):
    del x
    return tf.reduce_sum(self.log_scale)

  def _inverse_log_det_jacobian(self, y):
    del y
    return -tf.reduce_sum(self.log_scale)
