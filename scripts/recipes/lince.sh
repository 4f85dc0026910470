#!/usr/bin/env bash
# Code-switched (LinCE-style) evaluation, and the continued-pretraining path of the Spanglish study
# ("Enhancing Multilingual Language Models for Code-Switched Input Data"): continue MLM training of
# an existing checkpoint on Spanish-English code-switched text (mono/derived/cs-spaeng.txt), then
# compare before/after on word-level LID (CALCS-2016, SentiMix), SentiMix sentiment and POS on the
# SAGT Turkish-German and Arabizi treebanks, with a fine-tuned and with a frozen encoder.
#
# Usage:
#   bash scripts/recipes/lince.sh [--checkpoint PATH] [--updates N] [--seeds 1,2,3] [--tasks T1,T2]
#        [--out DIR] [-- extra scripts/zeroshot.py options]
#
#   --checkpoint  the model to start from (default: the demo's checkpoints/en-fr/ibm1/checkpoint_last.pt)
#   --updates     continued-pretraining updates (default 300)
#   --tasks       lid-calcs,lid-sentimix,sentiment-sentimix,pos-sagt,pos-arabizi (default: all)
#   --out         runs/lince (git-ignored)
#
# Transformers models (the Spanglish protocol on any Hugging Face masked LM, e.g. mBERT):
#   bash scripts/recipes/lince.sh --hf-model NAME_OR_PATH [--hf-lines N] [--hf-epochs 3] [--hf-batch 32]
#        [--hf-lr 5e-5] [--cs-table DIR] [--seeds 1,2,3] [--tasks T1,T2] [--max-train 3000] [--max-eval 500]
#        [--out DIR] [-- extra scripts/run_mlm_cs.py options]
#   continues MLM of the model on the Moses-tokenised code-switched text (3 epochs, 15% dynamic
#   masking; --hf-lines N: only the first N training lines, a CPU slice; --cs-table: also
#   code-switch it synthetically with csfair's sampler), reports held-out MLM accuracy before/after,
#   then trains heads on the frozen encoder of the original and the continued model (LID, POS,
#   sentiment; csfair_hf/probe.py) and draws the UMAP before/after. Output under OUT/hf-<name>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
export CSFAIR_DATA=${CSFAIR_DATA:-$ROOT/../shared/data}

CKPT=checkpoints/en-fr/ibm1/checkpoint_last.pt UPDATES=300 SEEDS=1,2,3 OUT=runs/lince EXTRA=()
HF_MODEL="" HF_LINES="" HF_EPOCHS=3 HF_BATCH=32 HF_LR=5e-5 CS_TABLE="" MAX_TRAIN=3000 MAX_EVAL=500
TASKS=lid-calcs,lid-sentimix,sentiment-sentimix,pos-sagt,pos-arabizi
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoint) CKPT=$2; shift 2 ;;
    --updates) UPDATES=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --hf-model) HF_MODEL=$2; shift 2 ;;
    --hf-lines) HF_LINES=$2; shift 2 ;;
    --hf-epochs) HF_EPOCHS=$2; shift 2 ;;
    --hf-batch) HF_BATCH=$2; shift 2 ;;
    --hf-lr) HF_LR=$2; shift 2 ;;
    --cs-table) CS_TABLE=$2; shift 2 ;;
    --max-train) MAX_TRAIN=$2; shift 2 ;;
    --max-eval) MAX_EVAL=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
T0=$(date +%s)

