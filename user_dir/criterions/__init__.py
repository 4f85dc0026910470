"""Criterions."""
from . import cs_masked_lm, token_tagging, weam_loss  # noqa: F401
