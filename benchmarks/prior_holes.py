r"""Sample quality beside test NLL for runs of several priors at one equal budget.

  python -m benchmarks.prior_holes --runs_root=runs/repro/steps10000 --output=holes.md

`--row` (repeated) names the run directories under --runs_root (label=subdirectory; by
default the ten priors of the LARS VAE on dynamic MNIST as `trainers.reproduce` names them).
A run whose metrics.json has no sample-quality keys yet is scored first with
`python -m trainers.evaluate_samples --workdir=<run>` (N = --num_samples prior samples against
as many test images, in the MNIST classifier's features); then the table: test NLL, its gain
over the N(0, I) row, and per sampler the Fréchet distance, improved precision and recall
(k = 3) and the classifier's mean predictive entropy and the class histogram's KL to uniform.
The first row is the test set against itself (its first half against its second), the floor
of every figure. Under the table: Spearman's rank correlation of NLL and Fréchet distance over
the priors' own samplers, i.e. whether a better NLL goes with fewer samples in holes.
"""
import os
import subprocess
import sys

from absl import app
from absl import flags
from scipy import stats

from tfp_priors.evaluation import classifier as classifier_lib
from tfp_priors.evaluation import prior_samples
from tfp_priors.evaluation import sample_quality
from tfp_priors.training import workdir as workdir_lib

ROWS = ("N(0, I)=vae_standard_dynamic_mnist", "MoG=mog_vae_dynamic_mnist",
        "VampPrior=vamp_vae_dynamic_mnist", "RealNVP=realnvp_vae_dynamic_mnist",
        "MAF=maf_vae_dynamic_mnist", "LARS=lars_vae_dynamic_mnist",
        "LARS over RealNVP=lars_realnvp_vae_dynamic_mnist", "NCP=ncp_vae_dynamic_mnist",
        "implicit=implicit_vae_dynamic_mnist", "SNIS=snis_vae_dynamic_mnist")
FEATURES = "mnist_classifier"
SAMPLERS = {"": None, prior_samples.LANGEVIN: "Langevin"}  # key suffix: shown name

flags.DEFINE_string("runs_root", "runs/repro/steps10000", "Directory holding the run dirs.")
flags.DEFINE_multi_string("row", list(ROWS), "label=subdirectory of --runs_root, one flag per "
                          "row, in table order; the first is the baseline of the gains.")
flags.DEFINE_integer("num_samples", 10000, "Prior samples (and test images) per sampler.")
flags.DEFINE_string("output", None, "Also write the markdown to this file.")
FLAGS = flags.FLAGS


def scored_metrics(workdir, num_samples):
  """metrics.json of `workdir`, after `trainers.evaluate_samples` if it lacks the keys."""
  metrics = workdir_lib.read_metrics(workdir)
  if metrics is None:
    raise FileNotFoundError(f"{workdir_lib.path(workdir, workdir_lib.METRICS)} not found: "
                            "a finished run is needed.")
  if metrics.get("sample_quality_num_samples") != num_samples:
    subprocess.run([sys.executable, "-m", "trainers.evaluate_samples", f"--workdir={workdir}",
                    f"--num_samples={num_samples}"], check=True)
    metrics = workdir_lib.read_metrics(workdir)
  return metrics


def sampler_name(metrics, suffix):
  """How the row's samples were drawn."""
  if suffix:
    return SAMPLERS[suffix]
  return {"lars": "exact rejection", "ncp": "SIR", "implicit": "aggregate posterior",
          "snis": "exact (SNIS)"}.get(metrics["prior"], "exact")


def quality_cells(scores, suffix=""):
  """The markdown cells of one sampler's metrics (keys with `suffix`)."""
  def get(key):
    return scores[f"{key}_{FEATURES}{suffix}"]
  return (f"{get('frechet_distance'):.2f} | {get('precision'):.3f} | {get('recall'):.3f} | "
          f"{get('predictive_entropy'):.3f} | {get('class_kl_to_uniform'):.3f}")


def test_set_row(num_samples):
  """The test set's first half against its second: the floor of the metrics."""
  real = prior_samples.test_images("dynamic_mnist")
  half = min(num_samples, len(real)) // 2
  classifier = classifier_lib.load_classifier("dynamic_mnist")
  scores = sample_quality.sample_quality(real[:half], real[half:2 * half], classifier)
  return f"| test images (half vs half, {half}) | - | - | data | {quality_cells(scores)} |"


def table(rows, num_samples):
  """Markdown table of (label, metrics) rows and the rank correlation under it."""
  lines = ["| prior | test NLL | gain over N(0, I) | sampler | Fréchet distance | precision | "
           "recall | predictive entropy | class KL to uniform |", "|---" * 9 + "|",
           test_set_row(num_samples)]
  baseline = rows[0][1]["nll"]
  nll, frechet = [], []
  for label, metrics in rows:
    for suffix in SAMPLERS:
      if f"frechet_distance_{FEATURES}{suffix}" not in metrics:
        continue
      gain = "-" if label == rows[0][0] else f"{baseline - metrics['nll']:.2f}"
      lines.append(f"| {label} | {metrics['nll']:.2f} | {gain} | "
                   f"{sampler_name(metrics, suffix)} | {quality_cells(metrics, suffix)} |")
      if not suffix:
        nll.append(metrics["nll"])
        frechet.append(metrics[f"frechet_distance_{FEATURES}"])
  rho, p_value = stats.spearmanr(nll, frechet)
  lines += ["", f"Spearman's rank correlation of test NLL and Fréchet distance over the "
                f"{len(nll)} priors' own samplers: {rho:.2f} (p = {p_value:.2g}; "
                f"positive: a lower NLL goes with samples closer to the test images)."]
  return "\n".join(lines)


def main(argv):
  del argv
  rows = []
  for entry in FLAGS.row:
    label, _, subdir = entry.partition("=")
    rows.append((label, scored_metrics(os.path.join(FLAGS.runs_root, subdir),
                                       FLAGS.num_samples)))
  text = (f"N = {FLAGS.num_samples} prior samples (decoded Bernoulli means) against as many "
          f"test images, in the MNIST classifier's features; test NLL with K = "
          f"{rows[0][1].get('num_importance_samples')} importance samples, "
          f"{rows[0][1].get('num_steps')} steps.\n\n" + table(rows, FLAGS.num_samples))
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  app.run(main)
