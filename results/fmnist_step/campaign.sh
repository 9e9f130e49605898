#!/usr/bin/env bash
# The results campaign behind docs/results.md: the first source's Fashion-MNIST comparison
# (experiment=fmnist_step), in the order of priority of its stages. `make campaign` runs it.
#
# Every stage is a multirun into the one folder results/fmnist_step (conf/campaign/fmnist.yaml),
# each job in a subfolder named after its overrides: the same job of two stages is one folder, a
# finished job is never trained twice, and re-running this script after any stop continues where
# it stopped (finished jobs are skipped, interrupted ones resume from checkpoints/last.ckpt).
# Layout, fixed for the whole campaign: 2 jobs side by side, 1 CPU thread each.
#
# Usage: bash results/fmnist_step/campaign.sh [STAGE ...]   (default: every stage, in order)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}

# The decisions the later stages rest on, each measured by an earlier stage (docs/results.md):
# precision by stage `precision`, the schedule by stage `schedule`. Empty: not decided yet.
PRECISION=${PRECISION:-}
EPOCHS=${EPOCHS:-60}

SOURCE_SIX=pf,wce,focal,focal_alpha,ldam,wldam
# `la` at tau = 1 is `bsm` (the same loss, bit-identical runs): only bsm runs.
BASELINES=ce,bsm

run() {
    "$PY" train.py -m campaign=fmnist "$@"
}

need_decisions() {
    if [[ -z "$PRECISION" ]]; then
        echo "campaign: stage $1 needs the precision decision (set PRECISION, see docs/results.md)" >&2
        exit 3
    fi
}

stage_precision() {  # bf16-mixed against 32-true, paired seeds, at the default schedule
    run experiment=fmnist_step ir=100 loss=pf,wce,ldam seed=0,1,2 trainer.max_epochs=60 \
        trainer.precision=32-true,bf16-mixed
}

stage_schedule() {  # the source's 200 epochs against the campaign's schedule, paired seeds
    need_decisions schedule
    run experiment=fmnist_step ir=100 loss=pf,wce seed=0,1 trainer.max_epochs=200 \
        trainer.precision="$PRECISION"
}

stage_ir() {  # the source's six losses and the baselines at one IR, seeds 0-2 (+3, 4 for pf, wce)
    need_decisions "ir$1"
    run experiment=fmnist_step ir="$1" loss=$SOURCE_SIX,$BASELINES seed=0,1,2 \
        trainer.max_epochs="$EPOCHS" trainer.precision="$PRECISION"
    if [[ "$1" != 10 ]]; then
        run experiment=fmnist_step ir="$1" loss=pf,wce seed=3,4 \
            trainer.max_epochs="$EPOCHS" trainer.precision="$PRECISION"
    fi
}

stage_label_noise() {  # noise 0 is the ir100 stage's runs
    need_decisions label_noise
    run experiment=fmnist_step ir=100 loss=pf,wce,ce dataset.label_noise=0.2,0.4 seed=0,1,2 \
        trainer.max_epochs="$EPOCHS" trainer.precision="$PRECISION"
}

stage_resampling() {  # sampler=none is the ir100 stage's runs
    need_decisions resampling
    run experiment=fmnist_step ir=100 loss=ce,pf sampler=oversample,class_balanced,drs seed=0,1,2 \
        trainer.max_epochs="$EPOCHS" trainer.precision="$PRECISION"
}

STAGES=(precision schedule ir100 ir200 ir10 label_noise resampling)
[[ $# -gt 0 ]] && STAGES=("$@")
for stage in "${STAGES[@]}"; do
    echo "campaign: stage $stage ($(date -u +%FT%TZ))"
    case "$stage" in
        precision) stage_precision ;;
        schedule) stage_schedule ;;
        ir100) stage_ir 100 ;;
        ir200) stage_ir 200 ;;
        ir10) stage_ir 10 ;;
        label_noise) stage_label_noise ;;
        resampling) stage_resampling ;;
        *) echo "campaign: unknown stage '$stage'; accepted: precision schedule ir100 ir200 ir10 label_noise resampling" >&2; exit 2 ;;
    esac
done
echo "campaign: done ($(date -u +%FT%TZ)); report: $PY -m imbloss.report results/fmnist_step --claims"
