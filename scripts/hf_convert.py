#!/usr/bin/env python
"""Convert between csfair (fairseq) checkpoints and Hugging Face transformers directories.

Usage:
    python scripts/hf_convert.py export CHECKPOINT OUT_DIR [--model-type xlm-roberta|roberta]
    python scripts/hf_convert.py import HF_DIR OUT_CHECKPOINT OUT_DATA_DIR

The command of user_dir/hf_convert.py (``--help``).
"""
import sys

try:
    from user_dir.hf_convert import main
except ModuleNotFoundError as e:
    if e.name not in ("user_dir", "csfair"):
        raise
    sys.exit("hf_convert.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")

if __name__ == "__main__":
    main()
