"""The docs cannot rot: every command and Python block of README.md and docs/*.md runs or is
checked, and the paths and links they name exist.

From every fenced ```bash block (backslash continuations joined, comments dropped, `&&` / `;`
chains split), each command is:
  * skipped when it matches `SKIPPED` (installs, the full test suite, servers, several
    machines), which gives the reason; every rule must still match some command;
  * `python -m trainers.run ...`: parsed by `trainers.run.parse_config` (the configs exist,
    every --gin_bindings value parses after them) and checked by `Runner.check` (the settings
    a run checks before any work), without training; the runs whose --workdir is in `TRAINED`
    also train for real, in doc order, in a temporary folder, with `support.TINY_BINDINGS` and
    `TINY_BUDGET` appended (a bounded number: the whole file stays within a few minutes);
  * any other `python -m <module> ...`: run as a script in one helper process with
    `absl.app.run` replaced, so the module imports and every flag of the command parses
    (`FLAG_CHECK`); the modules of `RUN_FOR_REAL` also run for real, with tiny flags, when
    every `runs/...` path they read was trained above;
  * `python -c "..."`: run as written.
Every ```python block is exec()'d as written, with $TFP_PRIORS_DATA_DIR set (conftest.py).
Paths in commands and in inline code (`configs/...`, `tfp_priors/...`, `x.gin`) and relative
links (with their #anchors) must exist. A command no rule covers fails the test: add a rule,
or fix the doc.
"""
import fnmatch
import glob
import itertools
import json
import os
import re
import shlex
import subprocess
import sys

import gin
import pytest

import support

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_FILES = ([os.path.join(ROOT, "README.md")]
             + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))))

# README.md starts with these two commands (install and the main job; the tests), as written;
# .ci/run runs the second.
README_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m "
    "trainers.run --gin_config=lars_hvae.gin --workdir=runs/lars_hvae",
    ".venv/bin/python -m pytest -q tests",
)

# (regex on the command as written, why it is not run). Commands that install, need the
# network or several machines, or run until stopped.
SKIPPED = (
    (r"^python3 -m venv ", "creates the virtualenv (install)"),
    (r"^\S*pip install ", "installs the pinned packages (install; needs the network)"),
    (r"^\S*python -m pytest ", "the full test suite (11+ minutes; CI runs it, and it would run "
                               "this file again)"),
    (r"^\S*tensorboard ", "starts a server that runs until stopped"),
    (r"^export ", "sets a shell variable for the commands after it (the tests set "
                  "TFP_PRIORS_DATA_DIR themselves, conftest.py)"),
    (r"^TF_CONFIG=", "needs several machines (network); its configs and bindings are still "
                     "parsed"),
)

# --workdir of the trainers.run commands that train for real -> (why, extra bindings). The
# others (NCP's two stages, the 2-D run of trainers.figures, ...) are parsed and checked; their
# training paths have tests of their own (tests/test_density_ratio.py, tests/test_figures.py),
# and the CI budget is short.
TRAINED = {
    "runs/lars_hvae": ("README's main job: train, evaluate, export; trainers.sample reads the "
                       "export", ("train.evaluate = True", "train.export = True")),
}
# Appended after a trained command's own bindings: the tiny budget.
TINY_BUDGET = ("train.num_steps = 10", "train.eval_max_examples = 20",
               "train.num_importance_samples = 5", "train.normalizer_samples = 5000")

# Modules that run for real when every runs/ path they read was trained; their tiny flags
# come last (absl: the last value wins).
RUN_FOR_REAL = {
    "trainers.sample": ("--num_samples=4",),
}
# Flags whose value is a file or folder that a real run writes: moved into the temporary folder.
OUTPUT_FLAGS = ("--output", "--output_dir", "--logdir", "--output_json")

