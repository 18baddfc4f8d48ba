r"""Retrains the rows of one of the papers' tables and writes ours vs the paper's as markdown.

  python -m trainers.reproduce --table=lars_table1 --workdir=runs/repro \
      [--num_steps=N] [--rows=vae_*,lars_vae_*] [--num_importance_samples=K] \
      [--eval_max_examples=N] [--output=FILE.md]

Each row trains with `tfp_priors.training.runner.train` from its gin configs
(trainers/reproduce_tables.py)
in <workdir>/steps<N>/<run>/ and is evaluated there (metrics.json); the markdown table (row,
configs, ours, paper, difference = ours - paper, steps, test examples, notes) goes to stdout
and to --output, training progress to stderr. Rerunning the same command reuses rows whose
metrics.json was written with the same budget, K and number of test examples, and resumes
interrupted rows from their checkpoints. A row that fails (e.g. its data set is missing) is
reported as failed with the error, and the other rows still run.

Default budget: on a GPU (tf.config.list_physical_devices('GPU')) 10^6 steps per row (a tenth
of the LARS paper's 10^7; ~1 h per MLP row on a recent GPU), K from the paper (1000; 10 for
Takahashi et al.) and all test images; on a CPU 5,000 steps per row (~2-3 min for an MLP VAE
on 2 cores, ~15 min for the ConvHVAE), the same K, on the first 2,000 test images. A row's
budget is capped at the paper's own training length (e.g. Frey Faces: 15,000 steps).
"""
import datetime
import fnmatch
import json
import os
import platform
import sys
import time

from absl import app
from absl import flags
from absl import logging
import gin
import tensorflow as tf

from tfp_priors import progress
from tfp_priors.training import runner as runner_lib
from tfp_priors.training import workdir as workdir_lib
from trainers import reproduce_tables
# trainers.run defines --workdir and --gin_bindings (and --gin_config, unused here); reused.
from trainers import run as run_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("table", None,
                    f"Table to reproduce: {', '.join(sorted(reproduce_tables.TABLES))}.")
flags.DEFINE_integer("num_steps", None, "Training steps per row (default: 1000000 with a GPU, "
                     "5000 without), capped at the paper's own training length.")
flags.DEFINE_list("rows", None, "Run ids (or fnmatch patterns) of the rows to run; default all. "
                  "Rows they depend on (an NCP's stage one) run too.")
flags.DEFINE_integer("num_importance_samples", None,
                     "K of the IWAE test NLL (default: the paper's, 1000; Takahashi: 10).")
flags.DEFINE_integer("eval_max_examples", None, "Evaluate on the first N test images, 0 for "
                     "all (default: all with a GPU, 2000 without).")
flags.DEFINE_string("output", None, "Also write the markdown to this file.")
flags.DEFINE_bool("export", False, "Also export each row's SavedModel (train.export).")

GPU_NUM_STEPS = 10 ** 6
CPU_NUM_STEPS = 5000
CPU_EVAL_MAX_EXAMPLES = 2000
DEFAULT_WORKDIR = "runs/repro"
SPEC_FILE = "reproduce.json"  # what a row's metrics.json was computed with


def device_description():
  """('GPU' or 'CPU', a description such as 'NVIDIA H200' or 'CPU: <model>, 2 cores')."""
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
             for g in gpus]
    return "GPU", ", ".join(names)
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return "CPU", f"CPU: {model}, {os.cpu_count()} cores"


def select_rows(table, patterns):
  """The table's rows matching `patterns` (run ids or fnmatch patterns; None: all) plus the
  rows they depend on, dependencies first, otherwise in the table's order.

  Raises:
    ValueError: a pattern matches no row; the message lists the run ids.
  """
  chosen = set()
  for pattern in patterns or ["*"]:
    matched = {r.run for r in table.rows if fnmatch.fnmatchcase(r.run, pattern)}
    if not matched:
      raise ValueError(f"--rows {pattern!r} matches no row of {table.name}; rows: "
                       f"{', '.join(r.run for r in table.rows)}")
    chosen |= matched
  ordered = []

  def add(run):
    if run in ordered:
      return
    for _, dependency in table.row(run).depends:
      add(dependency)
    ordered.append(run)

  for row in table.rows:
    if row.run in chosen:
      add(row.run)
  return [table.row(run) for run in ordered]


