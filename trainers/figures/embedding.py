"""Figure (c): the posterior means of training examples in a 2-D latent space (LARS Fig. D.14).

embedding.png: E_q[z|x_n] of N training examples, coloured by class where the data set has
labels (MNIST, OneHot).
"""
import numpy as np

from trainers import plotting
from trainers.figures import common


def embedding_figure(run, loc, labels):
  """Matplotlib figure of (c), SIZES['embedding'].

  Args:
    run: a `Run` with a 2-D latent space. loc: [N, 2] posterior means E_q[z|x_n].
    labels: [N] int class labels, or None (one colour).
  """
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=common.SIZES["embedding"])
  size = float(np.clip(20000.0 / len(loc), 2.0, 12.0))  # marker area: smaller for more points
  if labels is None:
    ax.scatter(loc[:, 0], loc[:, 1], s=size, alpha=0.5, edgecolors="none")
    note = f"no class labels for {run.dataset}"
  else:
    cmap = plt.get_cmap("tab10")
    for k in np.unique(labels):
      chosen = labels == k
      ax.scatter(loc[chosen, 0], loc[chosen, 1], s=size, alpha=0.6, color=cmap(int(k) % 10),
                 label=str(k), edgecolors="none")
    ax.legend(loc="upper right", fontsize="small", markerscale=4, title="class")
    note = "coloured by class"
  ax.set_aspect("equal", adjustable="datalim")
  ax.set_xlabel("$z_1$")
  ax.set_ylabel("$z_2$")
  ax.set_title(f"E_q[z|x] of {len(loc)} training examples ({note})\n{run.dataset}, prior "
               f"{run.prior_name}, step {run.step}", fontsize="medium")
  fig.subplots_adjust(left=0.1, right=0.97, bottom=0.08, top=0.9)
  return fig
