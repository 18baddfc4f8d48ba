"""How good a trained model's prior samples look: N samples drawn through the prior, decoded
to Bernoulli means (`Prior.decode`) and scored against N test images with the data set's
classifier (`evaluation.sample_quality`, `evaluation.classifier`).

Samplers (`samplers`): every prior's own, `Prior.sample_with_statistics` (what the export's
`sample` signature draws: exact rejection sampling for LARS, SIR with M = num_proposals for
NCP, the aggregate-posterior bank for the implicit prior, ancestral sampling for the others),
whose metrics have the plain keys (`frechet_distance_mnist_classifier`, ...); density-ratio
priors (NCP, hierarchical NCP, implicit) also Langevin dynamics
(`DensityRatioPrior.langevin_sample`), keys suffixed `_langevin`.

Used by `python -m trainers.evaluate_samples` and, with `train.sample_quality = True`, by the
final evaluation of a training run (`training.runner.Runner.evaluate`).
"""
import time

import numpy as np
import tensorflow as tf

from tfp_priors import checks
from tfp_priors.data import registry
from tfp_priors.evaluation import classifier as classifier_lib
from tfp_priors.evaluation import sample_quality
from tfp_priors.priors import DensityRatioPrior

LANGEVIN_STEP_SIZE = 0.01  # lambda of Aneja et al. Sec. 4.3 (the paper gives none)
LANGEVIN_STEPS = 1000  # the most LD iterations of Aneja et al. Table 8
DECODE_CHUNK = 1000  # latents decoded per call
LANGEVIN = "_langevin"


def samplers(prior, langevin_step_size=LANGEVIN_STEP_SIZE, langevin_steps=LANGEVIN_STEPS):
  """{key suffix: fn(num_samples, seed [2]) -> z [num_samples, d]} of the ways to sample
  `prior`: '' (its own sampler, `sample_with_statistics`) and, for a `DensityRatioPrior`,
  '_langevin' (`langevin_sample` with the given step size and number of steps)."""
  draws = {"": lambda n, seed: prior.sample_with_statistics(n, seed=seed)[0]}
  if isinstance(prior, DensityRatioPrior):
    langevin = tf.function(lambda n, seed: prior.langevin_sample(
        n, langevin_step_size, langevin_steps, seed=seed))
    draws[LANGEVIN] = lambda n, seed: langevin(tf.constant(n, tf.int32), seed)
  return draws


