#!/usr/bin/env bash
# Kill-and-resume comparison of scripts/run_mlm_cs.py (csfair issue 23; docs/transformers.md).
#
# Usage: bash bench/hf_kill_resume.sh MODEL_DIR TABLE_DIR TEXT WORK_DIR
#
# The first 640 lines of TEXT (Moses-tokenised, one sentence per line), line by line, 2 epochs of 20
# steps (batch 32), code-switching on (TABLE_DIR, multiview), 2 DataLoader workers, seed 1:
#   1. an uninterrupted run (WORK_DIR/uninterrupted);
#   2. the same run with a checkpoint every 10 steps (WORK_DIR/killed), SIGKILLed as soon as
#      checkpoint-30 is complete (mid epoch 2), then the same command with --resume_from_checkpoint true;
#   3. prints the per-step losses of both, their largest difference, whether the rates are equal and
#      whether every (epoch, example) was drawn identically (draws.tsv).
set -euo pipefail
[ $# -eq 4 ] || { sed -n '2,13p' "$0"; exit 2; }
MODEL=$1 TABLE=$2 TEXT=$3 W=$4
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
rm -rf "$W"; mkdir -p "$W"
head -n 640 "$TEXT" > "$W/train.tok"
ARGS=(--model_name_or_path "$MODEL" --train_file "$W/train.tok" --line_by_line --cs_table "$TABLE"
      --cs_mode multiview --do_train --num_train_epochs 2 --per_device_train_batch_size 32 --learning_rate 1e-3
      --logging_steps 1 --report_to none --disable_tqdm true --seed 1 --dataloader_num_workers 2 --record_draws
      --cache_dir "$W/cache")
python scripts/run_mlm_cs.py "${ARGS[@]}" --save_strategy no --output_dir "$W/uninterrupted" > "$W/uninterrupted.log" 2>&1
python scripts/run_mlm_cs.py "${ARGS[@]}" --save_steps 10 --output_dir "$W/killed" > "$W/killed.log" 2>&1 &
PID=$!
until [ -f "$W/killed/checkpoint-30/trainer_state.json" ]; do
  kill -0 $PID 2>/dev/null || { echo "the run ended before checkpoint-30: see $W/killed.log" >&2; exit 1; }
  sleep 0.1
done
kill -KILL $PID
status=0; wait $PID || status=$?
echo "killed run: exit status $status (137: SIGKILL); left: $(ls "$W/killed" | tr '\n' ' ')"
python scripts/run_mlm_cs.py "${ARGS[@]}" --save_steps 10 --output_dir "$W/killed" --resume_from_checkpoint true \
  > "$W/resumed.log" 2>&1
python - "$W" <<'PY'
import json, sys
W = sys.argv[1]
u = json.load(open(f"{W}/uninterrupted/csfair_mlm.json")); r = json.load(open(f"{W}/killed/csfair_mlm.json"))
ul, rl = {h["step"]: h["loss"] for h in u["loss_log"]}, {h["step"]: h["loss"] for h in r["loss_log"]}
print("resumed from", r["resumed_from"])
steps = sorted(set(ul) & set(rl))
print("steps compared:", len(steps), "of", len(ul), "| max |loss difference|:", max(abs(ul[s] - rl[s]) for s in steps))
for s in (29, 30, 31, 32, 35, 40):
    print(f"  step {s}: uninterrupted {ul[s]:.6f}  killed+resumed {rl[s]:.6f}")
print("cs_rates equal:", u["cs_rates"] == r["cs_rates"], "| cs_word", round(u["cs_rates"]["cs_word"], 4), round(r["cs_rates"]["cs_word"], 4))


def draws(path):
    rows = [line.split("\t") for line in open(path).read().splitlines()[1:]]
    d = {}
    for step, epoch, index, inp, lab in rows:
        d.setdefault((epoch, index), set()).add((inp, lab))
    return d, len(rows)


a, na = draws(f"{W}/uninterrupted/draws.tsv"); b, nb = draws(f"{W}/killed/draws.tsv")
print(f"draws: uninterrupted {na} rows, killed+resumed {nb} rows (batches trained after checkpoint-30 and before "
      f"the kill appear twice); every (epoch, index) drawn identically: {a == b}; one draw per key: "
      f"{all(len(v) == 1 for v in b.values())}")
PY
