r"""Validation-NLL learning curves of runs, the gain of each over the first, and a power-law
extrapolation of each curve to a longer budget, as a PNG and JSON.

  python -m trainers.learning_curves --workdirs=runs/long/vae_standard,runs/long/lars_vae \
      --labels='N(0, I);LARS' --paper=84.97,83.03 --output_png=curves.png \
      [--extrapolate_to=10000000] [--output_json=curves.json]

Each run must have trained with validation (`train.validation_every`, K =
`train.validation_importance_samples`): its curve is the TensorBoard scalar `valid/nll` of
<workdir>/train (nats per validation image), its final test NLL the `nll` of metrics.json.

Extrapolation: the curve is fitted by NLL(t) = L + b t^(-c) (L the asymptote, b > 0, c > 0;
`scipy.optimize.curve_fit`, least squares with the residual variance as the noise), and
NLL(t*) at t* = --extrapolate_to is reported with a 68% interval from 10,000 draws of the
parameters from N(fit, covariance) (draws with c <= 0 or b <= 0 dropped). The gain of a run
over the first at t* is the difference of their draws (independent fits). As a check of the
form, each curve is also fitted without its last `--holdout` points, which it then predicts;
their mean absolute error is reported. Caveat: a run's learning-rate decay and KL warm-up
scale with its own length (`train.num_steps`), so its curve is not the curve of final NLL
against budget that 10^7-step runs would trace; the extrapolation is a trend, not a forecast.

A run without `valid/nll` events, a budget run without metrics.json, a --budget_workdirs
pattern that matches nothing or a curve of fewer than 4 points is a one-line `error:` and exit
status 1, before anything is written.
"""
import glob
import json
import os
import sys

from absl import app
from absl import flags
import numpy as np
from scipy import optimize
import tensorflow as tf

from tfp_priors.training import workdir as workdir_lib
from trainers import plotting

flags.DEFINE_list("workdirs", None, "Run directories; the first is the baseline of the gains.")
flags.DEFINE_string("labels", None, "A label per run, separated by ';' (default: the "
                    "directory names).")
flags.DEFINE_string("budget_workdirs", None, "Per run (';' between runs, ',' between "
                    "directories, glob patterns allowed): finished runs of its config at other "
                    "budgets, for the curve of final test NLL against budget.")
flags.DEFINE_list("paper", [], "The paper's NLL at --extrapolate_to for each run (optional).")
flags.DEFINE_float("extrapolate_to", 1e7, "Steps t* of the extrapolation (LARS: 10^7).")
flags.DEFINE_integer("holdout", 3, "Last points left out of the check fit (0: no check).")
flags.DEFINE_string("output_png", None, "Write the figure here.")
flags.DEFINE_string("output_json", None, "Write the curves, fits and extrapolations here.")
FLAGS = flags.FLAGS

VALIDATION_TAG = "valid/nll"
NUM_DRAWS = 10000


def validation_curve(workdir, tag=VALIDATION_TAG):
  """(steps [n] int, values [n] float) of scalar `tag` in <workdir>/train, sorted by step;
  of a step written twice (a resumed run), the later event.

  Raises:
    ValueError: no event of `tag` (the run had no validation).
  """
  folder = workdir_lib.path(workdir, workdir_lib.TRAIN_EVENTS)
  points = {}
  names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
  for name in names:
    for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
      for value in event.summary.value:
        if value.tag == tag:
          points[(event.step, event.wall_time)] = float(tf.make_ndarray(value.tensor))
  latest = {}
  for (step, _), value in sorted(points.items()):
    latest[step] = value
  if not latest:
    raise ValueError(f"{folder} has no {tag!r} scalar: train with train.validation_every.")
  steps = np.array(sorted(latest))
  return steps, np.array([latest[s] for s in steps])


def power_law(t, asymptote, scale, exponent):
  """L + b t^(-c)."""
  return asymptote + scale * np.power(t, -exponent)


MIN_EXPONENT = 1e-3  # lower bound of c in the fit


