#!/usr/bin/env bash
# Set up what is missing, then run the test suite (real data slices from $CSFAIR_DATA).
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
export CSFAIR_DATA=${CSFAIR_DATA:-$ROOT/../shared/data}
if [ ! -f "$CSFAIR_DATA/MANIFEST.tsv" ]; then
  echo "error: the real data is not at $CSFAIR_DATA (no MANIFEST.tsv); set CSFAIR_DATA" >&2
  exit 1
fi
# Tests run in parallel on pytest-xdist workers: min(cores, 4) of them unless CSFAIR_TEST_WORKERS says
# otherwise (0: one process) or the arguments choose (-n/--numprocesses, -p no:xdist). --dist
# loadscope runs each test module on one worker, in order, so that a module-scoped fixture (a few
# fairseq-train runs) is built once (with per-test distribution, --dist load or loadgroup, a worker
# interleaves modules and tears such fixtures down and rebuilds them: measured slower). Each worker,
# and every process it starts, uses one thread (OMP_NUM_THREADS=1 unless set): workers that each
# ask torch for every core oversubscribe them.
XDIST=()
case " $* " in
  *" -n "*|*" -n="*|*" --numprocesses"*|*" -p no:xdist "*) ;;
  *) n=${CSFAIR_TEST_WORKERS:-$(nproc)}
     [ "$n" -gt 4 ] && [ -z "${CSFAIR_TEST_WORKERS:-}" ] && n=4
     [ "$n" -gt 1 ] && XDIST=(-n "$n" --dist loadscope) ;;
esac
[ ${#XDIST[@]} -gt 0 ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# pytest exits 5 when no test is collected: that fails here too (set -e).
exec "$ROOT/.venv/bin/python" -m pytest tests "${XDIST[@]}" "$@"
