#!/usr/bin/env bash
# Code-switched MLM pretraining for one language pair, end to end on the real data:
#   held-out split (test + evaluation sentences and their translations out of all training and
#   parallel text) + overlap audit -> lexicons (IBM-1 on the filtered parallel text; MUSE) -> Moses
#   -> balanced sentencepiece -> fairseq dictionary -> fairseq-preprocess per language -> substitution tables
#   -> fairseq-train --task codeswitch_masked_lm -> MLM accuracy on held-out target-language text.
#
# Usage:
#   bash scripts/recipes/codeswitch_pretrain.sh --pair en-fr [options] [-- extra fairseq-train args]
#   (scripts/recipes/en-fr.sh and en-de.sh call this with their pair)
#
# Options (defaults: the CPU demo size; the paper's scale is shown below):
#   --pair P              en-fr | en-de
#   --cs C                ibm1 (multiview IBM-1, default) | muse (uniform MUSE) | none (no code-switching)
#   --cs-mode M           multiview (default) | static   (ignored with --cs none)
#   --arch A              cs_roberta_tiny (default) | cs_roberta_base
#   --tokens-per-sample N 128
#   --batch-size N        32 (sentences-blocks per GPU/process; --update-freq multiplies it)
#   --update-freq N       1
#   --lr X                1.5e-3
#   --warmup N            80
#   --max-update N        800
#   --vocab-size N        8000
#   --max-train-lines N   cap per language on training lines (default: all)
#   --test-lines N        2000 held-out target-language lines (the MLM accuracy test set)
#   --valid-lines N       500 per language
#   --num-workers N       1 (DataLoader workers)
#   --seed N              1
#   --run NAME            run name under checkpoints/<pair>/ (default: the --cs value)
#   --data-bin DIR        data-bin/<pair>
#   --work DIR            work/<pair> (intermediate text)
#   --save-root DIR       checkpoints/<pair>
#   --prep-only           stop after step 6 (the data shared by every run; scripts/sweep.py pretrain)
#   --tensorboard DIR     also log to TensorBoard (fairseq's --tensorboard-logdir DIR/<run>);
#                         view with `tensorboard --logdir DIR`; curves as PNG: scripts/plot_training.py
#
# Paper scale (Visser et al. 2025, Sec. 3.3: BERT-base, 128 tokens, batch 512, 1M steps), e.g. on
# 8 GPUs: --arch cs_roberta_base --tokens-per-sample 128 --batch-size 64 --update-freq 1
#   --lr 1e-4 --warmup 10000 --max-update 1000000 --vocab-size 32000 -- --fp16
# (fairseq uses every visible GPU; batch = batch-size x update-freq x GPUs.)
#
# Every step skips itself when its output exists (outputs are written atomically), and prints
# what it produced. The data-bin directory remembers the options it was built with and refuses
# to be reused with different ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# the project's environment (scripts/setup.sh), if it exists
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
export CSFAIR_DATA=${CSFAIR_DATA:-$ROOT/../shared/data}
DATA=$CSFAIR_DATA

PAIR="" CS=ibm1 CS_MODE=multiview ARCH=cs_roberta_tiny TPS=128 BSZ=32 UPDATE_FREQ=1 LR=1.5e-3 WARMUP=80
MAX_UPDATE=800 VOCAB=8000 MAX_TRAIN="" TEST_LINES=2000 VALID_LINES=500 NUM_WORKERS=1 SEED=1 RUN=""
DATA_BIN="" WORK="" SAVE_ROOT="" TB="" EXTRA=() PREP_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pair) PAIR=$2; shift 2 ;;
    --cs) CS=$2; shift 2 ;;
    --cs-mode) CS_MODE=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --tokens-per-sample) TPS=$2; shift 2 ;;
    --batch-size) BSZ=$2; shift 2 ;;
    --update-freq) UPDATE_FREQ=$2; shift 2 ;;
    --lr) LR=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --max-update) MAX_UPDATE=$2; shift 2 ;;
    --vocab-size) VOCAB=$2; shift 2 ;;
    --max-train-lines) MAX_TRAIN=$2; shift 2 ;;
    --test-lines) TEST_LINES=$2; shift 2 ;;
    --valid-lines) VALID_LINES=$2; shift 2 ;;
    --num-workers) NUM_WORKERS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --run) RUN=$2; shift 2 ;;
    --data-bin) DATA_BIN=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --save-root) SAVE_ROOT=$2; shift 2 ;;
    --tensorboard) TB=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    --prep-only) PREP_ONLY=1; shift ;;
    -h|--help) sed -n '2,44p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# One row per pair: source (high-resource) and target language, parallel corpus prefix for
