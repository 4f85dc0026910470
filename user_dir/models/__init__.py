"""Model architectures and model-side helpers."""
from . import checkpoint_provenance, cs_roberta, csfair_roberta_fast, meta_embedding_tagger, tlm_roberta, token_tagging_head  # noqa: F401
