"""Reading and writing fairseq checkpoints with errors that name the file, the cause and the fix.

One loader for every csfair entry point that opens a checkpoint (``scripts/eval_mlm.py``, the hub
``user_dir/hub_interface.py``, ``scripts/hf_convert.py`` through ``user_dir/hf_interop.py``), and
two patches of fairseq's own checkpoint I/O, installed when ``user_dir`` is imported:

* a truncated, empty or garbage file raises :class:`CheckpointError` naming the path and saying
  what is wrong with it (PyTorch alone says ``PytorchStreamReader failed reading zip archive``,
  ``Ran out of input`` or ``invalid load key`` without the path);
* :func:`load_model_and_task` says what a checkpoint *is* (its task and architecture, from its
  saved config) when it is not what the caller expects, instead of failing later inside fairseq
  (``Dataset not found``, ``AttributeError ... 'seed'``, or a silent score of the wrong model);
* ``Trainer.load_checkpoint`` (resume, ``--restore-file``, ``--finetune-from-model``): fairseq
  wraps every failure to load the weights into ``Cannot load model parameters ...; please ensure
  that the architectures match``. The precise error is raised instead: the provenance check's
  :class:`~user_dir.models.checkpoint_provenance.CodeSwitchProvenanceError` alone (other tables or
  another dictionary), a :class:`CheckpointError` giving the checkpoint's architecture and this
  run's when the weights do not fit, or the unreadable-file error above;
* ``checkpoint_utils.torch_persistent_save``: a full disk raises :class:`csfair.io.DiskFullError`
  naming the checkpoint (PyTorch says ``unexpected pos 64 vs 0``, Python ``[Errno 28]``), without
  fairseq's two retries and their logged tracebacks, and removes the partial ``.tmp`` file; the
  previous checkpoint is untouched (fairseq writes ``NAME.tmp`` and renames it).
"""
import functools
import os
import zipfile
from typing import Dict, Optional, Sequence

import torch

from csfair.io import DiskFullError, free_bytes, is_disk_full

