#!/usr/bin/env bash
# Code-switched MLM pretraining for one of the paper's eight language pairs, end to end on real data:
#   held-out split (test + evaluation sentences and their translations out of all training and
#   parallel text) + overlap audit -> lexicons (IBM-1 on the filtered parallel text; MUSE where it
#   exists) -> Moses -> balanced sentencepiece -> fairseq dictionary -> fairseq-preprocess per
#   language -> substitution tables -> fairseq-train --task codeswitch_masked_lm -> MLM accuracy on
#   held-out target-language text.
#
# Usage:
#   bash scripts/recipes/pair.sh PAIR [options] [-- extra fairseq-train args]   (or --pair PAIR)
#   bash scripts/recipes/pair.sh --list          the pairs' table, with what is present in $CSFAIR_DATA
#   bash scripts/recipes/pair.sh PAIR --check    only check that PAIR's data is present (exit 1 if not)
#   bash scripts/recipes/pair.sh PAIR [options] --print-train   print the fairseq-train command step 7 would run, and exit
#   (scripts/recipes/en-fr.sh and en-de.sh are this recipe with their pair; scripts/demo.sh runs en-fr.sh)
#
# Pairs (one table: csfair_cli/pairs.toml): en-fr en-de en-pt en-tr en-hu en-fi en-sw en-xh. Data:
#   --data staged  this repository's staged real data ($CSFAIR_DATA/README.md: Multi30k parallel text,
#                  mono/derived MLM text): en-fr and en-de only; their default (the demo's data).
#   --data paper   the paper's sources, as `csfair-data get --pair PAIR` lays them out: a 1M-pair NLLB
#                  sample (parallel/nllb/PAIR/train.*.gz), mC4 text (mono/mc4/{en,XX}.txt: 1 GB English,
#                  100 MB target), MUSE dictionaries (dict/muse/, not for sw/xh). Default for the others.
#                  The vocabulary sees equal characters of both languages (spm-train), i.e. ~100 MB of
#                  each, as in the paper (Sec. 3.2).
# A pair whose data is missing stops before doing anything, naming each missing file and the
# csfair-data command that fetches it.
#
# Options (defaults: the CPU demo size; the paper's scale is shown below):
#   --pair P              en-fr | en-de | en-pt | en-tr | en-hu | en-fi | en-sw | en-xh (or the first argument)
#   --data D              staged | paper (see above; default: staged where the pair has it, else paper)
#   --cs C                ibm1 (multiview IBM-1, default) | muse (uniform MUSE; not for en-sw, en-xh) | none
#   --stopwords S         function (default: each language's function words, the closed-class words of its UD
#                         treebank in $CSFAIR_DATA/ud/; Swahili: stopwords-iso, Xhosa: top:20, as they have no
#                         treebank) | top:N (the N most frequent words of each language's text) | iso (stopwords-iso;
#                         no Xhosa list) | none: csfair-lexicon table --src/--tgt-stopwords (docs/pretraining.md)
#   --identical I         keep (default, the paper: candidates equal to their word stay in p^(1/T)/sum, a draw of
#                         one changes nothing) | drop (csfair-lexicon table --drop-identical)
#   --heldout-words FILE  LANG<TAB>word lines held out of every substitution table, as keys and candidates
#                         (csfair-lexicon table --exclude-words; the word-translation test words of
#                         scripts/effect.py pair, docs/experiments.md); part of the tables' configuration
#   --eval-tasks T        zero-shot tasks whose evaluation splits the held-out split removes (default all;
#                         csfair-prep split-pair --eval-tasks)
#   --cs-mode M           multiview (default) | static   (ignored with --cs none)
#   --arch A              cs_roberta_tiny (default) | cs_roberta_base
#   --tokens-per-sample N 128 (training blocks longer than this are skipped by fairseq: reported, and more than
#                         1% is an error unless accepted with `-- --max-invalid-size-share X`)
#   --batch-size N        32 (sentences-blocks per GPU/process; --update-freq multiplies it)
#   --update-freq N       1
#   --lr X                1.5e-3
#   --warmup N            80
#   --max-update N        800
#   --vocab-size N        8000
#   --max-train-lines N   cap per language on training lines (default: all)
#   --test-lines N        2000 held-out target-language lines (the MLM accuracy test set)
#   --valid-lines N       500 per language
#   --num-workers N       DataLoader workers per GPU process: 2 when a CUDA GPU is visible, else 1 (the CPU
#                         demo: the trainer itself needs the cores); see bench/data_path.py
#   --seed N              1
#   --run NAME            run name under checkpoints/<pair>/ (default: the --cs value)
#   --data-bin DIR        data-bin/<pair>
#   --work DIR            work/<pair> (intermediate text)
#   --save-root DIR       checkpoints/<pair>
#   --prep-only           stop after the data steps (the data shared by every run; scripts/sweep.py pretrain)
#   --tensorboard DIR     also log to TensorBoard (fairseq's --tensorboard-logdir DIR/<run>);
#                         view with `tensorboard --logdir DIR`; curves as PNG: scripts/plot_training.py
#   --check               check the data and exit (0: present; 1: missing, listed); --list: the table
#   --print-train         print the fairseq-train command of step 7 (shell-quoted, one line) and exit; nothing is
#                         checked or written (tests/test_hydra_configs.py compares it with configs/pretrain/demo.yaml)
#
# Defaults for data-bin/work/checkpoints are <dir>/PAIR with the pair's default data, <dir>/PAIR.paper
# for en-fr/en-de with --data paper.
#
# Paper scale (Visser et al. 2025, Sec. 3.3: BERT-base, 128 tokens, batch 512, 1M steps), e.g. on
# 8 GPUs: --arch cs_roberta_base --tokens-per-sample 128 --batch-size 64 --update-freq 1
#   --lr 1e-4 --warmup 10000 --max-update 1000000 --vocab-size 32000 -- --fp16
# (fairseq uses every visible GPU; batch = batch-size x update-freq x GPUs.)
#
# Every step skips itself when all its outputs exist (outputs are written atomically), and prints
# what it produced. The data-bin directory remembers the options it was built with and refuses
# to be reused with different ones. Training is done (.done) only when fairseq-train exited 0 and its
# checkpoint reached --max-update/--max-epoch; a rerun resumes an unfinished run from checkpoint_last.pt.
# Locks (docs/guarantees.md): the data steps hold --data-bin and --work exclusively (a second run
# into them stops, naming the first: pid, host, command, since when); once the data is prepared,
# runs share them read-only, each training holding its own run folder; leftovers of killed steps
# (.tmp-PID files, checkpoint*.pt.tmp) are removed by the next run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# the project's environment (scripts/setup.sh), if it exists
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
export CSFAIR_DATA=${CSFAIR_DATA:-$ROOT/../shared/data}
DATA=$CSFAIR_DATA

