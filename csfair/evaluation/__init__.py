"""Evaluation: zero-shot task data and corpus readers, metrics and uncertainty (span F1, accuracy,
standard error, paired bootstrap), tagging helpers, results tables, alignment analysis, and the
held-out split and leak audit that keep evaluation data, and its near-copies, out of training inputs.
The zero-shot runner (``zeroshot``: its loop, protocol, tables and framework interface) and the
launchers that run sweeps as jobs (``launch``, submitit; ``pretrain_sweep``) live here too.

May import ``csfair.text``, ``csfair.io`` and ``csfair.paths``; never the pretraining code, fairseq,
transformers or torch (a framework is reached through the backends the zero-shot runner is given).
"""
