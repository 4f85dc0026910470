"""The pretraining method (Visser et al. 2025, Sec. 3.1-3.2): substitution tables (built from a
lexicon, stored on disk, looked up while sampling), the code-switching sampler, fairseq-exact
masking and the language-balanced vocabulary.

May import ``csfair.lexicons``, ``csfair.text``, ``csfair.io`` and ``csfair.paths``; never fairseq.
"""
