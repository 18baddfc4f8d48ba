"""The OneHot toy data of Mescheder et al. (2017), as used by Takahashi et al. (2019).

Source: L. Mescheder, S. Nowozin, A. Geiger, "Adversarial Variational Bayes", ICML 2017
(Sec. 6.1), and H. Takahashi et al., "Variational Autoencoder with Implicit Optimal Priors",
AAAI 2019, Sec. 5.1 and Table 1: the four 4-dimensional one-hot vectors (1,0,0,0), ...,
(0,0,0,1); train 1,000 / valid 100 / test 1,000 examples. Each vector appears equally often
in every split (250 / 25 / 250 times), in the fixed order e_0, e_1, e_2, e_3, e_0, ... (no
randomness: the training stream shuffles). The optimal log-likelihood is -ln 4 ~ -1.386 nats.
"""

import numpy as np

SOURCE = 'generated: the four 4-dim one-hot vectors of Mescheder et al. (2017)'
SPLIT_SIZES = {'train': 1000, 'valid': 100, 'test': 1000}
NUM_CATEGORIES = 4
IMAGE_SHAPE = (1, NUM_CATEGORIES, 1)
EVENT_SIZE = NUM_CATEGORIES


def load_onehot():
  """Returns the OneHot splits.

  Returns:
    dict with 'train' (1000, 4), 'valid' (100, 4), 'test' (1000, 4): float32 one-hot rows,
    row i = e_{i mod 4}, so each vector is exactly a quarter of every split.
  """
  eye = np.eye(NUM_CATEGORIES, dtype=np.float32)
  return {split: np.tile(eye, (size // NUM_CATEGORIES, 1))
          for split, size in SPLIT_SIZES.items()}
