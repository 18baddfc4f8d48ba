"""Every config in configs/ parses: its includes resolve and every binding names a real
configurable parameter (a typo in a config fails here, not hours into a run)."""
import os

import gin
import pytest

from trainers import run

CONFIGS = sorted(f[:-4] for f in os.listdir(run.CONFIG_DIR) if f.endswith(".gin"))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_parses(name):
  gin.clear_config()
  run.parse_config([name], [])
  assert "make_datasets.batch_size" in gin.config_str()
