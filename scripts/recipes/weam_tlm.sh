#!/usr/bin/env bash
# WEAM (alignment-guided cross-lingual word prediction) and TLM (translation language modelling)
# pretraining on Multi30k en-fr, with the vocabulary of the demo (data-bin/en-fr), as comparison
# systems for the code-switched models; then evaluate them like the others (zeroshot.sh).
#
# Usage:
#   bash scripts/recipes/weam_tlm.sh [--systems weam,tlm] [--max-update 800] [--exchange 0.0] [-- fairseq-train args]
#
#   --systems     weam, tlm (default both)
#   --max-update  updates of each (default 800, the demo's budget)
#   --exchange    WEAM word-exchange probability (default 0: masked-word prediction only)
#   --max-tokens  tokens per batch (default 3600, about the demo's 32 blocks of up to 128 tokens, so
#                 that WEAM, TLM and the code-switched MLMs see the same number of tokens per update)
# Needs data-bin/en-fr from bash scripts/demo.sh (its spm.model and dict.txt).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
export CSFAIR_DATA=${CSFAIR_DATA:-$ROOT/../shared/data}
SYSTEMS=weam,tlm MAX_UPDATE=800 EXCHANGE=0.0 MAX_TOKENS=3600 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --systems) SYSTEMS=$2; shift 2 ;;
    --max-update) MAX_UPDATE=$2; shift 2 ;;
    --exchange) EXCHANGE=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
VOCAB=data-bin/en-fr
[ -f "$VOCAB/spm.model" ] || { echo "$VOCAB/spm.model missing: run bash scripts/demo.sh first" >&2; exit 1; }
# the demo's held-out-filtered Multi30k pairs (its MLM test captions and their translations removed)
HELD=work/en-fr/parallel
[ -f work/en-fr/heldout.json ] || { echo "work/en-fr/heldout.json missing: run bash scripts/demo.sh first" >&2; exit 1; }
PARA=data-bin/en-fr-parallel
T0=$(date +%s)

echo "== 1/2 aligned parallel data (Multi30k train less held-out pairs, grow-diag-final-and fast_align links) -> $PARA"
if [ -f "$PARA/src/train.idx" ]; then echo "   exists, skipped: $PARA"; else
  csfair-prep parallel --src-file "$HELD/train.en" \
    --tgt-file "$HELD/train.fr" --src-lang en --tgt-lang fr \
    --spm "$VOCAB/spm.model" --out-dir "$PARA"
  for side in src tgt; do
    rm -rf "$PARA/.$side.tmp"
    fairseq-preprocess --only-source --srcdict "$VOCAB/dict.txt" --trainpref "$PARA/raw/train.$side" \
      --validpref "$PARA/raw/valid.$side" --destdir "$PARA/.$side.tmp" --workers 2 > "$PARA/preprocess.$side.log" 2>&1
    grep -E "sents" "$PARA/preprocess.$side.log" | sed 's/^.*preprocess[^]]*\] /   /'
    rm -rf "$PARA/$side"; mv "$PARA/.$side.tmp" "$PARA/$side"
  done
  mkdir -p "$PARA/align"
  cp "$PARA/raw/train.align" "$PARA/raw/valid.align" "$PARA/align/"
  cp "$VOCAB/spm.model" "$VOCAB/dict.txt" "$PARA/"
fi

echo "== 2/2 pretraining ($MAX_UPDATE updates each, cs_roberta_tiny size)"
for sys in ${SYSTEMS//,/ }; do
  case "$sys" in
    weam) ARGS=(--task weam_masked_lm --criterion weam_loss --arch cs_roberta_tiny --weam-exchange-prob "$EXCHANGE") ;;
    tlm) ARGS=(--task tlm_masked_lm --criterion cs_masked_lm --arch tlm_roberta_tiny) ;;
    *) echo "unknown system $sys (weam, tlm)" >&2; exit 2 ;;
  esac
  SAVE=checkpoints/en-fr/$sys
  if [ -f "$SAVE/.done" ]; then echo "   exists, skipped: $SAVE"; continue; fi
  mkdir -p "$SAVE"
  set +e
  fairseq-train "$PARA" --user-dir user_dir "${ARGS[@]}" --tokens-per-sample 128 \
    --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0 \
    --lr 1.5e-3 --lr-scheduler polynomial_decay --warmup-updates 80 --total-num-update "$MAX_UPDATE" \
    --max-update "$MAX_UPDATE" --max-tokens "$MAX_TOKENS" --num-workers 1 --seed 1 --log-format simple --log-interval 50 \
    --save-dir "$SAVE" --no-epoch-checkpoints --skip-invalid-size-inputs-valid-test "${EXTRA[@]}" 2>&1 \
    | tee -a "$SAVE/train.log" | grep -E --line-buffered "train_inner|valid on|done training|Error|error"
  codes=("${PIPESTATUS[@]}"); set -e  # fairseq-train's exit status decides, not the console filter's
  # done = exit 0 and the checkpoint reached --max-update (csfair issue 21; a rerun resumes otherwise)
  state=""; [ "${codes[0]}" -eq 0 ] && state=$(python scripts/training_progress.py "$SAVE/checkpoint_last.pt" 2>&1) \
    || { echo "$sys pretraining failed (fairseq-train exit status ${codes[0]}${state:+; $state}): no .done; see $SAVE/train.log" >&2; exit 1; }
  echo "$state" > "$SAVE/.done.tmp-$$" && mv -f "$SAVE/.done.tmp-$$" "$SAVE/.done"
done
echo "wall time: $(( $(date +%s) - T0 )) s; compare with: bash scripts/recipes/zeroshot.sh ibm1=... weam=checkpoints/en-fr/weam/checkpoint_last.pt tlm=checkpoints/en-fr/tlm/checkpoint_last.pt"
