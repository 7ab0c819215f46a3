#!/usr/bin/env bash
# Distributed training on torchrun (PyTorch DDP via mmengine).
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py args...]
# Several nodes: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each node.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG NUM_PROCESSES_PER_NODE [tools/train.py args...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_run.sh" train.py "$GPUS" "$CONFIG" "$@"