def row_bindings(row, num_steps, num_importance_samples, eval_max_examples, dependency_dirs,
                 export, extra_bindings=()):
  """Gin bindings of one row: its own, its dependencies' run dirs, the budget, then extra."""
  steps = num_steps * row.step_multiplier
  bindings = list(row.bindings)
  bindings += [f"{param} = {dependency_dirs[run]!r}" for param, run in row.depends]
  bindings += [f"train.num_steps = {steps}",
               f"train.num_importance_samples = {num_importance_samples}",
               f"train.eval_max_examples = {eval_max_examples or None}",
               f"train.export = {bool(export)}"]
  if row.warmup_fraction is not None:
    bindings.append(f"train.warmup_steps = {max(1, round(row.warmup_fraction * steps))}")
  return bindings + list(extra_bindings)


def run_row(row, row_dir, bindings, print_fn=None):
  """Trains and evaluates one row in `row_dir` (reusing a finished run with the same spec).

  Returns:
    (metrics dict, reused: bool).
  """
  spec = {"configs": list(row.configs), "bindings": list(bindings)}
  spec_path = os.path.join(row_dir, SPEC_FILE)
  metrics_path = workdir_lib.path(row_dir, workdir_lib.METRICS)
  if os.path.exists(spec_path):
    with open(spec_path) as f:
      old = json.load(f)
    if old == spec and os.path.exists(metrics_path):
      with open(metrics_path) as f:
        return json.load(f), True
    if old["configs"] != spec["configs"]:
      raise ValueError(f"{row_dir} holds a run of configs {old['configs']}, not "
                       f"{spec['configs']}; use another --workdir.")
  gin.clear_config()
  try:
    run_lib.parse_config(list(row.configs), list(bindings))
    os.makedirs(row_dir, exist_ok=True)
    # Written before training: a later run with another budget or K knows what is there.
    with open(spec_path, "w") as f:
      json.dump({**spec, "complete": False}, f, indent=2)
    metrics = runner_lib.train(row_dir, print_fn=print_fn)
  finally:
    gin.clear_config()
  with open(spec_path, "w") as f:
    json.dump(spec, f, indent=2)
  return metrics, False


def _cell(text):
  return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _summary(error, limit=300):
  """`Type: first line`, plus the last line of a multi-line message (tf.function errors put
  the cause there), at most `limit` characters."""
  lines = [line.strip() for line in f"{type(error).__name__}: {error}".splitlines()
           if line.strip()]
  text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
  return text if len(text) <= limit else text[:limit - 3] + "..."


def reproduce(table, workdir, num_steps=None, num_importance_samples=None,
              eval_max_examples=None, rows=None, bindings=(), export=False, log_fn=None,
              command=None):
  """Trains and evaluates the rows of `table`, returns the markdown comparison.

  Args:
    table: a name of reproduce_tables.TABLES, or a `reproduce_tables.Table`.
    workdir: root; row runs go to <workdir>/steps<num_steps>/<run>.
    num_steps: training steps per row (None: 10^6 with a GPU, 5000 without), capped per row
      at the paper's training length.
    num_importance_samples: K of the IWAE test NLL (None: the table's paper K).
    eval_max_examples: first N test images (None: all with a GPU, 2000 without; 0: all).
    rows: run ids or fnmatch patterns (None: all rows).
    bindings: extra gin bindings for every row, applied last.
    export: also export each row's SavedModel.
    log_fn: training progress (None: silent).
    command: the command line shown in the header.

  Returns:
    (markdown, results): results is a list of dicts, one per row run (run, name, paper,
    ours or None, metrics, error, workdir).

  Raises:
    ValueError: unknown table (listing the tables) or a --rows pattern matching nothing.
  """
  if isinstance(table, str):
    table = reproduce_tables.get_table(table)
  selected = select_rows(table, rows)
  kind, device = device_description()
  gpu = kind == "GPU"
  if num_steps is None:
    num_steps = GPU_NUM_STEPS if gpu else CPU_NUM_STEPS
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  if num_importance_samples is None:
    num_importance_samples = table.num_importance_samples
  if eval_max_examples is None:
    eval_max_examples = 0 if gpu else CPU_EVAL_MAX_EXAMPLES
  results, dirs, failed = [], {}, {}
  start_time = time.time()
  for index, row in enumerate(selected):
    steps = min(num_steps, row.paper_steps or num_steps)
    row_dir = os.path.join(workdir, f"steps{steps}", row.run)
    dirs[row.run] = row_dir
    result = {"run": row.run, "name": row.name, "paper": row.paper, "ours": None,
              "metrics": None, "error": None, "workdir": row_dir, "steps": steps, "row": row}
    results.append(result)
    blocked = [run for _, run in row.depends if run in failed]
    if blocked:
      result["error"] = f"depends on {blocked[0]}, which failed"
      failed[row.run] = True
      continue
    row_log = (lambda s, run=row.run: log_fn(f"[{run}] {s}")) if log_fn else None
    try:
      metrics, reused = run_row(row, row_dir, row_bindings(
          row, steps, num_importance_samples, eval_max_examples, dirs, export, bindings),
                                print_fn=row_log)
      ours = table.sign * float(metrics[table.metric_key])
    except Exception as e:  # pylint: disable=broad-except
      # One failing row (missing data, a NaN loss) must not stop the others.
      result["error"] = _summary(e)
      failed[row.run] = True
      if log_fn:
        log_fn(f"[{row.run}] failed: {result['error']}")
      continue
    result.update(ours=ours, metrics=metrics, reused=reused)
    if log_fn:
      log_fn(f"[{row.run}] {'reused' if reused else 'done'}: ours {ours:.2f}, paper "
             f"{row.paper:.2f} (row {index + 1} of {len(selected)}, ETA of the table "
             f"{progress.eta(index + 1, len(selected), time.time() - start_time)})")
  markdown = format_markdown(table, results, num_steps=num_steps,
                             num_importance_samples=num_importance_samples,
                             eval_max_examples=eval_max_examples, device=device,
                             command=command)
  return markdown, results


