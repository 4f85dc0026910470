"""Tasks (one per file, named after its registry name)."""
from . import (  # noqa: F401
    codeswitch_masked_lm,
    cs_sentence_prediction,
    tlm_masked_lm,
    token_tagging,
    weam_masked_lm,
    word_tagging,
)