PAIR="" CS=ibm1 CS_MODE=multiview ARCH=cs_roberta_tiny TPS=128 BSZ=32 UPDATE_FREQ=1 LR=1.5e-3 WARMUP=80
MAX_UPDATE=800 VOCAB=8000 MAX_TRAIN="" TEST_LINES=2000 VALID_LINES=500 NUM_WORKERS="" SEED=1 RUN=""
DATA_BIN="" WORK="" SAVE_ROOT="" TB="" HELDOUT_WORDS="" EXTRA=() PROFILE="" STOPWORDS=function IDENTICAL=keep EVAL_TASKS=all MODE=run PREP_ONLY=0
CMDLINE="bash $0 $*"  # recorded in the folder locks (who holds them)
case "${1:-}" in en-*) PAIR=$1; shift ;; esac
while [ $# -gt 0 ]; do
  case "$1" in
    --pair) PAIR=$2; shift 2 ;;
    --data) PROFILE=$2; shift 2 ;;
    --cs) CS=$2; shift 2 ;;
    --cs-mode) CS_MODE=$2; shift 2 ;;
    --stopwords) STOPWORDS=$2; shift 2 ;;
    --heldout-words) HELDOUT_WORDS=$2; shift 2 ;;
    --identical) IDENTICAL=$2; shift 2 ;;
    --eval-tasks) EVAL_TASKS=$2; shift 2 ;;
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
    --prep-only) PREP_ONLY=1; shift ;;
    --check) MODE=check; shift ;;
    --list) MODE=list; shift ;;
    --print-train) MODE=print-train; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The paper's eight pairs (Visser et al. 2025, Sec. 3.2-3.4), one row each, from the declarative table
# csfair_cli/pairs.toml (its header explains the fields). `pair_row P` sets the row's variables:
#   SRC TGT NAME  the languages and the target's English name
#   STAGED  this repository's staged data for the pair: PARALLEL_PREFIX:MONO_DIR ("-": none)
#   LEX     lexicon kinds (ibm1, and muse where MUSE has a dictionary); EVAL the zero-shot evaluation sets
#   ISO     whether stopwords-iso has a list for the language (--stopwords iso)
#   UD, SRC_UD  the languages' UD treebanks (csfair-data get --what ud) for --stopwords function, "-": none
PAIRS=$(python -m csfair_cli.pairs names) || { echo "cannot read the pairs table (csfair_cli/pairs.toml)" >&2; exit 2; }
pair_row() {
  local row
  row=$(python -m csfair_cli.pairs row "$1") || return 1
  eval "$row"
}

