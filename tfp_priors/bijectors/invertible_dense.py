"""Invertible dense layer: y = W x with W = P L U learned in LU form.

Source: Kingma & Dhariwal (2018), Glow, section 3.2 (invertible 1x1 convolution, LU
decomposition W = P L (U + diag(s)), initialised from a random rotation); Xu et al. (2019),
appendix B.2, use its dense version ("InvertibleDense") in every block of their Real NVP prior.
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


def random_orthogonal(size, seed):
  """A random orthogonal matrix, deterministic given the seed.

  Q of the QR decomposition of a standard Gaussian matrix, with column signs fixed so that it is
  Haar-distributed (Mezzadri 2007).

  Returns:
    [size, size] float64 numpy array Q with Q^T Q = I.
  """
  rng = np.random.default_rng(seed)
  q, r = np.linalg.qr(rng.standard_normal([size, size]))
  return q * np.sign(np.diag(r))


def invertible_dense(event_size, seed=0, name="invertible_dense"):
  """Builds Glow's invertible dense layer (invertible 1x1 convolution) as a `tfb.ScaleMatvecLU`.

  The "InvertibleDense" step of every block of `XuRealNVPPrior` (Xu et al. 2019, appendix
  B.2): the dense form of Glow's invertible 1x1 convolution with its LU parametrisation
  (Kingma & Dhariwal 2018, Sec. 3.2).

  forward(x) = W x, W = P L U, with P a permutation (fixed after construction), L unit lower
  triangular and U upper triangular, stored together in one trainable [d, d] tf.Variable
  `lower_upper` (as `tf.linalg.lu` returns them). W starts as a random orthogonal matrix, so
  the initial log |det W| is 0 nats. The permutation is a non-trainable int32 tf.Variable, so a
  checkpoint carries it.

  Args:
    event_size: d >= 1.
    seed: integer seed of the initial rotation.
    name: bijector name.

  Returns:
    `tfb.ScaleMatvecLU` on x [..., d]; forward_log_det_jacobian = sum log |diag(U)|, constant in x.

  Raises:
    ValueError: event_size < 1.

  #### Mathematical details

  ```none
  W = P L U,  forward(x) = W x,  log |det W| = sum_i log |U_ii|,
  W_0 = Q, a Haar-random orthogonal matrix (`random_orthogonal`, Mezzadri 2007): log |det W_0| = 0.
  ```

  #### Examples

  ```python
  from tfp_priors.bijectors import invertible_dense

  dense = invertible_dense(3, seed=0)
  x = tf.random.stateless_normal([5, 3], seed=[0, 1])
  np.testing.assert_allclose(dense.inverse(dense.forward(x)), x, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(dense.forward_log_det_jacobian(x, event_ndims=1), 0.0, atol=1e-5)
  assert len(dense.trainable_variables) == 1 and dense.forward(x).shape == (5, 3)
  ```

  #### References

  [1]: (Invertible 1x1 convolution with an LU decomposition, Sec. 3.2.) Diederik P. Kingma, Prafulla
       Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. In _Advances in Neural
       Information Processing Systems (NeurIPS)_, 2018. https://arxiv.org/abs/1807.03039

  [2]: (Invertible dense layers in the RNVP prior, B.2.) Haowen Xu, Wenxiao Chen, Jinlin Lai, Zhihan
       Li, Youjian Zhao, Dan Pei. On the Necessity and Effectiveness of Learning the Prior of
       Variational Auto-Encoder. _arXiv preprint arXiv:1905.13452_, 2019.
       https://arxiv.org/abs/1905.13452

  [3]: Francesco Mezzadri. How to generate random matrices from the classical compact
       groups. _Notices of the American Mathematical Society_, 54(5):592-604, 2007.
       https://arxiv.org/abs/math-ph/0609050
  """
  if int(event_size) < 1:
    raise ValueError(f"invertible_dense event_size must be >= 1, got {event_size}.")
  lower_upper, permutation = tf.linalg.lu(tf.constant(random_orthogonal(int(event_size), seed)))
  return tfb.ScaleMatvecLU(
      lower_upper=tf.Variable(tf.cast(lower_upper, tf.float32), name="lower_upper"),
      permutation=tf.Variable(permutation, trainable=False, name="permutation"),
      name=name)


def matrix_and_log_det(dense):
  """W = P L U and log |det W| of an `invertible_dense` bijector, for a whole batch at once.

  forward(x) = x W^T for rows x [N, d]: one [N, d] x [d, d] product, where TFP's
  `ScaleMatvecLU.forward` broadcasts W against every row (a batched matrix-vector product).

  Args:
    dense: the `tfb.ScaleMatvecLU` of `invertible_dense`.

  Returns:
    (W [d, d], log |det W| = sum_i log |U_ii| scalar nats), from the current variables.
  """
  lower_upper = tf.convert_to_tensor(dense.lower_upper)
  matrix = tfp.math.lu_reconstruct(lower_upper, dense.permutation)
  return matrix, tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(lower_upper))))
