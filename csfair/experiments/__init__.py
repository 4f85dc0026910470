"""Experiments: orchestration of data, pretraining runs and evaluation into one command each
(docs/experiments.md). Runs fairseq and the recipes as subprocesses, never imports them.

May import every other csfair package but ``cli``; nothing in csfair imports it.
"""
