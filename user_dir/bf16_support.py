"""``--bf16`` on GPUs (and CPUs): bfloat16 autocast with fp32 weights, instead of fairseq's TPU mode.

What fairseq 0.12 does with ``--bf16`` (read in fairseq-fixed 0.12.3.1):

* ``options.parse_args_and_arch`` sets ``args.tpu = True`` whenever ``args.bf16`` is set ("bf16
  implies tpu"), and ``convert_namespace_to_omegaconf`` copies ``tpu`` into every config group
  (``common``, ``distributed_training``, ``optimizer``, ``criterion``, ...);
* ``Trainer`` then asks for an XLA device (``utils.get_tpu_device``, which needs torch_xla), and
  ``distributed.utils.infer_init_method`` returns at once when ``tpu`` is set, so torchrun's
  ``RANK``/``WORLD_SIZE`` and SLURM's variables are never read (every process trains alone);
  ``masked_lm``-style criteria project every position instead of the masked ones, Adam skips its
  fused variant, ``train.py`` wraps iterators for XLA;
* its bf16 training proper: ``Trainer`` casts model and criterion to bf16, casts every float
  tensor of each batch, and ``FP16Optimizer`` keeps fp32 master copies of the parameters (no loss
  scaling for bf16). ``FP16Optimizer.state_dict`` saves only the inner optimizer's state (Adam's
  moments), never the fp32 master parameters, and the checkpoint's ``model`` holds the bf16
  weights: a resumed run restarts from bf16-rounded weights (not an exact resume) and checkpoints
  are bf16.

What csfair does instead, installed by :func:`install` in fairseq's command-line tools
(:mod:`user_dir.command_hooks`: fairseq imports the user dir in ``options.get_parser``, before
``fairseq_cli.train.cli_main`` parses the arguments and calls ``distributed_utils.call_main``; both
are looked up as module attributes at call time, so wrapping them needs no fork of fairseq):

1. ``fairseq.options.parse_args_and_arch`` is wrapped: when ``--bf16`` (or
   ``--memory-efficient-bf16``) is what set ``tpu``, that is, ``--tpu`` is not among the arguments
   and torch_xla is not installed, ``args.tpu`` goes back to False before the namespace becomes
   the config. The trainer then uses CUDA (or ``--cpu``) and ranks are inferred from torchrun or
   SLURM as without ``--bf16``. An explicit ``--tpu``, or any run where torch_xla is importable,
   keeps fairseq's behaviour.
2. ``fairseq.distributed.utils.call_main`` is wrapped: for a task that declares
   ``supports_bf16_autocast`` (csfair's pretraining tasks, through :class:`Bf16AutocastMixin`),
   ``--bf16`` means **bf16 autocast**: ``cfg.common.bf16`` (and ``memory_efficient_bf16``) is set
   to False so fairseq keeps the model, the batches and the optimizer in fp32,
   ``cfg.common.csfair_bf16_autocast = True`` records the mode (it is saved with the checkpoint's
   config), and ``main`` runs with autocast enabled in this process and in any process fairseq
   spawns from it. The task runs the forward pass (model and loss) under
   ``torch.autocast(device_type, dtype=torch.bfloat16)``; the backward pass runs outside it, as
   PyTorch recommends (its ops follow the dtypes autocast chose). Other tasks keep fairseq's own
   bf16 path (now on the GPU, with a warning that its resume is not exact).

Why autocast rather than fairseq's cast-everything bf16: the weights and the Adam state stay fp32
and are all in the checkpoint, so a resumed run continues bit for bit (what csfair's exact-resume
guarantee needs), and checkpoints are fp32 and load into stock fairseq (and export to Hugging
Face) unchanged. Matrix multiplications (attention projections, FFN, LM head) still run in bf16
on tensor cores; softmax, layer norm and the loss run in fp32 (autocast's fp32 list, fairseq's
``log_softmax(dtype=float32)``). bf16 has fp32's exponent range, so no loss scaling is needed.
The cost against fairseq's path: one bf16 copy of each weight per forward (autocast's cast cache)
instead of a bf16 model; memory for fp32 weights is the same as fairseq's fp32 master copies.
With ``--cpu --bf16`` autocast runs on the CPU (that is how it is tested without a GPU).

Errors: ``--bf16`` with ``--amp`` (fp16 autocast with loss scaling) raises ``ValueError``;
``--bf16`` with ``--fp16`` is refused by fairseq itself while parsing.
"""
import argparse
import contextlib
import functools
import importlib.util
import logging
import sys
from typing import Optional

