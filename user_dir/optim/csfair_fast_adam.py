"""Optimizer ``csfair_fast_adam``: fairseq's ``adam`` update with multi-tensor (``torch._foreach``) ops.

fairseq's ``adam`` (``fairseq.optim.adam.Adam``, used whenever apex's FusedAdam is absent, as in
csfair's environments) updates one parameter at a time in Python:

    m = m * beta1 + (1 - beta1) * g
    v = v * beta2 + (1 - beta2) * g * g
    denom = sqrt(v) + eps                               # eps outside the bias correction
    step_size = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    p = p + (-weight_decay * lr) * p                    # decoupled decay, before the Adam step
    p = p - step_size * m / denom

(Loshchilov & Hutter, "Decoupled Weight Decay Regularization"; fairseq/optim/adam.py). This
optimizer performs exactly these tensor operations, in the same order and with the same Python
float scalars, as a handful of ``torch._foreach_*`` calls over all parameters instead of ~10 kernel
launches per parameter. PyTorch's own ``Adam``/``AdamW`` (fused or foreach) are *not* the same
update: they divide ``sqrt(v)`` by ``sqrt(1 - beta2**t)`` before adding eps, and decay with
``p * (1 - lr * wd)``, so they are not used.

Equality: on CPU the foreach ops run the per-tensor kernels, so the update is bit-identical to
fairseq's (tests/test_fast_encoder.py). On CUDA the multi-tensor kernels evaluate the same
expressions in float32; the per-tensor and multi-tensor kernels may differ in fused multiply-add
contraction (at most one rounding per operation).

Half-precision handling is fairseq's: fp16/bf16 gradients and parameters are updated through float32
copies, moments are float32, and the result is copied back. The state dict has fairseq's format
(per parameter ``step`` as a Python int, ``exp_avg``, ``exp_avg_sq``; groups with ``lr``, ``betas``,
``eps``, ``weight_decay``, ``amsgrad``), so optimizer states load across ``adam`` and
``csfair_fast_adam``. fairseq's trainer also compares the optimizer's class name stored in a
checkpoint; with ``--fp16``/``--bf16`` both are recorded as ``FP16Optimizer`` and resume across
directly; in fp32 use :func:`retag_checkpoint` first (the states themselves need no conversion).
"""
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import List

import torch
from fairseq.optim import FairseqOptimizer, register_optimizer
from fairseq.optim.adam import FairseqAdamConfig
from omegaconf import OmegaConf

# Elements per multi-tensor call. On CUDA few large calls save kernel launches (~10 per parameter
# tensor in fairseq's loop). On CPU the foreach ops loop over the tensors anyway, and one op over
# a large chunk streams it from memory where fairseq's per-tensor sequence reuses the cache: chunks
# of ~2**17 elements (0.5 MB per float32 array, the five arrays of a chunk within L2) keep CPU
# steps at fairseq's speed or slightly better (one thread, 20M parameters, measured twice: 88 and
# 83 ms vs fairseq's 90 and 91 ms; 121 and 102 ms with chunks of 2**25).
CHUNK_ELEMENTS = {"cuda": 1 << 25, "cpu": 1 << 17}
_DEFAULT_CHUNK = 1 << 25
_HALF = (torch.float16, torch.bfloat16)


@dataclass
class CsfairFastAdamConfig(FairseqAdamConfig):
    """The options of fairseq's ``adam`` (``--adam-betas``, ``--adam-eps``, ``--weight-decay``);
    ``--fp16-adam-stats`` needs apex's FusedAdamV1 and is refused, as by fairseq without apex."""


