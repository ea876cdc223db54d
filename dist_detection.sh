#!/usr/bin/env bash
# ./dist_detection.sh CONFIG GPUS DATA_ROOT [tools/train.py args], as in the original
# ConvMLP release. torchrun underneath (tools/dist_train.sh): NNODES,
# NODE_RANK, MASTER_ADDR and PORT for several nodes; without CUDA, GPUS CPU
# processes over gloo.
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG GPUS DATA_ROOT [tools/train.py args]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
DATA_ROOT=$3
shift 3
exec "$(dirname "$0")/tools/dist_train.sh" "$CONFIG" "$GPUS" \
    --task detection --data-root "$DATA_ROOT" "$@"
