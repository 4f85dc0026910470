"""Model architectures and model-side helpers."""
from . import checkpoint_provenance, cs_roberta  # noqa: F401