# IBM-1, MUSE dictionaries in both directions, monolingual MLM text per language.
case "$PAIR" in
  en-fr) SRC=en; TGT=fr; PARALLEL=parallel/multi30k/train; MUSE_ST=dict/muse/en-fr.txt; MUSE_TS=dict/muse/fr-en.txt ;;
  en-de) SRC=en; TGT=de; PARALLEL=parallel/multi30k/train; MUSE_ST=dict/muse/en-de.txt; MUSE_TS=dict/muse/de-en.txt ;;
  "") echo "missing --pair (en-fr | en-de)" >&2; exit 2 ;;
  *) echo "unsupported pair: $PAIR (en-fr | en-de)" >&2; exit 2 ;;
esac
case "$CS" in ibm1|muse|none) ;; *) echo "--cs must be ibm1, muse or none" >&2; exit 2 ;; esac

DATA_BIN=${DATA_BIN:-data-bin/$PAIR}
WORK=${WORK:-work/$PAIR}
SAVE_ROOT=${SAVE_ROOT:-checkpoints/$PAIR}
RUN=${RUN:-$CS}
SAVE=$SAVE_ROOT/$RUN
mkdir -p "$DATA_BIN" "$WORK" "$SAVE"
for f in "$PARALLEL.$SRC.gz" "$PARALLEL.$TGT.gz" "$MUSE_ST" "$MUSE_TS" "mono/derived/$SRC.txt" "mono/derived/$TGT.txt"; do
  [ -e "$DATA/$f" ] || { echo "missing real data file: $DATA/$f (set CSFAIR_DATA)" >&2; exit 1; }
done

# The binarised data and the intermediate text depend on these options; refuse to mix builds.
# heldout=2: test and evaluation sentences (and their translations) held out of all training text
# and of the lexicon's parallel text (a data-bin from before that has no such field and is refused).
CONFIG="pair=$PAIR vocab=$VOCAB max_train=${MAX_TRAIN:-all} test=$TEST_LINES valid=$VALID_LINES split_seed=1 heldout=2"
for dir in "$DATA_BIN" "$WORK"; do
  if [ ! -f "$dir/config.txt" ] && [ -n "$(ls -A "$dir" | grep -vx README.md)" ]; then
    echo "$dir has outputs but no config.txt (an older build): use another --data-bin/--work or delete $dir" >&2
    exit 1
  fi
  if [ -f "$dir/config.txt" ] && [ "$(cat "$dir/config.txt")" != "$CONFIG" ]; then
    echo "$dir was built with: $(cat "$dir/config.txt")" >&2
    echo "now asked for: $CONFIG" >&2
    echo "use another --data-bin/--work or delete $dir" >&2
    exit 1
  fi
done
for dir in "$DATA_BIN" "$WORK"; do echo "$CONFIG" > "$dir/config.txt"; done

step() { echo; echo "== [$PAIR] $*"; }
skip() { echo "   exists, skipped: $1"; }
T0=$(date +%s)

step "1/7 held-out split: $TGT test ($TEST_LINES lines) and every zero-shot evaluation split of $SRC,$TGT (and their translations) out of the monolingual and parallel text"
if [ -f "$WORK/heldout.json" ]; then skip "$WORK/text/*.txt, $WORK/parallel/train.*"; else
  csfair-prep split-pair --mono "$SRC:$DATA/mono/derived/$SRC.txt" --mono "$TGT:$DATA/mono/derived/$TGT.txt" \
    --src-lang "$SRC" --tgt-lang "$TGT" --parallel-src "$DATA/$PARALLEL.$SRC.gz" --parallel-tgt "$DATA/$PARALLEL.$TGT.gz" \
    --test "$TEST_LINES" --valid "$VALID_LINES" ${MAX_TRAIN:+--max-train "$MAX_TRAIN"} --seed 1 \
    --eval-langs "$SRC,$TGT" --out-dir "$WORK"
