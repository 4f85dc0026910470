"""Zero-shot cross-lingual transfer: fine-tune on the training language, evaluate on the others
(Visser et al., 2025, Tables 4 and 5); ``scripts/zeroshot.py`` is its command line.

* :mod:`.options`: the command line (its docstring is the ``--help`` text: protocol, columns, usage);
* :mod:`.columns`: what ``--checkpoint NAME=...`` names (:class:`.columns.Column`);
* :mod:`.protocol`: protocol keys, scoring, one evaluation's record, the taggers' seed ensemble;
* :mod:`.backend`: the interface to a framework (:class:`.backend.ZeroShotBackend`), implemented by
  ``user_dir.zeroshot_backend`` (fairseq) and ``csfair_hf.zeroshot`` (transformers);
* :mod:`.runner`: the one loop over columns, tasks and seeds (run, planned for a launcher, or one
  launcher unit); :mod:`.tables`: tables, forest plots and manifests; :mod:`.sweep`: the same loop
  through :mod:`csfair.evaluation.launch` (submitit), one job per run.

May import ``csfair.evaluation``, ``csfair.io`` and ``csfair.paths``; never fairseq, transformers, torch,
``user_dir`` or ``csfair_hf``: the backends are passed in by the caller.
"""
from csfair.evaluation.zeroshot.backend import Finetuned, Prepared, ZeroShotBackend
from csfair.evaluation.zeroshot.columns import Column
from csfair.evaluation.zeroshot.runner import Runner, cli, main

__all__ = ["Column", "Finetuned", "Prepared", "Runner", "ZeroShotBackend", "cli", "main"]