# The files a pair needs with a data profile (sets PARALLEL, MONO, REQUIRED, EVAL_FILES).
pair_files() {
  local profile=$1 e
  if [ "$profile" = staged ]; then
    PARALLEL=${STAGED%%:*}; MONO=${STAGED#*:}
  else
    PARALLEL=parallel/nllb/$SRC-$TGT/train; MONO=mono/mc4
  fi
  REQUIRED="$PARALLEL.$SRC.gz $PARALLEL.$TGT.gz $MONO/$SRC.txt $MONO/$TGT.txt"
  case " $LEX " in *" muse "*) REQUIRED="$REQUIRED dict/muse/$SRC-$TGT.txt dict/muse/$TGT-$SRC.txt" ;; esac
  [ "$STOPWORDS" = iso ] && REQUIRED="$REQUIRED stopwords/stopwords-iso/stopwords-iso.json"
  if [ "$STOPWORDS" = function ]; then
    # a treebank of each language, any (the staged English GUM, or what csfair-data fetches: the file named here)
    local tb lang
    for tb in "$SRC:$SRC_UD" "$TGT:$UD"; do
      lang=${tb%%:*} tb=${tb#*:}
      if [ "$tb" = - ]; then
        [ "$ISO" = yes ] && REQUIRED="$REQUIRED stopwords/stopwords-iso/stopwords-iso.json"
      elif ! compgen -G "$DATA/ud/*/${lang}_*-ud-*.conllu" > /dev/null; then
        REQUIRED="$REQUIRED ud/${tb%%:*}-v2.5/${tb#*:}-ud-train.conllu"
      fi
    done
  fi
  EVAL_FILES=""
  for e in $EVAL; do
    case $e in
      xnli) EVAL_FILES="$EVAL_FILES nli/mnli/train.tsv nli/xnli-1.0/xnli.test.tsv" ;;
      afrixnli) EVAL_FILES="$EVAL_FILES nli/mnli/train.tsv nli/afrixnli/xho/test.tsv" ;;
      panx) EVAL_FILES="$EVAL_FILES ner/panx/en/train ner/panx/$TGT/test" ;;
    esac
  done
}