fi
# Fails the recipe (exit 1) when any test split still overlaps a training or lexicon input.
AUDIT_TEST=(); [ -f "$WORK/text/$TGT.test.txt" ] && AUDIT_TEST=(--test-file "mlm/$TGT.test=$WORK/text/$TGT.test.txt")
echo "   audit (normalised exact match; translations via $PARALLEL) -> $WORK/audit.json"
csfair-prep audit --input "$SRC.train=$WORK/text/$SRC.train.txt" --input "$SRC.valid=$WORK/text/$SRC.valid.txt" \
  --input "$TGT.train=$WORK/text/$TGT.train.txt" --input "$TGT.valid=$WORK/text/$TGT.valid.txt" \
  --input "lexicon.$SRC=$WORK/parallel/train.$SRC" --input "lexicon.$TGT=$WORK/parallel/train.$TGT" \
  "${AUDIT_TEST[@]}" --translations "$DATA/$PARALLEL.$SRC.gz:$DATA/$PARALLEL.$TGT.gz" \
  --eval-langs "$SRC,$TGT" --json "$WORK/audit.json" | sed 's/^/   /'

step "2/7 lexicons: IBM-1 on the held-out-filtered $WORK/parallel/train.{$SRC,$TGT} (both directions), MUSE"
if [ -f "$WORK/lexicons/ibm1.$TGT-$SRC.tsv" ] && [ -f "$WORK/lexicons/ibm1.$SRC-$TGT.tsv" ]; then skip "$WORK/lexicons/ibm1.*"; else
  csfair-lexicon ibm1 --src-file "$WORK/parallel/train.$SRC" --tgt-file "$WORK/parallel/train.$TGT" \
    --src-lang "$SRC" --tgt-lang "$TGT" --out-dir "$WORK/lexicons" --workers 2
