#!/usr/bin/env bash
# Distributed testing with torchrun, as upstream's tools/dist_test.sh:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py args]
# One process per GPU; on a machine without CUDA, GPUS CPU processes over
# gloo.
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR, PORT (or MASTER_PORT), as
# upstream.
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $(basename "$0") CONFIG CHECKPOINT GPUS [tools/test.py args]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
# torchrun's own name for the port, MASTER_PORT, is read too.
PORT=${PORT:-${MASTER_PORT:-29500}}
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

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
