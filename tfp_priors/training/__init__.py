"""Training of a model and its prior: the Runner (`runner`), one training step (`trainer`),
the training strategies (joint, post hoc, iterative, noise contrastive, alternating), early
stopping, devices (`distribute`), checkpoints and the run directory's layout (`workdir`)."""
