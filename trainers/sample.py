r"""Writes a PNG grid of samples drawn from an exported SavedModel.

  python -m trainers.sample --export_dir=runs/x/export --output=samples.png --num_samples=64

Uses only TensorFlow: the export carries its own sampling graph (exact LARS sampling). The
flags are checked before the export is loaded: a bad --output, a --num_samples whose grid would
not fit in one PNG (`max_num_samples`) or a missing export stop with a one-line error. Samples
are drawn CHUNK_SIZE at a time (`chunk_seeds`: the first chunk uses --seed itself).
"""
import math
import os
import sys

from absl import app
from absl import flags
import tensorflow as tf

from tfp_priors.data import files
from tfp_priors.evaluation.images import image_grid

FLAGS = flags.FLAGS


def define_flags():
  """Defines the CLI flags; only when run as a script, so that importing this module next to
  trainers.run (which defines --seed, ...) does not clash."""
  flags.DEFINE_string("export_dir", None, "SavedModel directory written by a training run.")
  flags.DEFINE_string("output", "samples.png", "PNG file to write.")
  flags.DEFINE_integer("num_samples", 64, "Number of samples (> 0).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_bool("means", True, "Show Bernoulli means (True) or binary draws (False).")


CHUNK_SIZE = 10000  # samples per call of the export's `sample` signature
IMAGE_SHAPE = (28, 28, 1)  # (H, W, C) of the largest images of the library's data sets
MAX_GRID_ELEMENTS = min(2**31 - 1, 2**30)  # int32 shapes; 1 GiB of uint8 held in memory
INT32 = (-2**31, 2**31 - 1)


class SampleError(ValueError):
  """Bad flags, or an export that cannot be sampled; the message is one line."""


def grid_elements(num_samples, image_shape=IMAGE_SHAPE):
  """Values of the uint8 grid of `num_samples` images of `image_shape` (`image_grid`)."""
  if num_samples < 1:
    return 0
  cols = math.isqrt(num_samples - 1) + 1  # ceil(sqrt(num_samples)), exactly
  rows = -(-num_samples // cols)
  height, width, channels = image_shape
  return rows * cols * height * width * channels


def max_num_samples(image_shape=IMAGE_SHAPE, max_elements=MAX_GRID_ELEMENTS):
  """The largest num_samples whose grid has at most `max_elements` values (grid_elements is
  non-decreasing in num_samples); 0 when one image is too large."""
  low, high = 0, max_elements // max(1, image_shape[0] * image_shape[1] * image_shape[2])
  while low < high:  # binary search, without computing sqrt of large numbers
    mid = (low + high + 1) // 2
    low, high = (mid, high) if grid_elements(mid, image_shape) <= max_elements else (low, mid - 1)
  return low


def check_num_samples(num_samples, image_shape=IMAGE_SHAPE):
  """Raises SampleError for num_samples < 1 or above `max_num_samples(image_shape)`."""
  if num_samples < 1:
    raise SampleError(f"--num_samples must be positive, got {num_samples}.")
  limit = max_num_samples(image_shape)
  if num_samples > limit:
    raise SampleError(
        f"--num_samples={num_samples} is too many for one PNG grid of {tuple(image_shape)} "
        f"images: at most {limit} (the grid is one image of at most {MAX_GRID_ELEMENTS} uint8 "
        f"values, 1 GiB); "
        f"pass --num_samples={limit} or less and write several PNGs with different --seed.")


def check_seed(seed):
  """Raises SampleError for a seed outside int32 (the signature's seed is an int32)."""
  if not INT32[0] <= seed <= INT32[1]:
    raise SampleError(f"--seed={seed} is not an int32; pass a seed in [{INT32[0]}, {INT32[1]}].")


def check_output(output):
  """Raises SampleError unless a PNG file can be written at `output` (local paths; URLs such
  as gs://... are left to TensorFlow): it is not a directory, and its folder exists or can be
  created in the nearest existing folder above it."""
  if "://" in output:
    return
  if not output or output.endswith(os.sep) or os.path.isdir(output):
    raise SampleError(f"--output={output!r} is a directory, not a file; pass a PNG path, e.g. "
                      f"--output={os.path.join(output or '.', 'samples.png')}.")
  folder = os.path.dirname(os.path.abspath(output))
  existing = files.nearest_existing(folder)
  if not os.path.isdir(existing):
    raise SampleError(f"--output={output}: {existing} is a file, so the folder {folder} cannot "
                      f"be created; pass an --output in a directory.")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise SampleError(f"--output={output}: the folder {existing} is not writable; pass an "
                      f"--output in a writable directory.")
  if os.path.isfile(output) and not os.access(output, os.W_OK):
    raise SampleError(f"--output={output} exists and is not writable; pass another --output.")


def check_export_dir(export_dir):
  """Raises SampleError unless `export_dir` holds a SavedModel (saved_model.pb{,txt})."""
  if not tf.saved_model.contains_saved_model(export_dir):
    raise SampleError(f"cannot load a SavedModel from {export_dir}: no saved_model.pb there; "
                      f"pass the export/ folder of a training run (runs/<name>/export).")


def chunk_seeds(seed, num_chunks):
  """`num_chunks` distinct int32 seeds: `seed` first (so one chunk is the single call), then
  seeds drawn deterministically from [seed, k], k = 1, 2, ... (stateless_uniform)."""
  seeds = [int(seed)]
  k = 0
  while len(seeds) < num_chunks:
    k += 1
    drawn = int(tf.random.stateless_uniform([], [seed, k], minval=None, maxval=None,
                                            dtype=tf.int32))
    if drawn not in seeds:
      seeds.append(drawn)
  return seeds


def _chunk(signature, num_samples, seed, means):
  """uint8 [num_samples, H, W, C] images of one signature call (binary draws unless means)."""
  images = signature(num_samples=tf.constant(num_samples, tf.int32),
                     seed=tf.constant(seed, tf.int32))["images"]
  if not means:
    images = tf.cast(tf.random.stateless_uniform(tf.shape(images), [seed, 1]) < images,
                     tf.float32)
  return tf.cast(tf.round(images * 255), tf.uint8)


def _load_sample_signature(export_dir):
  """The export's `sample` signature; SampleError if it cannot be loaded or has none."""
  try:
    loaded = tf.saved_model.load(export_dir)
  except OSError as e:
    reason = " ".join(str(e).split())
    raise SampleError(f"cannot load a SavedModel from {export_dir}: {reason}") from None
  if "sample" not in loaded.signatures:
    raise SampleError(f"the SavedModel in {export_dir} has no 'sample' signature (it has "
                      f"{sorted(loaded.signatures)}); pass the export/ of a training run.")
  return loaded.signatures["sample"]


def sample_grid(export_dir, num_samples, seed, means=True, chunk_size=CHUNK_SIZE):
  """Returns a uint8 [rows*H, cols*W, C] grid of samples from the export.

  Draws ceil(num_samples / chunk_size) chunks with `chunk_seeds(seed, ...)`; with
  num_samples <= chunk_size, one call with `seed`.

  Raises:
    SampleError: num_samples or seed out of range, no loadable export or no `sample`
      signature (all checked before sampling), or images too large for one grid.
  """
  check_num_samples(num_samples)
  check_seed(seed)
  check_export_dir(export_dir)
  signature = _load_sample_signature(export_dir)
  sizes = [min(chunk_size, num_samples - start) for start in range(0, num_samples, chunk_size)]
  seeds = chunk_seeds(seed, len(sizes))
  chunks = [_chunk(signature, sizes[0], seeds[0], means)]
  check_num_samples(num_samples, chunks[0].shape[1:])  # the export's own image shape
  chunks += [_chunk(signature, n, s, means) for n, s in zip(sizes[1:], seeds[1:])]
  return image_grid(tf.concat(chunks, 0) if len(chunks) > 1 else chunks[0])


def write_samples(export_dir, output, num_samples, seed=0, means=True, chunk_size=CHUNK_SIZE):
  """Writes the PNG grid of `sample_grid` to `output`; returns `output`.

  Every flag is checked before the export is loaded.

  Raises:
    SampleError: see `check_output` and `sample_grid`; the PNG cannot be written.
  """
  check_num_samples(num_samples)
  check_seed(seed)
  check_output(output)
  grid = sample_grid(export_dir, num_samples, seed, means, chunk_size)
  try:
    tf.io.write_file(output, tf.io.encode_png(grid))
  except (OSError, tf.errors.OpError) as e:
    reason = " ".join(str(getattr(e, "message", e)).split())
    raise SampleError(f"cannot write {output}: {reason}") from None
  return output


def main(argv):
  del argv
  if not FLAGS.export_dir:
    raise app.UsageError("--export_dir is required.")
  try:
    write_samples(FLAGS.export_dir, FLAGS.output, FLAGS.num_samples, FLAGS.seed, FLAGS.means)
  except SampleError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  print(f"wrote {FLAGS.num_samples} samples to {FLAGS.output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
