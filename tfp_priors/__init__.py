"""tfp_priors: learned priors of variational autoencoders.

Subpackages: `distributions` (pure math, `tfd.Distribution` subclasses), `priors` (trainable
priors owning their variables), `estimators` (log Z), `samplers`, `nets`, `models`, `objectives`,
`evaluation`, `data`, `export`.
"""