def decode(model, prior, z, seed=0, chunk_size=DECODE_CHUNK):
  """Bernoulli means `prior.decode(model, z)` of latents z [N, d], `chunk_size` at a time
  (chunk i with the stateless seed [seed, i]). Returns float32 numpy [N, D]."""
  chunks = [prior.decode(model, z[i:i + chunk_size],
                         seed=tf.constant([seed, i // chunk_size], tf.int32)).numpy()
            for i in range(0, int(z.shape[0]), chunk_size)]
  return np.concatenate(chunks).astype(np.float32)


def load_test_images(dataset, data_dir=None, allow_download=True):
  """The test split of a registered data set as its loader returns it: grey levels in [0, 1]
  for the dynamically binarized ones (the Bernoulli means, the scale of decoded samples),
  the binary images of static MNIST. Returns float32 numpy [M, D]."""
  return registry.get_spec(dataset).loader(data_dir, allow_download)["test"]


def check_settings(num_samples, k=sample_quality.NEAREST_NEIGHBORS,
                   langevin_step_size=LANGEVIN_STEP_SIZE, langevin_steps=LANGEVIN_STEPS,
                   prefix="--"):
  """Raises BadSettingError (one line, naming the setting `prefix`+name) for num_samples
  (None or an integer > k) or k below 1, a step size <= 0 or negative steps."""
  checks.integer(f"{prefix}k", k, minimum=1)
  checks.integer(f"{prefix}num_samples", num_samples, minimum=k + 1, optional=True)
  checks.number(f"{prefix}langevin_step_size", langevin_step_size, positive=True)
  checks.integer(f"{prefix}langevin_steps", langevin_steps, minimum=0)


def number_of_samples(num_samples, num_test, name="--num_samples"):
  """`num_samples`, or all `num_test` test images for None.

  Raises:
    ValueError: more samples than test images (each sample set is compared with as many
      test images).
  """
  if num_samples is None:
    return num_test
  if num_samples > num_test:
    raise ValueError(f"{name}={num_samples} is more than the {num_test} test images the "
                     f"samples are compared with; pass {name}={num_test} or fewer.")
  return num_samples


def write_summaries(results, step, prefix="samples/"):
  """TensorBoard scalars `samples/<key>` (a class histogram: `samples/<key>/<class>`) at
  `step`, into the default summary writer."""
  for key, value in results.items():
    if isinstance(value, (list, tuple)):
      for c, fraction in enumerate(value):
        tf.summary.scalar(f"{prefix}{key}/{c}", fraction, step=step)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      tf.summary.scalar(f"{prefix}{key}", value, step=step)


def evaluate_samples(model, prior, dataset, num_samples=None, seed=0, data_dir=None,
                     allow_download=True, classifier=None, cache_dir=None,
                     k=sample_quality.NEAREST_NEIGHBORS, langevin_step_size=LANGEVIN_STEP_SIZE,
                     langevin_steps=LANGEVIN_STEPS, step=None, log_fn=None):
  """Sample-quality metrics of a trained model and prior (see the module docstring).

  Args:
    model: the trained `LatentVariableModel`. prior: its trained `Prior` (after `finalize`).
    dataset: the registered data set it was trained on ('dynamic_mnist', 'static_mnist',
      'fashion_mnist').
    num_samples: N samples per sampler, compared with the first N test images (None: all).
    seed: int; the samplers' stateless seeds are [seed, 0], the decoder's [seed, chunk].
    data_dir, allow_download: where the test images (and the classifier's training data)
      are found (the run's make_datasets.data_dir and allow_download).
    classifier: a `classifier.Classifier` (None: `classifier.load_classifier(dataset)`,
      trained once and cached in `cache_dir`).
    k: neighbours of precision and recall. langevin_step_size, langevin_steps: Langevin
      dynamics of density-ratio priors.
    step: the training step of the TensorBoard scalars `samples/<key>` (None: none written).
    log_fn: fn(str) for what it does, or None.

  Returns:
    dict for metrics.json: `sample_quality.sample_quality`'s keys for each sampler (suffix ''
    or '_langevin'), and sample_quality_num_samples, sample_quality_k (and, with Langevin,
    sample_quality_langevin_step_size and sample_quality_langevin_steps).

  Raises:
    ValueError: a data set without a classifier, more samples than test images, bad
      settings (`check_settings`).
    DatasetNotFoundError: the test images or the classifier's training data are missing.
  """
  check_settings(num_samples, k, langevin_step_size, langevin_steps, prefix="")
  classifier_lib.classifier_name(dataset)
  real = load_test_images(dataset, data_dir, allow_download)
  num_samples = number_of_samples(num_samples, len(real), name="num_samples")
  if classifier is None:
    classifier = classifier_lib.load_classifier(dataset, cache_dir=cache_dir, data_dir=data_dir,
                                                allow_download=allow_download, log_fn=log_fn)
  results = {"sample_quality_num_samples": num_samples, "sample_quality_k": k}
  for suffix, draw in samplers(prior, langevin_step_size, langevin_steps).items():
    start = time.perf_counter()
    z = draw(num_samples, tf.constant([seed, 0], tf.int32))
    images = decode(model, prior, z, seed)
    scores = sample_quality.sample_quality(images, real[:num_samples], classifier, k)
    results.update({key + suffix: value for key, value in scores.items()})
    if suffix == LANGEVIN:
      results.update(sample_quality_langevin_step_size=float(langevin_step_size),
                     sample_quality_langevin_steps=int(langevin_steps))
    if log_fn:
      name = classifier.feature_name
      kind = "Langevin" if suffix == LANGEVIN else "prior"
      log_fn(f"{kind} samples (N = {num_samples}, {time.perf_counter() - start:.0f} s): "
             f"Fréchet distance {scores[f'frechet_distance_{name}']:.3f}, precision "
             f"{scores[f'precision_{name}']:.3f}, recall {scores[f'recall_{name}']:.3f}, "
             f"predictive entropy {scores[f'predictive_entropy_{name}']:.3f} nats "
             f"({name} features)")
  if step is not None:
    write_summaries(results, step)
  return results
