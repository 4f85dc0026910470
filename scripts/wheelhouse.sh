#!/usr/bin/env bash
# Gather every package a csfair environment needs into one folder (a wheelhouse), on a machine with
# internet, for compute nodes without it: `CSFAIR_WHEELHOUSE=DIR bash scripts/setup.sh` there
# installs from DIR alone (pip --no-index). Wheels only: what exists only as a source package is
# built here into a wheel (pure-Python ones for any target; compiled ones, e.g. fairseq-fixed on
# Python 3.11 and fasttext, need this machine to run the target's Python on the target's platform).
#
# Usage: bash scripts/wheelhouse.sh DIR [--python-version 3.11|3.12] [--platform manylinux_2_28_x86_64]
#   DIR               the folder to fill (created; files already there are reused)
#   --python-version  the compute nodes' Python (default: PYTHON's). pip resolves the dependencies'
#                     own markers with the Python it runs on, so run this with that Python (PYTHON)
#                     where you can; the script warns when it cannot.
#   --platform        the newest manylinux tag the nodes' glibc allows (default manylinux_2_28_x86_64,
#                     glibc 2.28: RHEL/Rocky 8, Debian 10, Ubuntu 18.10 and newer); every older tag is
#                     accepted too
#   env CSFAIR_TORCH  cpu | cuda (the torch of requirements/torch-*.txt, or CSFAIR_TORCH_VERSION) |
#                     system (no torch in DIR: the nodes' own, a cluster module's or container's, is
#                     used; CSFAIR_TORCH_VERSION names its version, which every package is resolved
#                     against). Default cuda.
#   env CSFAIR_TORCH_VERSION, CSFAIR_TORCH_INDEX  as for scripts/setup.sh (which driver each needs:
#                     docs/gpu.md)
#   env PYTHON        the interpreter that runs pip and builds source packages (default: the first of
#                     python3.<target>, python3 of the target version, else python3)
#
# Writes DIR/csfair-wheelhouse.txt last (python_version, platform, torch, the files with their
# SHA-256): scripts/setup.sh refuses a folder without it or made for another Python or torch.
# Example (a CUDA 12.6 cluster, Python 3.12):
#   CSFAIR_TORCH=cuda CSFAIR_TORCH_VERSION=2.11.0 CSFAIR_TORCH_INDEX=https://download.pytorch.org/whl/cu126 \
#     bash scripts/wheelhouse.sh wheels-py312 --python-version 3.12
#   rsync -a wheels-py312 csfair/ cluster:   # then, on a node:
#   CSFAIR_WHEELHOUSE=wheels-py312 CSFAIR_TORCH=cuda CSFAIR_TORCH_VERSION=2.11.0 bash csfair/scripts/setup.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQ=$ROOT/requirements
die() { echo "[wheelhouse] error: $*" >&2; exit 1; }

DIR="" PYVER="" PLATFORM=manylinux_2_28_x86_64
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER=${2:?--python-version needs a value}; shift 2 ;;
    --platform) PLATFORM=${2:?--platform needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "[wheelhouse] error: unknown option '$1'" >&2; exit 2 ;;
    *) [ -z "$DIR" ] || { echo "[wheelhouse] error: one folder only" >&2; exit 2; }; DIR=$1; shift ;;
  esac
done
[ -n "$DIR" ] || { echo "usage: bash scripts/wheelhouse.sh DIR [--python-version X.Y] [--platform TAG]" >&2; exit 2; }
[[ "$PLATFORM" =~ ^manylinux_2_([0-9]+)_(x86_64|aarch64)$ ]] \
  || die "--platform must be manylinux_2_N_x86_64 or manylinux_2_N_aarch64; got '$PLATFORM'"
GLIBC_MINOR=${BASH_REMATCH[1]} ARCH=${BASH_REMATCH[2]}

