"""Evaluation: IWAE test NLL, ELBO decomposition, active units."""
from tfp_priors.evaluation.metrics import active_units, evaluate