PYTHONS = ("python", "python3", ".venv/bin/python")
TIMEOUT_S = 300
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
RUNS = re.compile(r"(?<![\w/.])runs/")  # a runs/... path in a command
REPO_PATH = re.compile(r"^(configs|benchmarks|tests|tfp_priors|trainers|docs)/[\w./{},*-]*$")
CONFIG_NAME = re.compile(r"^[\w{},*]+\.gin$")
WORKDIR_FILES = ("config.gin",)  # `x.gin` names in the docs that are not configs/


def _read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


def _blocks(language):
  """(doc path relative to ROOT, line of the fence, text) of every fenced block."""
  for path in DOC_FILES:
    text = _read(path)
    for m in FENCE.finditer(text):
      if m.group(1) == language:
        yield os.path.relpath(path, ROOT), text.count("\n", 0, m.start()) + 1, m.group(2)


def _command_lines(block):
  """The block's commands as written: continuations joined, comment lines dropped."""
  lines, pending = [], ""
  for raw in block.splitlines():
    line = (pending + " " + raw.strip()) if pending else raw.strip()
    if line.endswith("\\"):
      pending = line[:-1].rstrip()
      continue
    pending = ""
    if line and not line.startswith("#"):
      lines.append(line)
  return lines


def _split(line):
  """shlex tokens of one line (comments dropped), split at &&, ||, ; and |."""
  lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
  lexer.whitespace_split = True
  tokens, commands = list(lexer), [[]]
  for token in tokens:
    if token in ("&&", "||", ";", "|"):
      commands.append([])
    else:
      commands[-1].append(token)
  return [c for c in commands if c]


class Command:
  """One command of a bash block: where it is, its text, env prefix, argv and kind."""

  def __init__(self, doc, line, text, argv):
    self.doc, self.line, self.text = doc, line, text
    self.env = {}
    while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
      name, value = argv[0].split("=", 1)
      self.env[name] = value
      argv = argv[1:]
    self.argv = argv
    self.skip = next((why for rule, why in SKIPPED if re.search(rule, text)), None)
    self.module, self.args = None, []
    if len(argv) >= 3 and argv[0] in PYTHONS and argv[1] == "-m":
      self.module, self.args = argv[2], argv[3:]
    self.kind = ("skipped" if self.skip else
                 "python -c" if len(argv) >= 3 and argv[0] in PYTHONS and argv[1] == "-c" else
                 "trainers.run" if self.module == "trainers.run" else
                 "module" if self.module else "unknown")

  def where(self):
    return f"{self.doc}:{self.line}: {self.text}"

  def flag_values(self, name):
    """Values of --name=value in the command, in order."""
    return [a.split("=", 1)[1] for a in self.args if a.startswith(f"--{name}=")]


def _commands():
  out = []
  for doc, line, block in _blocks("bash"):
    for text in _command_lines(block):
      parts = _split(text)
      # A chain: the text each part is matched against is its own (e.g. `pip install`).
      for argv in parts:
        part_text = text if len(parts) == 1 else " ".join(shlex.quote(a) for a in argv)
        out.append(Command(doc, line, part_text, argv))
  return out


COMMANDS = _commands()
RUN_COMMANDS = [c for c in COMMANDS if c.module == "trainers.run"]
MODULE_COMMANDS = [c for c in COMMANDS if c.module and c.kind != "skipped"]
PYTHON_BLOCKS = list(_blocks("python"))


def _run_args(command):
  """(configs, bindings, workdir, seed) of a trainers.run command; fails on other flags."""
  allowed = ("--gin_config=", "--gin_bindings=", "--workdir=", "--seed=")
  odd = [a for a in command.args if not a.startswith(allowed)]
  assert not odd, f"{command.where()}: flags the test does not know: {odd}"
  seeds = command.flag_values("seed")
  return (command.flag_values("gin_config"), command.flag_values("gin_bindings"),
          (command.flag_values("workdir") or [None])[-1], int(seeds[-1]) if seeds else None)


def test_readme_starts_with_its_two_commands():
  text = _read(os.path.join(ROOT, "README.md"))
  first = FENCE.search(text)
  assert text[:first.start()].strip() == "# tfp_priors", "README.md: nothing before the commands"
  assert first.group(1) == "bash"
  assert tuple(_command_lines(first.group(2))) == README_COMMANDS
  assert README_COMMANDS[1] in _read(os.path.join(ROOT, ".ci", "run"))


