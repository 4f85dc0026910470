#!/usr/bin/env bash
# Build (or check) the project's virtual environment: .venv on Python 3.11 or 3.12, with a CPU or a
# CUDA build of torch.
#
# Usage: bash scripts/setup.sh [--plan]
#   --plan            print the chosen plan (torch build and spec, constraints, fairseq-fixed install
#                     mode, Python) as key=value lines and exit without installing anything
#                     (same as CSFAIR_SETUP_DRY_RUN=1)
#   env CSFAIR_TORCH  which torch (default auto):
#                       cpu    torch==2.13.0 (requirements/torch-cpu.txt), the CPU wheel; no nvidia-*
#                              package may appear
#                       cuda   torch==2.14.1 (requirements/torch-cuda.txt), the CUDA build, with its
#                              nvidia-* packages
#                       system the CUDA (or any) torch already there (a cluster module, a container,
#                              an existing CSFAIR_VENV with torch): a new venv is made from PYTHON with
#                              --system-site-packages, torch is not installed and every later install
#                              is pinned to its version
#                       auto   cuda when `nvidia-smi -L` lists a GPU, else cpu
#   env CSFAIR_TORCH_VERSION  another torch release than the pin (cpu/cuda), e.g. 2.11.0, without
#                     editing files; which driver each needs: docs/gpu.md. Not with system.
#   env CSFAIR_TORCH_INDEX  index URL for the torch install alone (cpu/cuda), e.g. a PyTorch wheel
#                     index of a CUDA version the driver supports; default: pip's configuration
#   env CSFAIR_WHEELHOUSE  a folder made by scripts/wheelhouse.sh (on a connected machine): every
#                     package comes from it, with no index (pip --no-index --find-links), for compute
#                     nodes without internet. Its csfair-wheelhouse.txt must name this Python version.
#   env CSFAIR_VENV   where to build the environment (default: <repo>/.venv)
#   env PYTHON        interpreter to build it from (default: the first of python3.11, python3.12,
#                     python3 that runs; with CSFAIR_TORCH=system the existing venv's, else the first
#                     of python3, python3.12, python3.11 that imports torch)
#
# Idempotent: when the environment already matches the pinned requirements and the chosen build (a
# stamp file keyed on their checksum) and imports, it does nothing. The one-time build takes ~5
# minutes on Python 3.11, most of it compiling fairseq-fixed's Cython extensions; fasttext is
# compiled from source too (no wheel on PyPI): g++ and the Python headers (python3-dev) must be there.
#
# Why the order matters:
#   * torch goes first and every later install is constrained to it (requirements/constraints.txt
#     plus the chosen torch pin, together in <venv>/csfair-constraints.txt): torch 2.13.0 resolves
#     to the CPU wheel on disk, any other torch pulls several GB of CUDA packages; with
#     CSFAIR_TORCH=system the pin is the version found, so nothing can replace the cluster's torch.
#   * fairseq 0.12.2 does not import on Python 3.11; fairseq-fixed==0.12.3.1 is the drop-in fork.
#     Python 3.12 has a prebuilt wheel of it; on 3.11 it is built with --no-build-isolation (against
#     the numpy/cython/torch installed here). Both with --no-deps (its torchaudio requirement has no
#     CPU build and is not needed for text); its real runtime dependencies are then installed by
#     hand (requirements/runtime.txt). CUDA_HOME is unset for the build: with it fairseq's setup.py
#     also compiles CUDA kernels (libnat_cuda, ngram blocking) that csfair never uses and that need
#     an nvcc matching torch's CUDA.
#   * seqeval builds only with setuptools-scm<9 and --no-build-isolation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PLAN=${CSFAIR_SETUP_DRY_RUN:-0}
for arg in "$@"; do
  case "$arg" in
    --plan) PLAN=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "[setup] error: unknown argument '$arg' (usage: bash scripts/setup.sh [--plan])" >&2; exit 2 ;;
  esac
done
die() { echo "[setup] error: $*" >&2; exit 1; }

VENV=${CSFAIR_VENV:-$ROOT/.venv}
REQ=$ROOT/requirements