# --- interpreter and target ----------------------------------------------------------------------
pyver_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
  for c in ${PYVER:+python$PYVER} python3.11 python3.12 python3; do
    v=$(pyver_of "$c") || continue
    if [ -z "$PYVER" ] || [ "$v" = "$PYVER" ]; then PYTHON=$c; break; fi
  done
  PYTHON=${PYTHON:-python3}
fi
HOSTVER=$(pyver_of "$PYTHON") || die "cannot run the interpreter '$PYTHON' (set PYTHON)"
PYVER=${PYVER:-$HOSTVER}
case "$PYVER" in 3.11|3.12) ;; *) die "csfair needs Python 3.11 or 3.12; --python-version is $PYVER" ;; esac
if [ "$HOSTVER" != "$PYVER" ]; then
  echo "[wheelhouse] warning: $PYTHON is Python $HOSTVER, the target $PYVER: pip evaluates the dependencies'" \
       "own environment markers for $HOSTVER, and compiled source packages cannot be built here" >&2
fi
HOST_PLATFORM_OK=$("$PYTHON" -c "import platform; print(int(platform.system() == 'Linux' and platform.machine() == '$ARCH'))")

TORCH=${CSFAIR_TORCH:-cuda}
case "$TORCH" in
  cpu|cuda)
    TORCH_SPEC=$(grep -E '^torch==' "$REQ/torch-$TORCH.txt") || die "$REQ/torch-$TORCH.txt: no 'torch==VERSION' line"
    [ -z "${CSFAIR_TORCH_VERSION:-}" ] || TORCH_SPEC="torch==$CSFAIR_TORCH_VERSION" ;;
  system)
    [ -n "${CSFAIR_TORCH_VERSION:-}" ] || die "CSFAIR_TORCH=system: set CSFAIR_TORCH_VERSION to the nodes' torch version (python -c 'import torch; print(torch.__version__)' there)"
    TORCH_SPEC="torch==${CSFAIR_TORCH_VERSION%%+*}" ;;
  *) die "CSFAIR_TORCH must be cpu, cuda or system; got '$TORCH'" ;;
esac

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
rm -f "$DIR/csfair-wheelhouse.txt"   # written again only when everything is there
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# every platform tag glibc 2.N accepts, newest first (pip matches each tag exactly)
PLAT=()
for ((n = GLIBC_MINOR; n >= 5; n--)); do PLAT+=(--platform "manylinux_2_${n}_$ARCH"); done
[ "$ARCH" != x86_64 ] || PLAT+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
[ "$ARCH" != aarch64 ] || PLAT+=(--platform manylinux2014_aarch64)
# wheels built here from source packages carry the plain linux tag
[ "$HOST_PLATFORM_OK" != 1 ] || PLAT+=(--platform "linux_$ARCH")
ABI=cp${PYVER/./}
TARGET=(--python-version "$PYVER" --implementation cp --abi "$ABI" --abi abi3 --abi none "${PLAT[@]}")
PIP=("$PYTHON" -m pip --disable-pip-version-check)
quiet() { grep -v -E "^WARNING: Location .* is ignored" || true; }

# --- what to fetch: the requirement files with their top-level markers evaluated for the target ---
{
  grep -vE '^\s*(#|$)' "$REQ/constraints.txt"
  echo "$TORCH_SPEC"
} > "$WORK/constraints.txt"
"$PYTHON" - "$PYVER" "$REQ/build.txt" "$REQ/runtime.txt" > "$WORK/requirements.txt" <<'PY'
import sys

try:
    from packaging.markers import Marker
except ImportError:  # pip vendors it
    from pip._vendor.packaging.markers import Marker

ver = sys.argv[1]
env = {"python_version": ver, "python_full_version": ver + ".0", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
       "os_name": "posix"}
for path in sys.argv[2:]:
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, marker = line.partition(";")
        if not marker.strip() or Marker(marker.strip()).evaluate(env):
            print(spec.strip())