def format_markdown(table, results, num_steps, num_importance_samples, eval_max_examples,
                    device, command=None, date=None):
  """The comparison table with header lines (metric, budget, K, test examples, device, date)."""
  date = date or datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
  examples = "all" if not eval_max_examples else f"the first {eval_max_examples}"
  paper_steps = [r["row"].paper_steps for r in results if r["row"].paper_steps]
  paper_budget = f"; the paper: {max(paper_steps):,} steps" if paper_steps else ""
  lines = [f"## {table.title}", "",
           f"- metric: {table.metric}, from metrics.json `{table.metric_key}`"
           f"{' times -1' if table.sign < 0 else ''}; difference = ours - paper",
           f"- budget: {num_steps} training steps per row (capped at the paper's own length; "
           f"the steps column gives each row's; learning-rate decay and KL warm-up scale "
           f"with it){paper_budget}",
           f"- K = {num_importance_samples} importance samples; test images: {examples} of "
           f"each test set (per row below)",
           f"- device: {device}; date: {date}"]
  if command:
    lines.append(f"- command: `{command}`")
  lines += ["", "| row | configs | ours | paper | difference | steps | test examples | notes |",
            "|---|---|---|---|---|---|---|---|"]
  for r in results:
    row = r["row"]
    configs = " ".join(f"`{c}`" for c in row.configs)
    if row.bindings:
      configs += " " + " ".join(f"`{b}`" for b in row.bindings)
    notes = [row.note] if row.note else []
    if r["error"]:
      cells = [row.name, configs, "failed", f"{row.paper:.2f}", "-", "-", "-",
               "; ".join(notes + [r["error"]])]
    else:
      m = r["metrics"]
      if "normalizer" in m:
        notes.append(f"Z = {m['normalizer']:.3g}")
      if m.get("stopped_early"):
        notes.append(f"early stop, best step {m.get('best_step')}")
      cells = [row.name, configs, f"{r['ours']:.2f}", f"{row.paper:.2f}",
               f"{r['ours'] - row.paper:+.2f}", str(m.get("num_steps", "-")),
               str(m.get("num_examples", "-")), "; ".join(notes)]
    lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
  if table.omitted:
    lines += ["", "Left out (no config here):"]
    lines += [f"- {what}: {why}" for what, why in table.omitted]
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.table:
    raise app.UsageError(f"--table is required: {', '.join(sorted(reproduce_tables.TABLES))}")
  logging.set_verbosity(logging.WARNING)
  if FLAGS.gin_config:
    raise app.UsageError("--gin_config is not used: the table defines each row's configs "
                         "(extra bindings for every row: --gin_bindings).")
  try:
    markdown, _ = reproduce(
        FLAGS.table, FLAGS.workdir or DEFAULT_WORKDIR, num_steps=FLAGS.num_steps, rows=FLAGS.rows,
        num_importance_samples=FLAGS.num_importance_samples,
        eval_max_examples=FLAGS.eval_max_examples, bindings=FLAGS.gin_bindings,
        export=FLAGS.export, log_fn=lambda s: print(s, file=sys.stderr, flush=True),
        command="python -m trainers.reproduce " + " ".join(argv_flags()))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  print(markdown, flush=True)
  if FLAGS.output:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
      f.write(markdown)


def argv_flags():
  """The flags given on the command line, for the markdown header."""
  return [a for a in sys.argv[1:] if a.startswith("--")]


if __name__ == "__main__":
  app.run(main)