def test_every_command_is_understood_and_every_skip_rule_is_used():
  assert COMMANDS and PYTHON_BLOCKS
  unknown = [c.where() for c in COMMANDS if c.kind == "unknown"]
  assert not unknown, "commands no rule covers (add one to test_docs.py or fix the doc):\n" + (
      "\n".join(unknown))
  unused = [rule for rule, _ in SKIPPED if not any(re.search(rule, c.text) for c in COMMANDS)]
  assert not unused, f"SKIPPED rules that match no command any more: {unused}"
  workdirs = [_run_args(c)[2] for c in RUN_COMMANDS]
  missing = [w for w in TRAINED if w not in workdirs]
  assert not missing, f"TRAINED workdirs that no trainers.run command of the docs uses: {missing}"
  modules = {c.module for c in MODULE_COMMANDS}
  assert set(RUN_FOR_REAL) <= modules, set(RUN_FOR_REAL) - modules


def _expand(pattern):
  """Brace expansion of a{b,c}d -> [abd, acd] (several groups, no nesting)."""
  parts = re.split(r"\{([^{}]*)\}", pattern)
  choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
  return ["".join(c) for c in itertools.product(*choices)]


def _exists(path):
  return all(glob.glob(os.path.join(ROOT, p)) for p in _expand(path))


def test_paths_in_commands_exist():
  from trainers import run  # pylint: disable=g-import-not-at-top
  missing = []
  for command in COMMANDS:
    program = command.argv[0]
    if program.startswith(".venv/bin/"):  # README's virtualenv, else the one running the tests
      venv = os.path.join(ROOT, ".venv", "bin")
      where = venv if os.path.isdir(venv) else os.path.dirname(sys.executable)
      if not os.path.exists(os.path.join(where, os.path.basename(program))):
        missing.append(f"{command.where()}: {program}")
    elif "/" in program and not os.path.exists(os.path.join(ROOT, program)):
      missing.append(f"{command.where()}: {program}")
    for token in command.argv:
      for value in [token] + token.split("=")[1:]:
        value = value.strip("'\"")
        if REPO_PATH.match(value) and not _exists(value):
          missing.append(f"{command.where()}: {value}")
    for config in (command.flag_values("gin_config") if command.module else []):
      try:
        run.resolve_config(config)
      except FileNotFoundError as e:
        missing.append(f"{command.where()}: {e}")
  assert not missing, "\n".join(missing)


def _slug(heading):
  """GitHub's anchor of a markdown heading."""
  text = re.sub(r"[`*]", "", heading.strip().lower())
  return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_paths_and_links_in_the_text_exist():
  problems = []
  for path in DOC_FILES:
    text, doc = _read(path), os.path.relpath(path, ROOT)
    prose = FENCE.sub("", text)
    for code in re.findall(r"`([^`\n]+)`", prose):
      if "<" in code:
        continue  # a placeholder, e.g. configs/<name>.gin
      if REPO_PATH.match(code) and not _exists(code):
        problems.append(f"{doc}: `{code}` does not exist")
      if CONFIG_NAME.match(code) and code not in WORKDIR_FILES and not _exists("configs/" + code):
        problems.append(f"{doc}: `{code}` is not in configs/")
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
      if re.match(r"^[a-z]+://", target):
        continue
      file_part, _, anchor = target.partition("#")
      linked = (os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if file_part else path)
      if not os.path.exists(linked):
        problems.append(f"{doc}: link {target}: no such file")
      elif anchor and linked.endswith(".md"):
        slugs = {_slug(h) for h in re.findall(r"^#+ (.*)$", FENCE.sub("", _read(linked)), re.M)}
        if anchor not in slugs:
          problems.append(f"{doc}: link {target}: no heading #{anchor} in {file_part or doc}")
  assert not problems, "\n".join(problems)


