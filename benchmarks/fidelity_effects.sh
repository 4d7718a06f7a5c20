#!/usr/bin/env bash
# The measured effect of each fidelity choice (docs/fidelity.md): every method whose training changed, trained
# with the setting that gives glt's earlier (or the other) behaviour, 3 seeds x both tracks, next to the default
# runs of the zoo sweep. Needs the zoo sweep's runs (bash benchmarks/zoo_sweep.sh ZOO) for the default rows.
#   bash benchmarks/fidelity_effects.sh ZOO OUT [extra KEY=VALUE overrides...]
set -euo pipefail
ZOO=${1:?the zoo sweep folder (its benchmark and its default runs)}
OUT=${2:-runs/fidelity}
shift 2 || true
BENCH=$ZOO/benchmark
[ -f "$BENCH/manifest.json" ] || BENCH=$(dirname "$ZOO")/bench
start=$(date +%s)
variant() {  # variant NAME METHODS OVERRIDES...
  local name=$1 methods=$2
  shift 2
  glt sweep --benchmark "$BENCH" --methods "$methods" --seeds 0,1,2 --out "$OUT/$name" \
    --title "$name" progress=false "$@" > /dev/null
}
variant head_bias ce,blsoftmax,crt model.head_bias=true "$@"
variant schedule_step ce,blsoftmax optim.schedule_granularity=step "$@"
variant stage2_length crt,lws method_args.samples_per_epoch=3000 "$@"
variant stage2_bn_eval crt,lws method_args.backbone_mode=eval "$@"
variant focal_full_grad focal method_args.detach_factor=false "$@"
variant bbn_alpha_bbn bbn method_args.alpha_rule=bbn "$@"
variant bbn_split_batch bbn method_args.branch_batch=split "$@"
variant experts_full_width ride,tade method_args.expert_width=1.0 "$@"
variant lff_paper lff method_args.ema=0.7 method_args.class_max=true method_args.biased_init=copy "$@"
variant irm_v1 irm wrapper_args.penalty=irmv1 wrapper_args.rebuild_every_epoch=false "$@"
variant randaug_torchvision randaug data.augment=randaugment_torchvision "$@"
variant ifl_scores_mean ifl wrapper_args.epoch_scores=mean wrapper_args.undrawn=carry "$@"
variant ifl_budget_original ifl wrapper_args.budget=original "$@"
variant ifl_ldam_trained_scores ifl+ldam wrapper_args.score_logits=trained "$@"
python "$(dirname "$0")/fidelity_effects.py" "$ZOO" "$OUT" --wall-seconds $(( $(date +%s) - start ))
