"""trainers.reproduce: tiny reproductions of a paper table on the real MNIST slice (CPU)."""
import dataclasses
import json
import os
import re

import gin
import numpy as np
import pytest

from support import TINY_BINDINGS
from trainers import reproduce
from trainers import reproduce_tables
from trainers import run

# A budget of a few steps, K = 2 on 8 test images, a small NCP classifier and SIR.
# (TINY_BINDINGS' K and number of test images are left out: the runner sets them.)
_RUNNER_SET = ("train.num_importance_samples", "train.eval_max_examples")
TINY = dict(num_steps=3, num_importance_samples=2, eval_max_examples=8,
            bindings=[b for b in TINY_BINDINGS if not b.startswith(_RUNNER_SET)]
            + ["NCPPrior.hidden_sizes = (8,)", "NCPPrior.num_proposals = 16"])


def _markdown_row(markdown, name):
  lines = [l for l in markdown.splitlines() if l.startswith(f"| {name} |")]
  assert len(lines) == 1, markdown
  return [c.strip() for c in lines[0].strip("|").split(" | ")]


@pytest.fixture(scope="module")
def aneja(tmp_path_factory):
  """The NCP row of Aneja Table 2: its stage-one VAE row runs first as a dependency."""
  workdir = tmp_path_factory.mktemp("repro")
  markdown, results = reproduce.reproduce("aneja_table2", str(workdir), rows=["ncp_*"], **TINY)
  return workdir, markdown, results


@pytest.mark.slow
def test_tiny_reproduction_reports_ours_paper_and_difference(aneja):
  workdir, markdown, results = aneja
  table = reproduce_tables.get_table("aneja_table2")
  assert [r["run"] for r in results] == ["vae_standard_dynamic_mnist", "ncp_vae_dynamic_mnist"]
  for result in results:
    assert result["error"] is None, result["error"]
    row = table.row(result["run"])
    with open(os.path.join(workdir, "steps3", row.run, "metrics.json")) as f:
      metrics = json.load(f)
    cells = _markdown_row(markdown, row.name)
    ours, paper, difference = (float(c) for c in cells[2:5])
    assert ours == pytest.approx(metrics["nll"], abs=0.005) and ours == ours  # finite
    assert paper == row.paper  # from the table definition (84.82, 82.82)
    assert difference == pytest.approx(ours - paper, abs=0.011)
    assert cells[7] == "3" and cells[8] == "8"  # steps, test examples (after gain, paper gain)
  assert "K = 2 importance samples" in markdown and "3 training steps" in markdown
  assert re.search(r"device: (GPU|CPU)", markdown) and "date: " in markdown
  assert "hierarchical NCP" in markdown  # the omitted row, with why


@pytest.mark.slow
def test_rerun_reuses_finished_rows(aneja):
  workdir, markdown, _ = aneja
  metrics = os.path.join(workdir, "steps3", "ncp_vae_dynamic_mnist", "metrics.json")
  before = os.stat(metrics).st_mtime_ns
  again, results = reproduce.reproduce("aneja_table2", str(workdir), rows=["ncp_*"], **TINY)
  assert all(r["reused"] for r in results)
  assert os.stat(metrics).st_mtime_ns == before
  assert _markdown_row(again, "NCP-VAE")[2:5] == _markdown_row(markdown, "NCP-VAE")[2:5]


