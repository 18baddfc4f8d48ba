r"""Retrains the rows of one of the papers' tables and writes ours vs the paper's as markdown.

  python -m trainers.reproduce --table=lars_table1 --workdir=runs/repro \
      [--num_steps=N] [--rows=vae_*,lars_vae_*] [--num_importance_samples=K] \
      [--eval_max_examples=N] [--seeds=N] [--sample_quality] [--output=FILE.md]

Each row trains with `tfp_priors.training.runner.train` from its gin configs
(trainers/reproduce_tables.py) in <workdir>/steps<N>/<run>/ (seed 0) or
<workdir>/steps<N>/seed<s>/<run>/ (`--seeds=N`: seeds 1 .. N - 1, each setting `train.seed`
and `make_datasets.seed`) and is evaluated there (metrics.json); the markdown table (row,
configs, ours, paper, difference = ours - paper, with a baseline row the gain over it paired by
seed beside the paper's gain, the table's further columns, steps, test examples, notes; mean ±
std over the seeds) goes to stdout and to --output, training progress with the ETA of the whole
table to stderr. Rerunning the same command reuses runs whose metrics.json was written with
the same budget, K, number of test examples and seed, and resumes interrupted runs from their
checkpoints. A run that fails (e.g. its data set is missing) is reported with the error, and
the others still run.

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
import statistics
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
from trainers import evaluate_samples
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
flags.DEFINE_integer("seeds", 1, "Seeds per row (0 .. N - 1: init, data order, sampling); the "
                     "table reports mean ± std over them and gains paired by seed.")
flags.DEFINE_bool("sample_quality", False, "Also score each row's prior samples "
                  "(trainers.evaluate_samples) where its metrics.json lacks them.")

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


def seed_dir(workdir, steps, run, seed):
  """<workdir>/steps<steps>/<run> for seed 0 (the configs' own seed, so a row run before
  --seeds existed is seed 0), <workdir>/steps<steps>/seed<seed>/<run> for the others."""
  if seed == 0:
    return os.path.join(workdir, f"steps{steps}", run)
  return os.path.join(workdir, f"steps{steps}", f"seed{seed}", run)


def seed_bindings(seed):
  """Seed s of init, data order and sampling (`trainers.run --seed` without its op
  determinism, which changes no statistic); none for seed 0, the configs' default."""
  return [] if seed == 0 else [f"train.seed = {seed}", f"make_datasets.seed = {seed}"]


def row_bindings(row, num_steps, num_importance_samples, eval_max_examples, dependency_dirs,
                 export, extra_bindings=(), seed=0):
  """Gin bindings of one row: its own, its dependencies' run dirs, the budget, the seed, then
  extra."""
  steps = num_steps * row.step_multiplier
  bindings = list(row.bindings)
  bindings += [f"{param} = {dependency_dirs[run]!r}" for param, run in row.depends]
  bindings += [f"train.num_steps = {steps}",
               f"train.num_importance_samples = {num_importance_samples}",
               f"train.eval_max_examples = {eval_max_examples or None}",
               f"train.export = {bool(export)}"]
  if row.warmup_fraction is not None:
    bindings.append(f"train.warmup_steps = {max(1, round(row.warmup_fraction * steps))}")
  return bindings + seed_bindings(seed) + list(extra_bindings)


def finished_metrics(row, row_dir, bindings):
  """The metrics of a finished run of `row` with these bindings in `row_dir`, or None.

  Raises:
    ValueError: `row_dir` holds a run of other configs.
  """
  spec_path = os.path.join(row_dir, SPEC_FILE)
  if not os.path.exists(spec_path):
    return None
  with open(spec_path) as f:
    old = json.load(f)
  if old["configs"] != list(row.configs):
    raise ValueError(f"{row_dir} holds a run of configs {old['configs']}, not "
                     f"{list(row.configs)}; use another --workdir.")
  if old == {"configs": list(row.configs), "bindings": list(bindings)}:
    return workdir_lib.read_metrics(row_dir)
  return None


def run_row(row, row_dir, bindings, print_fn=None):
  """Trains and evaluates one row in `row_dir` (reusing a finished run with the same spec).

  Returns:
    (metrics dict, reused: bool).
  """
  metrics = finished_metrics(row, row_dir, bindings)
  if metrics is not None:
    return metrics, True
  spec = {"configs": list(row.configs), "bindings": list(bindings)}
  spec_path = os.path.join(row_dir, SPEC_FILE)
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


def score_samples(row_dir, metrics, print_fn=None):
  """metrics with the sample-quality metrics (`trainers.evaluate_samples`, all test images),
  scoring the run first if its metrics.json lacks them."""
  if "sample_quality_num_samples" in metrics:
    return metrics, False
  gin.clear_config()
  try:
    return {**metrics, **evaluate_samples.evaluate_workdir(row_dir, print_fn=print_fn)}, True
  finally:
    gin.clear_config()


