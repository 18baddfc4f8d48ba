"""Every config in configs/ parses: its includes resolve and every binding names a real
configurable parameter (a typo in a config fails here, not hours into a run).

Overlays (configs whose first line starts with '# Overlay', e.g. a data set switch such as
fashion_mnist.gin) hold a few bindings meant to follow a model/prior config on the command line
(`--gin_config=lars_vae.gin --gin_config=fashion_mnist.gin`): they are parsed that way, after
BASE_CONFIG, and their bindings must win."""
import os

import gin
import pytest

from trainers import run

CONFIGS = sorted(f[:-4] for f in os.listdir(run.CONFIG_DIR) if f.endswith(".gin"))
BASE_CONFIG = "lars_vae"


def is_overlay(name):
  with open(os.path.join(run.CONFIG_DIR, name + ".gin")) as f:
    return f.readline().startswith("# Overlay")


@pytest.mark.parametrize("name", CONFIGS)
def test_config_parses(name):
  gin.clear_config()
  overlay = is_overlay(name)
  run.parse_config([BASE_CONFIG, name] if overlay else [name], [])
  assert "make_datasets.batch_size" in gin.config_str()
  if overlay:
    # The overlay's data set replaces the base config's (later --gin_config wins).
    with open(os.path.join(run.CONFIG_DIR, name + ".gin")) as f:
      lines = [l for l in f if l.startswith("make_datasets.name")]
    for line in lines:
      assert gin.query_parameter("make_datasets.name") == line.split("=", 1)[1].strip()[1:-1]


def test_overlays_are_marked():
  # The data set overlays exist and are recognised as overlays.
  for name in ("fashion_mnist", "omniglot"):
    assert name in CONFIGS and is_overlay(name)
