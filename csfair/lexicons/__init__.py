"""Where translations come from: IBM Model 1 through fast_align, MUSE dictionaries and lexicon TSV
files, and word alignment of parallel text.

May import ``csfair.text``, ``csfair.io`` and ``csfair.paths``; never the pretraining or evaluation code.
"""
