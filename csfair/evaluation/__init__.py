"""Evaluation: zero-shot task data and corpus readers, metrics and uncertainty (span F1, accuracy,
standard error, paired bootstrap), tagging helpers, results tables, alignment analysis, and the
held-out split and leak audit that keep evaluation data, and its near-copies, out of training inputs.

May import ``csfair.text``, ``csfair.io`` and ``csfair.paths``; never the pretraining code or fairseq.
"""
