#!/usr/bin/env python
"""A/A check of the zero-shot tables' significance test on real results: seeds of one checkpoint against
each other.

The command of csfair/evaluation/aa_check.py (``--help``).
"""
import sys

try:
    from csfair.evaluation.aa_check import main
except ModuleNotFoundError as e:
    if e.name not in ("user_dir", "csfair"):
        raise
    sys.exit("aa_check.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")

if __name__ == "__main__":
    main()