def _cell(text):
  return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _summary(error, limit=300):
  """`Type: first line`, plus the last line of a multi-line message (tf.function errors put
  the cause there), at most `limit` characters."""
  lines = [line.strip() for line in f"{type(error).__name__}: {error}".splitlines()
           if line.strip()]
  text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _resolve_budget(table, num_steps, num_importance_samples, eval_max_examples, seeds, gpu):
  if num_steps is None:
    num_steps = GPU_NUM_STEPS if gpu else CPU_NUM_STEPS
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
    raise ValueError(f"seeds must be an integer >= 1 (seeds 0 .. seeds - 1), got {seeds!r}.")
  if num_importance_samples is None:
    num_importance_samples = table.num_importance_samples
  if eval_max_examples is None:
    eval_max_examples = 0 if gpu else CPU_EVAL_MAX_EXAMPLES
  return num_steps, num_importance_samples, eval_max_examples


def reproduce(table, workdir, num_steps=None, num_importance_samples=None,
              eval_max_examples=None, rows=None, bindings=(), export=False, log_fn=None,
              command=None, seeds=1, sample_quality=False):
  """Trains and evaluates the rows of `table` with `seeds` seeds, returns the markdown
  comparison.

  Seeds run one after the other, each over all rows (a whole one-seed table comes first). A
  seed's row runs in `seed_dir(workdir, steps, run, seed)`; an NCP row's stage one is the
  same seed's VAE.

  Args:
    table: a name of reproduce_tables.TABLES, or a `reproduce_tables.Table`.
    workdir: root; row runs go to <workdir>/steps<num_steps>/[seed<s>/]<run>.
    num_steps: training steps per row (None: 10^6 with a GPU, 5000 without), capped per row
      at the paper's training length.
    num_importance_samples: K of the IWAE test NLL (None: the table's paper K).
    eval_max_examples: first N test images (None: all with a GPU, 2000 without; 0: all).
    rows: run ids or fnmatch patterns (None: all rows).
    bindings: extra gin bindings for every row, applied last.
    export: also export each row's SavedModel.
    log_fn: training progress (None: silent).
    command: the command line shown in the header.
    seeds: number of seeds, 0 .. seeds - 1 (`train.seed` and `make_datasets.seed`).
    sample_quality: also score each run's prior samples (`trainers.evaluate_samples`: N =
      all test images, MNIST-classifier features) where its metrics.json lacks them.

  Returns:
    (markdown, results): results is a list of dicts, one per row and seed, seed-major (run,
    seed, name, paper, ours or None, metrics, error, workdir, reused).

  Raises:
    ValueError: unknown table (listing the tables), a --rows pattern matching nothing, or
      num_steps or seeds below 1.
  """
  if isinstance(table, str):
    table = reproduce_tables.get_table(table)
  selected = select_rows(table, rows)
  kind, device = device_description()
  num_steps, num_importance_samples, eval_max_examples = _resolve_budget(
      table, num_steps, num_importance_samples, eval_max_examples, seeds, kind == "GPU")
  jobs = []  # (seed, row, row_dir, bindings)
  for seed in range(seeds):
    dirs = {}
    for row in selected:
      steps = min(num_steps, row.paper_steps or num_steps)
      dirs[row.run] = seed_dir(workdir, steps, row.run, seed)
      jobs.append((seed, row, dirs[row.run], row_bindings(
          row, steps, num_importance_samples, eval_max_examples, dirs, export, bindings, seed)))
  to_train = sum(finished_metrics(row, d, b) is None for _, row, d, b in jobs)
  results, failed, trained, train_seconds = [], set(), 0, 0.0
  for seed, row, row_dir, row_binding in jobs:
    result = {"run": row.run, "seed": seed, "name": row.name, "paper": row.paper, "ours": None,
              "metrics": None, "error": None, "workdir": row_dir, "row": row}
    results.append(result)
    blocked = [run for _, run in row.depends if (run, seed) in failed]
    if blocked:
      result["error"] = f"depends on {blocked[0]}, which failed"
      failed.add((row.run, seed))
      continue
    tag = f"[{row.run}{f' seed {seed}' if seeds > 1 else ''}]"
    row_log = (lambda s, tag=tag: log_fn(f"{tag} {s}")) if log_fn else None
    start = time.time()
    try:
      metrics, reused = run_row(row, row_dir, row_binding, print_fn=row_log)
      if sample_quality:
        metrics, _ = score_samples(row_dir, metrics, print_fn=row_log)
      ours = table.sign * float(metrics[table.metric_key])
    except Exception as e:  # pylint: disable=broad-except
      # One failing row (missing data, a NaN loss) must not stop the others.
      result["error"] = _summary(e)
      failed.add((row.run, seed))
      if log_fn:
        log_fn(f"{tag} failed: {result['error']}")
      continue
    result.update(ours=ours, metrics=metrics, reused=reused)
    if not reused:
      trained, train_seconds = trained + 1, train_seconds + time.time() - start
    if log_fn:
      paper = "-" if row.paper is None else f"{row.paper:.2f}"
      log_fn(f"{tag} {'reused' if reused else 'done'}: ours {ours:.2f}, paper {paper} "
             f"({len(results)} of {len(jobs)} runs; {trained} of {to_train} trained, ETA of "
             f"the table {progress.eta(trained, to_train, train_seconds)})")
  markdown = format_markdown(table, results, num_steps=num_steps,
                             num_importance_samples=num_importance_samples,
                             eval_max_examples=eval_max_examples, device=device,
                             command=command, seeds=seeds)
  return markdown, results


