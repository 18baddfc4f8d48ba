"""Estimators of the normalizing constant Z of a resampled (LARS) distribution.

- `ema`: the training-time estimator of Bauer & Mnih (2019), Algorithm 1 (appendix A.4).
- `normalizer`: the evaluation-time streaming Monte Carlo estimator (Eq. A.17), float64
  accumulation, antithetic pairs, standard error.
"""
from tfp_priors.estimators.ema import ema_log_normalizer
from tfp_priors.estimators.normalizer import NormalizerEstimate, estimate_log_normalizer
