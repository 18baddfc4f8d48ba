"""The project reaches package registries only through their ordinary clients (pip, apt-get):
no registry host name or download URL is written into its files, CI script included."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY_HOSTS = re.compile(
    r"pypi\.org|pythonhosted\.org|debian\.org|registry\.npmjs\.org|npmjs\.com", re.IGNORECASE)
SKIPPED_DIRS = {".git", ".venv", "runs", "__pycache__", "data"}


def _project_text_files():
  for directory, dirs, files in os.walk(ROOT):
    dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
    for name in files:
      path = os.path.join(directory, name)
      if (name.endswith((".py", ".gin", ".md", ".cfg", ".toml", ".txt", ".sh")) or name == "run"
         ) and path != os.path.abspath(__file__):  # this file names what it looks for
        yield path


def test_no_registry_host_names_or_direct_downloads_in_the_project():
  offending = []
  for path in _project_text_files():
    with open(path, encoding="utf-8", errors="replace") as f:
      for number, line in enumerate(f, 1):
        if REGISTRY_HOSTS.search(line) or re.search(r"\b(curl|wget)\b", line):
          offending.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()[:100]}")
  assert os.path.exists(os.path.join(ROOT, ".ci", "run"))
  assert not offending, "\n".join(offending)
