#!/usr/bin/env bash
# The GPU measurement of csfair issue 25, part 2, as one prepared run (~5-7 minutes on an H100):
# bench/gpu_throughput.py --goals at roberta-base shape, 128-token blocks, batch 256, 2 interleaved
# rounds of fresh processes: stock fairseq masked_lm fp16, csfair none and multiview bf16 with the fast
# encoder and csfair_fast_adam at the recipe's 2 DataLoader workers, the transformers Trainer (bf16,
# SDPA); each goal printed with its measured ratio, MFU and peak memory per row.
#
# Made for the lent GPU machine (Python 3.12, CUDA torch, no fairseq, no network): the wheels staged
# by bench/device/stage.sh are installed with `pip install --no-index --target` into a temporary
# folder used through PYTHONPATH, the versions are printed, the imports are checked (seconds, before
# any GPU time is spent on the benchmark), then the benchmark runs. Without CUDA it runs the same
# steps in the benchmark's reduced CPU mode (tiny shape, a few updates): how it was tested.
#
# Usage (repository root): bash bench/device/run.sh
#   env PYTHON   interpreter (default python3: on the GPU machine the one that holds torch)
#   env STAGED   staged folder (default bench/device/staged; fill it with bench/device/stage.sh)
#   env OUT      results folder (default: $OUT if set, as on the device machine, else bench/results/device)
#   env SITE     where the wheels are installed (default: a new temporary folder)
#   env BUDGET_S no new benchmark run after this many seconds (default 400)
#   extra arguments go to bench/gpu_throughput.py (e.g. --updates 3 in CPU mode)
# The device tool's call, with a limit that leaves a rerun's worth of the 15 minutes:
#   run(command="bash bench/device/run.sh", carry=["bench/device/staged"], timeout_s=540)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
STAGED=${STAGED:-$ROOT/bench/device/staged}
OUT=${OUT:-$ROOT/bench/results/device}
BUDGET_S=${BUDGET_S:-400}
mkdir -p "$OUT"
die() { echo "[device] error: $*" >&2; exit 1; }
[ -d "$STAGED/wheels" ] && [ -d "$STAGED/ext" ] && [ -f "$STAGED/data/en-fr/fr/train.bin" ] \
  || die "$STAGED has no wheels/ or data/: run bash bench/device/stage.sh on a connected machine, and carry bench/device/staged"
(cd "$STAGED" && sha256sum --quiet -c MANIFEST.txt) || die "$STAGED does not match its MANIFEST.txt (incomplete copy?)"

t0=$(date +%s)
SITE=${SITE:-$(mktemp -d /tmp/csfair-site.XXXXXX)}
echo "[device] installing $(ls "$STAGED"/wheels/*.whl | wc -l) staged wheels into $SITE (no index)"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$STAGED"/wheels/*.whl \
  2>&1 | grep -v -E "^WARNING: Location .* is ignored|^WARNING: Target directory" || true
# the staged packages first, then this checkout (csfair, user_dir)
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# fairseq's Cython extensions compiled against numpy 2 (bench/device/build_ext.py) over the wheel's (numpy 1.x):
# the image's numpy 2 stays, and so do its scipy and scikit-learn, which fairseq imports
cp "$STAGED"/ext/*.so "$SITE/fairseq/data/"

echo "[device] versions"
"$PY" - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import importlib, importlib.metadata as m, platform, subprocess, sys
print("python", platform.python_version(), sys.executable)
for d in ("torch", "numpy", "fairseq-fixed", "hydra-core", "omegaconf", "transformers", "accelerate", "numba",
          "sentencepiece", "triton"):
    try:
        print(d, m.version(d))
    except m.PackageNotFoundError:
        print(d, "not installed")
import torch
print("torch.version.cuda", torch.version.cuda, "| cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.1f} GiB", f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs")
    try:
        print(subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip())
    except (OSError, subprocess.TimeoutExpired) as e:
        print("nvidia-smi:", e)
PY

echo "[device] import check"
"$PY" - <<'PY' 2>&1 | tee "$OUT/imports.txt"
import numpy
import fairseq.data.data_utils_fast, fairseq.data.token_block_utils_fast  # noqa: E401,F401  (Cython, built for numpy 2)
print("numpy", numpy.__version__, "| fairseq's extensions load")
import user_dir  # noqa: F401  (registers csfair's task, models, optimizer)
from fairseq.models import ARCH_MODEL_REGISTRY
from fairseq.optim import OPTIMIZER_REGISTRY
assert "csfair_roberta_fast_base" in ARCH_MODEL_REGISTRY and "csfair_fast_adam" in OPTIMIZER_REGISTRY
from csfair.pretraining import word_scan
print("word scan compiled with numba:", word_scan.numba is not None,
      "" if word_scan.numba is not None else "(NumPy fallback: multiview's data path is ~30% slower per worker)")
from transformers import RobertaForMaskedLM, Trainer  # noqa: F401
print("imports ok")
PY

echo "[device] benchmark (setup took $(( $(date +%s) - t0 )) s)"
set -o pipefail
"$PY" bench/gpu_throughput.py --data "$STAGED/data/en-fr" --goals --repeats 2 --budget-s "$BUDGET_S" \
  --run-timeout 180 --out "$OUT/gpu_throughput.json" "$@" 2>&1 | tee "$OUT/gpu_throughput.log"
echo "[device] done in $(( $(date +%s) - t0 )) s; results in $OUT"
