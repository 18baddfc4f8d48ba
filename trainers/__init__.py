"""Entry points: `python -m trainers.run --gin_config=lars_hvae.gin --workdir=runs/x`.

Importing the package silences third-party console noise before TensorFlow loads
(`trainers.console`; --verbosity keeps it).
"""
from trainers import console

console.quiet_third_party()