# csfair-data kinds (--what) that write the given files (see csfair_cli/data_sources.toml)
kinds_of() {
  local f k out=""
  for f in $1; do
    case $f in
      parallel/*) k=parallel ;; mono/*) k=mono ;; dict/muse/*) k=muse ;; stopwords/*) k=stopwords ;;
      ud/*) k=ud ;; nli/mnli/*) k=mnli ;; nli/xnli-1.0/*) k=xnli ;; nli/afrixnli/*) k=afrixnli ;; ner/panx/*) k=panx ;; *) k=? ;;
    esac
    case ",$out," in *",$k,"*) ;; *) out="$out,$k" ;; esac
  done
  echo "${out#,}"
}
missing_of() { local f out=""; for f in $1; do [ -e "$DATA/$f" ] || out="$out $f"; done; echo "${out# }"; }
default_profile() { [ "$STAGED" != - ] && echo staged || echo paper; }

if [ "$MODE" = list ]; then
  printf '%-6s %-11s %-7s %-10s %-14s %-9s %s\n' pair language staged lexicons evaluation iso-stop "data in $DATA"
  for p in $PAIRS; do
    pair_row "$p"
    avail=""
    for prof in staged paper; do
      [ "$prof" = staged ] && [ "$STAGED" = - ] && continue
      pair_files "$prof"
      m=$(missing_of "$REQUIRED"); n=$(echo "$m" | wc -w)
      if [ "$n" -eq 0 ]; then avail="$avail $prof: ready;"; else avail="$avail $prof: $n missing;"; fi
    done
    pair_files paper
    me=$(missing_of "$EVAL_FILES"); ne=$(echo "$me" | wc -w)
    [ "$ne" -eq 0 ] && avail="$avail paper eval sets: present" || avail="$avail paper eval sets: $ne missing"
    printf '%-6s %-11s %-7s %-10s %-14s %-9s%s\n' "$p" "$NAME" "$([ "$STAGED" = - ] && echo no || echo yes)" \
      "${LEX// /,}" "${EVAL// /,}" "$ISO" "$avail"
  done
  echo "(missing files and how to get them: bash scripts/recipes/pair.sh PAIR --check)"
  exit 0
fi

# DataLoader workers (csfair issue 13, part 4): one worker masks + code-switches about 1M tokens/s per core
# (0.9-1.1M measured, bench/data_path.py), roberta-base trains at 0.27-0.43M tokens/s per GPU: 2 workers per GPU process
# keep multiview from waiting on data with >= 4x headroom (slower cluster cores, the per-epoch worker
# restart); on CPU the workers would take cores from the trainer itself, so 1.
if [ -z "$NUM_WORKERS" ]; then
  if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then NUM_WORKERS=2; else NUM_WORKERS=1; fi
fi
[ -n "$PAIR" ] || { echo "missing pair: bash $0 PAIR (one of: $PAIRS), or --list" >&2; exit 2; }
pair_row "$PAIR" || { echo "unsupported pair: $PAIR (one of: $PAIRS)" >&2; exit 2; }
PROFILE=${PROFILE:-$(default_profile)}
case "$PROFILE" in
  staged) [ "$STAGED" != - ] || { echo "$PAIR has no staged data in this repository's data (only en-fr, en-de): use --data paper" >&2; exit 2; } ;;
  paper) ;;
  *) echo "--data must be staged or paper" >&2; exit 2 ;;
esac
case "$CS" in ibm1|muse|none) ;; *) echo "--cs must be ibm1, muse or none" >&2; exit 2 ;; esac
if [ "$CS" = muse ]; then
  case " $LEX " in *" muse "*) ;; *)
    echo "--cs muse: $NAME ($PAIR) has no MUSE dictionary (MUSE covers none for Swahili or Xhosa; paper, Sec. 3.1);" \
         "use --cs ibm1 (IBM-1 from the parallel text) or --cs none" >&2; exit 2 ;;
  esac
fi
case "$STOPWORDS" in
  function|top:*|none) ;;
  iso) [ "$ISO" = yes ] || { echo "--stopwords iso: stopwords-iso has no $NAME ($TGT) list; use --stopwords function (the default), top:20 or none" >&2; exit 2; } ;;
  *) echo "--stopwords must be function, top:N, iso or none" >&2; exit 2 ;;
esac
case "$IDENTICAL" in keep|drop) ;; *) echo "--identical must be keep or drop" >&2; exit 2 ;; esac
pair_files "$PROFILE"

# Options that change the outputs from the defaults of the demo's builds are part of the build's
# identity (so that an existing data-bin/en-fr keeps its config line).
SUFFIX=""
[ "$PROFILE" != "$(default_profile)" ] && SUFFIX=.$PROFILE
DATA_BIN=${DATA_BIN:-data-bin/$PAIR$SUFFIX}
WORK=${WORK:-work/$PAIR$SUFFIX}
SAVE_ROOT=${SAVE_ROOT:-checkpoints/$PAIR$SUFFIX}
RUN=${RUN:-$CS}
SAVE=$SAVE_ROOT/$RUN
# Step 7's pretraining command, built here so that --print-train shows exactly what runs.
if [ "$CS" = none ]; then CS_ARGS=(--cs-mode none); else CS_ARGS=(--cs-mode "$CS_MODE" --cs-table-name "$CS"); fi
[ -n "$TB" ] && CS_ARGS+=(--tensorboard-logdir "$TB/$RUN")
TRAIN=(fairseq-train "$DATA_BIN" --user-dir user_dir --task codeswitch_masked_lm --langs "$SRC,$TGT" "${CS_ARGS[@]}"
  --arch "$ARCH" --criterion cs_masked_lm --tokens-per-sample "$TPS" --sample-break-mode complete
  --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 --clip-norm 1.0
  --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates "$WARMUP" --total-num-update "$MAX_UPDATE"
  --max-update "$MAX_UPDATE" --batch-size "$BSZ" --update-freq "$UPDATE_FREQ"
  --dropout 0.1 --attention-dropout 0.1 --seed "$SEED" --num-workers "$NUM_WORKERS"
  --log-format simple --log-interval 50 --save-dir "$SAVE" --no-epoch-checkpoints
  --save-interval-updates 1000 --keep-interval-updates 1 --validate-interval-updates 1000
  --skip-invalid-size-inputs-valid-test "${EXTRA[@]}")
if [ "$MODE" = print-train ]; then printf '%q ' "${TRAIN[@]}"; echo; exit 0; fi

# Everything the recipe reads, checked before anything is written.
MISSING=$(missing_of "$REQUIRED")
MISSING_EVAL=$(missing_of "$EVAL_FILES")
if [ -n "$MISSING" ]; then
  echo "[$PAIR] data missing for --data $PROFILE in CSFAIR_DATA=$DATA:" >&2
  for f in $MISSING; do echo "   $DATA/$f" >&2; done
  if [ "$PROFILE" = paper ]; then
    echo "get them with:  csfair-data get --pair $PAIR --what $(kinds_of "$MISSING") --out \"$DATA\"" >&2
    echo "   (python -m csfair_cli.data if the csfair-data command is not installed; sizes and sources:" \
         "csfair-data list --pair $PAIR; offline clusters: --mirror)" >&2
  else
    echo "this is the staged data of \$CSFAIR_DATA/README.md (set CSFAIR_DATA to it if you have it)." \
         "Elsewhere: \`csfair-data get --what staged --out DIR\` fetches its byte-exact files (Multi30k, evaluation" \
         "sets) but not mono/derived/ or the converted dict/muse/ (built in the staging folder);" \
         "or run the paper's sources: --data paper (csfair-data get --pair $PAIR)" >&2
  fi
  exit 1
fi
if [ "$MODE" = check ]; then
  echo "[$PAIR] --data $PROFILE: all $(echo "$REQUIRED" | wc -w) input files present in $DATA (lexicons: ${LEX// /, })"
  [ -n "$MISSING_EVAL" ] && echo "[$PAIR] not present (needed later, for the paper's zero-shot evaluation: ${EVAL// /, }):" \
    "$MISSING_EVAL; csfair-data get --pair $PAIR --what $(kinds_of "$MISSING_EVAL")"
  exit 0
fi

mkdir -p "$DATA_BIN" "$WORK" "$SAVE"

# The binarised data and the intermediate text depend on these options; refuse to mix builds.
# heldout=2: test and evaluation sentences (and their translations) held out of all training text
# and of the lexicon's parallel text (a data-bin from before that has no such field and is refused).
# heldout=3: near-copies too (csfair.evaluation.nearcopy: tokenisation-insensitive copies, containment,
# >= 70% of an item's word 8-grams in one line) and every language's row of an XNLI test item.
CONFIG="pair=$PAIR vocab=$VOCAB max_train=${MAX_TRAIN:-all} test=$TEST_LINES valid=$VALID_LINES split_seed=1 heldout=3"
[ "$PROFILE" = paper ] && CONFIG="$CONFIG data=paper"
[ "$STOPWORDS" != function ] && CONFIG="$CONFIG stopwords=$STOPWORDS"
[ "$EVAL_TASKS" != all ] && CONFIG="$CONFIG eval_tasks=$EVAL_TASKS"
# Never two writers (csfair/locks.py, docs/guarantees.md): flock on DIR/.csfair-lock through a descriptor
# this shell (and every child) keeps open until it exits, killed or not. Data steps hold --data-bin and
# --work exclusively; once they are prepared for this CONFIG (.prep-done), runs hold them shared
# (several trainings may read one data-bin) and each training holds its run folder exclusively.
LOCKED=" "
lock_dir() {  # FD DIR MODE [--clean|--downgrade]: take (or convert) the lock; exit 1 naming the holder
  local fd=$1 dir=$2 mode=$3 real; shift 3
  real=$(cd "$dir" && pwd -P)
  case "$LOCKED" in *" $real:$fd "*) ;; *" $real:"*) return 0 ;; *) eval "exec $fd<>\"\$dir/.csfair-lock\""; LOCKED="$LOCKED$real:$fd " ;; esac
  python -m csfair.locks acquire --fd "$fd" --dir "$dir" --mode "$mode" --pid $$ --command "$CMDLINE" "$@" || exit 1
}
# a shell redirection written atomically: stdin to a temporary name, renamed when complete
atomic_out() { cat > "$1.tmp-$$" && mv -f "$1.tmp-$$" "$1"; }
PREP_MARK=.prep-done
prepared() { local d; for d in "$DATA_BIN" "$WORK"; do [ -f "$d/$PREP_MARK" ] && [ "$(cat "$d/$PREP_MARK")" = "$CONFIG" ] || return 1; done; }
if prepared; then LOCK_MODE=shared; else LOCK_MODE=exclusive; fi
lock_dir 8 "$DATA_BIN" "$LOCK_MODE" --clean
lock_dir 7 "$WORK" "$LOCK_MODE" --clean

for dir in "$DATA_BIN" "$WORK"; do
  if [ ! -f "$dir/config.txt" ] && [ -n "$(ls -A "$dir" | grep -vxE 'README.md|\.csfair-lock')" ]; then
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
if [ "$LOCK_MODE" = exclusive ]; then
  for dir in "$DATA_BIN" "$WORK"; do [ -f "$dir/config.txt" ] || echo "$CONFIG" | atomic_out "$dir/config.txt"; done
fi

EVAL_ARGS=(); [ "$EVAL_TASKS" != all ] && EVAL_ARGS=(--eval-tasks "$EVAL_TASKS")
STOP_ARGS=(--src-stopwords "$STOPWORDS" --tgt-stopwords "$STOPWORDS")
[ "$IDENTICAL" = drop ] && STOP_ARGS+=(--drop-identical)
# The tables depend on the table options: DATA_BIN/tables/config.txt names them, and tables built with others
# (or before it existed: top:20 stopwords, identical candidates dropped) are refused, as are finished runs
# trained on other tables (RUN/tables.config.txt).
TABLE_CONFIG="tables=2 stopwords=$STOPWORDS identical=$IDENTICAL"
if [ -n "$HELDOUT_WORDS" ]; then
  [ -f "$HELDOUT_WORDS" ] || { echo "--heldout-words $HELDOUT_WORDS: no such file" >&2; exit 2; }
  STOP_ARGS+=(--exclude-words "$HELDOUT_WORDS")
  TABLE_CONFIG="$TABLE_CONFIG heldout=$(sha256sum "$HELDOUT_WORDS" | cut -c1-16)"
fi
if [ -n "$(ls "$DATA_BIN"/tables/*/meta.json 2>/dev/null)" ] && [ "$(cat "$DATA_BIN/tables/config.txt" 2>/dev/null)" != "$TABLE_CONFIG" ]; then
  echo "$DATA_BIN/tables was built with: $(cat "$DATA_BIN/tables/config.txt" 2>/dev/null || echo "older options (top:20 stopwords, identical candidates dropped: before csfair issue 20)")" >&2
  echo "now asked for: $TABLE_CONFIG" >&2
  echo "delete $DATA_BIN/tables (and the runs trained on them: $SAVE_ROOT/ibm1, $SAVE_ROOT/muse, ...) or use another --data-bin" >&2
  exit 1
