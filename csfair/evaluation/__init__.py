"""Evaluation: zero-shot task data and corpus readers, metrics and uncertainty (span F1, accuracy,
standard error, paired bootstrap), tagging helpers, results tables, alignment analysis, and the
overlap audit that keeps held-out data out of training inputs.

May import ``csfair.text``, ``csfair.io`` and ``csfair.paths``; never the pretraining code or fairseq.
"""
