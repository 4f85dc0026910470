"""csfair's fairseq plugin (``--user-dir user_dir``).

fairseq auto-imports only ``tasks/`` and ``models/`` of a user dir; everything that registers
something is imported here so that criterions and data wrappers are always available.
"""
import os
import sys

# csfair (the framework-free method) lives next to this directory; make it importable even when
# the project was not pip-installed.
_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _root not in sys.path:
    sys.path.append(_root)

# fairseq 0.12 checkpoints pickle argparse/omegaconf objects and fairseq loads them with a bare
# torch.load(); torch >= 2.6 defaults to weights_only=True, which refuses them, so resuming training
# or loading a checkpoint would fail. Checkpoints are the user's own files: restore the old default
# for calls that do not choose (unless the user forces weights-only loading).
if not os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD"):
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

# --bf16 on GPUs: undo fairseq's "bf16 implies tpu" and train with bf16 autocast (bf16_support.py);
# installed here because fairseq imports the user dir before it parses the arguments.
from . import bf16_support  # noqa: E402

bf16_support.install()

from . import criterions, data, models, optim, tasks  # noqa: E402,F401

# clear errors naming the file for unreadable checkpoints, a resume with other tables or another
# architecture, a full disk while saving; one-line user errors in fairseq-* commands (csfair issue 21)
from . import checkpoint_loading, user_errors  # noqa: E402

checkpoint_loading.install()
user_errors.install()