class CsfairForeachAdam(torch.optim.Optimizer):
    """fairseq's ``Adam`` (AdamW-style decay) with ``torch._foreach`` ops; see the module docstring.

    Args:
        params: parameters or parameter groups (dense gradients; float32, float16 or bfloat16).
        lr (float), betas (Tuple[float, float]), eps (float), weight_decay (float), amsgrad (bool):
            as ``fairseq.optim.adam.Adam``.

    Raises:
        RuntimeError: a sparse gradient (as fairseq).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    @property
    def supports_memory_efficient_fp16(self):
        return True

    @property
    def supports_flat_params(self):
        return True

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            limit = CHUNK_ELEMENTS.get(params[0].device.type, _DEFAULT_CHUNK) if params else 0
            chunk, size = [], 0
            for p in params:
                if chunk and (size + p.numel() > limit or p.device != chunk[0].device):
                    self._update(group, chunk)
                    chunk, size = [], 0
                chunk.append(p)
                size += p.numel()
                if size >= limit:
                    self._update(group, chunk)
                    chunk, size = [], 0
            if chunk:
                self._update(group, chunk)
        return loss

    def _update(self, group, params: List[torch.Tensor]) -> None:
        amsgrad = group.get("amsgrad", False)
        beta1, beta2 = group["betas"]
        grads, p32s, exp_avgs, exp_avg_sqs, max_sqs, step_sizes = [], [], [], [], [], []
        for p in params:
            grad = p.grad
            if grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
            if grad.dtype in _HALF:
                grad = grad.float()
            p32 = p.float() if p.dtype in _HALF else p
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p32)
                state["exp_avg_sq"] = torch.zeros_like(p32)
                if amsgrad:
                    state["max_exp_avg_sq"] = torch.zeros_like(p32)
            else:
                # as fairseq: a loaded state follows the (float32) parameter's dtype and device
                for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ()):
                    state[key] = state[key].to(p32)
            state["step"] += 1
            grads.append(grad)
            p32s.append(p32)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if amsgrad:
                max_sqs.append(state["max_exp_avg_sq"])
            bias_correction1 = 1 - beta1 ** state["step"]
            bias_correction2 = 1 - beta2 ** state["step"]
            step_sizes.append(-(group["lr"] * math.sqrt(bias_correction2) / bias_correction1))

        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        if amsgrad:
            torch._foreach_maximum_(max_sqs, exp_avg_sqs)
            denoms = torch._foreach_sqrt(max_sqs)
        else:
            denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denoms, group["eps"])
        if group["weight_decay"] != 0:
            torch._foreach_add_(p32s, p32s, alpha=-group["weight_decay"] * group["lr"])
        torch._foreach_addcdiv_(p32s, exp_avgs, denoms, step_sizes)
        halves = [(p, p32) for p, p32 in zip(params, p32s) if p.dtype in _HALF]
        if halves:
            torch._foreach_copy_([p for p, _ in halves], [p32 for _, p32 in halves])


@register_optimizer("csfair_fast_adam", dataclass=CsfairFastAdamConfig)
class CsfairFastAdam(FairseqOptimizer):
    """fairseq's ``adam`` optimizer (same options, update and state dict) with multi-tensor ops."""

    def __init__(self, cfg: CsfairFastAdamConfig, params):
        super().__init__(cfg)
        if getattr(cfg, "fp16_adam_stats", False):
            raise NotImplementedError("--fp16-adam-stats is only supported with apex's FusedAdamV1 "
                                      "(optimizer adam with apex installed)")
        self._optimizer = CsfairForeachAdam(params, **self.optimizer_config)

    @property
    def optimizer_config(self):
        """Overrides of the stored optimizer arguments (as fairseq's ``adam``)."""
        return {
            "lr": self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr,
            "betas": eval(self.cfg.adam_betas) if isinstance(self.cfg.adam_betas, str)
            else OmegaConf.to_container(self.cfg.adam_betas),
            "eps": self.cfg.adam_eps,
            "weight_decay": self.cfg.weight_decay,
        }

    def average_params(self):
        """BMUF: average the moments over workers (as fairseq's ``adam``)."""
        import torch.distributed as dist

        total = float(dist.get_world_size())
        for value in self.optimizer.state_dict()["state"].values():
            value["exp_avg"] /= total
            value["exp_avg_sq"] /= total
            dist.all_reduce(value["exp_avg"], op=dist.ReduceOp.SUM)
            dist.all_reduce(value["exp_avg_sq"], op=dist.ReduceOp.SUM)


# class names fairseq's trainer records for the two optimizers (fp32 training)
_NAMES = {"adam": "FairseqAdam", "csfair_fast_adam": "CsfairFastAdam"}


def retag_checkpoint(src: str, dst: str, optimizer: str) -> str:
    """Write ``src`` to ``dst`` with its optimizer recorded as ``optimizer`` (``adam`` or ``csfair_fast_adam``).

    fairseq's trainer refuses to resume when the recorded optimizer class differs from the current
    one; the two optimizers' states are identical in format, so only the name changes. Returns the
    previous recorded name.

    Raises:
        ValueError: unknown ``optimizer``, or the checkpoint's optimizer is neither of the two.
    """
    from csfair.io import atomic_write

    from ..checkpoint_loading import read_checkpoint

    if optimizer not in _NAMES:
        raise ValueError(f"optimizer must be one of {sorted(_NAMES)}, not {optimizer!r}")
    state = read_checkpoint(str(src))
    last = state["optimizer_history"][-1]
    old = last.get("optimizer_name")
    if old not in set(_NAMES.values()) | {"FP16Optimizer", "MemoryEfficientFP16Optimizer"}:
        raise ValueError(f"{src}: optimizer {old!r} is not fairseq's adam or csfair_fast_adam")
    if old in _NAMES.values():
        last["optimizer_name"] = _NAMES[optimizer]
    with atomic_write(dst, "wb") as fh:
        torch.save(state, fh)
    return old
