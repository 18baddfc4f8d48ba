r"""Trains several configs at one equal budget and tabulates test NLL beside the papers' figures.

  python -m benchmarks.compare_priors --root=runs/table7 --num_steps=20000 \
      --configs=vae_standard,realnvp_vae,maf_vae,lars_vae,lars_realnvp_vae

Each config runs as `python -m trainers.run` in root/<config> (a finished run is reused, an
interrupted one resumes), then the metrics.json files are collected into root/table.md and
root/table.json: test NLL (K = 1000 importance samples), the paper's NLL and the gap, Z,
active units, ELBO, KL(q(z|x) || p(z)), KL(q(z|x) || p(z|x)) and training steps/s.
"""
import json
import os
import subprocess
import sys

from absl import app
from absl import flags

from tfp_priors.training import workdir as workdir_lib

flags.DEFINE_string("root", "runs/compare_priors", "Directory of the runs and the table.")
flags.DEFINE_list("configs", ["vae_standard", "realnvp_vae", "maf_vae", "lars_vae",
                              "lars_realnvp_vae"], "Gin configs (names in configs/).")
flags.DEFINE_integer("num_steps", 20000, "Training steps of every run (the equal budget).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra bindings for every run.")
FLAGS = flags.FLAGS

# Test NLL on dynamic MNIST after 10^7 steps: LARS Table 1 and Table D.4 ("Table 7").
PAPER_NLL = {"vae_standard": 84.97, "realnvp_vae": 81.86, "maf_vae": 81.58, "lars_vae": 83.04,
             "lars_realnvp_vae": 81.15, "hvae_standard": 82.66, "lars_hvae": 81.62}
PAPER_Z = {"lars_vae": 0.015, "lars_realnvp_vae": 0.027}


def run_config(config, workdir):
  """Trains, evaluates and exports one config unless workdir already has its metrics."""
  metrics = workdir_lib.read_metrics(workdir)
  if metrics and metrics.get("num_steps") == FLAGS.num_steps and "nll" in metrics:
    return metrics
  command = [sys.executable, "-m", "trainers.run", f"--gin_config={config}",
             f"--workdir={workdir}", f"--gin_bindings=train.num_steps={FLAGS.num_steps}"]
  command += [f"--gin_bindings={b}" for b in FLAGS.gin_bindings]
  print(" ".join(command), flush=True)
  subprocess.run(command, check=True)
  return workdir_lib.read_metrics(workdir)


def table(rows):
  """Markdown table of the collected metrics."""
  lines = ["| config | prior | test NLL | paper | gap | Z (paper) | active units | ELBO | "
           "KL(q‖p(z)) | KL(q‖p(z∣x)) | steps/s |",
           "|---" * 11 + "|"]
  for config, m in rows.items():
    paper = PAPER_NLL.get(config)
    paper_text, gap = (f"{paper}", f"{m['nll'] - paper:+.2f}") if paper else ("-", "-")
    z = f"{m['normalizer']:.4f}" if "normalizer" in m else "1"
    if config in PAPER_Z:
      z += f" ({PAPER_Z[config]})"
    lines.append(
        f"| {config} | {m['prior']} | {m['nll']:.2f} | {paper_text} | {gap} | {z} | "
        f"{m['active_units']} | {m['elbo']:.2f} | {m['kl']:.2f} | "
        f"{m.get('kl_posterior', float('nan')):.2f} | {m['train_steps_per_second']:.0f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  os.makedirs(FLAGS.root, exist_ok=True)
  rows = {c: run_config(c, os.path.join(FLAGS.root, c)) for c in FLAGS.configs}
  text = (f"Test NLL in nats (dynamic MNIST, K = 1000), {FLAGS.num_steps} steps each; the "
          f"papers train 10^7 steps.\n\n" + table(rows))
  with open(os.path.join(FLAGS.root, "table.md"), "w") as f:
    f.write(text + "\n")
  with open(os.path.join(FLAGS.root, "table.json"), "w") as f:
    json.dump(rows, f, indent=2, sort_keys=True)
  print(text)


if __name__ == "__main__":
  app.run(main)
