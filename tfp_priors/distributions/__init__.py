"""`tfd.Distribution` subclasses: pure math, no training state."""
from tfp_priors.distributions.resampled import Resampled
from tfp_priors.distributions.reweighted import Reweighted
from tfp_priors.distributions.snis import SelfNormalizedImportanceSampling
