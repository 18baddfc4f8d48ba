"""What the command-line programs print: third-party noise off by default, back with --verbosity.

`quiet_third_party()` runs when the `trainers` package is imported, before TensorFlow is:
  - TensorFlow's native log lines written before absl::InitializeLog (oneDNN, CUDA stubs, CPU
    features, `failed call to cuInit` on a machine without a GPU): absl writes those to stderr
    whatever TF_CPP_MIN_LOG_LEVEL says, so stderr (fd 2) is passed through a filter thread that
    drops their INFO and WARNING lines and the known noise among their errors (`NATIVE_NOISE`),
    and forwards every other byte;
  - gin's "Path not found" errors for every `include` it first looks up as a Python package
    before finding it in configs/, and tfds's warnings about local folders without a
    dataset_info.json: dropped by a filter on the Python loggers, which lets the rest through.
Passing --verbosity (or -v) on the command line leaves all of it on; under pytest only the
logger filter is installed (pytest captures fd 2 itself).
"""
import atexit
import logging
import os
import re
import sys
import threading

# A native line of absl before InitializeLog: "I0000 00:00:1796.123     680 port.cc:153] ...".
_NATIVE = re.compile(rb"^([IWEF])0000 00:00:\d+\.\d+ +\d+ [\w.]+\.cc:\d+\] (.*)$", re.S)
# Native error lines that are noise: no CUDA driver on a CPU machine, oneDNN's fallback note.
NATIVE_NOISE = re.compile(rb"failed call to cuInit|oneDNN supports DT_BOOL only")
_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written"
_CONTINUATION = b"To enable the following instructions:"  # second line of cpu_feature_guard's


def verbose_requested(argv=None):
  """Whether the command line asks for absl's --verbosity / -v."""
  return any(arg.startswith(("--verbosity", "-v")) for arg in (argv or sys.argv)[1:])


class ThirdPartyNoise(logging.Filter):
  """Drops the log records of gin's package-path lookups and tfds's folder warnings."""

  def filter(self, record):
    path = record.pathname.replace(os.sep, "/")
    if path.endswith("gin/resource_reader.py") and "Path not found" in str(record.msg):
      return False
    return not ("tensorflow_datasets/" in path and record.levelno <= logging.WARNING)


def is_noise(line):
  """Whether a line (bytes) of fd 2 is native TensorFlow noise (see the module docstring)."""
  if line.startswith((_PREAMBLE, _CONTINUATION)):
    return True
  native = _NATIVE.match(line)
  return bool(native) and (native.group(1) in (b"I", b"W") or bool(NATIVE_NOISE.search(line)))


def _filter_native_stderr():
  """Makes fd 2 a pipe read by a thread that forwards all but `is_noise` lines to the real
  stderr; at exit the real stderr is put back and the thread drained."""
  real = os.dup(2)
  read, write = os.pipe()
  os.dup2(write, 2)
  os.close(write)

  def pump():
    pending = b""
    while True:
      chunk = os.read(read, 65536)
      if not chunk:
        break
      lines = (pending + chunk).split(b"\n")
      pending = lines.pop()
      kept = b"".join(line + b"\n" for line in lines if not is_noise(line))
      if pending and not (pending[:1] in b"IWEF" or _PREAMBLE.startswith(pending[:20])):
        kept, pending = kept + pending, b""  # a partial line of ours (e.g. a progress bar)
      if kept:
        os.write(real, kept)
    if pending and not is_noise(pending):
      os.write(real, pending)

  thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
  thread.start()

  def restore():
    sys.stderr.flush()
    os.dup2(real, 2)  # closes the pipe's write end: the pump reads to its end and stops
    thread.join(timeout=5)
  atexit.register(restore)


_installed = []


def quiet_third_party(argv=None):
  """Silences the third-party noise above (a no-op when --verbosity is given). Idempotent."""
  if verbose_requested(argv) or _installed:
    return
  _installed.append(True)
  for name in ("", "absl"):  # gin logs to the root logger, tfds through absl's
    logging.getLogger(name).addFilter(ThirdPartyNoise())
  if "pytest" not in sys.modules:
    _filter_native_stderr()
