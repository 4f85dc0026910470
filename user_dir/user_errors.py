"""Errors a user can fix, printed by fairseq's command-line tools as one line instead of a traceback.

``fairseq-train`` (and the other ``fairseq-*`` tools) let every exception end the process with a
traceback, so a missing language directory or a checkpoint trained with other tables shows 30
lines of fairseq internals above the one that matters. Importing ``user_dir`` (which fairseq does
before it parses the arguments) installs a ``sys.excepthook`` in those processes only: an uncaught
error of :data:`USER_ERRORS` prints ``fairseq-train: error: <message>`` (the message names the
file, the cause and the fix) and the process exits with status 1 as before. Any other exception
keeps its traceback; ``CSFAIR_TRACEBACK=1`` shows the traceback of user errors too. Library use
(the hub, scripts, tests) is unaffected: the hook is installed only when ``sys.argv[0]`` is a
``fairseq-*`` command.
"""
import os
import sys

from csfair.io import DiskFullError, InputFormatError
from csfair.pretraining.table_format import CorruptTableError

from .checkpoint_loading import CheckpointError
from .models.checkpoint_provenance import CodeSwitchProvenanceError


class DataNotFoundError(FileNotFoundError):
    """The data a task was asked for does not exist (e.g. ``--langs de`` without ``DATA/de``); says what does."""


class TaskConfigError(ValueError):
    """Options of a csfair task that cannot work together or with the data (names the option and the fix)."""


#: Errors printed as one line by fairseq's command-line tools.
USER_ERRORS = (CodeSwitchProvenanceError, CheckpointError, CorruptTableError, DataNotFoundError, DiskFullError,
               InputFormatError, TaskConfigError)


def is_fairseq_cli(argv0: str) -> bool:
    """Whether the process is a ``fairseq-*`` console script (``fairseq-train``, ``fairseq-validate``, ...)."""
    return os.path.basename(argv0 or "").startswith("fairseq-")


def _hook(previous):
    def excepthook(exc_type, exc, tb):
        if issubclass(exc_type, USER_ERRORS) and not os.environ.get("CSFAIR_TRACEBACK"):
            sys.stderr.write(f"{os.path.basename(sys.argv[0])}: error: {exc}\n")
            sys.stderr.flush()
            return
        previous(exc_type, exc, tb)

    excepthook._csfair_user_errors = True
    return excepthook


def install() -> None:
    """Install the one-line hook in a ``fairseq-*`` process (once)."""
    if is_fairseq_cli(sys.argv[0] if sys.argv else "") and not getattr(sys.excepthook, "_csfair_user_errors", False):
        sys.excepthook = _hook(sys.excepthook)