import torch
from fairseq import options
from fairseq.distributed import utils as distributed_utils
from omegaconf import open_dict

logger = logging.getLogger(__name__)

# dtype of the autocast region of csfair tasks' forward passes in this process; None: off
_AUTOCAST_DTYPE: Optional[torch.dtype] = None


def set_autocast_dtype(dtype: Optional[torch.dtype]) -> None:
    """Turn the forward-pass autocast of :class:`Bf16AutocastMixin` tasks on (``torch.bfloat16``) or off (None)."""
    global _AUTOCAST_DTYPE
    _AUTOCAST_DTYPE = dtype


def autocast_for(model):
    """Context manager: ``torch.autocast`` on the device of ``model``'s parameters when enabled, else nothing.

    Args:
        model: a ``torch.nn.Module`` (fairseq model, possibly wrapped for distributed training).
    """
    dtype = _AUTOCAST_DTYPE
    if dtype is None:
        return contextlib.nullcontext()
    param = next(model.parameters(), None)
    device_type = param.device.type if param is not None else "cpu"
    return torch.autocast(device_type=device_type, dtype=dtype)


def _torch_xla_installed() -> bool:
    return importlib.util.find_spec("torch_xla") is not None


def tpu_given_explicitly(input_args=None) -> bool:
    """Whether ``--tpu`` is among the command-line arguments (``sys.argv[1:]`` when ``input_args`` is None).

    fairseq's parsers are built with ``allow_abbrev=False``, so only the exact flag counts.
    """
    argv = sys.argv[1:] if input_args is None else [str(a) for a in input_args]
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--tpu", action="store_true")
    try:
        known, _ = parser.parse_known_args(argv)
    except SystemExit:  # e.g. "--tpu=..."; fairseq's own parser reports it
        return "--tpu" in argv
    return bool(known.tpu)


def undo_implied_tpu(args: argparse.Namespace, input_args=None) -> bool:
    """Set ``args.tpu = False`` when only ``--bf16`` implied it; returns whether it did.

    Kept: an explicit ``--tpu``, and any run where torch_xla is installed (TPU machines, where
    ``--bf16`` alone meant TPU training in fairseq).
    """
    if not (getattr(args, "bf16", False) and getattr(args, "tpu", False)):
        return False
    if tpu_given_explicitly(input_args) or _torch_xla_installed():
        return False
    args.tpu = False
    return True


def _task_class(cfg):
    from fairseq.tasks import TASK_REGISTRY

    name = cfg.task.get("_name") if hasattr(cfg.task, "get") else getattr(cfg.task, "task", None)
    return TASK_REGISTRY.get(name)


