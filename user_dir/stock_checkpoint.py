"""A copy of a csfair pretraining checkpoint that stock fairseq loads, without ``--user-dir``.

csfair's checkpoints hold stock RoBERTa's parameters under stock names (``cs_roberta_*``,
``csfair_roberta_fast_*`` and ``tlm_roberta_*`` are fairseq's RoBERTa module tree), but stock fairseq
refuses them as they are:

* the model state has ``csfair_provenance._extra_state`` (csfair version, dictionary and table
  checksums; ``user_dir/models/checkpoint_provenance.py``), which a strict load into
  ``RobertaModel`` rejects as an unexpected key;
* the recorded configuration names csfair's registries (architecture, task
  ``codeswitch_masked_lm``/``weam_masked_lm``/``tlm_masked_lm``, criterion ``cs_masked_lm``/``weam_loss``,
  optimizer ``csfair_fast_adam``) and carries their extra options, which stock fairseq cannot
  resolve (``setup_task`` merges the task options into ``MaskedLMConfig`` and fails on unknown keys),
  and ``common.user_dir``;
* it pickles ``argparse.Namespace`` and fairseq's meter objects, so that torch >= 2.6, which loads with
  ``weights_only=True`` by default, refuses the file unless ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.

:func:`write_stock_checkpoint` writes the same weights with a stock configuration (architecture
``roberta`` with every hyperparameter recorded explicitly, task and criterion ``masked_lm``, optimizer
``adam``; options stock fairseq does not know are dropped, and listed), as plain containers only, so
that ``RobertaModel.from_pretrained(DIR, "stock.pt", data_name_or_path=...)`` of stock fairseq loads
it strictly, also with ``weights_only=True``. The optimizer state is not copied (the copy is for
loading, fine-tuning and export, not for resuming csfair's run). The provenance record is kept
outside the model state, under the top-level key ``"csfair"``.

Usage: ``python -m user_dir.stock_checkpoint checkpoints/en-fr/ibm1/checkpoint_last.pt stock.pt``
(``tests/test_stock_checkpoint.py`` loads the copy in a process that imports no csfair code).
"""
import argparse
import dataclasses
import json
import os
import sys
from argparse import Namespace
from typing import Any, Dict, Optional

import torch

#: csfair's RoBERTa architectures (same module tree and parameter names as fairseq's ``roberta``)
ROBERTA_ARCHS = ("cs_roberta_base", "cs_roberta_tiny", "csfair_roberta_fast", "csfair_roberta_fast_base",
                 "csfair_roberta_fast_tiny", "tlm_roberta", "tlm_roberta_base", "tlm_roberta_tiny", "roberta",
                 "roberta_base", "roberta_large")
#: csfair's pretraining tasks and criteria, all masked language modelling over one dictionary
MLM_TASKS = ("codeswitch_masked_lm", "weam_masked_lm", "tlm_masked_lm", "masked_lm")
MLM_CRITERIA = ("cs_masked_lm", "weam_loss", "masked_lm")


