#!/usr/bin/env bash
# Former name of scripts/recipes/pair.sh (kept for existing command lines): the same recipe.
# Usage: bash scripts/recipes/codeswitch_pretrain.sh --pair en-fr [options] [-- fairseq-train args]
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/pair.sh" "$@"