def choose_bf16_mode(cfg) -> str:
    """Decide how a parsed config trains with ``--bf16`` and adjust it; returns the mode.

    Returns:
        ``"autocast"`` (task supports it: ``cfg.common.bf16``/``memory_efficient_bf16`` set to
        False, ``cfg.common.csfair_bf16_autocast`` set to True), ``"fairseq"`` (other tasks: fairseq's
        cast-to-bf16 path, unchanged), ``"tpu"`` (TPU mode kept) or ``"off"`` (no bf16).

    Raises:
        ValueError: ``--bf16`` together with ``--amp``.
    """
    common = cfg.common
    if common.get("csfair_bf16_autocast", False):
        return "autocast"  # already chosen (call_main called again with the same config)
    if not (common.get("bf16", False) or common.get("memory_efficient_bf16", False)):
        return "off"
    if common.get("tpu", False):
        return "tpu"
    task_cls = _task_class(cfg)
    if getattr(task_cls, "supports_bf16_autocast", False):
        if common.get("amp", False):
            raise ValueError("--bf16 and --amp cannot be combined: --bf16 already runs the forward pass under "
                             "bfloat16 autocast (fp32 weights); --amp is fp16 autocast with loss scaling")
        with open_dict(common):
            common.bf16 = False
            common.memory_efficient_bf16 = False
            common.csfair_bf16_autocast = True
        return "autocast"
    logger.warning(
        "--bf16 with task %s: fairseq's own bf16 (bf16 model, fp32 master copies in the optimizer); its "
        "checkpoints hold bf16 weights and no fp32 master copies, so a resumed run is not exact "
        "(csfair's pretraining tasks use bf16 autocast with fp32 weights instead)",
        getattr(task_cls, "__name__", "?"))
    return "fairseq"


def run_with_bf16_autocast(main, cfg, **kwargs):
    """Run fairseq's ``main(cfg, **kwargs)`` with the forward-pass bf16 autocast of csfair tasks enabled.

    A module-level function (wrapped with ``functools.partial``) so that fairseq's
    ``torch.multiprocessing.spawn`` can pickle it into each GPU process.
    """
    logger.info("bf16: forward passes under torch.autocast(bfloat16); fp32 weights, optimizer and checkpoints")
    previous = _AUTOCAST_DTYPE
    set_autocast_dtype(torch.bfloat16)
    try:
        return main(cfg, **kwargs)
    finally:
        set_autocast_dtype(previous)


def _wrap_parse_args_and_arch(original):
    @functools.wraps(original)
    def parse_args_and_arch(parser, input_args=None, parse_known=False, suppress_defaults=False,
                            modify_parser=None):
        out = original(parser, input_args=input_args, parse_known=parse_known,
                       suppress_defaults=suppress_defaults, modify_parser=modify_parser)
        args = out[0] if parse_known else out
        if undo_implied_tpu(args, input_args):
            logger.info("--bf16 without --tpu (and no torch_xla): not TPU mode (fairseq's 'bf16 implies tpu' undone)")
        return out

    parse_args_and_arch._csfair_bf16 = True
    return parse_args_and_arch


def _wrap_call_main(original):
    @functools.wraps(original)
    def call_main(cfg, main, **kwargs):
        if choose_bf16_mode(cfg) == "autocast":
            main = functools.partial(run_with_bf16_autocast, main)
        return original(cfg, main, **kwargs)

    call_main._csfair_bf16 = True
    return call_main


def install() -> None:
    """Wrap ``fairseq.options.parse_args_and_arch`` and ``fairseq.distributed.utils.call_main`` (once)."""
    if not getattr(options.parse_args_and_arch, "_csfair_bf16", False):
        options.parse_args_and_arch = _wrap_parse_args_and_arch(options.parse_args_and_arch)
    if not getattr(distributed_utils.call_main, "_csfair_bf16", False):
        distributed_utils.call_main = _wrap_call_main(distributed_utils.call_main)


class Bf16AutocastMixin:
    """Task mixin: with ``--bf16``, the forward pass of training and validation steps under bf16 autocast.

    Declares ``supports_bf16_autocast`` (read by :func:`choose_bf16_mode`); without ``--bf16`` the
    steps are fairseq's, unchanged.
    """

    supports_bf16_autocast = True

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if _AUTOCAST_DTYPE is None:
            return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        # FairseqTask.train_step with autocast around the forward pass (model and loss) only
        model.train()
        model.set_num_updates(update_num)
        with torch.autograd.profiler.record_function("forward"), autocast_for(model):
            loss, sample_size, logging_output = criterion(model, sample)
        if ignore_grad:
            loss *= 0
        with torch.autograd.profiler.record_function("backward"):
            optimizer.backward(loss)
        return loss, sample_size, logging_output

    def valid_step(self, sample, model, criterion):
        with autocast_for(model):
            return super().valid_step(sample, model, criterion)
