"""Criterions."""
from . import cs_masked_lm  # noqa: F401
