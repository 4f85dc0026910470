#!/usr/bin/env python
"""Held-out masked-LM accuracy of a checkpoint (Visser et al., 2025, Table 3).

Masks the held-out text of one language exactly as training does (fairseq's masking, seeded per
(seed, epoch=1, index), so every model is scored on the same masks), with code-switching off,
and reports the fraction of prediction positions whose argmax is the original token.

Usage:
    python scripts/eval_mlm.py --checkpoint checkpoints/en-fr/ibm1/checkpoint_last.pt \\
        --data data-bin/en-fr --lang fr --split test [--json results.json]
"""
import argparse
import json
import math
import os
import sys
import time
from argparse import Namespace

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def evaluate(checkpoint, data, lang, split="test", batch_size=64, seed=None, cpu=False, tokens_per_sample=None):
    """Return a dict with accuracy, loss (bits/token) and counts.

    Raises:
        FileNotFoundError: checkpoint or split missing.
    """
    from fairseq import checkpoint_utils, utils

    utils.import_user_module(Namespace(user_dir=os.path.join(ROOT, "user_dir")))
    if not os.path.exists(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint")
    overrides = {"data": data, "langs": lang or "", "cs_mode": "none", "cs_tables": "", "cs_table_name": ""}
    if seed is not None:
        overrides["seed"] = seed
    if tokens_per_sample is not None:
        overrides["tokens_per_sample"] = tokens_per_sample
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides=overrides)
    model = models[0]
    use_cuda = torch.cuda.is_available() and not cpu
    if use_cuda:
        model.cuda()
    model.eval()
    task.load_dataset(split, combine=False, epoch=1)
    dataset = task.dataset(split)
    itr = task.get_batch_iterator(
        dataset=dataset,
        max_sentences=batch_size,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        ignore_invalid_inputs=True,  # blocks longer than the model's positions are skipped, counted below
        seed=cfg.common.seed,
        num_workers=0,
    ).next_epoch_itr(shuffle=False)
    pad = task.source_dictionary.pad()
    n_correct = n_masked = n_sent = 0
    loss_sum = 0.0
    t0 = time.time()
    with torch.no_grad():
        for sample in itr:
            if use_cuda:
                sample = utils.move_to_cuda(sample)
            mask = sample["target"].ne(pad)
            if not mask.any():
                continue
            logits = model(**sample["net_input"], masked_tokens=mask)[0]
            targets = sample["target"][mask]
            loss_sum += torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item()
            n_correct += int((logits.argmax(-1) == targets).sum())
            n_masked += int(mask.sum())
            n_sent += int(sample["nsentences"])
    return dict(
        checkpoint=checkpoint, data=data, lang=lang, split=split, seed=cfg.common.seed,
        accuracy=n_correct / max(n_masked, 1), loss_bits=loss_sum / max(n_masked, 1) / math.log(2),
        masked_tokens=n_masked, blocks=n_sent, blocks_skipped_too_long=len(dataset) - n_sent,
        seconds=round(time.time() - t0, 2),
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="data-bin/<pair> (with one subdirectory per language)")
    p.add_argument("--lang", required=True, help="language subdirectory to score (e.g. fr)")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=None, help="masking seed (default: the checkpoint's)")
    p.add_argument("--tokens-per-sample", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--json", default=None, help="also write the result here")
    args = p.parse_args(argv)
    try:
        res = evaluate(args.checkpoint, args.data, args.lang, args.split, args.batch_size, args.seed, args.cpu,
                       args.tokens_per_sample)
    except FileNotFoundError as e:
        print(f"eval_mlm: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"MLM accuracy on held-out {args.lang} ({args.split}): {res['accuracy']:.4f} "
          f"({res['masked_tokens']} masked tokens in {res['blocks']} blocks, {res['blocks_skipped_too_long']} too long; "
          f"loss {res['loss_bits']:.3f} bits)")
    if args.json:
        sys.path.insert(0, ROOT)
        from csfair.io import atomic_write

        with atomic_write(args.json) as fh:
            fh.write(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
