"""Sample-quality metrics of decoded prior samples in a fixed classifier's feature space.

Samples of the prior that fall where the aggregate posterior q(z) has no mass ("prior holes")
decode to poor images (Bauer & Mnih 2019; Aneja et al. 2021, who measure sample quality with
FID). These metrics compare N generated images with N real test images through the
penultimate-layer features and the class probabilities of `evaluation.classifier` (an MNIST
or Fashion-MNIST convnet, not Inception: the Fréchet distance here is not comparable with
published FIDs):

  * `frechet_distance`: the Fréchet distance of Gaussians fitted to the two feature sets
    (Heusel et al. 2017), lower is better;
  * `precision_recall`: improved precision (the fraction of generated samples inside the
    real images' k-NN manifold) and recall (the fraction of real images inside the generated
    samples' manifold) of Kynkäänniemi et al. (2019), k = 3; higher is better;
  * `class_statistics`: the classifier's mean predictive entropy of the samples (nats; an
    image between classes has a high one), the histogram of their predicted classes and its
    entropy and KL divergence to the uniform histogram (nats; mode dropping).

`sample_quality` computes them all and names them with the classifier
(`frechet_distance_mnist_classifier`, ...).
"""
import collections
import math
import warnings

import numpy as np
from scipy import linalg
from scipy import special
from scipy import stats

PrecisionRecall = collections.namedtuple("PrecisionRecall", ["precision", "recall"])
ClassStatistics = collections.namedtuple(
    "ClassStatistics", ["predictive_entropy", "histogram", "histogram_entropy", "kl_to_uniform"])

NEAREST_NEIGHBORS = 3  # k of Kynkäänniemi et al. (2019), Sec. 3
BATCH_SIZE = 1000  # rows of a pairwise-distance block


def _features(features, name):
  features = np.asarray(features, np.float64)
  if features.ndim != 2:
    raise ValueError(f"{name} must be a [N, F] matrix of features; got shape {features.shape}.")
  return features


def gaussian_frechet_distance(mean_a, covariance_a, mean_b, covariance_b, eps=1e-6):
  """Fréchet (2-Wasserstein) distance between N(mean_a, covariance_a) and N(mean_b,
  covariance_b), squared.

  d^2 = ||mean_a - mean_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}), in float64, with the
  matrix square root of `scipy.linalg.sqrtm` (its real part). As in the reference FID code
  (Heusel et al.'s TTUR, pytorch-fid): a singular product (e.g. features that are 0 on every
  image, dead ReLUs) is accepted when its square root is finite, else retried with eps I
  added to both covariances; an imaginary part above 1e-3 on the diagonal of the square root
  is an error.

  Args:
    mean_a, mean_b: [F] means. covariance_a, covariance_b: [F, F] symmetric positive
      semi-definite covariances.
    eps: the ridge added when the product is singular.

  Returns:
    float >= 0 (up to round-off), in squared feature units.

  Raises:
    ValueError: shapes that do not match, or a square root with a large imaginary part.

  #### Examples

  ```python
  from tfp_priors.evaluation import sample_quality

  d = sample_quality.gaussian_frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
  assert abs(d - (2 + 2 * (2 - 1) ** 2)) < 1e-9   # ||1||^2 + sum (sqrt(4) - sqrt(1))^2
  ```

  #### References

  [1]: Martin Heusel, Hubert Ramsauer, Thomas Unterthiner, Bernhard Nessler, Sepp Hochreiter.
       GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium. In
       _NeurIPS_, 2017 (Eq. 6). https://arxiv.org/abs/1706.08500
  """
  mean_a, mean_b = np.atleast_1d(mean_a).astype(np.float64), np.atleast_1d(mean_b).astype(
      np.float64)
  covariance_a = np.atleast_2d(covariance_a).astype(np.float64)
  covariance_b = np.atleast_2d(covariance_b).astype(np.float64)
  size = mean_a.shape[0]
  if not (mean_b.shape == (size,) and covariance_a.shape == covariance_b.shape == (size, size)):
    raise ValueError(f"means [F] and covariances [F, F] of one size F are needed; got "
                     f"{mean_a.shape}, {covariance_a.shape}, {mean_b.shape}, {covariance_b.shape}.")
  with warnings.catch_warnings():  # a singular product: retried below if not finite
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    root = linalg.sqrtm(covariance_a @ covariance_b)
  if not np.isfinite(root).all():
    ridge = eps * np.eye(size)
    root = linalg.sqrtm((covariance_a + ridge) @ (covariance_b + ridge))
  if np.iscomplexobj(root):
    if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
      raise ValueError(f"the square root of the covariance product has an imaginary part of "
                       f"{np.max(np.abs(root.imag)):.3g}; the covariances are not PSD.")
    root = root.real
  diff = mean_a - mean_b
  return float(diff @ diff + np.trace(covariance_a) + np.trace(covariance_b)
               - 2.0 * np.trace(root))


