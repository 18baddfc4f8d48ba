"""Trainable priors: each owns its variables and builds its `tfd.Distribution`.

Registry names: 'normal' (`StandardNormalPrior`), 'lars' (`LarsPrior`), 'realnvp'
(`RealNVPPrior`, LARS C.2's RealNVP), 'xu_realnvp' (`XuRealNVPPrior`, Xu et al. B.2's RealNVP
with ActNorm; its former name 'rnvp' is still accepted, see `canonical_name`), 'maf'
(`MAFPrior`, LARS C.2), 'ncp' (`NCPPrior`, Aneja et al. 2021), 'implicit' (`ImplicitPrior`,
Takahashi et al. 2019), 'hierarchical_ncp' (`HierarchicalNCPPrior`, Aneja Sec. 4.4, HVAE). Flow
priors share `FlowPrior`; the NCPs and the implicit prior share `DensityRatioPrior`.
'snis' (`SnisPrior`, Lawson et al. 2019: one of K proposals selected by a learned energy).
Mixture baselines: 'mog' (`MixtureOfGaussiansPrior`), 'vamp' (`VampPrior`, Tomczak & Welling
2018; built from the model's encoder).
"""
from tfp_priors.priors.interface import (Prior, build_prior, canonical_name, deferred_state,
                                         register, registered_class)
from tfp_priors.priors.density_ratio import DensityRatioPrior, ImplicitPrior, NCPPrior
from tfp_priors.priors.flow import FlowPrior
from tfp_priors.priors.hierarchical_ncp import HierarchicalNCPPrior
from tfp_priors.priors.lars import LarsPrior
from tfp_priors.priors.maf import MAFPrior
from tfp_priors.priors.mixture import MixtureOfGaussiansPrior, VampPrior
from tfp_priors.priors.normal import StandardNormalPrior
from tfp_priors.priors.realnvp import RealNVPPrior
from tfp_priors.priors.snis import SnisPrior
from tfp_priors.priors.xu_realnvp import XuRealNVPPrior
