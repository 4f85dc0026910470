#!/usr/bin/env python
"""Did a fairseq training run reach its target? Read from its checkpoint, not from its existence.

A run is finished when its last checkpoint holds ``num_updates >= --max-update`` (when set) or
``--max-epoch`` completed epochs (when set): a run killed at update 5 of 200 leaves a
``checkpoint_last.pt`` too (csfair issue 21). The targets are the run's own options, as stored in
the checkpoint (so ``-- --max-update N`` overrides of the recipe count).

Usage:
    python scripts/training_progress.py checkpoints/en-fr/ibm1/checkpoint_last.pt [--json]

Prints one line (``update 800 of 800 (epoch 3 done)``) and exits 0 when the target is reached,
1 when it is not, 2 when the checkpoint cannot be read (the reason, naming the file).
"""
import argparse
import json
import os
import sys


def progress(path: str) -> dict:
    """``{"num_updates", "epochs_done", "max_update", "max_epoch", "reached"}`` of a fairseq checkpoint.

    ``epochs_done``: epochs completed (fairseq stores the *next* epoch in the iterator state once an
    epoch ends). ``reached``: ``max_update > 0 and num_updates >= max_update`` or ``max_epoch > 0 and
    epochs_done >= max_epoch``; False when neither limit is set.

    Raises:
        FileNotFoundError, user_dir.checkpoint_loading.CheckpointError, KeyError, ...: the file is
            missing, truncated or not a fairseq checkpoint (callers report it with the path).
    """
    from user_dir.checkpoint_loading import read_checkpoint  # safe loading (docs/guarantees.md)

    state = read_checkpoint(path, mmap=True)
    num_updates = int(state["optimizer_history"][-1]["num_updates"])
    itr = (state.get("extra_state") or {}).get("train_iterator") or {}
    epoch, in_epoch = int(itr.get("epoch", 1)), int(itr.get("iterations_in_epoch", 0))
    epochs_done = epoch - 1  # both when an epoch just ended (epoch = next one, 0 iterations) and mid-epoch
    cfg = state.get("cfg")
    if cfg is not None:
        opt = cfg["optimization"]
        max_update, max_epoch = int(opt.get("max_update") or 0), int(opt.get("max_epoch") or 0)
    else:  # checkpoints of older fairseq versions keep an argparse Namespace
        args = state["args"]
        max_update, max_epoch = int(getattr(args, "max_update", 0) or 0), int(getattr(args, "max_epoch", 0) or 0)
    reached = (max_update > 0 and num_updates >= max_update) or (max_epoch > 0 and epochs_done >= max_epoch)
    return dict(num_updates=num_updates, epochs_done=epochs_done, iterations_in_epoch=in_epoch,
                max_update=max_update, max_epoch=max_epoch, reached=bool(reached))


def describe(p: dict) -> str:
    parts = []
    if p["max_update"]:
        parts.append(f"update {p['num_updates']} of {p['max_update']}")
    else:
        parts.append(f"update {p['num_updates']}")
    if p["max_epoch"]:
        parts.append(f"{p['epochs_done']} of {p['max_epoch']} epochs done")
    else:
        parts.append(f"{p['epochs_done']} epoch(s) done")
    return ", ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--json", action="store_true", help="print the progress as JSON")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        print(f"{args.checkpoint}: no such checkpoint", file=sys.stderr)
        return 2
    try:
        p = progress(args.checkpoint)
    except Exception as e:  # any unreadable checkpoint: one line naming the file
        print(f"{args.checkpoint}: not a readable fairseq checkpoint ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    print(json.dumps(p) if args.json else describe(p))
    return 0 if p["reached"] else 1


if __name__ == "__main__":
    sys.exit(main())
