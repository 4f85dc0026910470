"""csfair: the method, framework-free (nothing here imports fairseq or transformers; the fairseq
glue lives in ``user_dir/``, the transformers glue in ``csfair_hf/``, the commands ``csfair-data``,
``csfair-lexicon`` and ``csfair-prep`` in ``csfair_cli/``, beside this package). The sub-packages
are the architecture, imports run downward:

* ``pretraining``: substitution tables, the code-switching sampler, masking, vocabulary;
  ``baselines``: fastText meta-embeddings and parallel data for WEAM/TLM;
* ``lexicons``: IBM-1, MUSE, word alignment; ``evaluation``: task data, metrics, results, audits;
* ``text`` (Moses, stopwords, casing), then ``io``, ``paths`` and ``locks`` (shared plumbing).
"""

__version__ = "0.1.0"
