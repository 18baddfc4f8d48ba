r"""The training loop of `trainers.run`, data included: blocks of steps per graph call and
the fused Adam against the loop of one step per call with Keras' Adam.

  python -m benchmarks.train_loop_speed                  # vae_standard and lars_vae, ~4 min
  python -m benchmarks.train_loop_speed --configs=lars_hvae --steps=300 --rounds=9

Each variant is a `training.runner.Runner` of the config (full-size model and prior, the real
MNIST input pipeline with its dynamic binarization, a log line every `train.log_every` steps),
set up once in a temporary workdir; a timed block extends the budget by `--steps` steps and
runs `Runner.train_loop()`, as a run does between checkpoints (image grids and checkpoints
are left out: every 5,000 steps in the configs, they are not the loop's cost). Variants:

  - `one step per call, Adam`: `train.steps_per_execution = 1` with `tf_keras`' Adam, the
    loop as it was before blocks (one graph call and one host read per step);
  - `one step per call, FusedAdam`: the fused optimizer alone (`training.optimizers`);
  - `blocks, Adam`: blocks of `--steps_per_execution` steps alone;
  - `blocks, FusedAdam`: both, the library's default;
  - `fixed batch, FusedAdam`: `Trainer.train_step` on one batch in a Python loop, the cost of
    the step without the input pipeline (the figure of `benchmarks.train_speed`).

All are timed in interleaved rounds in one process (`common.interleaved_medians`); the table
gives ms per step and the speed-up over the first variant.
"""
import dataclasses
import tempfile

from absl import app
from absl import flags
import gin
import tensorflow as tf
import tf_keras

from benchmarks import common
from tfp_priors.training import runner as runner_lib
from trainers import run

flags.DEFINE_list("configs", ["vae_standard", "lars_vae"], "Gin configs to time.")
flags.DEFINE_integer("steps", 500, "Training steps per timed block.")
flags.DEFINE_integer("rounds", 5, "Timed blocks per variant (interleaved).")
flags.DEFINE_integer("steps_per_execution", 100, "Steps per graph call of the block variants.")
FLAGS = flags.FLAGS

VARIANTS = {  # name -> (steps per execution (None: the flag), fused optimizer)
    "one step per call, Adam": (1, False),
    "one step per call, FusedAdam": (1, True),
    "blocks, Adam": (None, False),
    "blocks, FusedAdam": (None, True),
}
FIXED = "fixed batch, FusedAdam"


def build_runner(config, workdir, steps_per_execution, fused, bindings=None):
  """A set-up `Runner` of `config` in `workdir` with extra gin `bindings` (None: those of
  --gin_bindings), its checkpoint saves switched off."""
  gin.clear_config()
  bindings = FLAGS.gin_bindings if bindings is None else bindings
  run.parse_config([config], list(bindings) + [
      f"train.steps_per_execution = {steps_per_execution}", "train.image_every = 1000000000",
      "train.checkpoint_every = 1000000000"])
  runner = runner_lib.configured_runner(workdir, evaluate=False, export=False, print_fn=None)
  runner.check()
  runner.setup()
  runner.restore_or_initialize()
  if not fused:
    trainer = runner.trainer
    trainer.optimizer = tf_keras.optimizers.Adam(learning_rate=1e-3)
    trainer.optimizer.build(trainer.train_variables)
  runner.checkpoints.save = runner.checkpoints.save_if_new = lambda *_: None
  return runner


def loop_block(runner, steps):
  """A callable running `steps` more steps of the runner's training loop."""
  def block():
    runner.schedule = dataclasses.replace(
        runner.schedule, num_steps=runner.trainer.current_step() + steps)
    runner.train_loop()
  return block


def fixed_batch_block(runner, steps):
  """A callable running `steps` calls of `Trainer.train_step` on one batch."""
  x = next(iter(runner.data.train))
  rate = tf.constant(3e-4)

  def block():
    for _ in range(steps):
      out = runner.trainer.train_step(x, rate)
    float(out["loss"])
  return block


def main(argv):
  del argv
  blocks, rows = {}, []
  with tempfile.TemporaryDirectory() as scratch:
    for config in FLAGS.configs:
      for name, (k, fused) in VARIANTS.items():
        runner = build_runner(config, f"{scratch}/{config}-{len(blocks)}",
                              k or FLAGS.steps_per_execution, fused)
        blocks[(config, name)] = loop_block(runner, FLAGS.steps)
      blocks[(config, FIXED)] = fixed_batch_block(runner, FLAGS.steps)
    for block in blocks.values():  # tracing and warm-up
      block()
    timed = common.interleaved_medians(blocks, FLAGS.rounds)
  for (config, name), (seconds, all_seconds) in timed.items():
    base = timed[(config, next(iter(VARIANTS)))][0]
    rows.append({"config": config, "variant": name, "ms_per_step": 1e3 * seconds / FLAGS.steps,
                 "speedup": base / seconds, "block_seconds": all_seconds})
  common.print_table(
      f"Training loop of trainers.run with data ({common.device_name()}; median of "
      f"{FLAGS.rounds} interleaved blocks of {FLAGS.steps} steps; blocks of "
      f"{FLAGS.steps_per_execution} steps per graph call)",
      [("config", "config"), ("variant", "variant"), ("ms_per_step", "ms/step"),
       ("speedup", "speed-up over one step per call with Adam")], rows)
  common.write_json("train_loop_speed", {"steps": FLAGS.steps, "rounds": FLAGS.rounds,
                                         "steps_per_execution": FLAGS.steps_per_execution,
                                         "configs": FLAGS.configs}, rows)


if __name__ == "__main__":
  app.run(main)
