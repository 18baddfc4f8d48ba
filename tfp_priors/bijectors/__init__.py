"""Bijectors TFP lacks, as `tfb.Bijector`s: `ActNorm` (Glow) and `invertible_dense` (Glow's
invertible 1x1 convolution in dense form, a `tfb.ScaleMatvecLU` initialised from a rotation);
`caching.clear_caches` drops TFP's cached results after variables change."""
from tfp_priors.bijectors import caching
from tfp_priors.bijectors.actnorm import ActNorm
from tfp_priors.bijectors.invertible_dense import invertible_dense
from tfp_priors.bijectors.invertible_dense import matrix_and_log_det
from tfp_priors.bijectors.invertible_dense import random_orthogonal