def fit_power_law(steps, values):
  """Least-squares (L, b, c) of `power_law` and their covariance [3, 3].

  Raises:
    ValueError: fewer than 4 points (3 parameters and a residual).
  """
  steps, values = np.asarray(steps, float), np.asarray(values, float)
  if len(steps) < 4:
    raise ValueError(f"a power-law fit needs >= 4 points, got {len(steps)}.")
  guess = (values.min() - 1.0, (values.max() - values.min() + 1.0) * steps.min() ** 0.5, 0.5)
  params, covariance = optimize.curve_fit(
      power_law, steps, values, p0=guess,
      bounds=([-np.inf, 0.0, MIN_EXPONENT], [np.inf, np.inf, 5.0]), maxfev=20000)
  return params, covariance


def parameter_draws(params, covariance, seed=0):
  """[m, 3] draws of (L, b, c) from N(params, covariance), those with b, c > 0."""
  draws = np.random.default_rng(seed).multivariate_normal(params, covariance, NUM_DRAWS,
                                                          check_valid="ignore")
  return draws[(draws[:, 1] > 0) & (draws[:, 2] > 0)]


def interval(samples):
  """{'median', 'low', 'high'}: the 16th, 50th and 84th percentiles (a 68% interval)."""
  low, median, high = np.percentile(samples, [16, 50, 84])
  return {"median": float(median), "low": float(low), "high": float(high)}


def holdout_error(steps, values, holdout):
  """Mean |prediction - value| of the last `holdout` points by a fit of the others (nats), or
  None when too few points remain."""
  if not holdout or len(steps) - holdout < 4:
    return None
  params, _ = fit_power_law(steps[:-holdout], values[:-holdout])
  return float(np.mean(np.abs(power_law(steps[-holdout:], *params) - values[-holdout:])))


def extrapolate(steps, values, target_steps, holdout, seed=0):
  """Power-law fit of one curve and its value at `target_steps` (a JSON-able dict, with the
  parameter draws under '_params' and their value at target_steps under '_draws').

  'identified' is False when the exponent sits at its lower bound or its standard error
  exceeds it: the points do not pin the asymptote (the curve is still straight in log t) and
  the interval, however wide, is not an uncertainty of the form's parameters.
  """
  params, covariance = fit_power_law(steps, values)
  errors = np.sqrt(np.diag(covariance))
  draws = parameter_draws(params, covariance, seed)
  at_target = power_law(target_steps, *draws.T)
  return {"fit": dict(zip(("asymptote", "scale", "exponent"), map(float, params))),
          "fit_standard_errors": errors.tolist(),
          "identified": bool(params[2] > 2 * MIN_EXPONENT and errors[2] < params[2]),
          "extrapolated_nll": interval(at_target),
          "holdout_error": holdout_error(steps, values, holdout),
          "_draws": at_target, "_params": draws}


def budget_curve(workdirs):
  """(budgets [n], final test NLLs [n]) of finished runs of one config at several budgets
  (`num_steps` and `nll` of each metrics.json; seeds of one budget give repeated points),
  sorted by budget.

  Raises:
    ValueError: a run without metrics.json.
  """
  points = []
  for workdir in workdirs:
    metrics = workdir_lib.read_metrics(workdir)
    if metrics is None:
      raise ValueError(f"{workdir} has no metrics.json: a finished run is needed.")
    points.append((int(metrics["num_steps"]), float(metrics["nll"])))
  points.sort()
  return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def analyse(workdir, budget_workdirs, target_steps, holdout, seed=0):
  """One run: its validation curve and the budget curve of `budget_workdirs` (may be empty),
  each with its extrapolation, and the run's final test NLL."""
  steps, values = validation_curve(workdir)
  metrics = workdir_lib.read_metrics(workdir) or {}
  run = {"workdir": workdir, "steps": steps.tolist(), "validation_nll": values.tolist(),
         "validation": extrapolate(steps, values, target_steps, holdout, seed),
         "test_nll": metrics.get("nll"),
         "test_importance_samples": metrics.get("num_importance_samples")}
  if budget_workdirs:
    budgets, nlls = budget_curve(budget_workdirs)
    run.update(budget_steps=budgets.tolist(), budget_nll=nlls.tolist(),
               budget=extrapolate(budgets, nlls, target_steps, holdout, seed + 1000))
  return run


