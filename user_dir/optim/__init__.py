"""Optimizers (imported by ``user_dir/__init__.py``; fairseq does not auto-import a user dir's optim/)."""
from . import csfair_fast_adam  # noqa: F401