if [ -n "$HF_MODEL" ]; then
  # ---- the Spanglish protocol on a transformers model (csfair_hf) ----
  NAME=$(basename "$HF_MODEL")
  HF_OUT=$OUT/hf-$NAME
  HF_TASKS=$TASKS  # LinCE-style LID, sentiment and code-switched POS (no code-switched NER in $CSFAIR_DATA)
  mkdir -p "$HF_OUT"
  echo "== 1/3 code-switched MLM text: $CSFAIR_DATA/mono/derived/cs-spaeng.txt (Moses-tokenised)"
  TEXT=$OUT/cs-spaeng/text
  if [ -f "$TEXT.valid.tok" ]; then echo "   exists, skipped: $TEXT.{train,valid}.tok"; else
    csfair-prep split --input "$CSFAIR_DATA/mono/derived/cs-spaeng.txt" --out-prefix "$TEXT" --valid 500 --seed 1
    for split in train valid; do
      csfair-prep moses --lang en --input "$TEXT.$split.txt" --output "$TEXT.$split.tok" --quiet
    done
  fi
  TRAIN=$TEXT.train.tok
  if [ -n "$HF_LINES" ]; then head -n "$HF_LINES" "$TEXT.train.tok" > "$HF_OUT/train.slice.tok"; TRAIN=$HF_OUT/train.slice.tok; fi
  echo "== 2/3 continued MLM of $HF_MODEL ($HF_EPOCHS epochs, 15% dynamic masking, $(wc -l < "$TRAIN") lines) -> $HF_OUT/continued"
  CS_ARGS=(--cs_mode none)
  [ -n "$CS_TABLE" ] && CS_ARGS=(--cs_mode multiview --cs_table "$CS_TABLE")
  if [ -f "$HF_OUT/continued/.done" ]; then echo "   exists, skipped: $HF_OUT/continued"; else
    set +e
    python scripts/run_mlm_cs.py --model_name_or_path "$HF_MODEL" --train_file "$TRAIN" \
      --validation_file "$TEXT.valid.tok" --line_by_line --max_seq_length 128 --mlm_probability 0.15 \
      "${CS_ARGS[@]}" --do_train --num_train_epochs "$HF_EPOCHS" --per_device_train_batch_size "$HF_BATCH" \
      --learning_rate "$HF_LR" --warmup_steps 0.1 --weight_decay 0.01 --seed 1 --save_strategy no \
      --logging_steps 50 --report_to none --disable_tqdm true --output_dir "$HF_OUT/continued" "${EXTRA[@]}" 2>&1 \
      | tee "$HF_OUT/continued.log" | grep -E --line-buffered "MLM accuracy|'loss'|train_runtime|Error|error"
    codes=("${PIPESTATUS[@]}"); set -e  # the trainer's exit status decides, not the console filter's (issue 21)
    { [ "${codes[0]}" -eq 0 ] && [ -f "$HF_OUT/continued/config.json" ]; } \
      || { echo "continued pretraining failed (exit status ${codes[0]}): no .done; see $HF_OUT/continued.log" >&2; exit 1; }
    date '+%F %T' > "$HF_OUT/continued/.done.tmp-$$" && mv -f "$HF_OUT/continued/.done.tmp-$$" "$HF_OUT/continued/.done"
  fi
  echo "== 3/3 frozen-encoder heads ($HF_TASKS), before/after, and UMAP"
  python -m csfair_hf.probe --model "before=$HF_MODEL" --model "after=$HF_OUT/continued" --tasks "$HF_TASKS" \
    --seeds "$SEEDS" --max-train "$MAX_TRAIN" --max-eval "$MAX_EVAL" --umap --out "$HF_OUT" 2>&1 \
    | grep --line-buffered -v -E "UserWarning|warn\(" | tee "$HF_OUT/probe.log"
  echo "wall time: $(( $(date +%s) - T0 )) s; results in $HF_OUT/ (hf_probe.json, continued/csfair_mlm.json, umap_sent_mean.png)"
  exit 0
fi

[ -f "$CKPT" ] || { echo "$CKPT: no such checkpoint (run bash scripts/demo.sh first)" >&2; exit 1; }

# The checkpoint's vocabulary: its pretraining data directory holds spm.model and dict.txt.
read -r SPM DICT ARCH_ARGS < <(python - "$CKPT" <<'PY'
import os, sys
sys.path.insert(0, ".")
from user_dir.finetune import pretrained_arch_args
args, task = pretrained_arch_args(sys.argv[1])
data = task["data"].split(os.pathsep)[0]
langs = [x for x in task.get("langs", "").split(",") if x]
d = next(p for p in [os.path.join(data, "dict.txt")] + [os.path.join(data, l, "dict.txt") for l in langs] if os.path.exists(p))
print(os.path.join(data, "spm.model"), d, " ".join(args + ["--max-positions", str(task["max_positions"])]))
PY
)
CS_DIR=$OUT/cs-spaeng
CONT=$OUT/continued

