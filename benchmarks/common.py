"""Helpers shared by the benchmarks: interleaved timing, the machine's matmul FLOP rate, FLOP
counts of compiled graphs, and output as a markdown table plus JSON (`--output_json`).

Timing rule of every benchmark: all variants are built and warmed up in one process, then
timed in `rounds` interleaved blocks (variant A, B, C, A, B, C, ...) so that drifts of the
machine's speed hit every variant alike; the figure of a variant is the median over its blocks.
"""
import json
import os
import platform
import statistics
import time

from absl import flags
import tensorflow as tf

flags.DEFINE_string("output_json", None, "Write the benchmark's table and settings to this "
                    "JSON file.")
FLAGS = flags.FLAGS


def device_name():
  """'GPU (<name>)' when a GPU is visible, else 'CPU (<n> cores)'."""
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU ({details.get('device_name', gpus[0].name)})"
  return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def interleaved_medians(blocks, rounds):
  """Times callables in interleaved rounds and returns the median seconds of each.

  Args:
    blocks: dict name -> callable() that runs one timed block and returns only after its
      work has finished (e.g. ends with `.numpy()`); warm it up (trace) before.
    rounds: blocks timed per name (>= 1).

  Returns:
    dict name -> (median seconds per block, list of all block seconds).
  """
  times = {name: [] for name in blocks}
  for _ in range(rounds):
    for name, block in blocks.items():
      start = time.perf_counter()
      block()
      times[name].append(time.perf_counter() - start)
  return {name: (statistics.median(ts), ts) for name, ts in times.items()}


def median_seconds(fn, repeats, warmup=1):
  """Median wall seconds of `repeats` calls of fn() (which must block) after `warmup` calls."""
  for _ in range(warmup):
    fn()
  return interleaved_medians({"fn": fn}, repeats)["fn"][0]


MATMUL = "dense matmul"  # the name of the roof's block among interleaved blocks


def matmul_block(size=1024, dtype=tf.float32, products=8):
  """A timed block for the machine's dense-matmul rate, the roof of the roofline ratios.

  Returns:
    (callable running `products` chained [size, size] x [size, size] products in one
    tf.function and waiting for them, warmed up; FLOPs per call, 2 size^3 products).
    Time it among a benchmark's interleaved blocks (key `MATMUL`) so that the roof is
    measured under the same machine load as the work it is compared with.
  """
  a = tf.random.stateless_normal([size, size], [0, 1], dtype=dtype)
  b = tf.random.stateless_normal([size, size], [0, 2], dtype=dtype)

  @tf.function
  def chain():
    c = a
    for _ in range(products):
      c = tf.matmul(c, b) * 1e-2
    return tf.reduce_sum(c)

  chain().numpy()
  return (lambda: chain().numpy()), products * 2.0 * size**3


def interleaved_medians_and_roof(blocks, rounds):
  """`interleaved_medians` of `blocks` with `matmul_block` timed among them.

  Returns:
    (dict name -> (median seconds, all seconds) of `blocks`, the dense-matmul rate in FLOP/s
    measured under the same load: the roof of the roofline fractions).
  """
  matmul, flops = matmul_block()
  timed = interleaved_medians({**blocks, MATMUL: matmul}, rounds)
  return timed, flops / timed.pop(MATMUL)[0]


def mlp_flops(sizes):
  """Multiply and add FLOPs (2 per multiply-add) of one example through dense layers
  sizes = [in, h1, ..., out]; biases and activations not counted."""
  return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


_MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def _function_graphs(graph, op):
  """The graphs of the functions an op calls (If/While/PartitionedCall bodies)."""
  graphs = []
  for attr in op.node_def.attr.values():
    names = [attr.func.name] if attr.HasField("func") else [f.name for f in attr.list.func]
    for name in names:
      if name:
        function = graph._get_function(name)  # pylint: disable=protected-access
        if function is not None and hasattr(function, "graph"):
          graphs.append(function.graph)
  return graphs


def graph_matmul_flops(concrete_function):
  """FLOPs of the matrix products in a traced function: 2 m k n per [m, k] x [k, n] product
  (per batch element for batched products), summed over the graph and the functions it calls
  (tf.cond branches and loop bodies counted once each). Forward and gradient products alike.

  Args:
    concrete_function: a `tf.function`'s concrete function with static product shapes.

  Returns:
    (float FLOPs, int number of products whose shapes were unknown and were skipped).
  """
  total, unknown, seen = 0.0, 0, set()

  def visit(graph):
    nonlocal total, unknown
    if id(graph) in seen:
      return
    seen.add(id(graph))
    for op in graph.get_operations():
      if op.type in _MATMUL_OPS:
        a = op.inputs[0].shape
        out = op.outputs[0].shape
        if not (a.is_fully_defined() and out.is_fully_defined()):
          unknown += 1
          continue
        try:
          transpose = op.get_attr("transpose_a")
        except ValueError:
          transpose = op.get_attr("adj_x")
        k = a[-2] if transpose else a[-1]
        total += 2.0 * out.num_elements() * k
      for inner in _function_graphs(graph, op):
        visit(inner)

  visit(concrete_function.graph)
  return total, unknown


def format_value(value):
  """Table text: floats with 3 significant digits (whole numbers from 1,000 to 10^6), '-' for
  None and NaN, anything else as str."""
  if value is None or (isinstance(value, float) and value != value):
    return "-"
  if isinstance(value, float):
    return f"{value:.0f}" if 1e3 <= abs(value) < 1e6 else f"{value:.3g}"
  return str(value)


def print_table(title, columns, rows):
  """Prints a markdown table.

  Args:
    title: line printed above the table.
    columns: list of (key, header) pairs.
    rows: list of dicts holding the keys (missing keys print '-').
  """
  print(f"\n{title}\n")
  print("| " + " | ".join(h for _, h in columns) + " |")
  print("|" + "---|" * len(columns))
  for row in rows:
    print("| " + " | ".join(format_value(row.get(k)) for k, _ in columns) + " |")
  print(flush=True)


def write_json(name, settings, rows, extra=None):
  """Writes {'benchmark', 'device', 'tensorflow', 'settings', 'rows', **extra} to
  `--output_json` when it is given; returns the payload."""
  payload = {"benchmark": name, "device": device_name(), "tensorflow": tf.__version__,
             "settings": settings, "rows": rows, **(extra or {})}
  if FLAGS.output_json:
    directory = os.path.dirname(FLAGS.output_json)
    if directory:
      os.makedirs(directory, exist_ok=True)
    with open(FLAGS.output_json, "w") as f:
      json.dump(payload, f, indent=2, sort_keys=True, default=float)
    print(f"wrote {FLAGS.output_json}")
  return payload
