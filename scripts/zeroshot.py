#!/usr/bin/env python
"""Zero-shot cross-lingual transfer: fine-tune on the training language, evaluate on others.

The command line of csfair.evaluation.zeroshot (options, protocol and usage: ``--help``; the runner, its
tables and launchers live there). This file only chooses the two framework backends: fairseq
(user_dir/zeroshot_backend.py) for checkpoints, scratch models and taggers, transformers
(csfair_hf/zeroshot.py) for ``hf:`` columns, each imported when a column needs it.
"""
import os
import sys

try:
    from csfair.evaluation.zeroshot import cli
except ModuleNotFoundError as e:
    if e.name != "csfair":
        raise
    sys.exit("zeroshot.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")


def fairseq_backend():
    from user_dir.zeroshot_backend import FairseqBackend

    return FairseqBackend()


def transformers_backend():
    from csfair_hf.zeroshot import TransformersBackend

    return TransformersBackend()


BACKENDS = {"fairseq": fairseq_backend, "hf": transformers_backend}

if __name__ == "__main__":
    # a launcher's job runs this file again, restricted to one run of the grid (--sweep-unit)
    cli(sys.argv[1:], backends=BACKENDS, command=[sys.executable, os.path.abspath(__file__)])
