"""Tasks (one per file, named after its registry name)."""
from . import codeswitch_masked_lm, cs_sentence_prediction, token_tagging  # noqa: F401