def _mean_std(values, spec=".2f"):
  """'m' for one value, 'm ± s' (sample standard deviation) for several, '-' for none."""
  if not values:
    return "-"
  if len(values) == 1:
    return format(values[0], spec)
  return f"{format(statistics.fmean(values), spec)} ± {format(statistics.stdev(values), spec)}"


def _gains(table, runs, baseline):
  """sign * (baseline - ours) per seed that both finished (paired by seed)."""
  base = {r["seed"]: r["ours"] for r in baseline if r["ours"] is not None}
  return [table.sign * (base[r["seed"]] - r["ours"]) for r in runs
          if r["ours"] is not None and r["seed"] in base]


def _paper_gain(table, row):
  if row.paper_gain is not None:
    return row.paper_gain
  base = table.row(table.baseline).paper if table.baseline in {r.run for r in table.rows} else None
  if row.paper is None or base is None or row.run == table.baseline:
    return None
  return table.sign * (base - row.paper)


def _row_cells(table, row, runs, by_run, seeds):
  """The markdown cells of one row from its per-seed results."""
  done = [r for r in runs if r["ours"] is not None]
  values = [r["ours"] for r in done]
  paper = "-" if row.paper is None else f"{row.paper:.2f}"
  notes = [row.note] if row.note else []
  notes += [f"seed {r['seed']}: {r['error']}" if seeds > 1 else r["error"]
            for r in runs if r["error"]]
  if seeds > 1 and done and len(done) < len(runs):
    notes.append(f"{len(done)} of {len(runs)} seeds")
  first = done[0]["metrics"] if done else {}
  if "normalizer" in first and not any(key == "normalizer" for _, key, _ in table.columns):
    notes.append("Z = " + _mean_std([r["metrics"]["normalizer"] for r in done], ".3g"))
  stopped = [r for r in done if r["metrics"].get("stopped_early")]
  notes += [f"early stop, best step {r['metrics'].get('best_step')}" for r in stopped]
  ours = _mean_std(values) if done else "failed"
  difference = ("-" if row.paper is None or not done
                else f"{statistics.fmean(values) - row.paper:+.2f}")
  cells = [row.name, _configs_cell(row), ours, paper, difference]
  if table.baseline:
    gains = [] if row.run == table.baseline else _gains(table, runs, by_run.get(table.baseline, []))
    paper_gain = _paper_gain(table, row)
    cells += [_mean_std(gains), "-" if paper_gain is None else f"{paper_gain:.2f}"]
  for _, key, spec in table.columns:
    cells.append(_mean_std([float(r["metrics"][key]) for r in done if key in r["metrics"]],
                           spec))
  cells += [str(first.get("num_steps", "-")), str(first.get("num_examples", "-")),
            "; ".join(notes)]
  return cells


def _configs_cell(row):
  configs = " ".join(f"`{c}`" for c in row.configs)
  if row.bindings:
    configs += " " + " ".join(f"`{b}`" for b in row.bindings)
  return configs


def format_markdown(table, results, num_steps, num_importance_samples, eval_max_examples,
                    device, command=None, date=None, seeds=1):
  """The comparison table with header lines (metric, budget, seeds, K, test examples, device,
  date): per row ours (mean ± std over the seeds), the paper's figure, ours - paper, with a
  table baseline the gain (paired by seed) beside the paper's gain, the table's columns."""
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
  if seeds > 1:
    lines.append(f"- seeds: {seeds} (0 .. {seeds - 1}: init, data order, sampling); mean ± "
                 f"sample standard deviation over the seeds")
  if table.baseline:
    lines.append(f"- gain = nats better than the row `{table.baseline}`, paired by seed; "
                 f"paper gain: the same in the paper")
  if command:
    lines.append(f"- command: `{command}`")
  header = ["row", "configs", "ours", "paper", "difference"]
  if table.baseline:
    header += ["gain", "paper gain"]
  header += [h for h, _, _ in table.columns] + ["steps", "test examples", "notes"]
  lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  by_run = {}
  for r in results:
    by_run.setdefault(r["run"], []).append(r)
  for runs in by_run.values():
    cells = _row_cells(table, runs[0]["row"], runs, by_run, seeds)
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
        seeds=FLAGS.seeds, sample_quality=FLAGS.sample_quality,
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