fi
mkdir -p "$DATA_BIN/tables"
echo "$TABLE_CONFIG" | atomic_out "$DATA_BIN/tables/config.txt"
step() { echo; echo "== [$PAIR] $*"; }
skip() { echo "   exists, skipped: $1"; }
T0=$(date +%s)

step "1/7 held-out split: $TGT test ($TEST_LINES lines) and every zero-shot evaluation split of $SRC,$TGT (and their translations) out of the monolingual and parallel text"
SPLIT_OUT="$WORK/heldout.json $WORK/text/$SRC.train.txt $WORK/text/$SRC.valid.txt $WORK/text/$TGT.train.txt $WORK/text/$TGT.valid.txt $WORK/parallel/train.$SRC $WORK/parallel/train.$TGT"
[ "$TEST_LINES" -gt 0 ] && SPLIT_OUT="$SPLIT_OUT $WORK/text/$TGT.test.txt"
all_exist() { local f; for f in "$@"; do [ -e "$f" ] || return 1; done; }
# shellcheck disable=SC2086
if all_exist $SPLIT_OUT; then skip "$WORK/text/*.txt, $WORK/parallel/train.*"; else
  csfair-prep split-pair --mono "$SRC:$DATA/$MONO/$SRC.txt" --mono "$TGT:$DATA/$MONO/$TGT.txt" \
    --src-lang "$SRC" --tgt-lang "$TGT" --parallel-src "$DATA/$PARALLEL.$SRC.gz" --parallel-tgt "$DATA/$PARALLEL.$TGT.gz" \
    --test "$TEST_LINES" --valid "$VALID_LINES" ${MAX_TRAIN:+--max-train "$MAX_TRAIN"} --seed 1 \
    --eval-langs "$SRC,$TGT" "${EVAL_ARGS[@]}" --out-dir "$WORK"
