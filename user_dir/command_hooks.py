"""What csfair changes in fairseq's command-line tools, in one place, and when it is applied.

Importing ``user_dir`` registers components and nothing else. csfair's behaviour of fairseq's own
commands needs more than registration, because fairseq decides it before any csfair code is called
by name: ``options.parse_args_and_arch`` turns ``--bf16`` into TPU mode, and ``call_main`` skips
torchrun's ranks in TPU mode, before the task is even set up; ``Trainer.load_checkpoint`` unpickles a
checkpoint with ``torch.load``, whose default since PyTorch 2.6 (``weights_only=True``) refuses a
fairseq 0.12 checkpoint. :func:`install` applies, once:

* ``user_dir.bf16_support.install``: ``--bf16`` means bf16 autocast with fp32 weights for csfair's
  pretraining tasks, not fairseq's TPU mode (wraps ``options.parse_args_and_arch`` and
  ``distributed.utils.call_main``; see that module);
* ``user_dir.checkpoint_loading.install``: ``Trainer.load_checkpoint`` (resume, ``--restore-file``,
  ``--finetune-from-model``) loads inside :func:`~user_dir.checkpoint_loading.safe_loading` (weights-only
  unpickling with fairseq's classes allowed, for that call only) and raises the precise error (other
  tables, another architecture, a damaged file); a full disk while saving names the checkpoint;
* ``user_dir.user_errors.install``: an uncaught user error (:data:`user_dir.user_errors.USER_ERRORS`)
  prints one line, ``fairseq-train: error: ...``, instead of a traceback.

Where it is applied: :func:`install_in_fairseq_command`, the last line of ``user_dir/__init__.py``,
calls :func:`install` when, and only when, the process is one of fairseq's command-line tools
(``fairseq-train``, ``fairseq-hydra-train``, ``fairseq-validate``, ..., or ``python -m fairseq_cli.X``):
those import the ``--user-dir`` before they parse their arguments, which is the only moment
early enough for ``--bf16`` (a task's ``setup_task`` runs after TPU mode was chosen and the ranks
were skipped), and ``fairseq-train --user-dir user_dir --bf16`` is the documented command. In any
other process (the hub, scripts, notebooks, tests) importing ``user_dir`` leaves fairseq, PyTorch,
``sys.excepthook``, ``sys.path`` and the environment as they were; code that runs fairseq's training
in-process calls :func:`install` itself, explicitly (as ``tests/test_fast_encoder.py`` does).
"""
import os
import sys


def is_fairseq_command(argv0: str) -> bool:
    """Whether ``argv0`` (``sys.argv[0]``) is one of fairseq's command-line tools.

    ``fairseq-train`` and the other ``fairseq-*`` console scripts (also under torchrun, srun or a
    wrapper that sets ``sys.argv[0]``), and ``python -m fairseq_cli.train`` (``argv0`` is then the
    path of ``fairseq_cli/train.py``).
    """
    argv0 = argv0 or ""
    return (os.path.basename(argv0).startswith("fairseq-")
            or os.path.basename(os.path.dirname(os.path.abspath(argv0))) == "fairseq_cli")


def install() -> None:
    """Apply csfair's behaviour of fairseq's command-line tools in this process (idempotent)."""
    from . import bf16_support, checkpoint_loading, user_errors

    bf16_support.install()
    checkpoint_loading.install()
    user_errors.install()


def install_in_fairseq_command() -> bool:
    """:func:`install` if this process is a fairseq command-line tool; returns whether it did."""
    if is_fairseq_command(sys.argv[0] if sys.argv else ""):
        install()
        return True
    return False
