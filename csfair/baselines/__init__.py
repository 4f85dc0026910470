"""The other systems' data: fastText meta-embeddings (MME/HME) and aligned parallel data for WEAM/TLM.

May import ``csfair.lexicons``, ``csfair.evaluation``, ``csfair.text``, ``csfair.io`` and ``csfair.paths``.
"""