fi
# Fails the recipe (exit 1) when any test item is still held by a training or lexicon input.
AUDIT_TEST=(); [ -f "$WORK/text/$TGT.test.txt" ] && AUDIT_TEST=(--test-file "mlm/$TGT.test=$WORK/text/$TGT.test.txt")
echo "   audit (copies and near-copies; translations via $PARALLEL) -> $WORK/audit.json"
csfair-prep audit --input "$SRC.train=$WORK/text/$SRC.train.txt" --input "$SRC.valid=$WORK/text/$SRC.valid.txt" \
  --input "$TGT.train=$WORK/text/$TGT.train.txt" --input "$TGT.valid=$WORK/text/$TGT.valid.txt" \
  --input "lexicon.$SRC=$WORK/parallel/train.$SRC" --input "lexicon.$TGT=$WORK/parallel/train.$TGT" \
  "${AUDIT_TEST[@]}" --translations "$DATA/$PARALLEL.$SRC.gz:$DATA/$PARALLEL.$TGT.gz" \
  --eval-langs "$SRC,$TGT" "${EVAL_ARGS[@]}" --json "$WORK/audit.json" | sed 's/^/   /'

step "2/7 lexicons: IBM-1 on the held-out-filtered $WORK/parallel/train.{$SRC,$TGT} (both directions)$(case " $LEX " in *" muse "*) echo ", MUSE" ;; *) echo "; no MUSE dictionary for $NAME" ;; esac)"
if [ -f "$WORK/lexicons/ibm1.$TGT-$SRC.tsv" ] && [ -f "$WORK/lexicons/ibm1.$SRC-$TGT.tsv" ]; then skip "$WORK/lexicons/ibm1.*"; else
  csfair-lexicon ibm1 --src-file "$WORK/parallel/train.$SRC" --tgt-file "$WORK/parallel/train.$TGT" \
    --src-lang "$SRC" --tgt-lang "$TGT" --out-dir "$WORK/lexicons" --workers 2