fi
for dir in "$SRC-$TGT:$MUSE_ST" "$TGT-$SRC:$MUSE_TS"; do
  d=${dir%%:*}; f=${dir#*:}
  out="$WORK/lexicons/muse.$d.tsv"
  if [ -f "$out" ]; then skip "$out"; else
    csfair-lexicon muse --dict "$DATA/$f" --src-lang "${d%-*}" --tgt-lang "${d#*-}" --out "$out"
  fi
done

step "3/7 Moses tokenisation"
for lang in "$SRC" "$TGT"; do
  for split in train valid test; do
    in="$WORK/text/$lang.$split.txt"; out="$WORK/text/$lang.$split.tok"
    [ -f "$in" ] || continue
    if [ -f "$out" ]; then skip "$out"; else
      csfair-prep moses --lang "$lang" --input "$in" --output "$out" --workers 2 --quiet
    fi
  done
done

step "4/7 shared sentencepiece ($VOCAB pieces, equal characters per language) and fairseq dictionary"
if [ -f "$DATA_BIN/spm.model" ]; then skip "$DATA_BIN/spm.model"; else
  csfair-prep spm-train --input "$SRC:$WORK/text/$SRC.train.tok" --input "$TGT:$WORK/text/$TGT.train.tok" \
    --model-prefix "$DATA_BIN/spm" --vocab-size "$VOCAB"
fi
for lang in "$SRC" "$TGT"; do
  for split in train valid test; do
    in="$WORK/text/$lang.$split.tok"; out="$WORK/text/$lang.$split.spm"
    [ -f "$in" ] || continue
    if [ -f "$out" ]; then skip "$out"; else csfair-prep spm-encode --model "$DATA_BIN/spm.model" --input "$in" --output "$out"; fi
  done
done
if [ -f "$DATA_BIN/dict.txt" ]; then skip "$DATA_BIN/dict.txt"; else
  csfair-prep fairseq-dict --model "$DATA_BIN/spm.model" --counts-from "$WORK/text/$SRC.train.spm" "$WORK/text/$TGT.train.spm" \
    --output "$DATA_BIN/dict.txt"
fi

step "5/7 fairseq-preprocess --only-source per language"
for lang in "$SRC" "$TGT"; do
  dest="$DATA_BIN/$lang"
  if [ -f "$dest/train.idx" ]; then skip "$dest"; else
    tmp="$DATA_BIN/.$lang.tmp"; rm -rf "$tmp"
    args=(--trainpref "$WORK/text/$lang.train.spm" --validpref "$WORK/text/$lang.valid.spm")
    [ -f "$WORK/text/$lang.test.spm" ] && args+=(--testpref "$WORK/text/$lang.test.spm")
    if ! fairseq-preprocess --only-source --srcdict "$DATA_BIN/dict.txt" "${args[@]}" --destdir "$tmp" --workers 2 \
        > "$WORK/preprocess.$lang.log" 2>&1; then
      echo "fairseq-preprocess failed: see $WORK/preprocess.$lang.log" >&2; exit 1
    fi
    grep -E "sents" "$WORK/preprocess.$lang.log" | sed 's/^.*preprocess[^]]*\] /   /'
    rm -rf "$dest"; mv "$tmp" "$dest"
  fi
done

# Stopwords: the 20 most frequent words of each language's own training text (the same rule for every
# language); candidates take their usual casing in the target text; identical candidates are dropped.
step "6/7 substitution tables (p > 0.02, T = 3, top-20 stopwords, words >= 4 characters, no identical candidates)"
for name in ibm1 muse; do
  for d in "$SRC-$TGT" "$TGT-$SRC"; do
    out="$DATA_BIN/tables/$name.$d"
    if [ -f "$out/meta.json" ]; then skip "$out"; else
      csfair-lexicon table --lexicon "$WORK/lexicons/$name.$d.tsv" --spm-model "$DATA_BIN/spm.model" \
        --dict "$DATA_BIN/dict.txt" --out "$out" --tsv "$WORK/lexicons/$name.$d.table.tsv" --quiet \
        --src-corpus "$WORK/text/${d%-*}.train.tok" --tgt-corpus "$WORK/text/${d#*-}.train.tok" \
        > "$WORK/table.$name.$d.json" 2> "$WORK/table.$name.$d.log" || { cat "$WORK/table.$name.$d.log" >&2; exit 1; }
      sed "s/^/   $name.$d: /" "$WORK/table.$name.$d.log"
    fi
  done
done
echo "   table sizes on disk: $(du -sh "$DATA_BIN"/tables/* | awk '{printf "%s %s; ", $2, $1}')"
T_PREP=$(( $(date +%s) - T0 ))
[ "$PREP_ONLY" = 1 ] && { echo; echo "== [$PAIR] --prep-only: data ready in $DATA_BIN (${T_PREP}s)"; exit 0; }

step "7/7 pretraining ($CS, $ARCH, $MAX_UPDATE updates) -> $SAVE"
if [ "$CS" = none ]; then CS_ARGS=(--cs-mode none); else CS_ARGS=(--cs-mode "$CS_MODE" --cs-table-name "$CS"); fi
[ -n "$TB" ] && CS_ARGS+=(--tensorboard-logdir "$TB/$RUN")
T1=$(date +%s)
if [ -f "$SAVE/.done" ]; then skip "$SAVE (remove $SAVE/.done to train again)"; else
  fairseq-train "$DATA_BIN" --user-dir user_dir --task codeswitch_masked_lm --langs "$SRC,$TGT" "${CS_ARGS[@]}" \
    --arch "$ARCH" --criterion cs_masked_lm --tokens-per-sample "$TPS" --sample-break-mode complete \
    --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0 \
    --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates "$WARMUP" --total-num-update "$MAX_UPDATE" \
    --max-update "$MAX_UPDATE" --batch-size "$BSZ" --update-freq "$UPDATE_FREQ" \
    --dropout 0.1 --attention-dropout 0.1 --seed "$SEED" --num-workers "$NUM_WORKERS" \
    --log-format simple --log-interval 50 --save-dir "$SAVE" --no-epoch-checkpoints \
    --save-interval-updates 1000 --keep-interval-updates 1 --validate-interval-updates 1000 \
    --skip-invalid-size-inputs-valid-test "${EXTRA[@]}" 2>&1 | tee "$SAVE/train.log" | grep -E --line-buffered "train_inner|valid on|\| train \||done training|Error|error" || true
  [ -f "$SAVE/checkpoint_last.pt" ] || { echo "training failed: see $SAVE/train.log" >&2; exit 1; }
  touch "$SAVE/.done"
fi
T_TRAIN=$(( $(date +%s) - T1 ))

echo
echo "== [$PAIR] MLM accuracy on held-out $TGT text ($TEST_LINES lines)"
python scripts/eval_mlm.py --checkpoint "$SAVE/checkpoint_last.pt" --data "$DATA_BIN" --lang "$TGT" --split test \
  --json "$SAVE/mlm_$TGT.test.json" 2>&1 | grep -E "^MLM accuracy|error"
echo "   wall time: preparation ${T_PREP}s, training ${T_TRAIN}s, total $(( $(date +%s) - T0 ))s"