print("setuptools-scm<9")   # seqeval's build requirement (scripts/setup.sh installs it)
print("seqeval==1.2.2")
PY
if [ "$TORCH" != system ]; then echo "$TORCH_SPEC" >> "$WORK/requirements.txt"; fi
echo "[wheelhouse] Python $PYVER, $PLATFORM (and older), torch: $TORCH ($TORCH_SPEC) -> $DIR"

# --- CSFAIR_TORCH=system: a stand-in torch, so that nothing pulls the real one ---------------------
# (accelerate, pytorch-crf, ... depend on torch: resolved against a metadata-only wheel of the nodes'
# version, with a local label so that it sorts above the index's, and left out of DIR). It carries the
# real release's own requirements (read from the index's metadata alone, no download) except its CUDA
# packages, so that e.g. torch's setuptools<82 holds for what DIR gets.
FIND=(--find-links "$DIR")
if [ "$TORCH" = system ]; then
  mkdir -p "$WORK/stub"
  v=${TORCH_SPEC#torch==}
  "${PIP[@]}" install -q --dry-run --no-deps --ignore-installed --report "$WORK/torch.json" --only-binary=:all: \
    "${TARGET[@]}" --target "$WORK/none" "$TORCH_SPEC" 2>&1 | quiet
  "$PYTHON" - "$WORK/stub" "$v" "$WORK/torch.json" <<'PY'
import json, re, sys, zipfile

out, v = sys.argv[1], sys.argv[2] + "+csfairsystem"
meta = json.load(open(sys.argv[3]))["install"][0]["metadata"]
reqs = [r for r in meta.get("requires_dist") or []
        if "extra ==" not in r and not re.match(r"(nvidia|cuda)[-_]|triton\b", r.lower())]
name = f"torch-{v}.dist-info"
with zipfile.ZipFile(f"{out}/torch-{v}-py3-none-any.whl", "w") as z:
    z.writestr(f"{name}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {v}\n"
               + "".join(f"Requires-Dist: {r}\n" for r in reqs))
    z.writestr(f"{name}/WHEEL", "Wheel-Version: 1.0\nGenerator: csfair\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{name}/RECORD", "")
PY
  FIND+=(--find-links "$WORK/stub")
fi

# --- torch first (the CUDA build is several GB; CSFAIR_TORCH_INDEX only for it) -------------------
if [ "$TORCH" != system ]; then
  INDEX=()
  [ -z "${CSFAIR_TORCH_INDEX:-}" ] || INDEX=(--index-url "$CSFAIR_TORCH_INDEX")
  echo "[wheelhouse] $TORCH_SPEC and its dependencies"
  "${PIP[@]}" download -q --only-binary=:all: "${TARGET[@]}" "${INDEX[@]}" -c "$WORK/constraints.txt" -d "$DIR" \
    "$TORCH_SPEC" 2>&1 | quiet
fi

# --- fairseq-fixed on Python 3.11: no wheel on PyPI; built as scripts/setup.sh builds it ----------
if [ "$PYVER" = 3.11 ] && ! ls "$DIR"/fairseq_fixed-0.12.3.1-*.whl >/dev/null 2>&1; then
  [ "$HOSTVER" = 3.11 ] && [ "$HOST_PLATFORM_OK" = 1 ] \
    || die "fairseq-fixed 0.12.3.1 has no wheel for Python 3.11: it is compiled here, which needs Python 3.11 on linux $ARCH (PYTHON=python3.11)"
  echo "[wheelhouse] building fairseq-fixed==0.12.3.1 for Python 3.11 (one time, ~3-5 minutes)"
  "$PYTHON" -m venv "$WORK/build"
  B=("$WORK/build/bin/python" -m pip --disable-pip-version-check)
  if [ "$TORCH" = system ]; then
    "${B[@]}" install -q -c "$WORK/constraints.txt" "$TORCH_SPEC" 2>&1 | quiet   # headers only; not kept
  else
    "${B[@]}" install -q --no-index --find-links "$DIR" -c "$WORK/constraints.txt" "$TORCH_SPEC" 2>&1 | quiet
  fi
  "${B[@]}" install -q -c "$WORK/constraints.txt" -r "$REQ/build.txt" 2>&1 | quiet
  env -u CUDA_HOME "${B[@]}" wheel -q --no-build-isolation --no-deps -w "$DIR" fairseq-fixed==0.12.3.1 2>&1 | quiet
fi

# --- fairseq-fixed on Python 3.12: its wheel alone (setup.sh installs it with --no-deps: its torchaudio
# requirement is not needed for text; its real dependencies are requirements/runtime.txt) ------------
if ! ls "$DIR"/fairseq_fixed-0.12.3.1-*.whl >/dev/null 2>&1; then
  "${PIP[@]}" download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$DIR" fairseq-fixed==0.12.3.1 2>&1 | quiet
fi

# --- everything else; a package that exists only as source is built into a wheel, then again ------
for attempt in $(seq 1 12); do
  if "${PIP[@]}" download --only-binary=:all: "${TARGET[@]}" "${FIND[@]}" -c "$WORK/constraints.txt" -d "$DIR" \
       -r "$WORK/requirements.txt" > "$WORK/log" 2>&1; then
    ok=1; break
  fi
  ok=0
  spec=$(sed -n 's/.*No matching distribution found for \([^ ]*\).*/\1/p' "$WORK/log" | head -1)
  [ -n "$spec" ] || { quiet < "$WORK/log" | tail -20 >&2; die "pip download failed (above)"; }
  echo "[wheelhouse] no wheel of $spec for Python $PYVER / $PLATFORM: building one from its source package"
  before=$(ls "$DIR" | wc -l)
  "${PIP[@]}" wheel -q --no-deps -c "$WORK/constraints.txt" -w "$WORK/built" "$spec" 2>&1 | quiet \
    || die "could not build $spec from source (compilers: g++ and the Python $HOSTVER headers)"
  for w in "$WORK"/built/*.whl; do
    case "$(basename "$w")" in
      *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;   # pure Python: any target
      *-"$ABI"-"$ABI"-linux_"$ARCH".whl|*-"$ABI"-abi3-linux_"$ARCH".whl)
        [ "$HOST_PLATFORM_OK" = 1 ] || die "$(basename "$w") was built for this machine, not linux $ARCH" ;;
      *) die "$spec is compiled ($(basename "$w")): build it with Python $PYVER on linux $ARCH (PYTHON=python$PYVER)" ;;
    esac
    mv "$w" "$DIR/"
  done
  [ "$(ls "$DIR" | wc -l)" -gt "$before" ] || die "building $spec added no wheel"
done
[ "$ok" = 1 ] || { quiet < "$WORK/log" | tail -20 >&2; die "pip download still fails after building 12 source packages"; }

# the stand-in torch is not a package to install
rm -f "$DIR"/torch-*+csfairsystem-*.whl

{
  echo "# csfair wheelhouse: install with CSFAIR_WHEELHOUSE=$DIR bash scripts/setup.sh"
  echo "python_version=$PYVER"
  echo "platform=$PLATFORM"
  echo "torch_build=$TORCH"
  if [ "$TORCH" = system ]; then echo "torch=system ($TORCH_SPEC)"; else echo "torch=$TORCH_SPEC"; fi
  echo "made=$(date -u +%Y-%m-%dT%H:%M:%SZ) by $("$PYTHON" -m pip --version | cut -d' ' -f1-2) on $(uname -m)"
  echo "# sha256  file"
  (cd "$DIR" && sha256sum -- *.whl)
} > "$DIR/csfair-wheelhouse.txt.tmp"
mv "$DIR/csfair-wheelhouse.txt.tmp" "$DIR/csfair-wheelhouse.txt"
echo "[wheelhouse] ok: $(ls "$DIR"/*.whl | wc -l) wheels, $(du -sh "$DIR" | cut -f1) in $DIR"
