#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh TASK CONFIG GPUS DATA_ROOT [train.py args]
# (what ./dist_detection.sh and ./dist_segmentation.sh run). One process per
# GPU; on a machine without CUDA, GPUS CPU processes over gloo.
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR, PORT, as upstream's dist_train.sh.
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: $(basename "$0") {detection|segmentation} CONFIG GPUS DATA_ROOT [tools/train.py args]" >&2
    exit 2
fi
TASK=$1
CONFIG=$2
GPUS=$3
DATA_ROOT=$4
shift 4
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The environment `make install` made, unless PYTHON names another.
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS must be a positive number of processes per node, got '$GPUS'" >&2
    exit 2
fi

# Task, config and data folder are checked once, here, rather than failing
# in every process.
"$PYTHON" "$ROOT/tools/train.py" "$CONFIG" --task "$TASK" \
    --data-root "$DATA_ROOT" --preflight "$@"

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/train.py" "$CONFIG" \
    --task "$TASK" --data-root "$DATA_ROOT" --launcher pytorch "$@"