@pytest.mark.slow
def test_failed_row_is_reported_and_the_others_still_run(aneja):
  workdir, _, _ = aneja
  table = reproduce_tables.get_table("aneja_table2")
  broken = reproduce_tables.Row(run="broken", name="broken row", configs=("vae_standard.gin",),
                                paper=1.0, source="test",
                                bindings=("make_datasets.name = 'no_such_data'",))
  dependent = dataclasses.replace(table.row("ncp_vae_dynamic_mnist"), run="ncp_on_broken",
                                  name="NCP on broken",
                                  depends=(("NoiseContrastive.pretrained_workdir", "broken"),))
  custom = dataclasses.replace(table, name="custom",
                               rows=(broken, dependent, table.row("vae_standard_dynamic_mnist")))
  markdown, results = reproduce.reproduce(custom, str(workdir), **TINY)
  errors = {r["run"]: r["error"] for r in results}
  assert "no_such_data" in errors["broken"]
  assert errors["ncp_on_broken"] == "depends on broken, which failed"
  assert errors["vae_standard_dynamic_mnist"] is None  # reused from the first test
  cells = _markdown_row(markdown, "broken row")
  assert cells[2] == "failed" and "ValueError" in cells[-1]


@pytest.mark.slow
def test_two_seeds_report_mean_std_and_the_gain_paired_by_seed(aneja):
  workdir, _, _ = aneja
  markdown, results = reproduce.reproduce("aneja_table2", str(workdir), rows=["ncp_*"], seeds=2,
                                          **TINY)
  assert [(r["run"], r["seed"]) for r in results] == [
      ("vae_standard_dynamic_mnist", 0), ("ncp_vae_dynamic_mnist", 0),
      ("vae_standard_dynamic_mnist", 1), ("ncp_vae_dynamic_mnist", 1)]
  assert [r["reused"] for r in results] == [True, True, False, False]  # seed 0: the fixture's
  seed1 = os.path.join(workdir, "steps3", "seed1")
  with open(os.path.join(seed1, "ncp_vae_dynamic_mnist", "config.gin")) as f:
    config = f.read()
  # Seed 1's NCP is stage two over seed 1's VAE, with seed 1 of init, data order and sampling.
  assert os.path.join(seed1, "vae_standard_dynamic_mnist") in config
  assert re.search(r"^train.seed = 1$", config, re.M)
  assert re.search(r"^make_datasets.seed = 1$", config, re.M)
  nll = {}
  for run_id in ("vae_standard_dynamic_mnist", "ncp_vae_dynamic_mnist"):
    for seed, root in ((0, os.path.join(workdir, "steps3")), (1, seed1)):
      with open(os.path.join(root, run_id, "metrics.json")) as f:
        nll[run_id, seed] = json.load(f)["nll"]
  cells = _markdown_row(markdown, "NCP-VAE")
  ours = [nll["ncp_vae_dynamic_mnist", s] for s in (0, 1)]
  gains = [nll["vae_standard_dynamic_mnist", s] - nll["ncp_vae_dynamic_mnist", s] for s in (0, 1)]
  for cell, values in ((cells[2], ours), (cells[5], gains)):
    mean, std = (float(v) for v in cell.split(" ± "))
    assert mean == pytest.approx(np.mean(values), abs=0.006)
    assert std == pytest.approx(np.std(values, ddof=1), abs=0.006)
  assert float(cells[6]) == pytest.approx(84.82 - 82.82)  # the paper's gain, from its figures
  assert _markdown_row(markdown, "VAE w/ Gaussian prior")[5:7] == ["-", "-"]  # the baseline
  assert "seeds: 2" in markdown
  again, results = reproduce.reproduce("aneja_table2", str(workdir), rows=["ncp_*"], seeds=2,
                                       **TINY)
  assert all(r["reused"] for r in results) and again.split("date:")[1].split("\n", 1)[1] == (
      markdown.split("date:")[1].split("\n", 1)[1])
  with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
    reproduce.reproduce("aneja_table2", str(workdir), rows=["ncp_*"], seeds=0, **TINY)


