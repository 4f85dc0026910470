#!/usr/bin/env bash
# English-German code-switched MLM pretraining: scripts/recipes/pair.sh en-de (see its --help and --list).
# Usage: bash scripts/recipes/en-de.sh [--cs ibm1|muse|none] [options] [-- fairseq-train args]
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/pair.sh" --pair en-de "$@"
