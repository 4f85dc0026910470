"""Model architectures."""
from . import cs_roberta  # noqa: F401
