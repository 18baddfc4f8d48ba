"""Networks of the papers' appendices (LARS C.2)."""
from tfp_priors.nets.mlp import MLP
