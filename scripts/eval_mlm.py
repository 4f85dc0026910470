#!/usr/bin/env python
"""Held-out masked-LM accuracy of one or more fairseq checkpoints (Visser et al., 2025, Table 3).

The command line of user_dir/mlm_eval.py (the fairseq front end of csfair.evaluation.mlm, the metric shared with
the transformers path); ``--help`` for the metric, its uncertainty and the options.
"""
import sys

try:
    from user_dir.mlm_eval import main
except ModuleNotFoundError as e:
    if e.name not in ("user_dir", "csfair"):
        raise
    sys.exit("eval_mlm.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")

if __name__ == "__main__":
    main()
