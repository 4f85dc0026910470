#!/usr/bin/env python
"""Sweeps through submitit, one job per run: ``sweep.py pretrain ...`` (multi-seed pretraining,
csfair.evaluation.pretrain_sweep) or ``sweep.py zeroshot ...`` (= ``scripts/zeroshot.py ... --launcher``,
csfair.evaluation.zeroshot.sweep). The launchers (serial, local, slurm) are csfair.evaluation.launch.
"""
import os
import sys

try:
    from csfair.evaluation import pretrain_sweep
except ModuleNotFoundError as e:
    if e.name != "csfair":
        raise
    sys.exit("sweep.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["pretrain"]:
        return pretrain_sweep.main(argv[1:])
    if argv[:1] == ["zeroshot"]:
        zeroshot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zeroshot.py")
        os.execv(sys.executable, [sys.executable, zeroshot, *argv[1:]])
    raise SystemExit("usage: sweep.py pretrain ... | sweep.py zeroshot ... (= scripts/zeroshot.py ...; see --help)")


if __name__ == "__main__":
    main()
