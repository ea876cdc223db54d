#!/usr/bin/env bash
# Train on a Slurm cluster, as upstream's tools/slurm_train.sh:
#   GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args]
# e.g. ... configs/detection/retinanet_convmlp_s_fpn_1x_coco.py work_dirs/ret_s --data-root /data/coco
# One task per GPU; mmengine's slurm launcher reads SLURM_PROCID and friends.
# Preemption (docs/preemption.md): srun asks Slurm for SIGUSR1
# PREEMPT_SIGNAL_TIME seconds (120) before the time limit; the run then saves
# its iteration and exits 75. Inside a batch job the script requeues the job
# (scontrol requeue); outside one it runs srun again, at most MAX_REQUEUES
# times (3). Either way the next run resumes from WORK_DIR's last checkpoint.
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: [GPUS=8] $(basename "$0") PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The environment `make install` made, unless PYTHON names another.
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

PREEMPT_SIGNAL_TIME=${PREEMPT_SIGNAL_TIME:-120}
MAX_REQUEUES=${MAX_REQUEUES:-3}
PREEMPTED=75  # convmlp_mm.engine.PREEMPTED_EXIT_CODE

runs=0
while true; do
    rc=0
    # shellcheck disable=SC2086  # SRUN_ARGS is a list of srun options
    srun -p "$PARTITION" \
        --job-name="$JOB_NAME" \
        --gres=gpu:"$GPUS_PER_NODE" \
        --ntasks="$GPUS" \
        --ntasks-per-node="$GPUS_PER_NODE" \
        --cpus-per-task="$CPUS_PER_TASK" \
        --kill-on-bad-exit=1 \
        --signal=USR1@"$PREEMPT_SIGNAL_TIME" \
        $SRUN_ARGS \
        "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
        --launcher=slurm "$@" || rc=$?
    if [ "$rc" -ne "$PREEMPTED" ]; then
        exit "$rc"
    fi
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        echo "preempted: checkpoint saved in $WORK_DIR; requeueing job $SLURM_JOB_ID" >&2
        if ! scontrol requeue "$SLURM_JOB_ID"; then
            echo "error: scontrol requeue $SLURM_JOB_ID failed; run the same command again to resume from $WORK_DIR" >&2
            exit "$PREEMPTED"
        fi
        exit 0
    fi
    runs=$((runs + 1))
    if [ "$runs" -gt "$MAX_REQUEUES" ]; then
        echo "error: preempted $runs times (MAX_REQUEUES=$MAX_REQUEUES); run the same command again to resume from $WORK_DIR" >&2
        exit "$PREEMPTED"
    fi
    echo "preempted: checkpoint saved in $WORK_DIR; starting srun again ($runs of $MAX_REQUEUES)" >&2
done
