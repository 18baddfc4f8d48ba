"""trainers.reproduce: tiny reproductions of a paper table on the real MNIST slice (CPU)."""
import dataclasses
import json
import os
import re

import gin
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