# --- which torch build --------------------------------------------------------------------------
CHOICE=${CSFAIR_TORCH:-auto}
GPUS=0
if command -v nvidia-smi >/dev/null 2>&1; then
  # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)" per GPU; without a working driver it fails
  GPUS=$({ nvidia-smi -L 2>/dev/null || true; } | grep -c '^GPU [0-9]' || true)
fi
case "$CHOICE" in
  auto)
    if [ "$GPUS" -gt 0 ]; then BUILD=cuda; WHY="auto: nvidia-smi -L lists $GPUS GPU(s)"
    else BUILD=cpu; WHY="auto: no GPU listed by nvidia-smi -L"; fi ;;
  cpu|cuda|system) BUILD=$CHOICE; WHY="CSFAIR_TORCH=$CHOICE" ;;
  *) die "CSFAIR_TORCH must be cpu, cuda, system or auto (the default); got '$CHOICE'" ;;
esac
TORCH_VERSION=${CSFAIR_TORCH_VERSION:-}
if [ -n "$TORCH_VERSION" ]; then
  [[ "$TORCH_VERSION" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?([.+a-z0-9]*)$ ]] \
    || die "CSFAIR_TORCH_VERSION must be a torch release such as 2.11.0; got '$TORCH_VERSION'"
  [ "$BUILD" != system ] || die "CSFAIR_TORCH_VERSION does not apply to CSFAIR_TORCH=system (the torch found is used as is)"
fi
WHEELHOUSE=${CSFAIR_WHEELHOUSE:-}
if [ -n "$WHEELHOUSE" ]; then
  [ -d "$WHEELHOUSE" ] || die "CSFAIR_WHEELHOUSE=$WHEELHOUSE is not a folder (make it with scripts/wheelhouse.sh)"
  WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
  [ -f "$WHEELHOUSE/csfair-wheelhouse.txt" ] \
    || die "$WHEELHOUSE has no csfair-wheelhouse.txt: not made by scripts/wheelhouse.sh (or not finished)"
  [ -z "${CSFAIR_TORCH_INDEX:-}" ] || die "CSFAIR_TORCH_INDEX and CSFAIR_WHEELHOUSE exclude each other (the wheelhouse holds torch)"
fi

# --- which interpreter --------------------------------------------------------------------------
if [ -z "${PYTHON:-}" ]; then
  if [ "$BUILD" = system ] && [ -x "$VENV/bin/python" ]; then
    PYTHON=$VENV/bin/python   # an existing environment (e.g. made earlier, or the user's own with torch)
  elif [ "$BUILD" = system ]; then
    for c in python3 python3.12 python3.11; do
      if "$c" -c 'import torch' >/dev/null 2>&1; then PYTHON=$c; break; fi
    done
    [ -n "${PYTHON:-}" ] || die "CSFAIR_TORCH=system: none of python3, python3.12, python3.11 imports torch; load the module (or enter the container) that provides it, or set PYTHON"
  else
    # a pyenv shim exists even where its version is not selected: run it to be sure
    for c in python3.11 python3.12 python3; do
      if "$c" -c 'import sys' >/dev/null 2>&1; then PYTHON=$c; break; fi
    done
    PYTHON=${PYTHON:-python3}
  fi
fi
ver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
  || die "cannot run the interpreter '$PYTHON' (set PYTHON)"
case "$ver" in
  3.11) FAIRSEQ_MODE=build ;;   # no wheel for 3.11: compiled here
  3.12) FAIRSEQ_MODE=wheel ;;   # prebuilt cp312 wheel
  *) die "csfair needs Python 3.11 or 3.12 (fairseq-fixed 0.12.3.1 is built for them); $PYTHON is $ver" ;;
esac
if [ -n "$WHEELHOUSE" ]; then
  FAIRSEQ_MODE=wheelhouse   # the wheel scripts/wheelhouse.sh downloaded (3.12) or built (3.11)
  wh_py=$(sed -n 's/^python_version=//p' "$WHEELHOUSE/csfair-wheelhouse.txt")
  [ "$wh_py" = "$ver" ] || die "$WHEELHOUSE was made for Python $wh_py, $PYTHON is $ver: make one with scripts/wheelhouse.sh --python-version $ver"
  wh_torch=$(sed -n 's/^torch=//p' "$WHEELHOUSE/csfair-wheelhouse.txt")
fi

