"""`python -m trainers.figures --workdir=...`: see the package docstring."""
from absl import app
from absl import flags

from trainers import figures
from trainers.figures import driver

if __name__ == "__main__":
  __doc__ = figures.__doc__  # absl's --help and usage errors print the main module's docstring
  driver.define_flags()
  flags.adopt_module_key_flags(driver)  # --help lists them as the script's own flags
  app.run(driver.main)
