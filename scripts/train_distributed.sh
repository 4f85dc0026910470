#!/usr/bin/env bash
# Start fairseq-train on several processes with fairseq's own torch.distributed support.
#
# Usage:
#   bash scripts/train_distributed.sh [--nproc N] [--backend gloo|nccl|slurm] [--nnodes M --node-rank R
#        --master-addr HOST --master-port PORT] -- <fairseq-train arguments>
#
#   --backend gloo   CPU: one fairseq-train process per rank with --distributed-backend gloo
#                    --distributed-init-method tcp://HOST:PORT --distributed-rank R --distributed-no-spawn
#                    --ddp-backend legacy_ddp --cpu (fairseq's torchrun path assumes GPUs). Each rank
#                    gets cores/N torch threads. Default when no GPU is visible.
#   --backend nccl   GPUs: torchrun --nproc_per_node N (fairseq reads RANK/WORLD_SIZE/MASTER_* from
#                    the environment torchrun sets). Default when a GPU is visible.
#   --backend slurm  inside an sbatch allocation: srun runs one fairseq-train per task and fairseq
#                    infers ranks from SLURM_* variables (give --distributed-port PORT to fairseq).
#
# Multi-node (N processes per node, M nodes), run the same command on every node with its rank:
#   node 0: bash scripts/train_distributed.sh --nproc 8 --nnodes 2 --node-rank 0 --master-addr node0 -- ARGS
#   node 1: bash scripts/train_distributed.sh --nproc 8 --nnodes 2 --node-rank 1 --master-addr node0 -- ARGS
# The global batch is --batch-size x --update-freq x N x M. Code-switching and masking draws depend on
# (seed, epoch, index) only, so changing N or M changes which process sees an item, never what it sees.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
NPROC=2 BACKEND="" NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc) NPROC=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --nnodes) NNODES=$2; shift 2 ;;
    --node-rank) NODE_RANK=$2; shift 2 ;;
    --master-addr) MASTER_ADDR=$2; shift 2 ;;
    --master-port) MASTER_PORT=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (fairseq-train arguments go after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "no fairseq-train arguments (after --)" >&2; exit 2; }
if [ -z "$BACKEND" ]; then
  if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then BACKEND=nccl; else BACKEND=gloo; fi
fi
MASTER_PORT=${MASTER_PORT:-$(python -c "import socket; s=socket.socket(); s.bind(('',0)); print(s.getsockname()[1])")}
WORLD=$(( NPROC * NNODES ))

case "$BACKEND" in
  gloo)
    CORES=$(nproc)
    THREADS=$(( CORES / NPROC )); [ "$THREADS" -ge 1 ] || THREADS=1
    pids=()
    cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
    trap cleanup INT TERM
    for (( local_rank=0; local_rank<NPROC; local_rank++ )); do
      rank=$(( NODE_RANK * NPROC + local_rank ))
      OMP_NUM_THREADS=$THREADS fairseq-train "$@" --cpu --distributed-world-size "$WORLD" \
        --distributed-rank "$rank" --distributed-backend gloo \
        --distributed-init-method "tcp://$MASTER_ADDR:$MASTER_PORT" --distributed-no-spawn \
        --ddp-backend legacy_ddp &
      pids+=($!)
    done
    status=0
    # if one rank fails, stop the others instead of leaving them waiting in a collective
    for p in "${pids[@]}"; do
      if ! wait "$p"; then status=1; cleanup; fi
    done
    exit $status ;;
  nccl)
    exec torchrun --nproc_per_node "$NPROC" --nnodes "$NNODES" --node_rank "$NODE_RANK" \
      --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" "$(command -v fairseq-train)" "$@" \
      --distributed-world-size "$WORLD" ;;
  slurm)
    exec srun fairseq-train "$@" ;;
  *) echo "--backend must be gloo, nccl or slurm" >&2; exit 2 ;;
esac
