"""Trainable priors: each owns its variables and builds its `tfd.Distribution`.

Registry names: 'normal' (`StandardNormalPrior`), 'lars' (`LarsPrior`).
"""
from tfp_priors.priors.base import Prior, build_prior, register
from tfp_priors.priors.lars import LarsPrior
from tfp_priors.priors.normal import StandardNormalPrior