def _plain(x: Any) -> Any:
    """``x`` as plain Python containers and scalars (what ``torch.load(weights_only=True)`` accepts)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(x, (DictConfig, ListConfig)):
        return _plain(OmegaConf.to_container(x, resolve=True))
    if isinstance(x, Namespace):
        return _plain(vars(x))
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and getattr(x, "shape", None) == ():  # numpy / torch scalars
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def _fields(dc) -> set:
    return {f.name for f in dataclasses.fields(dc)} | {"_name"}


def stock_config(cfg: Dict[str, Any], data: Optional[str] = None, spm: Optional[str] = None) -> tuple:
    """The stock fairseq configuration of a csfair pretraining run.

    Args:
        cfg: the checkpoint's ``cfg`` as plain containers.
        data: ``task.data`` of the copy (a folder with ``dict.txt``); default: the run's data folder, or
            its first language's sub-folder where that holds the dictionary (csfair's multilingual layout).
        spm: the sentencepiece model of the data (``bpe`` of the copy, so that the stock hub interface's
            ``encode`` uses it); default: ``spm.model`` in the data folder or its parent (where csfair's
            recipes put it), else no bpe (fairseq's default, gpt2, would fetch its files from the internet).

    Returns:
        ``(cfg, dropped)``: the new configuration and ``{"group.key": value}`` of what was left out.

    Raises:
        ValueError: not a RoBERTa masked-LM pretraining checkpoint (a fine-tuned model's heads have no stock class).
    """
    from fairseq.criterions.masked_lm import MaskedLmConfig
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.optim.adam import FairseqAdamConfig
    from fairseq.tasks.masked_lm import MaskedLMConfig

    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    dropped = {}
    model = dict(out.get("model") or {})
    arch = model.get("arch") or model.get("_name")
    if arch not in ROBERTA_ARCHS:
        raise ValueError(f"not a RoBERTa checkpoint (architecture {arch!r}; known: {', '.join(ROBERTA_ARCHS)})")
    model["_name"] = model["arch"] = "roberta"  # every hyperparameter is recorded: nothing is filled from the name
    out["model"] = model
    task = dict(out.get("task") or {})
    if task.get("_name") not in MLM_TASKS:
        raise ValueError(f"task {task.get('_name')!r} is not masked-LM pretraining ({', '.join(MLM_TASKS)}): a "
                         "fine-tuned csfair model has heads stock fairseq has no class for")
    if data is None and task.get("data"):
        root = str(task["data"]).split(os.pathsep)[0]
        langs = [x for x in str(task.get("langs") or "").split(",") if x]
        data = os.path.join(root, langs[0]) if langs and os.path.exists(os.path.join(root, langs[0], "dict.txt")) else root
    keep = _fields(MaskedLMConfig)
    dropped.update({f"task.{k}": v for k, v in task.items() if k not in keep})
    task = {k: v for k, v in task.items() if k in keep}
    task.update(_name="masked_lm", data=data)
    out["task"] = task
    crit = dict(out.get("criterion") or {})
    if crit.get("_name") not in MLM_CRITERIA:
        raise ValueError(f"criterion {crit.get('_name')!r} is not a masked-LM loss ({', '.join(MLM_CRITERIA)})")
    keep = _fields(MaskedLmConfig)
    dropped.update({f"criterion.{k}": v for k, v in crit.items() if k not in keep})
    out["criterion"] = dict({k: v for k, v in crit.items() if k in keep}, _name="masked_lm")
    opt = dict(out.get("optimizer") or {})
    if opt.get("_name") in ("adam", "csfair_fast_adam"):  # the same update and state format
        keep = _fields(FairseqAdamConfig)
        dropped.update({f"optimizer.{k}": v for k, v in opt.items() if k not in keep})
        out["optimizer"] = dict({k: v for k, v in opt.items() if k in keep}, _name="adam")
    # the other groups are fairseq's own dataclasses: options csfair added to them (e.g. common.csfair_*) go
    for f in dataclasses.fields(FairseqConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        group = out.get(f.name)
        if isinstance(group, dict) and dataclasses.is_dataclass(default):
            keep = _fields(default if isinstance(default, type) else type(default))
            dropped.update({f"{f.name}.{k}": v for k, v in group.items() if k not in keep})
            out[f.name] = {k: v for k, v in group.items() if k in keep}
    if spm is None and data:
        spm = next((c for c in (os.path.join(data, "spm.model"), os.path.join(os.path.dirname(
            os.path.normpath(data)), "spm.model")) if os.path.exists(c)), None)
    if out.get("bpe") is not None:
        dropped["bpe"] = out["bpe"]
    out["bpe"] = {"_name": "sentencepiece", "sentencepiece_model": os.path.abspath(spm),
                  "sentencepiece_enable_sampling": False, "sentencepiece_alpha": None} if spm else None
    if isinstance(out.get("common"), dict) and out["common"].get("user_dir"):
        dropped["common.user_dir"] = out["common"]["user_dir"]
        out["common"]["user_dir"] = None
    return out, dropped


def write_stock_checkpoint(src: str, dst: str, data: Optional[str] = None, spm: Optional[str] = None) -> dict:
    """Write a copy of the csfair checkpoint ``src`` that stock fairseq's RoBERTa loads strictly (module docstring).

    Args:
        src: a checkpoint of csfair's pretraining (``codeswitch_masked_lm``, ``weam_masked_lm``,
            ``tlm_masked_lm``; any of csfair's RoBERTa architectures).
        dst: the copy (written atomically; its folder is created).
        data: ``task.data`` recorded in the copy (see :func:`stock_config`).
        spm: the sentencepiece model recorded as the copy's ``bpe`` (see :func:`stock_config`).

    Returns:
        a summary: ``{"src", "dst", "tensors", "dropped_state_keys", "dropped_options", "provenance"}``.

    Raises:
        ValueError: not a RoBERTa masked-LM checkpoint, or a model key that is neither a tensor nor csfair's.
    """
    from csfair.io import atomic_write

    state = torch.load(src, map_location="cpu", weights_only=False)
    if state.get("cfg") is None:
        raise ValueError(f"{src}: no 'cfg' in the checkpoint (not written by fairseq >= 0.10)")
    weights, dropped_keys, provenance = {}, [], None
    for k, v in state["model"].items():
        if k.startswith("csfair_provenance."):
            dropped_keys.append(k)
            provenance = _plain(v)
        elif torch.is_tensor(v):
            weights[k] = v
        else:
            raise ValueError(f"{src}: model state key {k!r} holds a {type(v).__name__}, not a tensor")
    cfg, dropped = stock_config(_plain(state["cfg"]), data, spm)
    last = state.get("optimizer_history", [{}])[-1]
    extra = state.get("extra_state") or {}
    out = {
        "cfg": cfg,
        "args": None,
        "model": weights,
        "optimizer_history": [{
            "criterion_name": "MaskedLmLoss", "optimizer_name": "FairseqAdam",
            "lr_scheduler_state": _plain(last.get("lr_scheduler_state") or {}),
            "num_updates": int(last.get("num_updates", 0)),
        }],
        "extra_state": {"epoch": int(extra.get("epoch", 1)),
                        "train_iterator": _plain(extra.get("train_iterator") or {"epoch": 1}),
                        "previous_training_time": float(extra.get("previous_training_time", 0.0))},
        "last_optimizer_state": None,
        "csfair": {"provenance": provenance, "source": os.path.abspath(src),
                   "source_arch": _plain(state["cfg"]["model"]).get("arch"),
                   "source_task": _plain(state["cfg"]["task"]).get("_name"), "dropped_options": dropped},
    }
    os.makedirs(os.path.dirname(os.path.abspath(dst)) or ".", exist_ok=True)
    with atomic_write(dst, "wb") as fh:
        torch.save(out, fh)
    torch.load(dst, map_location="cpu", weights_only=True)  # plain containers only: torch >= 2.6 loads it as is
    return dict(src=src, dst=dst, tensors=len(weights), bpe=cfg["bpe"], dropped_state_keys=dropped_keys,
                dropped_options=sorted(dropped), provenance=provenance)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m user_dir.stock_checkpoint", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="csfair checkpoint (e.g. checkpoints/en-fr/ibm1/checkpoint_last.pt)")
    p.add_argument("dst", help="the stock-loadable copy")
    p.add_argument("--data", default=None, help="task.data recorded in the copy (a folder with dict.txt)")
    p.add_argument("--spm", default=None, help="sentencepiece model recorded as the copy's bpe (default: spm.model "
                                                "next to the data)")
    args = p.parse_args(argv)
    try:
        summary = write_stock_checkpoint(args.src, args.dst, args.data, args.spm)
    except (ValueError, FileNotFoundError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
