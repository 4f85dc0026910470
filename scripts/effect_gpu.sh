#!/usr/bin/env bash
# Experiment B (docs/experiments.md) at the GPU scale: a first point of the real-pair experiment with the
# roberta-base shape (12 layers, 768 hidden, 12 heads, 3072 FFN; Visser et al. 2025, Sec. 3.3), a 32,000-piece
# vocabulary, bf16, none / ibm1 / muse x seed 1, on the largest en-fr data this machine has laid out
# (`--data paper`: NLLB + mC4 + MUSE, fetched by `csfair-data get --pair en-fr`; otherwise the staged data),
# evaluated on the same held-out sets as the CPU experiment (MUSE words in no table, Multi30k test_2016,
# XTREME UD-POS French, the recipe's French test split), with the random-init and no-model controls.
#
# Sizing (~10 minutes of one H100 for training and evaluation, after the data preparation): roberta-base
# trains at ~0.27-0.43M tokens/s on one H100 (README, bench/gpu_throughput.py); 3 runs x 3,000 updates x
# 128 blocks x 128 tokens = 147M tokens ~ 6-9 minutes, evaluation ~1-2 minutes on the GPU. With one seed per
# system the tables' intervals are over test items only (said in each cell); more seeds: --seeds 1,2,3.
#
# Usage:
#   bash scripts/effect_gpu.sh [--out DIR] [--seeds 1] [-- more scripts/effect.py options]
#   bash scripts/effect_gpu.sh --cpu-tiny [--out DIR]   the same pipeline at a tiny size on the CPU (a check)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
export CSFAIR_DATA=${CSFAIR_DATA:-$ROOT/../shared/data}
TINY=0 OUT="" SEEDS=1 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-tiny) TINY=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$TINY" = 1 ]; then
  # the same steps at a size a CPU runs in minutes: 2 layers, 20 updates, small evaluation sets
  OUT=${OUT:-runs/effect/en-fr-gpu-tiny}
  set -x
  python scripts/effect.py pair --out "$OUT" --seeds "$SEEDS" --parallel 1 --random-init-seeds 1 \
    --layers 2 --embed-dim 64 --ffn-dim 256 --heads 4 --vocab-size 1000 --max-update 20 --batch-size 8 \
    --max-train-lines 3000 --test-lines 200 --valid-lines 100 --pos-train 100 --pos-test 100 --seen-words 50 \
    --n-boot 200 --device cpu "${EXTRA[@]}"
  exit 0
fi
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "no CUDA device visible to torch: this is the GPU-scale run (use --cpu-tiny to check the pipeline on a CPU," \
       "or scripts/effect.py pair for the CPU-sized experiment)" >&2; exit 1; }
DATA=staged
if bash scripts/recipes/pair.sh en-fr --data paper --check >/dev/null 2>&1; then DATA=paper; fi
echo "en-fr data: $DATA (--data paper needs: csfair-data get --pair en-fr)"
OUT=${OUT:-runs/effect/en-fr-gpu-$DATA}
set -x
python scripts/effect.py pair --out "$OUT" --data "$DATA" --seeds "$SEEDS" --parallel 1 --random-init-seeds 1 \
  --arch cs_roberta_base --layers 12 --embed-dim 768 --ffn-dim 3072 --heads 12 --vocab-size 32000 \
  --max-update 3000 --batch-size 128 --lr 5e-4 --warmup 300 --tokens-per-sample 128 \
  --device cuda --num-workers 2 --extra-args "--bf16" "${EXTRA[@]}"
