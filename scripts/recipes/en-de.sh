#!/usr/bin/env bash
# English-German code-switched MLM pretraining (see codeswitch_pretrain.sh for the options).
# Usage: bash scripts/recipes/en-de.sh [--cs ibm1|muse|none] [options] [-- fairseq-train args]
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/codeswitch_pretrain.sh" --pair en-de "$@"
