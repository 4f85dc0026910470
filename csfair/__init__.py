"""csfair: the method, framework-free.

Lexicons (IBM Model 1, MUSE), token-level substitution tables, the per-item code-switching and
masking algorithms, text utilities and metrics. Nothing here imports fairseq; the fairseq glue
lives in ``user_dir/``.
"""

__version__ = "0.1.0"