def _mean_by_step(steps, values):
  by_step = {}
  for step, value in zip(steps, values):
    by_step.setdefault(step, []).append(value)
  return {step: float(np.mean(v)) for step, v in by_step.items()}


def gains(runs):
  """Per run after the first, for each curve (validation; budget: the mean over seeds of a
  budget): the gain over the first at each common step and its extrapolated interval (the
  difference of the independent draws); and the gain of the final test NLLs."""
  base = runs[0]
  for run in runs[1:]:
    for curve, x, y in (("validation", "steps", "validation_nll"),
                        ("budget", "budget_steps", "budget_nll")):
      if curve not in run or curve not in base:
        continue
      by_step = [_mean_by_step(r[x], r[y]) for r in (base, run)]
      common = sorted(set(by_step[0]) & set(by_step[1]))
      draws = [r[curve]["_draws"] for r in (base, run)]
      n = min(len(d) for d in draws)
      run[curve].update(gain_steps=common, gain=[by_step[0][s] - by_step[1][s] for s in common],
                        extrapolated_gain=interval(draws[0][:n] - draws[1][:n]))
    if base["test_nll"] is not None and run["test_nll"] is not None:
      run["test_gain"] = base["test_nll"] - run["test_nll"]


def _unidentified(fit):
  return "" if fit["identified"] else " (fit not identified: not drawn)"


def _band(ax, grid, fit, color, style):
  """The fit's median line and 68% band over `grid`; nothing for a fit that is not identified
  (its band would only show that the points do not pin the asymptote)."""
  if not fit["identified"]:
    return
  values = power_law(grid[:, None], *fit["_params"][:1000].T)
  low, median, high = np.percentile(values, [16, 50, 84], axis=1)
  ax.plot(grid, median, style, color=color, lw=1)
  ax.fill_between(grid, low, high, color=color, alpha=0.12)


def plot(runs, labels, paper, target_steps, path):
  """Left: validation NLL (circles) and final test NLL against budget (squares) with their
  power-law fits to `target_steps` (68% bands; a fit that is not identified is not drawn) and
  the paper's figures there (stars); right: the gains over the first run, measured and
  extrapolated (where both fits are identified)."""
  plt = plotting.pyplot()
  fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
  start = min(min(r["steps"][0], *r.get("budget_steps", [np.inf])) for r in runs)
  grid = np.geomspace(start, target_steps, 200)
  for i, (run, label) in enumerate(zip(runs, labels)):
    color = f"C{i}"
    left.plot(run["steps"], run["validation_nll"], "o", color=color, ms=4,
              label=f"{label}: validation, one run (K = 100)" + _unidentified(run["validation"]))
    _band(left, grid, run["validation"], color, "-")
    if "budget" in run:
      left.plot(run["budget_steps"], run["budget_nll"], "s", color=color, mfc="none",
                label=f"{label}: test NLL of runs of that budget (K = 1000)"
                + _unidentified(run["budget"]))
      _band(left, grid, run["budget"], color, "--")
    if i < len(paper):
      left.plot([target_steps], [paper[i]], "*", ms=13, color=color, label=f"{label}, paper")
    if not i:
      continue
    for offset, (curve, marker) in enumerate((("validation", "o"), ("budget", "s"))):
      if curve not in run:
        continue
      fit = run[curve]
      right.plot(fit["gain_steps"], fit["gain"], marker + "-", color=color, mfc="none",
                 label=f"{label} - {labels[0]}, {curve}")
      if not (fit["identified"] and runs[0][curve]["identified"]):
        continue
      gain, x = fit["extrapolated_gain"], target_steps * 1.25 ** offset
      right.errorbar([x], [gain["median"]], [[gain["median"] - gain["low"]],
                                             [gain["high"] - gain["median"]]],
                     fmt=marker, color=color, capsize=4, label=f"{curve} fit at "
                     f"{target_steps:.0e} (68%)")
    if len(paper) > i:
      right.plot([target_steps], [paper[0] - paper[i]], "*", ms=13, color=color, label="paper")
  for ax, ylabel in ((left, "NLL (nats)"), (right, f"gain over {labels[0]} (nats)")):
    ax.set_xscale("log")
    ax.set_xlabel("training steps")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
  right.axhline(0.0, color="k", lw=0.5)
  fig.tight_layout()
  return plotting.save(fig, path, dpi=100)


