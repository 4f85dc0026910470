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
# pytest exits 5 when no test is collected: that fails here too (set -e).
exec "$ROOT/.venv/bin/python" -m pytest tests "$@"