@pytest.mark.parametrize("command", RUN_COMMANDS,
                         ids=lambda c: f"{c.doc}:{c.line}:{(c.flag_values('workdir') or [''])[-1]}")
def test_trainers_run_command_parses_and_passes_the_checks(command, tmp_path):
  """The configs resolve and parse, the bindings parse after them, and the run's settings
  pass `Runner.check` (nothing is trained, no data is loaded)."""
  from tfp_priors.training import runner  # pylint: disable=g-import-not-at-top
  from trainers import run  # pylint: disable=g-import-not-at-top
  configs, bindings, workdir, seed = _run_args(command)
  assert configs and workdir, f"{command.where()}: --gin_config and --workdir are required"
  try:
    run.parse_config(configs, bindings + run.seed_bindings(seed))
  except (run.ConfigError, FileNotFoundError) as e:
    pytest.fail(f"{command.where()}: {e}")
  try:
    distribute = gin.query_parameter("train.distribute")
  except ValueError:
    distribute = None
  if distribute:  # a strategy across devices or machines is not built here; the parse is the check
    return
  runner.configured_runner(str(tmp_path / "workdir")).check()


# Run as `python -c FLAG_CHECK` with [[module, [args, ...]], ...] on stdin: each module runs as
# a script with absl.app.run replaced, so it imports and defines its flags; then each of its
# commands' arguments is parsed by absl. Prints the list of problems as JSON.
FLAG_CHECK = r"""
import json, runpy, sys
from absl import app, flags
FLAGS, real_run, problems = flags.FLAGS, app.run, []

class Parsed(Exception):
  pass

def fake_run(main, argv=None, **kwargs):
  raise Parsed()

for module, argvs in json.load(sys.stdin):
  flags_before, modules_before = set(FLAGS), set(sys.modules)
  app.run = fake_run
  try:
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    problems.append(f"python -m {module}: does not call absl.app.run as a script")
  except Parsed:
    for args in argvs:
      FLAGS.unparse_flags()
      try:
        rest = FLAGS([module] + args)
        if len(rest) > 1:
          problems.append(f"python -m {module} {' '.join(args)}: stray arguments {rest[1:]}")
      except flags.Error as e:
        problems.append(f"python -m {module} {' '.join(args)}: {e}")
  except Exception as e:
    problems.append(f"python -m {module}: {type(e).__name__}: {e}")
  finally:
    app.run = real_run
    FLAGS.unparse_flags()
    for name in set(FLAGS) - flags_before:
      if name in FLAGS:
        delattr(FLAGS, name)
    for name in set(sys.modules) - modules_before:
      if name.startswith(("trainers.", "benchmarks.")) and name != "trainers.console":
        parent, _, child = name.rpartition(".")  # `from trainers import run` reads this first
        if getattr(sys.modules.get(parent), child, None) is sys.modules[name]:
          delattr(sys.modules[parent], child)
        del sys.modules[name]
print(json.dumps(problems))
"""