# --- the torch pin and the constraints every install uses ---------------------------------------
SYSTEM_SITE=no
case "$BUILD" in
  cpu|cuda)
    TORCH_PIN_FILE=$REQ/torch-$BUILD.txt
    TORCH_SPEC=$(grep -E '^torch==' "$TORCH_PIN_FILE") || die "$TORCH_PIN_FILE: no 'torch==VERSION' line"
    if [ -n "$TORCH_VERSION" ]; then
      TORCH_SPEC="torch==$TORCH_VERSION"
      TORCH_PIN_FILE="(CSFAIR_TORCH_VERSION=$TORCH_VERSION, instead of $TORCH_PIN_FILE)"
    fi
    if [ -n "$WHEELHOUSE" ] && [ "${wh_torch:-}" != "$TORCH_SPEC" ]; then
      die "$WHEELHOUSE holds ${wh_torch:-no torch}, this build wants $TORCH_SPEC: set CSFAIR_TORCH/CSFAIR_TORCH_VERSION as when it was made"
    fi
    TORCH_INSTALL=yes ;;
  system)
    # the torch of the environment to be completed: the existing venv's, else PYTHON's
    if [ -x "$VENV/bin/python" ]; then PROBE=$VENV/bin/python; else PROBE=$PYTHON; fi
    if [ ! -x "$VENV/bin/python" ]; then
      # a venv made from inside another venv inherits the base interpreter's packages, not that venv's
      inner=$("$PYTHON" -c 'import sys; print(sys.prefix if sys.prefix != sys.base_prefix else "")')
      [ -z "$inner" ] || die "CSFAIR_TORCH=system: $PYTHON runs inside the virtual environment $inner, whose torch a new venv cannot inherit: set CSFAIR_VENV=$inner to install csfair into that environment, or PYTHON to the interpreter of the module or container"
    fi
    probe=$("$PROBE" -c 'import importlib.metadata as m, torch; print(m.version("torch")); print(torch.version.cuda or "none")' 2>/dev/null) \
      || die "CSFAIR_TORCH=system: $PROBE cannot import torch (load the module or container that provides it, or set PYTHON)"
    SYSTEM_TORCH=$(sed -n 1p <<<"$probe")
    SYSTEM_CUDA=$(sed -n 2p <<<"$probe")
    TORCH_PIN_FILE="(generated: the torch found in $PROBE)"
    TORCH_SPEC="torch==$SYSTEM_TORCH"
    TORCH_INSTALL=no
    if [ -n "$WHEELHOUSE" ] && [ "${wh_torch:-}" != "system (torch==${SYSTEM_TORCH%%+*})" ]; then
      echo "[setup] warning: $WHEELHOUSE was resolved for torch '${wh_torch:-?}', the system torch is $SYSTEM_TORCH" >&2
    fi
    if [ -x "$VENV/bin/python" ]; then SYSTEM_SITE="no (existing venv, its torch)"; else SYSTEM_SITE=yes; fi ;;
