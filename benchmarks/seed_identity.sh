#!/bin/bash
# Refactoring check: tiny `trainers.run --seed=3` runs over every training path (joint,
# validation and early stopping, HVAE, LARS on outputs, post hoc, NCP stage two, alternating,
# hierarchical NCP, iterative), from a snapshot of each given tree; then every key of each
# run's metrics.json except timings is compared between the first tree and the others.
#
#   git archive <old commit> | tar -x -C /tmp/old; git archive HEAD | tar -x -C /tmp/new
#   TFP_PRIORS_DATA_DIR=../shared/data bash benchmarks/seed_identity.sh /tmp/out /tmp/old /tmp/new
#
# Python: $PYTHON (default: python3 on PATH, with the project's dependencies installed).
set -euo pipefail
OUT=$1; shift
PY=${PYTHON:-python3}
export CUDA_VISIBLE_DEVICES=
common=(--seed=3 --gin_bindings=train.num_steps=120 --gin_bindings=train.log_every=40
  --gin_bindings=train.image_every=60 --gin_bindings=train.checkpoint_every=60
  --gin_bindings=train.eval_max_examples=200 --gin_bindings=train.num_importance_samples=50
  --gin_bindings=train.normalizer_samples=100000 --gin_bindings=train.warmup_steps=10)
for tree in "$@"; do
  out="$OUT/$(basename "$tree")"; rm -rf "$out"; mkdir -p "$out"
  run() { name=$1; shift; (cd "$tree" && "$PY" -m trainers.run --workdir="$out/$name" \
      "${common[@]}" "$@" > "$out/$name.log" 2>&1) || echo "FAIL $tree $name (see $out/$name.log)"; }
  run vae --gin_config=vae_standard.gin
  run lars_val --gin_config=lars_vae.gin --gin_bindings=train.validation_every=60 \
    --gin_bindings=train.validation_max_examples=100 \
    --gin_bindings=train.validation_normalizer_samples=10000
  run lars_hvae --gin_config=lars_hvae.gin
  run lars_outputs --gin_config=lars_outputs_vae.gin
  run post_hoc --gin_config=lars_vae_post_hoc.gin --gin_bindings="PostHoc.pretrained_workdir='$out/vae'"
  run ncp --gin_config=ncp_vae.gin --gin_bindings="NoiseContrastive.pretrained_workdir='$out/vae'" \
    --gin_bindings=NCPPrior.num_proposals=500
  run implicit --gin_config=implicit_vae.gin --gin_bindings=Alternating.model_steps=30 \
    --gin_bindings=Alternating.estimator_steps=30
  run hvae_std --gin_config=hvae_standard.gin
  run hncp --gin_config=hierarchical_ncp_hvae.gin \
    --gin_bindings="NoiseContrastive.pretrained_workdir='$out/hvae_std'" \
    --gin_bindings=HierarchicalNCPPrior.num_proposals=500 \
    --gin_bindings=HierarchicalNCPPrior.lower_num_proposals=50
  run iterative --gin_config=xu_densevae_rnvp.gin --gin_bindings="train.strategy=@Iterative()" \
    --gin_bindings=Iterative.iterations=2
done
"$PY" - "$OUT" "$@" <<'PY'
import json, os, sys
out, trees = sys.argv[1], [os.path.basename(t) for t in sys.argv[2:]]
timing = {"train_steps_per_second", "seconds", "acceptance_evaluations_per_second"}
def metrics(tree, name):
  path = os.path.join(out, tree, name, "metrics.json")
  return json.load(open(path)) if os.path.isfile(path) else None
for name in sorted(os.listdir(os.path.join(out, trees[0]))):
  reference = metrics(trees[0], name)
  if reference is None:
    continue
  for tree in trees[1:]:
    other = metrics(tree, name) or {}
    diff = {k: (reference.get(k), other.get(k)) for k in set(reference) | set(other)
            if k not in timing and reference.get(k) != other.get(k)}
    print(f"{name} [{tree}]: nll {reference.get('nll')}: "
          + ("identical" if not diff else f"DIFFERENT {diff}"))
PY
