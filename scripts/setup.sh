#!/usr/bin/env bash
# Build (or check) the project's virtual environment: .venv on Python 3.11.
#
# Usage: bash scripts/setup.sh
#   env CSFAIR_VENV   where to build the environment (default: <repo>/.venv)
#   env PYTHON        interpreter to build it from (default: python3.11, else python3)
#
# Idempotent: when the environment already matches the pinned requirements (a stamp file
# keyed on their checksum) and imports, it does nothing. The one-time build takes ~5 minutes,
# most of it compiling fairseq-fixed's Cython extensions.
#
# Why the order matters:
#   * torch==2.13.0 goes first and every later install is constrained to it: that version
#     resolves to the CPU wheel on disk; any other torch pulls several GB of CUDA packages.
#   * fairseq 0.12.2 does not import on Python 3.11; fairseq-fixed==0.12.3.1 is the drop-in
#     fork. It is built with --no-build-isolation (against the numpy/cython/torch installed
#     here) and --no-deps (its torchaudio requirement has no CPU build and is not needed for
#     text); its real runtime dependencies are then installed by hand (requirements/runtime.txt).
#   * seqeval builds only with setuptools-scm<9 and --no-build-isolation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CSFAIR_VENV:-$ROOT/.venv}
if [ -z "${PYTHON:-}" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
REQ=$ROOT/requirements
CONSTRAINTS=$REQ/constraints.txt
KEY=$(cat "$REQ"/*.txt "$ROOT/setup.py" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16)
STAMP=$VENV/.csfair-setup-$KEY

if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import fairseq, csfair, sentencepiece, sacremoses, systran_align, seqeval" >/dev/null 2>&1; then
  echo "[setup] environment is up to date: $VENV"
  exit 0
fi

ver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$ver" != "3.11" ]; then
  echo "[setup] error: csfair needs Python 3.11 (fairseq-fixed 0.12.3.1 is built for it); $PYTHON is $ver" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# A few configured extra indexes may be absent on some machines; their warnings are noise.
# fairseq-fixed declares torchaudio, deliberately not installed (no CPU build; text only).
quiet() { grep -v -E "^WARNING: Location .* is ignored|dependency resolver does not currently take|requires torchaudio" || true; }

set -o pipefail
echo "[setup] torch (CPU build) and build requirements"
"${PIP[@]}" install -q -c "$CONSTRAINTS" torch==2.13.0 2>&1 | quiet
"${PIP[@]}" install -q -c "$CONSTRAINTS" -r "$REQ/build.txt" 2>&1 | quiet

if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('fairseq-fixed') == '0.12.3.1'" >/dev/null 2>&1; then
  echo "[setup] building fairseq-fixed==0.12.3.1 (one time, ~3-5 minutes)"
  "${PIP[@]}" install -q --no-build-isolation --no-deps fairseq-fixed==0.12.3.1 2>&1 | quiet
fi

echo "[setup] runtime requirements"
"${PIP[@]}" install -q -c "$CONSTRAINTS" -r "$REQ/runtime.txt" 2>&1 | quiet
"${PIP[@]}" install -q -c "$CONSTRAINTS" "setuptools-scm<9" 2>&1 | quiet
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-build-isolation seqeval==1.2.2 2>&1 | quiet

echo "[setup] csfair (editable)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-build-isolation --no-deps -e "$ROOT" 2>&1 | quiet

# Fail loudly if anything slipped in a second torch or CUDA wheels.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
import torch
assert torch.__version__.startswith("2.13.0"), f"unexpected torch {torch.__version__}"
cuda = sorted(d.metadata["Name"] for d in m.distributions() if d.metadata["Name"].lower().startswith("nvidia-"))
assert not cuda, f"CUDA packages were pulled in: {cuda}"
import fairseq, csfair  # noqa: F401
print(f"[setup] ok: torch {torch.__version__}, fairseq {fairseq.__version__}, csfair {csfair.__version__}")
PY
rm -f "$VENV"/.csfair-setup-*
touch "$STAMP"