esac
# the stamp covers the requirements, this script and the chosen build (a venv built for one build
# is not up to date for another)
KEY=$({ cat "$REQ"/*.txt "$ROOT/setup.py" "$ROOT/scripts/setup.sh"; echo "build=$BUILD $TORCH_SPEC"; } | sha256sum | cut -c1-16)
STAMP=$VENV/.csfair-setup-$KEY
# the IBM-1 aligner: systran-align (fast_align) where it exists (Python <= 3.11), sil-thot everywhere
IMPORTS="import torch, fairseq, csfair, sentencepiece, sacremoses, thot, seqeval"
[ "$ver" != 3.11 ] || IMPORTS="$IMPORTS, systran_align"
if [ -n "$WHEELHOUSE" ]; then
  PIP_SOURCE=(--no-index --find-links "$WHEELHOUSE"); SOURCE="$WHEELHOUSE (no index)"
else
  PIP_SOURCE=(); SOURCE="pip configuration"
fi

if [ "$PLAN" = 1 ]; then
  if [ -f "$STAMP" ]; then stamp=up-to-date; else stamp=missing; fi
  case "$FAIRSEQ_MODE" in
    build) fs="build (pip install --no-build-isolation --no-deps fairseq-fixed==0.12.3.1, CUDA_HOME unset)" ;;
    wheel) fs="wheel (pip install --only-binary fairseq-fixed --no-deps fairseq-fixed==0.12.3.1)" ;;
    wheelhouse) fs="wheelhouse (pip install --no-index --find-links $WHEELHOUSE --only-binary fairseq-fixed --no-deps fairseq-fixed==0.12.3.1)" ;;
  esac
  cat <<EOF
[setup] plan (nothing installed)
torch_build=$BUILD
reason=$WHY
gpus_listed=$GPUS
python=$PYTHON
python_version=$ver
torch_spec=$TORCH_SPEC
torch_install=$TORCH_INSTALL
torch_index=${CSFAIR_TORCH_INDEX:-$SOURCE}
packages_from=$SOURCE
torch_constraints=$TORCH_PIN_FILE
constraints=$REQ/constraints.txt + $TORCH_SPEC -> $VENV/csfair-constraints.txt
venv=$VENV
venv_system_site_packages=$SYSTEM_SITE
fairseq_fixed=$fs
stamp=$stamp
stamp_file=$STAMP
EOF
  exit 0
fi

if [ -f "$STAMP" ] && "$VENV/bin/python" -c "$IMPORTS" >/dev/null 2>&1; then
  echo "[setup] environment is up to date: $VENV"
  exit 0
fi
echo "[setup] torch build: $BUILD ($WHY), Python $ver ($PYTHON)"

if [ ! -x "$VENV/bin/python" ]; then
  if [ "$SYSTEM_SITE" = yes ]; then
    echo "[setup] creating $VENV with $PYTHON (--system-site-packages: its torch is used)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    echo "[setup] creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
  fi
fi
venv_ver=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$venv_ver" = "$ver" ] || die "$VENV is Python $venv_ver, $PYTHON is $ver: remove it or set CSFAIR_VENV"

CONSTRAINTS=$VENV/csfair-constraints.txt
{
  echo "# written by scripts/setup.sh (build $BUILD): requirements/constraints.txt plus the torch pin;"
  echo "# use it for any later install into this venv: pip install -c $CONSTRAINTS PKG==VERSION"
  grep -vE '^\s*(#|$)' "$REQ/constraints.txt"
  echo "$TORCH_SPEC"
} > "$CONSTRAINTS.tmp" && mv "$CONSTRAINTS.tmp" "$CONSTRAINTS"

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# A few configured extra indexes may be absent on some machines; their warnings are noise.
# fairseq-fixed declares torchaudio, deliberately not installed (no CPU build; text only).
quiet() { grep -v -E "^WARNING: Location .* is ignored|dependency resolver does not currently take|requires torchaudio" || true; }

set -o pipefail
if [ "$TORCH_INSTALL" = yes ]; then
  echo "[setup] $TORCH_SPEC ($BUILD build) and build requirements"
  INDEX=()
  [ -z "${CSFAIR_TORCH_INDEX:-}" ] || INDEX=(--index-url "$CSFAIR_TORCH_INDEX")
  "${PIP[@]}" install -q "${PIP_SOURCE[@]}" "${INDEX[@]}" -c "$CONSTRAINTS" "$TORCH_SPEC" 2>&1 | quiet
else
  echo "[setup] using $PYTHON's torch $SYSTEM_TORCH (CUDA $SYSTEM_CUDA); build requirements"
fi
"${PIP[@]}" install -q "${PIP_SOURCE[@]}" -c "$CONSTRAINTS" -r "$REQ/build.txt" 2>&1 | quiet

if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('fairseq-fixed') == '0.12.3.1'" >/dev/null 2>&1; then
  if [ "$FAIRSEQ_MODE" = build ]; then
    echo "[setup] building fairseq-fixed==0.12.3.1 (one time, ~3-5 minutes)"
    env -u CUDA_HOME "${PIP[@]}" install -q --no-build-isolation --no-deps fairseq-fixed==0.12.3.1 2>&1 | quiet
  elif [ "$FAIRSEQ_MODE" = wheelhouse ]; then
    echo "[setup] fairseq-fixed==0.12.3.1 (wheel from $WHEELHOUSE)"
    "${PIP[@]}" install -q "${PIP_SOURCE[@]}" --only-binary fairseq-fixed --no-deps fairseq-fixed==0.12.3.1 2>&1 | quiet
  else
    echo "[setup] fairseq-fixed==0.12.3.1 (prebuilt wheel for Python $ver)"
    "${PIP[@]}" install -q --only-binary fairseq-fixed --no-deps fairseq-fixed==0.12.3.1 2>&1 | quiet
  fi
fi

echo "[setup] runtime requirements"
"${PIP[@]}" install -q "${PIP_SOURCE[@]}" -c "$CONSTRAINTS" -r "$REQ/runtime.txt" 2>&1 | quiet
"${PIP[@]}" install -q "${PIP_SOURCE[@]}" -c "$CONSTRAINTS" "setuptools-scm<9" 2>&1 | quiet
"${PIP[@]}" install -q "${PIP_SOURCE[@]}" -c "$CONSTRAINTS" --no-build-isolation seqeval==1.2.2 2>&1 | quiet

echo "[setup] csfair (editable)"
# PEP 660 in this venv (--use-pep517 --no-build-isolation): setup.py develop, pip's legacy path, makes
# recent setuptools run a build-isolated pip of its own, which needs an index (fails offline)
"${PIP[@]}" install -q "${PIP_SOURCE[@]}" -c "$CONSTRAINTS" --use-pep517 --no-build-isolation --no-deps -e "$ROOT" 2>&1 | quiet

# Fail loudly if the chosen torch is not the one that imports (a second torch, CUDA wheels in a CPU
# venv, a cluster torch shadowed by the venv's own).
CSFAIR_BUILD=$BUILD CSFAIR_TORCH_SPEC=$TORCH_SPEC CSFAIR_GPUS=$GPUS CSFAIR_VENV_DIR=$VENV "$VENV/bin/python" - <<'PY'
import importlib.metadata as m
import os

import torch

build, gpus, venv = os.environ["CSFAIR_BUILD"], int(os.environ["CSFAIR_GPUS"]), os.environ["CSFAIR_VENV_DIR"]
want = os.environ["CSFAIR_TORCH_SPEC"].split("==", 1)[1]
have = m.version("torch")
hint = f" (a venv built for another torch build? remove {venv} or set CSFAIR_VENV)"
if build == "cpu":
    assert have.split("+")[0] == want, f"unexpected torch {have}, wanted {want}" + hint
    cuda = sorted(d.metadata["Name"] for d in m.distributions() if d.metadata["Name"].lower().startswith("nvidia-"))
    assert not cuda, f"CUDA packages were pulled in: {cuda}" + hint
    assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build" + hint
elif build == "cuda":
    assert have.split("+")[0] == want, f"unexpected torch {have}, wanted {want}" + hint
    assert torch.version.cuda, f"torch {torch.__version__} is not a CUDA build" + hint
    if gpus and not torch.cuda.is_available():
        raise SystemExit(f"[setup] error: nvidia-smi lists {gpus} GPU(s) but torch {torch.__version__} (CUDA "
                         f"{torch.version.cuda}) cannot use them: the driver is probably older than CUDA "
                         f"{torch.version.cuda} needs. Set CSFAIR_TORCH_INDEX to a wheel index of an older "
                         "CUDA, or use a cluster torch with CSFAIR_TORCH=system")
    if not gpus:
        print(f"[setup] warning: no GPU listed by nvidia-smi -L here; the CUDA build was installed but not run on a GPU")
else:  # system
    assert have == want, f"the venv's torch {have} is not the system torch {want}" + hint
    where = os.path.realpath(torch.__file__)
    print(f"[setup] system torch {torch.__version__} from {os.path.dirname(where)}, CUDA {torch.version.cuda}, "
          f"GPU available: {torch.cuda.is_available()}")
import fairseq, csfair  # noqa: E401,F401
from csfair.lexicons.ibm1 import resolve_aligner
# the Cython extensions (compiled here, or prebuilt in the 3.12 wheel) load against this numpy
import fairseq.data.data_utils_fast, fairseq.data.token_block_utils_fast  # noqa: E401,F401
cuda = f", CUDA {torch.version.cuda}" if torch.version.cuda else ""
print(f"[setup] ok ({build}): torch {torch.__version__}{cuda}, fairseq {fairseq.__version__}, csfair {csfair.__version__}, "
      f"IBM-1 aligner {resolve_aligner()}")
PY
rm -f "$VENV"/.csfair-setup-*
touch "$STAMP"
