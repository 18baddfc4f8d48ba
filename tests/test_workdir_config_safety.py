"""Reading a run back (`workdir.open_run`, used by trainers.figures and trainers.plot_onehot):
a config.gin with gin imports or dynamic registration is refused before anything runs, and a
truncated or invalid one is a one-line error of the caller's class naming the file and line.

The workdirs are built directly (a config.gin and a one-variable checkpoint): no training."""
import os
import re
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from tfp_priors.training import workdir as workdir_lib
from trainers import figures
from trainers import plot_onehot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_LOG = re.compile(r"^(WARNING: All log messages|[IWEF]\d{4} |To enable the following)")
VALID = ("make_datasets.name = 'onehot'\n"
         "train.learning_rate_schedule = ((0.0, 0.001),\n"
         "                                (0.5, 0.0001))\n"
         "train.num_steps = 10\n")
MARKER_MODULE = "tfp_priors_test_marker_module"  # importing it creates the marker file


class CallerError(ValueError):
  """Stands in for the error class of a figure script (FigureError, PlotError)."""


def _workdir(root, config):
  """A run directory: config.gin with `config` (str or bytes) and a checkpoint at step 1."""
  workdir = root / "run"
  (workdir / "checkpoints").mkdir(parents=True)
  mode = "wb" if isinstance(config, bytes) else "w"
  with open(workdir / "config.gin", mode) as f:
    f.write(config)
  checkpoint = tf.train.Checkpoint(step=tf.Variable(1, dtype=tf.int64))
  tf.train.CheckpointManager(checkpoint, str(workdir / "checkpoints"), 1).save()
  return str(workdir)


@pytest.fixture
def marker(tmp_path, monkeypatch):
  """The path of a file that importing MARKER_MODULE (on sys.path for the test) creates."""
  path = tmp_path / "code_ran"
  modules = tmp_path / "modules"
  modules.mkdir()
  (modules / f"{MARKER_MODULE}.py").write_text(
      f"open({str(path)!r}, 'w').close()\ndef touch():\n  return 0\n")
  monkeypatch.syspath_prepend(str(modules))
  yield path
  sys.modules.pop(MARKER_MODULE, None)


def test_a_valid_config_is_parsed(tmp_path):
  checkpoint = workdir_lib.open_run(_workdir(tmp_path, VALID), CallerError)
  assert checkpoint.endswith("ckpt-1")
  assert gin.query_parameter("train.num_steps") == 10
  assert gin.query_parameter("train.learning_rate_schedule") == ((0.0, 1e-3), (0.5, 1e-4))


def test_the_marker_module_runs_code_when_imported(marker):
  gin.parse_config(f"import {MARKER_MODULE}")  # what open_run must never do
  assert marker.exists()


DYNAMIC = (f"from __gin__ import dynamic_registration\nimport {MARKER_MODULE}\nimport os\n"
           f"train.print_fn = @{MARKER_MODULE}.touch()\ntrain.strategy = @os.system()\n")
IMPORTS = {  # config.gin text -> the line number of the import refused
    "dynamic registration": (VALID + DYNAMIC, 5),
    "import": (f"import {MARKER_MODULE}\n" + VALID, 1),
    "import as": (VALID + f"import {MARKER_MODULE} as m\n", 5),
    "indented import": (f"  import {MARKER_MODULE}\n" + VALID, 1),
    "from import": (f"from {MARKER_MODULE} import touch\n" + VALID, 1),
    "from continued by a backslash": (
        VALID + "from\\\n __gin__ import dynamic_registration\n" + f"import {MARKER_MODULE}\n", 5),
    "include": (VALID + "include 'other.gin'\n", 5),
}


@pytest.mark.parametrize("case", sorted(IMPORTS))
def test_imports_are_refused_before_anything_runs(tmp_path, marker, case):
  config, line = IMPORTS[case]
  workdir = _workdir(tmp_path, config)
  with open(os.path.join(workdir, "other.gin"), "w") as f:  # what the include case would read
    f.write(f"import {MARKER_MODULE}\n")
  gin.parse_config("train.num_steps = 7")
  with pytest.raises(CallerError) as info:
    workdir_lib.open_run(workdir, CallerError)
  message = str(info.value)
  assert "\n" not in message
  assert message.startswith(f"{workdir}/config.gin line {line}: ")
  assert "never contains imports" in message
  assert not marker.exists() and MARKER_MODULE not in sys.modules
  assert gin.query_parameter("train.num_steps") == 7  # the gin state is untouched


CUT_BINDING = VALID + "train.log_every ="
BAD = {  # config.gin content -> (text in the message, line named or None)
    "cut in a binding": (CUT_BINDING, "Unable to parse value", 5),
    "cut in a name": (VALID + "train.log_ev", "expected ':' or '='", 5),
    "cut in a multi-line tuple": (VALID[:VALID.index("(0.5")] + "(0.5,", "EOF in multi-line",
                                  None),
    "random bytes": (np.random.default_rng(0).bytes(400), "not UTF-8 text", 1),
    "binary garbage that is UTF-8": ("\x00\x01((=@@\x7f", "cannot parse", 1),
    "unknown configurable": (VALID + "NoSuchThing.size = 3\n", "No configurable matching", 5),
    "unknown parameter": (VALID + "train.no_such_parameter = 3\n", "doesn't have a parameter",
                          5),
    "@os.system() without import": (VALID + "train.strategy = @os.system()\n",
                                    "No configurable matching reference '@os.system()'", 5),
    "nested too deeply": ("train.num_steps = " + "(" * 5000 + ")" * 5000 + "\n", "cannot parse",
                          None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_config_is_one_line_of_the_callers_error(tmp_path, case):
  config, text, line = BAD[case]
  workdir = _workdir(tmp_path, config)
  with pytest.raises(CallerError) as info:
    workdir_lib.open_run(workdir, CallerError)
  message = str(info.value)
  assert "\n" not in message and text in message
  where = f" line {line}" if line else ""
  assert message.startswith(f"cannot parse {workdir}/config.gin{where}")


@pytest.mark.parametrize("read_run, caller_error", [
    (figures.write_figures, figures.FigureError),
    (plot_onehot.plot_workdir, plot_onehot.PlotError),
])
def test_the_figure_scripts_raise_their_error(tmp_path, marker, read_run, caller_error):
  workdir = _workdir(tmp_path, VALID + DYNAMIC)
  with pytest.raises(caller_error, match="never contains imports"):
    read_run(workdir)
  assert not marker.exists()
  workdir = _workdir(tmp_path / "cut", CUT_BINDING)
  with pytest.raises(caller_error, match="Unable to parse value"):
    read_run(workdir)


def test_plot_onehot_cli_prints_one_line_and_exits_1(tmp_path, marker):
  workdir = _workdir(tmp_path, VALID + DYNAMIC)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(marker.parent / "modules"), REPO]))
  result = subprocess.run(
      [sys.executable, "-m", "trainers.plot_onehot", f"--workdir={workdir}"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 1, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip() and not TF_LOG.match(l)]
  assert len(lines) == 1 and lines[0].startswith(f"error: {workdir}/config.gin line 5:"), (
      result.stderr[-2000:])
  assert not marker.exists()
  assert not os.path.exists(os.path.join(workdir, "onehot_posterior.png"))