def _report(run, label, base_label, target):
  """Printed lines of one run."""
  lines = [f"{label}: validation NLL {run['validation_nll'][-1]:.2f} at step "
           f"{run['steps'][-1]}, test NLL {run['test_nll']}"]
  for curve in ("validation", "budget"):
    if curve not in run:
      continue
    fit, e = run[curve], run[curve]["extrapolated_nll"]
    identified = "identified" if fit["identified"] else "NOT identified"
    lines.append(f"  {curve} fit: L = {fit['fit']['asymptote']:.2f}, c = "
                 f"{fit['fit']['exponent']:.3f} ({identified}), "
                 f"at {target:.3g} steps {e['median']:.2f} [{e['low']:.2f}, {e['high']:.2f}], "
                 f"holdout error {fit['holdout_error']}")
    if "extrapolated_gain" in fit:
      g = fit["extrapolated_gain"]
      lines.append(f"  {curve} gain over {base_label}: measured {fit['gain']}, extrapolated "
                   f"{g['median']:.2f} [{g['low']:.2f}, {g['high']:.2f}]")
  return "\n".join(lines)


def _public(value):
  """`value` without the '_' keys (the draws), for JSON."""
  if isinstance(value, dict):
    return {k: _public(v) for k, v in value.items() if not k.startswith("_")}
  return value


def budget_groups(spec, num_runs):
  """The directories of --budget_workdirs per run (';' between runs, ',' between glob
  patterns), each group sorted; empty groups when `spec` is empty.

  Raises:
    ValueError: a pattern that matches no directory.
  """
  if not spec:
    return [[] for _ in range(num_runs)]
  groups = []
  for group in spec.split(";"):
    found = []
    for pattern in group.split(","):
      matches = glob.glob(pattern)
      if not matches:
        raise ValueError(f"--budget_workdirs: {pattern!r} matches no directory.")
      found += matches
    groups.append(sorted(found))
  return groups


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdirs:
    raise app.UsageError("--workdirs is required (the baseline run first).")
  labels = FLAGS.labels.split(";") if FLAGS.labels else [
      os.path.basename(os.path.normpath(w)) for w in FLAGS.workdirs]
  try:
    paper = [float(p) for p in FLAGS.paper]
    budgets = budget_groups(FLAGS.budget_workdirs, len(FLAGS.workdirs))
    if (len(labels) != len(FLAGS.workdirs) or len(paper) > len(FLAGS.workdirs)
        or len(budgets) != len(FLAGS.workdirs)):
      raise ValueError("--labels and --budget_workdirs need one entry per run and --paper "
                       "at most one figure per run.")
    runs = [analyse(w, b, FLAGS.extrapolate_to, FLAGS.holdout, seed=i)
            for i, (w, b) in enumerate(zip(FLAGS.workdirs, budgets))]
  except ValueError as e:  # bad flags, a run without validation or metrics, too few points
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  gains(runs)
  for run, label in zip(runs, labels):
    run["label"] = label
    print(_report(run, label, labels[0], FLAGS.extrapolate_to))
  if FLAGS.output_png:
    print("wrote", plot(runs, labels, paper, FLAGS.extrapolate_to, FLAGS.output_png))
  if FLAGS.output_json:
    with open(FLAGS.output_json, "w") as f:
      json.dump({"extrapolate_to": FLAGS.extrapolate_to, "paper": paper,
                 "runs": [_public(r) for r in runs]}, f, indent=2)


if __name__ == "__main__":
  app.run(main)
