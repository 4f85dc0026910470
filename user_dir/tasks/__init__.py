"""Tasks (one per file, named after its registry name)."""
from . import codeswitch_masked_lm  # noqa: F401
