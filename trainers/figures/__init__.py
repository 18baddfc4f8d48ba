r"""The LARS paper's qualitative figures for a trained run (Bauer & Mnih 2019, appendix D.4-D.8).

  python -m trainers.figures --workdir=runs/lars_vae [--output_dir=runs/lars_vae/figures] \
      [--figures=ranked,density,embedding] [--num_samples=10000] [--num_examples=10000]

Rebuilds model and prior from workdir/config.gin and the latest checkpoint in
workdir/checkpoints (`trainers.trained_run`), then draws
  (a) `ranked` (module `ranked`): S samples z ~ pi(z) of a LARS prior's proposal ranked by
      a(z) (Fig. 3, D.5, D.6): decoded sample means with the highest a(z), random ones and
      those with the lowest a(z) -> ranked_samples.png; the sorted a(z) on a log scale with a
      row of representative samples labelled by a(z) (Fig. D.7) -> acceptance_values.png.
      Needs a prior with an acceptance function (`Prior.has_acceptance_function`: LARS).
  (b) `density` (module `density`): for a 2-D latent space, the aggregate posterior
      q(z) = 1/N sum_n q(z|x_n) over N training examples, and the prior on a grid, with Monte
      Carlo KL(q(z) || p(z)) in nats (Fig. D.10); for LARS also the proposal pi(z), a(z),
      KL(q || pi) and Z (Fig. D.11-D.13) -> latent_density.png.
  (c) `embedding` (module `embedding`): the posterior means E_q[z|x_n] of the N training
      examples, coloured by class where the data set has labels (MNIST, OneHot) (Fig. D.14)
      -> embedding.png.
Without --figures, every figure that applies to the run is drawn. The PNGs go to
--output_dir, the same images to TensorBoard (tag figures/<name>, at the checkpoint's step) in
--logdir (both default workdir/figures), and the numbers to <output_dir>/figures.json
(module `driver`). The training examples and their posteriors of (b, c) come from module
`examples`; the run, FigureError, SIZES and LARS's Z from module `common`.
"""
from trainers.figures.common import FIGURES
from trainers.figures.common import FigureError
from trainers.figures.common import Run
from trainers.figures.common import SIZES
from trainers.figures.common import ensure_log_normalizer
from trainers.figures.common import load_run
from trainers.figures.density import LatentDensities
from trainers.figures.density import density_figure
from trainers.figures.density import latent_densities
from trainers.figures.driver import check_figures
from trainers.figures.driver import write_figures
from trainers.figures.embedding import embedding_figure
from trainers.figures.examples import encode
from trainers.figures.examples import training_examples
from trainers.figures.ranked import NUM_REPRESENTATIVE
from trainers.figures.ranked import RankedSamples
from trainers.figures.ranked import rank_proposal_samples
from trainers.figures.ranked import ranked_figures
from trainers.figures.ranked import select_ranked