_FIX = ("the run that wrote it was interrupted or the disk filled up, or the copy is incomplete: use another "
        "checkpoint (checkpoint_best.pt, an epoch checkpoint) or copy/train it again")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used as asked; the message names the file, the cause and the fix."""


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """``"Type: first line"`` of an error; a header line ending in ``:`` takes the next line along."""
    text = [t.strip() for t in str(exc).strip().splitlines() if t.strip()]
    if not text:
        return type(exc).__name__
    line = f"{text[0]} {text[1]}" if text[0].endswith(":") and len(text) > 1 else text[0]
    return f"{type(exc).__name__}: {line if len(line) <= limit else line[:limit] + '...'}"


def file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a PyTorch checkpoint, from its size and first bytes (None: it may be one).

    Cheap (reads 4 bytes and, for a zip archive, its end-of-archive record). PyTorch's format is a
    zip archive (``PK\\x03\\x04``); the legacy format is a pickle (``\\x80``, protocol >= 2).

    Raises:
        FileNotFoundError: no such file.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if os.path.isdir(path):
        return f"is a directory, not a checkpoint file (e.g. {os.path.join(path, 'checkpoint_last.pt')})"
    size = os.path.getsize(path)
    if size == 0:
        return f"empty file (0 bytes); {_FIX}"
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        if not zipfile.is_zipfile(path):
            return f"truncated PyTorch checkpoint ({size:,} bytes, its zip archive has no end record); {_FIX}"
        return None
    if head[:1] == b"\x80":
        return None
    return (f"not a PyTorch checkpoint ({size:,} bytes starting with {head!r}): check the path, or copy or "
            "train the checkpoint again")


def _unreadable(path: str, exc: BaseException) -> CheckpointError:
    """The error for a file that ``torch.load`` could not read."""
    why = file_problem(path)
    if why is None:
        size = os.path.getsize(path)
        why = f"corrupted PyTorch checkpoint ({size:,} bytes; torch.load failed: {_first_line(exc)}); {_FIX}"
    return CheckpointError(f"{path}: {why}")


def _is_read_failure(exc: BaseException) -> bool:
    """Whether an exception from ``torch.load`` means the bytes are bad (not, e.g., a missing module)."""
    import pickle

    if isinstance(exc, (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError)):
        return True
    return isinstance(exc, RuntimeError) and ("PytorchStreamReader" in str(exc) or "zip archive" in str(exc))


def read_checkpoint(path: str, mmap: bool = False) -> dict:
    """``torch.load`` of a fairseq checkpoint on the CPU (``weights_only=False``), with clear errors.

    Args:
        path: checkpoint file.
        mmap: memory-map the tensors (``torch.load(mmap=True)``; zip-format checkpoints only).

    Returns:
        the checkpoint's dict (``model``, ``cfg`` or ``args``, ``optimizer_history``, ...).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: a directory, an empty, truncated, corrupted or non-PyTorch file, or a
            PyTorch file that is not a fairseq checkpoint (no ``model`` entry); names the path.
    """
    why = file_problem(path)
    if why is not None:
        raise CheckpointError(f"{path}: {why}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as e:
        if _is_read_failure(e):
            raise _unreadable(path, e) from e
        raise
    if not isinstance(state, dict) or "model" not in state:
        what = f"a {type(state).__name__} with keys {sorted(state)[:6]}" if isinstance(state, dict) else \
            f"a {type(state).__name__}"
        raise CheckpointError(f"{path}: a PyTorch file but not a fairseq checkpoint ({what}, no 'model' entry)")
    return state


def _get(obj, key):
    if obj is None:
        return None
    if hasattr(obj, "get") and not isinstance(obj, type):
        try:
            return obj.get(key)
        except Exception:  # an omegaconf node without the key in struct mode
            return None
    return getattr(obj, key, None)


def describe(state: dict) -> Dict[str, Optional[object]]:
    """What a checkpoint is, from its saved config: ``task``, ``arch``, ``layers``, ``dim`` (None if absent)."""
    cfg, args = state.get("cfg"), state.get("args")
    task_cfg, model_cfg = _get(cfg, "task"), _get(cfg, "model")
    task = _get(task_cfg, "_name") or _get(args, "task")
    arch = _get(model_cfg, "arch") or _get(model_cfg, "_name") or _get(args, "arch")
    layers = _get(model_cfg, "encoder_layers") or _get(args, "encoder_layers")
    dim = _get(model_cfg, "encoder_embed_dim") or _get(args, "encoder_embed_dim")
    return {"task": None if task is None else str(task), "arch": None if arch is None else str(arch),
            "layers": layers, "dim": dim}


def what_is(desc: Dict[str, Optional[object]]) -> str:
    """``"a codeswitch_masked_lm checkpoint (arch cs_roberta_tiny, 2 layers, dim 128)"``."""
    bits = [f"arch {desc.get('arch') or '?'}"]
    if desc.get("layers"):
        bits.append(f"{desc['layers']} layers")
    if desc.get("dim"):
        bits.append(f"dim {desc['dim']}")
    return f"a {desc.get('task') or 'task-less'} checkpoint ({', '.join(bits)})"


def load_state(path: str, arg_overrides: Optional[dict] = None) -> dict:
    """fairseq's ``load_checkpoint_to_cpu`` (config upgraded, ``arg_overrides`` applied) with clear errors.

    Raises:
        FileNotFoundError, CheckpointError: see :func:`read_checkpoint`.
    """
    from fairseq import checkpoint_utils

    why = file_problem(path)
    if why is not None:
        raise CheckpointError(f"{path}: {why}")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides)
    except Exception as e:
        if _is_read_failure(e):
            raise _unreadable(path, e) from e
        raise
    if "model" not in state:
        raise CheckpointError(f"{path}: a PyTorch file but not a fairseq checkpoint (no 'model' entry)")
    return state


def load_model_and_task(path: str, arg_overrides: Optional[dict] = None, tasks: Optional[Sequence[str]] = None,
                        purpose: str = "this command"):
    """Load one checkpoint's model and task (``checkpoint_utils.load_model_ensemble_and_task``), reading the file once.

    Args:
        path: checkpoint file.
        arg_overrides: config values to override (``data``, ``langs``, ...).
        tasks: task names the caller can use (None: any); another task raises before fairseq
            builds anything.
        purpose: who asks, for the message (``"eval_mlm"``).

    Returns:
        ``(models, cfg, task, desc)``: as fairseq's, plus :func:`describe` of the checkpoint.

    Raises:
        FileNotFoundError: no such file, or the task's data is missing (the message then says
            what the checkpoint is).
        CheckpointError: unreadable file, or a task not in ``tasks``.
    """
    from fairseq import checkpoint_utils

    state = load_state(path, arg_overrides)
    desc = describe(state)
    if tasks and desc["task"] not in tasks:
        raise CheckpointError(f"{path}: {what_is(desc)}; {purpose} needs a {' or '.join(tasks)} checkpoint")
    try:
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=arg_overrides,
                                                                          state=state)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path} is {what_is(desc)}, whose task needs data that is missing: {e}") from e
    return models, cfg, task, desc


# --------------------------------------------------------------------------- fairseq patches
def explain_load_failure(filename: str, exc: BaseException, model_cfg=None) -> Optional[BaseException]:
    """The precise error behind a failed ``Trainer.load_checkpoint`` (None: keep fairseq's).

    Args:
        filename: the checkpoint fairseq tried to load.
        exc: what ``Trainer.load_checkpoint`` raised.
        model_cfg: this run's model config (for the architecture mismatch message).
    """
    from .models.checkpoint_provenance import CodeSwitchProvenanceError

    chain, seen, e = [], set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        if isinstance(e, CodeSwitchProvenanceError):
            return CodeSwitchProvenanceError(f"{filename}: {e}")
        if isinstance(e, CheckpointError):
            return e
    if any(_is_read_failure(e) for e in chain) and os.path.isfile(filename):
        return _unreadable(filename, exc)
    if "please ensure that the architectures match" in str(exc) and len(chain) > 1:
        cause = chain[1]
        try:
            desc = what_is(describe(read_checkpoint(filename)))
        except Exception:  # the description is a courtesy; never hide the cause behind a second error
            desc = "the checkpoint"
        now = what_is({"task": "this run's", "arch": _get(model_cfg, "arch") or _get(model_cfg, "_name"),
                       "layers": _get(model_cfg, "encoder_layers"), "dim": _get(model_cfg, "encoder_embed_dim")})
        now = now.replace("a this run's checkpoint", "this run's model")
        return CheckpointError(
            f"{filename}: {desc} does not fit {now}: {_first_line(cause, 300)}; resume with the architecture "
            "options it was trained with, or train into another --save-dir")
    return None


def _wrap_trainer_load(original):
    @functools.wraps(original)
    def load_checkpoint(self, filename, *args, **kwargs):
        try:
            return original(self, filename, *args, **kwargs)
        except Exception as e:
            better = explain_load_failure(filename, e, getattr(self.cfg, "model", None))
            if better is None or better is e:
                raise
            # the provenance error is complete on its own; the others keep fairseq's error as cause
            from .models.checkpoint_provenance import CodeSwitchProvenanceError

            if isinstance(better, CodeSwitchProvenanceError):
                raise better from None
            raise better from e

    load_checkpoint._csfair_checkpoint_loading = True
    return load_checkpoint


def _wrap_persistent_save(original):
    @functools.wraps(original)
    def torch_persistent_save(obj, filename, async_write: bool = False):
        try:
            return original(obj, filename, async_write)
        except Exception as e:
            tmp = f"{filename}.tmp"
            probe = tmp if os.path.exists(tmp) else filename
            if isinstance(e, DiskFullError) or not is_disk_full(e, probe):
                raise
            free = free_bytes(probe)
            if os.path.exists(tmp):
                os.remove(tmp)  # the partial file; the previous checkpoint is untouched
            raise DiskFullError(filename, _first_line(e), free) from e

    torch_persistent_save._csfair_checkpoint_loading = True
    return torch_persistent_save


def _wrap_save_attempt(original):
    """fairseq retries a failed ``torch.save`` twice after 2.5 s, logging each traceback: pointless on a full disk."""
    @functools.wraps(original)
    def _torch_persistent_save(obj, f):
        if isinstance(f, str):
            return original(obj, f)
        try:
            return torch.save(obj, f)
        except Exception as e:
            if is_disk_full(e, getattr(f, "name", None)):
                raise
        return original(obj, f)  # fairseq's retries

    _torch_persistent_save._csfair_checkpoint_loading = True
    return _torch_persistent_save


def install() -> None:
    """Patch ``Trainer.load_checkpoint`` and fairseq's checkpoint saving (once; see the module docstring)."""
    from fairseq import checkpoint_utils
    from fairseq.trainer import Trainer

    if not getattr(Trainer.load_checkpoint, "_csfair_checkpoint_loading", False):
        Trainer.load_checkpoint = _wrap_trainer_load(Trainer.load_checkpoint)
    if not getattr(checkpoint_utils.torch_persistent_save, "_csfair_checkpoint_loading", False):
        checkpoint_utils.torch_persistent_save = _wrap_persistent_save(checkpoint_utils.torch_persistent_save)
    if not getattr(checkpoint_utils._torch_persistent_save, "_csfair_checkpoint_loading", False):
        checkpoint_utils._torch_persistent_save = _wrap_save_attempt(checkpoint_utils._torch_persistent_save)
