#!/usr/bin/env bash
# Distributed training with torchrun, as upstream's tools/dist_train.sh:
#   tools/dist_train.sh CONFIG GPUS [tools/train.py args]
# (./dist_detection.sh and ./dist_segmentation.sh CONFIG GPUS DATA_ROOT add
# --task and --data-root). One process per GPU; on a machine without CUDA,
# GPUS CPU processes over gloo.
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR, PORT, as upstream.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $(basename "$0") CONFIG GPUS [tools/train.py args]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
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

# Config, task and data folder are checked once, here, rather than failing
# in every process.
"$PYTHON" "$ROOT/tools/train.py" "$CONFIG" --preflight "$@"

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