def frechet_distance(features_a, features_b, eps=1e-6):
  """The FID-style Fréchet distance of two feature sets: `gaussian_frechet_distance` of the
  Gaussians with their sample means and covariances (np.cov, N - 1 in the denominator).

  Args:
    features_a: [N, F] features (e.g. of generated images). features_b: [M, F] (of real ones).
    eps: see `gaussian_frechet_distance`.

  Returns:
    float >= 0 (up to round-off), squared feature units; 0 for equal sets. It is biased
    upwards at small N: compare figures at equal N.

  Raises:
    ValueError: not [N, F] matrices of one F, or fewer than 2 rows in either.

  #### Examples

  ```python
  from tfp_priors.evaluation import sample_quality

  rng = np.random.RandomState(0)
  real = rng.normal(size=[2000, 4])
  assert sample_quality.frechet_distance(real, real) < 1e-6
  assert sample_quality.frechet_distance(real + 3.0, real) > 35.9   # ||(3, 3, 3, 3)||^2 = 36
  ```

  #### References

  [1]: Martin Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local
       Nash Equilibrium. In _NeurIPS_, 2017. https://arxiv.org/abs/1706.08500
  """
  features_a, features_b = _features(features_a, "features_a"), _features(features_b,
                                                                          "features_b")
  if features_a.shape[1] != features_b.shape[1] or min(len(features_a), len(features_b)) < 2:
    raise ValueError(f"two [N, F] feature sets of one F with N >= 2 are needed; got "
                     f"{features_a.shape} and {features_b.shape}.")
  return gaussian_frechet_distance(features_a.mean(0), np.cov(features_a, rowvar=False),
                                   features_b.mean(0), np.cov(features_b, rowvar=False), eps)


def _squared_distances(a, b):
  """[len(a), len(b)] squared Euclidean distances, ||a||^2 + ||b||^2 - 2 a b^T (BLAS), >= 0."""
  return np.maximum(np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * a @ b.T, 0.0)


def manifold_radii(features, k=NEAREST_NEIGHBORS, batch_size=BATCH_SIZE):
  """Squared distance of each feature vector to its k-th nearest other one, the radius of
  its ball in the k-NN manifold of Kynkäänniemi et al. (2019, Eq. 1).

  Args:
    features: [N, F], N > k. k: int >= 1. batch_size: rows per distance block.

  Returns:
    [N] float64 squared distances.

  Raises:
    ValueError: N <= k or k < 1.
  """
  features = _features(features, "features")
  if k < 1 or len(features) <= k:
    raise ValueError(f"the k-NN manifold needs k >= 1 and more than k = {k} points; got "
                     f"{len(features)}.")
  radii = [np.partition(_squared_distances(features[i:i + batch_size], features), k, axis=1)[:, k]
           for i in range(0, len(features), batch_size)]  # index 0: the point itself
  return np.concatenate(radii)


def inside_manifold(points, features, radii, batch_size=BATCH_SIZE):
  """Whether each point lies in the union of the balls of the manifold: f(p) of Kynkäänniemi
  et al. (2019, Eq. 1), ||p - x_i||^2 <= radii_i for some i.

  Args:
    points: [M, F]. features: [N, F] the manifold's points. radii: [N] their squared radii.
    batch_size: rows per distance block.

  Returns:
    [M] bool.
  """
  points, features = _features(points, "points"), _features(features, "features")
  radii = np.asarray(radii, np.float64)
  return np.concatenate([
      np.any(_squared_distances(points[i:i + batch_size], features) <= radii[None, :], axis=1)
      for i in range(0, len(points), batch_size)] or [np.zeros([0], bool)])