fi
case " $LEX " in *" muse "*) MUSE_DIRS="$SRC-$TGT $TGT-$SRC" ;; *) MUSE_DIRS="" ;; esac
for d in $MUSE_DIRS; do
  f=dict/muse/$d.txt
  out="$WORK/lexicons/muse.$d.tsv"
  if [ -f "$out" ]; then skip "$out"; else
    csfair-lexicon muse --muse-dict "$DATA/$f" --src-lang "${d%-*}" --tgt-lang "${d#*-}" --out "$out"
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
  if all_exist "$dest/train.idx" "$dest/train.bin" "$dest/valid.idx" "$dest/valid.bin"; then skip "$dest"; else
    tmp="$DATA_BIN/.$lang.tmp"; rm -rf "$tmp"
    args=(--trainpref "$WORK/text/$lang.train.spm" --validpref "$WORK/text/$lang.valid.spm")
    [ -f "$WORK/text/$lang.test.spm" ] && args+=(--testpref "$WORK/text/$lang.test.spm")
    log="$WORK/preprocess.$lang.log"
    if ! fairseq-preprocess --only-source --srcdict "$DATA_BIN/dict.txt" "${args[@]}" --destdir "$tmp" --workers 2 \
        > "$log.tmp-$$" 2>&1; then
      mv -f "$log.tmp-$$" "$log"; echo "fairseq-preprocess failed: see $log" >&2; exit 1
    fi
    mv -f "$log.tmp-$$" "$log"
    grep -E "sents" "$WORK/preprocess.$lang.log" | sed 's/^.*preprocess[^]]*\] /   /'
    rm -rf "$dest"; mv "$tmp" "$dest"
  fi
done

# Stopwords: function words (UD closed-class words) of each language on both sides, by default; candidates take
# their usual casing in the target text; identical candidates stay in the normalisation (the paper's formula).
step "6/7 substitution tables (p > 0.02, T = 3, ${STOPWORDS/top:/top-} stopwords, words >= 4 characters, identical candidates: $IDENTICAL)"
for name in $LEX; do
  for d in "$SRC-$TGT" "$TGT-$SRC"; do
    out="$DATA_BIN/tables/$name.$d"
    js="$WORK/table.$name.$d.json" lg="$WORK/table.$name.$d.log" tsv="$WORK/lexicons/$name.$d.table.tsv"
    # the table, its TSV export and its statistics: all three or the table is built again
    if all_exist "$out/meta.json" "$tsv" "$js"; then skip "$out"; else
      [ -f "$out/meta.json" ] && echo "   $out exists but not all of $tsv, $js: built again"
      csfair-lexicon table --lexicon "$WORK/lexicons/$name.$d.tsv" --spm-model "$DATA_BIN/spm.model" \
        --dict "$DATA_BIN/dict.txt" --out "$out" --tsv "$tsv" --quiet \
        --src-corpus "$WORK/text/${d%-*}.train.tok" --tgt-corpus "$WORK/text/${d#*-}.train.tok" "${STOP_ARGS[@]}" \
        > "$js.tmp-$$" 2> "$lg.tmp-$$" || { mv -f "$lg.tmp-$$" "$lg"; rm -f "$js.tmp-$$"; cat "$lg" >&2; exit 1; }
      mv -f "$lg.tmp-$$" "$lg"; mv -f "$js.tmp-$$" "$js"
      sed "s/^/   $name.$d: /" "$lg"
    fi
  done
done
echo "   table sizes on disk: $(du -sh "$DATA_BIN"/tables/* | awk '{printf "%s %s; ", $2, $1}')"
T_PREP=$(( $(date +%s) - T0 ))
if [ "$LOCK_MODE" = exclusive ]; then
  # prepared: later runs share the folders read-only (a sweep's trainings run side by side)
  for dir in "$DATA_BIN" "$WORK"; do echo "$CONFIG" | atomic_out "$dir/$PREP_MARK"; done
  lock_dir 8 "$DATA_BIN" shared --downgrade; lock_dir 7 "$WORK" shared --downgrade; LOCK_MODE=shared
