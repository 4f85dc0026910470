#!/usr/bin/env bash
# English-French code-switched MLM pretraining: scripts/recipes/pair.sh en-fr (see its --help and --list).
# Usage: bash scripts/recipes/en-fr.sh [--cs ibm1|muse|none] [options] [-- fairseq-train args]
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/pair.sh" --pair en-fr "$@"