def _env(extra=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  env.update(extra or {})
  return env


def test_module_commands_import_and_their_flags_parse():
  todo = {}
  for command in MODULE_COMMANDS + [c for c in RUN_COMMANDS if c.kind == "skipped"]:
    todo.setdefault(command.module, []).append(command.args)
  result = subprocess.run([sys.executable, "-c", FLAG_CHECK], input=json.dumps(list(todo.items())),
                          capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=TIMEOUT_S)
  assert result.returncode == 0, result.stderr[-3000:]
  problems = json.loads(result.stdout.strip().splitlines()[-1])
  assert not problems, "\n".join(problems)


def test_python_c_commands_run():
  commands = [c for c in COMMANDS if c.kind == "python -c"]
  for command in commands:
    result = subprocess.run([sys.executable] + command.argv[1:], capture_output=True, text=True,
                            cwd=ROOT, env=_env(command.env), timeout=TIMEOUT_S)
    assert result.returncode == 0, f"{command.where()}:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: f"{b[0]}:{b[1]}")
def test_python_block_runs(block, tmp_path, monkeypatch):
  doc, line, code = block
  monkeypatch.chdir(tmp_path)  # whatever a block writes stays out of the repository
  exec(compile(code, f"{doc}:{line}", "exec"), {"__name__": "__doc_block__"})  # pylint: disable=exec-used


def _in_tmp(value, tmp):
  return RUNS.sub(lambda _: os.path.join(tmp, "runs") + "/", value)


def _output_in_tmp(arg, tmp):
  name, sep, value = arg.partition("=")
  if sep and name in OUTPUT_FLAGS and not value.startswith(tmp):
    return f"{name}={os.path.join(tmp, 'outputs', value)}"
  return arg


def _reads_only_trained(command, trained):
  """Whether the command names runs/ paths and all of them lie in trained workdirs."""
  paths = ["runs/" + a.split("runs/", 1)[1] for a in command.args if RUNS.search(a)]
  return bool(paths) and all(any(p == w or p.startswith(w + "/") for w in trained) for p in paths)


@pytest.mark.slow
def test_trained_commands_run_for_real(tmp_path):
  """The TRAINED runs train (tiny budget) in doc order, then the RUN_FOR_REAL commands whose
  runs/ paths were trained run on them; each must exit 0 and write what it says."""
  tmp, trained, ran = str(tmp_path), set(), set()
  os.makedirs(os.path.join(tmp, "outputs"))
  for command in COMMANDS:
    if command.kind == "skipped" or not command.module:
      continue
    if command.module == "trainers.run":
      configs, bindings, workdir, seed = _run_args(command)
      if workdir not in TRAINED or workdir in trained:
        continue
      extra = TRAINED[workdir][1]
      args = ([f"--gin_config={c}" for c in configs] + [f"--workdir={_in_tmp(workdir, tmp)}"]
              + [f"--gin_bindings={b}" for b in support.TINY_BINDINGS]
              + [f"--gin_bindings={_in_tmp(b, tmp)}" for b in bindings]
              + [f"--gin_bindings={b}" for b in TINY_BUDGET + extra]
              + ([f"--seed={seed}"] if seed is not None else []))
    elif command.module in RUN_FOR_REAL and _reads_only_trained(command, trained):
      args = [_output_in_tmp(_in_tmp(a, tmp), tmp) for a in command.args]
      args += list(RUN_FOR_REAL[command.module])
    else:
      continue
    result = subprocess.run([sys.executable, "-m", command.module] + args, capture_output=True,
                            text=True, cwd=ROOT, env=_env(command.env), timeout=TIMEOUT_S)
    assert result.returncode == 0, (f"{command.where()}\nran: {' '.join(args)}\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    if command.module == "trainers.run":
      path = _in_tmp(workdir, tmp)
      assert os.path.exists(os.path.join(path, "config.gin")), command.where()
      assert os.path.isdir(os.path.join(path, "checkpoints")), command.where()
      if "train.export = True" in extra:
        assert os.path.exists(os.path.join(path, "export", "saved_model.pb")), command.where()
      if "train.evaluate = True" in extra:
        with open(os.path.join(path, "metrics.json")) as f:
          assert "nll" in json.load(f), command.where()
      trained.add(workdir)
    ran.add(command.module)
  assert trained == set(TRAINED), f"not trained: {set(TRAINED) - trained}"
  assert set(RUN_FOR_REAL) <= ran, f"not run for real: {set(RUN_FOR_REAL) - ran}"


def test_reproduce_rows_name_rows_of_their_table():
  """Every `--rows` pattern of a trainers.reproduce command names rows of its table."""
  from trainers import reproduce_tables  # pylint: disable=g-import-not-at-top
  for command in [c for c in MODULE_COMMANDS if c.module == "trainers.reproduce"]:
    table = reproduce_tables.get_table(command.flag_values("table")[-1])
    for patterns in command.flag_values("rows"):
      for pattern in patterns.split(","):
        assert any(fnmatch.fnmatch(r.run, pattern) for r in table.rows), (
            f"{command.where()}: no row of {table.name} matches {pattern!r}")