fi
[ "$PREP_ONLY" = 1 ] && { echo; echo "== [$PAIR] --prep-only: data ready in $DATA_BIN (${T_PREP}s)"; exit 0; }

step "7/7 pretraining ($CS, $ARCH, $MAX_UPDATE updates) -> $SAVE"
if [ "$CS" != none ] && [ -f "$SAVE/.done" ] && ! cmp -s "$DATA_BIN/tables/config.txt" "$SAVE/tables.config.txt"; then
  echo "$SAVE was trained with other tables ($(cat "$SAVE/tables.config.txt" 2>/dev/null || echo "from before csfair issue 20")) than $DATA_BIN/tables ($TABLE_CONFIG): delete $SAVE or use another --run" >&2
  exit 1
fi
T1=$(date +%s)
lock_dir 6 "$SAVE" exclusive --clean
progress() { python scripts/training_progress.py "$SAVE/checkpoint_last.pt" 2>&1; }  # exit 0: target reached
st=0; [ -f "$SAVE/.done" ] && { state=$(progress) || st=$?; }
if [ -f "$SAVE/.done" ] && [ "$st" -eq 0 ]; then skip "$SAVE ($state; remove $SAVE/.done to train again)"; else
  # Done means fairseq-train exited 0 AND its checkpoint reached --max-update/--max-epoch (csfair issue 21)
  [ -f "$SAVE/.done" ] && { echo "   $SAVE/.done is stale ($state): training again"; rm -f "$SAVE/.done"; }
  if [ -f "$SAVE/checkpoint_last.pt" ]; then
    st=0; state=$(progress) || st=$?
    case $st in
      0) ATTEMPT="$SAVE/checkpoint_last.pt reached its target ($state) but the run has no .done: fairseq-train checks it" ;;
      1) ATTEMPT="resuming from $SAVE/checkpoint_last.pt ($state): the last attempt stopped before its target" ;;
      *) echo "cannot resume: $state; move it away to restart $SAVE from scratch" >&2; exit 1 ;;
    esac
  elif [ -f "$SAVE/train.log" ]; then ATTEMPT="restarting from scratch: the last attempt ($SAVE/train.log) saved no checkpoint"
  else ATTEMPT="starting"; fi
  echo "   $ATTEMPT"
  echo "# ==== $(date '+%F %T') $CMDLINE: $ATTEMPT" >> "$SAVE/train.log"  # every attempt's log is kept
  set +e  # the exit status of fairseq-train, not of the console filter, decides
  "${TRAIN[@]}" 2>&1 | tee -a "$SAVE/train.log" \
    | grep -E --line-buffered "train_inner|valid on|\| train \||done training|invalid sizes|longer than max_positions|Error|error"
  codes=("${PIPESTATUS[@]}")
  set -e
  if [ "${codes[0]}" -ne 0 ]; then
    why="exit status ${codes[0]}"; [ "${codes[0]}" -gt 128 ] && why="killed by signal $(( codes[0] - 128 ))"
    next="nothing was saved"; [ -f "$SAVE/checkpoint_last.pt" ] && next="the same command resumes from its checkpoint_last.pt"
    echo "training failed ($why): no .done written; see $SAVE/train.log; $next" >&2; exit 1
  fi
  [ "${codes[1]}" -eq 0 ] || { echo "training log $SAVE/train.log could not be written (disk full?): no .done written" >&2; exit 1; }
  st=0; state=$(progress) || st=$?
  [ "$st" -eq 0 ] || { echo "training stopped before its target ($state): no .done written; see $SAVE/train.log" >&2; exit 1; }
  echo "$state; $(date '+%F %T')" | atomic_out "$SAVE/.done"
  echo "   done: $state"
fi
T_TRAIN=$(( $(date +%s) - T1 ))
if [ "$CS" != none ]; then atomic_out "$SAVE/tables.config.txt" < "$DATA_BIN/tables/config.txt"; fi

echo
echo "== [$PAIR] MLM accuracy on held-out $TGT text ($TEST_LINES lines)"
python scripts/eval_mlm.py --checkpoint "$SAVE/checkpoint_last.pt" --data "$DATA_BIN" --lang "$TGT" --split test \
  --json "$SAVE/mlm_$TGT.test.json" 2>&1 | grep -E "^MLM accuracy|error"
echo "   wall time: preparation ${T_PREP}s, training ${T_TRAIN}s, total $(( $(date +%s) - T0 ))s"