def precision_recall(real_features, generated_features, k=NEAREST_NEIGHBORS,
                     batch_size=BATCH_SIZE):
  """Improved precision and recall of Kynkäänniemi et al. (2019), in k-NN feature manifolds.

  precision = the fraction of generated samples inside the real features' manifold, recall =
  the fraction of real samples inside the generated features' manifold (Eq. 2), each ball
  centred on a point with the distance to its k-th nearest neighbour in its own set as radius
  (`manifold_radii`). Pairwise distances are computed in blocks of `batch_size` rows.

  Args:
    real_features: [N, F]. generated_features: [M, F]; N, M > k.
    k: neighbours (the paper: 3). batch_size: rows per distance block (memory: batch_size x
      max(N, M) float64).

  Returns:
    `PrecisionRecall(precision, recall)`, floats in [0, 1].

  Raises:
    ValueError: not [N, F] matrices of one F, N or M <= k, or k < 1.

  #### Examples

  ```python
  from tfp_priors.evaluation import sample_quality

  real = np.array([[0.0], [1.0], [2.0], [3.0]])
  fake = np.array([[0.5], [2.5], [10.0]])
  result = sample_quality.precision_recall(real, fake, k=1)
  # Real radii 1 (each point's nearest neighbour is 1 away): 0.5 and 2.5 are inside, 10 not.
  # Fake radii: 2, 2 and 7.5; every real point lies within 2 of 0.5 or 2.5.
  assert result.precision == 2 / 3 and result.recall == 1.0
  ```

  #### References

  [1]: Tuomas Kynkäänniemi, Tero Karras, Samuli Laine, Jaakko Lehtinen, Timo Aila. Improved
       Precision and Recall Metric for Assessing Generative Models. In _NeurIPS_, 2019.
       https://arxiv.org/abs/1904.06991
  """
  real = _features(real_features, "real_features")
  generated = _features(generated_features, "generated_features")
  if real.shape[1] != generated.shape[1]:
    raise ValueError(f"real and generated features differ in size: {real.shape}, "
                     f"{generated.shape}.")
  real_radii = manifold_radii(real, k, batch_size)
  generated_radii = manifold_radii(generated, k, batch_size)
  return PrecisionRecall(
      float(np.mean(inside_manifold(generated, real, real_radii, batch_size))),
      float(np.mean(inside_manifold(real, generated, generated_radii, batch_size))))


def class_statistics(probabilities):
  """The classifier's view of a set of samples: how sure it is and which classes they get.

  Args:
    probabilities: [N, C] class probabilities of N >= 1 samples (rows summing to 1).

  Returns:
    `ClassStatistics`: predictive_entropy (the mean over samples of -sum_c p_c log p_c,
    nats, in [0, log C]), histogram ([C] fractions of the samples whose most probable class
    is c), histogram_entropy (its entropy, nats) and kl_to_uniform (KL(histogram ||
    uniform) = log C - histogram_entropy, nats; 0 when every class is equally frequent).

  Raises:
    ValueError: not an [N, C] matrix with N >= 1.

  #### Examples

  ```python
  from tfp_priors.evaluation import sample_quality

  result = sample_quality.class_statistics(np.array([[0.5, 0.5], [1.0, 0.0]]))
  assert abs(result.predictive_entropy - np.log(2) / 2) < 1e-12
  assert list(result.histogram) == [1.0, 0.0] and result.kl_to_uniform == np.log(2)
  ```
  """
  probabilities = np.asarray(probabilities, np.float64)
  if probabilities.ndim != 2 or len(probabilities) < 1:
    raise ValueError(f"probabilities must be an [N, C] matrix with N >= 1; got shape "
                     f"{probabilities.shape}.")
  num_classes = probabilities.shape[1]
  histogram = np.bincount(np.argmax(probabilities, axis=1), minlength=num_classes)
  histogram = histogram / len(probabilities)
  entropy = float(stats.entropy(histogram))
  return ClassStatistics(float(np.mean(np.sum(special.entr(probabilities), axis=1))),
                         histogram, entropy, math.log(num_classes) - entropy)


def sample_quality(generated_images, real_images, classifier, k=NEAREST_NEIGHBORS,
                   batch_size=BATCH_SIZE):
  """All the metrics of generated images against real ones, in a classifier's features.

  Args:
    generated_images: [N, 784] grey levels in [0, 1] (decoded Bernoulli means).
    real_images: [M, 784] test images of the same data set (M = N for comparable figures).
    classifier: an `evaluation.classifier.Classifier`.
    k: neighbours of precision and recall. batch_size: rows per distance block.

  Returns:
    dict, with `name` = classifier.feature_name ('mnist_classifier', ...):
    frechet_distance_<name> (squared feature units), precision_<name>, recall_<name>
    (fractions), predictive_entropy_<name>, class_histogram_entropy_<name>,
    class_kl_to_uniform_<name> (nats), class_histogram_<name> (list of C fractions).

  Raises:
    ValueError: images not [N, 784], N or M <= k.
  """
  generated_features, probabilities = classifier.predict(generated_images)
  real_features, _ = classifier.predict(real_images)
  result = precision_recall(real_features, generated_features, k, batch_size)
  classes = class_statistics(probabilities)
  name = classifier.feature_name
  return {
      f"frechet_distance_{name}": frechet_distance(generated_features, real_features),
      f"precision_{name}": result.precision,
      f"recall_{name}": result.recall,
      f"predictive_entropy_{name}": classes.predictive_entropy,
      f"class_histogram_{name}": [float(v) for v in classes.histogram],
      f"class_histogram_entropy_{name}": classes.histogram_entropy,
      f"class_kl_to_uniform_{name}": classes.kl_to_uniform,
  }