echo "== 1/3 code-switched MLM text: $CSFAIR_DATA/mono/derived/cs-spaeng.txt"
if [ -f "$CS_DIR/bin/cs/train.idx" ]; then echo "   exists, skipped: $CS_DIR"; else
  csfair-prep split --input "$CSFAIR_DATA/mono/derived/cs-spaeng.txt" --out-prefix "$CS_DIR/text" --valid 500 --seed 1
  for split in train valid; do
    csfair-prep moses --lang en --input "$CS_DIR/text.$split.txt" --output "$CS_DIR/text.$split.tok" --quiet
    csfair-prep spm-encode --model "$SPM" --input "$CS_DIR/text.$split.tok" --output "$CS_DIR/text.$split.spm"
  done
  rm -rf "$CS_DIR/bin.tmp"
  fairseq-preprocess --only-source --srcdict "$DICT" --trainpref "$CS_DIR/text.train.spm" \
    --validpref "$CS_DIR/text.valid.spm" --destdir "$CS_DIR/bin.tmp/cs" --workers 2 > "$CS_DIR/preprocess.log" 2>&1
  cp "$SPM" "$CS_DIR/bin.tmp/spm.model"  # a data-bin holds its vocabulary: later steps look for it there
  rm -rf "$CS_DIR/bin"; mv "$CS_DIR/bin.tmp" "$CS_DIR/bin"
  grep -E "sents" "$CS_DIR/preprocess.log" | sed 's/^.*preprocess[^]]*\] /   /'
fi

echo "== 2/3 continued MLM pretraining ($UPDATES updates, no code-switching) -> $CONT"
if [ -f "$CONT/.done" ]; then echo "   exists, skipped: $CONT"; else
  set +e
  # shellcheck disable=SC2086
  fairseq-train "$CS_DIR/bin" --user-dir user_dir --task codeswitch_masked_lm --langs cs --cs-mode none \
    $ARCH_ARGS --criterion cs_masked_lm --tokens-per-sample 128 --sample-break-mode complete \
    --finetune-from-model "$CKPT" --optimizer adam --adam-betas '(0.9,0.98)' --weight-decay 0.01 --lr 3e-4 \
    --lr-scheduler polynomial_decay --warmup-updates $(( UPDATES / 10 )) --total-num-update "$UPDATES" \
    --max-update "$UPDATES" --batch-size 32 --save-dir "$CONT" --no-epoch-checkpoints \
    --log-format simple --log-interval 50 --skip-invalid-size-inputs-valid-test 2>&1 | tee -a "$OUT/continued.log" \
    | grep -E --line-buffered "train_inner|valid on|done training|Error|error"
  codes=("${PIPESTATUS[@]}"); set -e  # fairseq-train's exit status decides, not the console filter's (issue 21)
  state=""; [ "${codes[0]}" -eq 0 ] && state=$(python scripts/training_progress.py "$CONT/checkpoint_last.pt" 2>&1) \
    || { echo "continued pretraining failed (fairseq-train exit status ${codes[0]}${state:+; $state}): no .done; see $OUT/continued.log" >&2; exit 1; }
  echo "$state" > "$CONT/.done.tmp-$$" && mv -f "$CONT/.done.tmp-$$" "$CONT/.done"
fi

echo "== 3/3 LinCE-style tasks, before/after, fine-tuned and frozen encoder"
for frozen in "" "--freeze-encoder"; do
  python scripts/zeroshot.py --checkpoint "before=$CKPT" --checkpoint "after=$CONT/checkpoint_last.pt" \
    --tasks "$TASKS" --seeds "$SEEDS" --max-train 3000 --max-eval 500 --lr 3e-4 --out "$OUT" $frozen "${EXTRA[@]}"
done
echo "wall time: $(( $(date +%s) - T0 )) s; tables in $OUT/tables/"
