#!/usr/bin/env bash
# Fill bench/device/staged/ (git-ignored) with what bench/device/run.sh needs on a GPU machine that has
# its own Python 3.12, numpy 2 and CUDA torch but no fairseq and no network: the cp312 wheels of
# bench/device/wheels.txt, fairseq's two Cython extensions compiled against numpy 2 (bench/device/build_ext.py,
# in a temporary Python 3.12 venv with numpy 2.0.2, the oldest numpy 2: what it builds loads on any 2.x) and a
# trimmed copy of the en-fr data (French training blocks, the dictionary, the IBM-1 fr->en substitution
# table). Run on a connected machine with Python 3.12 and a C++ compiler, from the repository root.
#
# Usage: bash bench/device/stage.sh [--data data-bin/en-fr] [--out bench/device/staged]
#   --data  a data-bin made by `bash scripts/recipes/en-fr.sh` (default data-bin/en-fr)
#   --out   the folder to fill (default bench/device/staged; emptied first)
#   env PYTHON312  the Python 3.12 to build the extensions with (default python3.12)
#   env PYTHON     the Python that runs pip here; it fetches fairseq-fixed's source package with
#                  --no-build-isolation, so it needs torch (default: .venv/bin/python)
# The device tool sends the working tree plus the paths named in `carry`, 64 MiB in all: name
# bench/device/staged in carry. The script fails if the folder exceeds 56 MiB (room for the tree).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=$ROOT/data-bin/en-fr OUT=$ROOT/bench/device/staged
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "[stage] error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() { echo "[stage] error: $*" >&2; exit 1; }
for f in dict.txt fr/dict.txt fr/train.bin fr/train.idx tables/ibm1.fr-en/meta.json; do
  [ -f "$DATA/$f" ] || die "$DATA/$f is missing: build the data with bash scripts/recipes/en-fr.sh (or pass --data)"
done
PY=${PYTHON:-$ROOT/.venv/bin/python}
PY312=${PYTHON312:-python3.12}
"$PY312" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null || die "$PY312 is not Python 3.12 (set PYTHON312)"

rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp/wheels" "$OUT.tmp/ext" "$OUT.tmp/data/en-fr/fr" "$OUT.tmp/data/en-fr/tables"
# cp312 wheels for x86-64 Linux (the machine's glibc is recent; every manylinux tag down to 2014 is taken)
PLAT=()
for n in 28 27 24 17; do PLAT+=(--platform "manylinux_2_${n}_x86_64"); done
PLAT+=(--platform manylinux2014_x86_64)
grep -vE '^\s*(#|$)' "$ROOT/bench/device/wheels.txt" | while read -r spec; do
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --abi cp312 --abi abi3 --abi none "${PLAT[@]}" -d "$OUT.tmp/wheels" "$spec" 2>/dev/null; then
    # a pure-Python source package (antlr4-python3-runtime): built into a py3-none-any wheel
    "$PY" -m pip wheel -q --no-deps -w "$OUT.tmp/wheels" "$spec" 2>&1 | grep -v "is ignored" || true
    ls "$OUT.tmp/wheels" | grep -qi "^$(echo "${spec%%==*}" | tr - _)-.*-py3-none-any.whl$" \
      || die "no cp312 wheel of $spec and no pure-Python build of it"
  fi
done
# fairseq's Cython extensions against numpy 2 (the wheel's need numpy 1.x)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$WORK" fairseq-fixed==0.12.3.1 2>&1 \
  | grep -v "is ignored" || true
[ -f "$WORK/fairseq_fixed-0.12.3.1.tar.gz" ] || die "could not download fairseq-fixed's source package"
"$PY312" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check numpy==2.0.2 cython==3.0.11 setuptools 2>&1 \
  | grep -v "is ignored" || true
"$WORK/venv/bin/python" "$ROOT/bench/device/build_ext.py" "$WORK/fairseq_fixed-0.12.3.1.tar.gz" "$OUT.tmp/ext" >/dev/null
[ "$(ls "$OUT.tmp/ext"/*.cpython-312-*.so | wc -l)" = 2 ] || die "the two extensions were not built"
# the data the benchmark reads: <data>/fr (stock masked_lm and csfair --langs fr) and the fr->en table
cp "$DATA/dict.txt" "$OUT.tmp/data/en-fr/"
cp "$DATA"/fr/dict.txt "$DATA"/fr/train.bin "$DATA"/fr/train.idx "$OUT.tmp/data/en-fr/fr/"
cp -r "$DATA/tables/ibm1.fr-en" "$OUT.tmp/data/en-fr/tables/"
[ ! -f "$DATA/spm.model" ] || cp "$DATA/spm.model" "$OUT.tmp/data/en-fr/"
(cd "$OUT.tmp" && find . -type f ! -name MANIFEST.txt | sort | xargs sha256sum > MANIFEST.txt)
size=$(du -sb "$OUT.tmp" | cut -f1)
[ "$size" -le $((56 * 1024 * 1024)) ] || die "$OUT.tmp is $((size / 1024 / 1024)) MiB, over 56 MiB"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "[stage] ok: $(ls "$OUT/wheels" | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT (carry it: bench/device/staged)"
