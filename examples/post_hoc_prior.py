r"""Fit a RealNVP prior post hoc to a trained VAE (Xu et al. 2019's post-hoc setting).

  python -m trainers.run --gin_config=vae_standard.gin --workdir=runs/vae   # a trained VAE
  python examples/post_hoc_prior.py --workdir=runs/vae --steps=2000

The VAE is rebuilt from its workdir (config.gin and the latest checkpoint) and frozen; the
prior alone is fitted by maximum likelihood to posterior samples z ~ q(z|x) of the training
images (max E_q[log p(z)], LARS Eq. 5), and the test IWAE NLL is measured with N(0, I) and with
the fitted prior. (`configs/lars_vae_post_hoc.gin` does the same for LARS with the trainer.)
"""
import sys

import tensorflow as tf
import tf_keras

from tfp_priors.evaluation import metrics
from tfp_priors.priors import build_prior
from trainers import trained_run


def fit(workdir, steps=2000, prior_name="realnvp", importance_samples=100, max_examples=1000,
        print_fn=print):
  """Returns {'standard': NLL with N(0, I), prior_name: NLL with the fitted prior} in nats."""
  run = trained_run.load_run(workdir, with_prior=False)
  model, data = run.model, run.data
  prior = build_prior(model.latent_size, name=prior_name)
  optimizer = tf_keras.optimizers.Adam(1e-3)

  @tf.function
  def step(x, seed):
    posterior = model.encode_top(x)
    z = posterior.sample(seed=seed)
    with tf.GradientTape() as tape:
      log_p, _ = prior.training_log_prob(z, posterior.log_prob(z), seed=seed + 1)
      loss = -tf.reduce_mean(log_p)
    grads = tape.gradient(loss, prior.trainable_variables)
    optimizer.apply_gradients(zip(grads, prior.trainable_variables))
    return loss

  for i, x in enumerate(data.train.take(steps)):
    loss = step(x, tf.constant([0, i]))
  print_fn(f"fitted {prior_name}: -E_q[log p(z)] = {float(loss):.2f} nats")
  prior.refresh_log_normalizer(num_samples=10**5, seed=0)
  results = {}
  for name, p in (("standard", build_prior(model.latent_size)), (prior_name, prior)):
    results[name] = metrics.evaluate(model, p, data.test, importance_samples,
                                     max_examples=max_examples)["nll"]
    print_fn(f"test NLL with the {name} prior: {results[name]:.2f} nats")
  return results


if __name__ == "__main__":
  args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
  fit(args["workdir"], int(args.get("steps", 2000)))