def test_rows_without_a_paper_figure_and_with_the_paper_s_own_gain():
  table = reproduce_tables.get_table("all_priors")
  runs = ("vae_standard_dynamic_mnist", "mog_vae_dynamic_mnist", "ncp_vae_dynamic_mnist")
  nll = {("vae_standard_dynamic_mnist", 0): 104.0, ("vae_standard_dynamic_mnist", 1): 103.0,
         ("mog_vae_dynamic_mnist", 0): 103.5, ("mog_vae_dynamic_mnist", 1): 102.0,
         ("ncp_vae_dynamic_mnist", 0): 101.0}  # NCP's seed 1 failed
  results = []
  for seed in (0, 1):
    for run_id in runs:
      value = nll.get((run_id, seed))
      results.append({"row": table.row(run_id), "run": run_id, "seed": seed, "ours": value,
                      "error": None if value else "ValueError: boom",
                      "metrics": value and {"nll": value, "num_steps": 7, "num_examples": 10,
                                            "kl": 20.0 + seed}})
  markdown = reproduce.format_markdown(table, results, num_steps=7, num_importance_samples=10,
                                       eval_max_examples=10, device="CPU", seeds=2)
  header = markdown.split("\n| row | ")[1].split("\n")[0].strip(" |").split(" | ")
  mog = dict(zip(["row"] + header, _markdown_row(markdown, "MoG")))
  assert mog["paper"] == "-" and mog["difference"] == "-" and mog["paper gain"] == "-"
  assert mog["gain"] == f"{np.mean([0.5, 1.0]):.2f} ± {np.std([0.5, 1.0], ddof=1):.2f}"
  assert mog["KL(q‖p)"] == f"20.50 ± {np.std([20.0, 21.0], ddof=1):.2f}"
  assert mog["Z"] == "-"  # a key no run has
  ncp = dict(zip(["row"] + header, _markdown_row(markdown, "NCP")))
  assert ncp["ours"] == "101.00" and ncp["gain"] == "3.00"  # the one seed both finished
  assert ncp["paper gain"] == "2.00"  # Aneja Table 2: 84.82 - 82.82, not LARS' 84.97 - paper
  assert "1 of 2 seeds" in ncp["notes"] and "seed 1: ValueError: boom" in ncp["notes"]


def test_format_of_a_log_likelihood_table():
  table = reproduce_tables.get_table("takahashi_table2")
  row = table.row("takahashi_frey_standard")
  result = {"row": row, "run": row.run, "seed": 0, "error": None, "ours": 1380.0,
            "metrics": {"nll": -1380.0, "num_steps": 7, "num_examples": 200}}
  markdown = reproduce.format_markdown(table, [result], num_steps=7, num_importance_samples=10,
                                       eval_max_examples=0, device="CPU")
  cells = _markdown_row(markdown, row.name)
  assert cells[2:5] == ["1380.00", "1382.53", "-2.53"]
  assert "times -1" in markdown and "test images: all" in markdown


def test_unknown_table_lists_the_tables(tmp_path):
  with pytest.raises(ValueError) as e:
    reproduce.reproduce("no_such_table", str(tmp_path))
  for name in reproduce_tables.TABLES:
    assert name in str(e.value)
  with pytest.raises(ValueError, match="lars_vae_dynamic_mnist"):
    reproduce.select_rows(reproduce_tables.get_table("lars_table7"), ["nope*"])


def test_every_table_resolves_and_parses():
  runs = {}
  for table in reproduce_tables.TABLES.values():
    assert table.rows and table.sign in (1, -1)
    assert len({r.run for r in table.rows}) == len(table.rows), table.name
    for row in table.rows:
      for config in row.configs:
        run.resolve_config(config)
      dirs = {dep: f"/tmp/{dep}" for _, dep in row.depends}
      for _, dep in row.depends:
        table.row(dep)  # a dependency is a row of the same table
      gin.clear_config()
      run.parse_config(list(row.configs), reproduce.row_bindings(row, 100, 10, 8, dirs, False))
      assert gin.query_parameter("train.num_steps") == 100 * row.step_multiplier
      # Rows of different tables with one run id train the same thing.
      key = (row.configs, row.bindings, row.depends, row.warmup_fraction, row.step_multiplier,
             row.paper_steps)
      assert runs.setdefault(row.run, key) == key, row.run
  gin.clear_config()
