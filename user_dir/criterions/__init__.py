"""Criterions."""
from . import cs_masked_lm, token_tagging  # noqa: F401
