#!/usr/bin/env bash
# The main job on a fresh machine: set up what is missing, then pretrain a small bilingual
# English-French RoBERTa with IBM-1 multiview code-switching on the real data and print its MLM
# accuracy on held-out French text. ~15 minutes on 2 CPU cores once the environment exists.
# Usage: bash scripts/demo.sh [extra options for scripts/recipes/en-fr.sh]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
exec bash "$ROOT/scripts/recipes/en-fr.sh" --cs ibm1 "$@"
