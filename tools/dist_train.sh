#!/usr/bin/env bash
# Distributed training with torchrun, as upstream's tools/dist_train.sh:
#   tools/dist_train.sh CONFIG GPUS [tools/train.py args]
# (./dist_detection.sh and ./dist_segmentation.sh CONFIG GPUS DATA_ROOT add
# --task and --data-root). One process per GPU; on a machine without CUDA,
# GPUS CPU processes over gloo.
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR, PORT (or MASTER_PORT), as
# upstream. A preempted run (tools/train.py exits 75) exits 75 on every
# node (tools/dist_launch.py: torchrun itself would exit 1).
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
# torchrun's own name for the port, MASTER_PORT, is read too.
PORT=${PORT:-${MASTER_PORT:-29500}}
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
if ! [[ "$NNODES" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: NNODES must be a positive number of nodes, got '$NNODES'" >&2
    exit 2
fi
if ! [[ "$NODE_RANK" =~ ^[0-9]+$ ]] || [ "$NODE_RANK" -ge "$NNODES" ]; then
    echo "error: NODE_RANK must be 0 to $((NNODES - 1)) with NNODES=$NNODES, got '$NODE_RANK'" >&2
    exit 2
fi
# Without it every node but the first would wait for a master on itself.
if [ "$NNODES" -gt 1 ] && [ -z "${MASTER_ADDR:-}" ]; then
    echo "error: NNODES=$NNODES needs MASTER_ADDR, the address of the NODE_RANK=0 node, set on every node" >&2
    exit 2
fi
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}

# Config, task and data folder are checked once, here, rather than failing
# in every process.
"$PYTHON" "$ROOT/tools/train.py" "$CONFIG" --preflight "$@"

exec "$PYTHON" "$ROOT/tools/dist_launch.py" \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
