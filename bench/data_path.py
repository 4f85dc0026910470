#!/usr/bin/env python
"""Data path throughput: what one DataLoader worker does per batch, on one core.

A fairseq DataLoader worker, for every batch, fetches each item of the batch from the task's
training dataset (``SortDataset(NestedDictionaryDataset(...))``: token block, ``<s>``, masking,
code-switching, every field) and collates them (padding, stacking, the code-switching stats).
This script times exactly that -- ``dataset.collater([dataset[i] for i in batch])`` -- for
``--cs-mode none`` and ``multiview`` on the recipe's real en+fr training blocks, modes interleaved
over several rounds (each round a fresh epoch, so nothing is served from a cache), one thread.

Reported: tokens/s (non-padding input tokens, fairseq's ``ntokens``, after substitution) and
microseconds per item, medians over rounds, and the multiview/none ratio. ``--profile MODE``
prints a cProfile of one round instead.

Usage (after ``bash scripts/recipes/en-fr.sh`` has built data-bin/en-fr):
    OMP_NUM_THREADS=1 python bench/data_path.py [--data data-bin/en-fr] [--items 3072] [--rounds 5]
    [--batch-size 256] [--label after]
Writes (merges into) bench/results/data_path.json under ``--label`` and prints a Markdown table.
"""
import argparse
import json
import os
import platform
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(data, langs, mode, tokens_per_sample=128, seed=1):
    """The task's training dataset (what fairseq's DataLoader workers index) for one mode."""
    import user_dir  # noqa: F401
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    cfg = CodeSwitchMaskedLMConfig(data=data, langs=langs, cs_mode=mode, cs_table_name="" if mode == "none" else "ibm1",
                                   tokens_per_sample=tokens_per_sample, sample_break_mode="complete", seed=seed)
    task = CodeSwitchMaskedLMTask.setup_task(cfg)
    task.load_dataset("train")
    return task.dataset("train")


def batches_of(ds, n_items, bsz, max_len=128):
    """Batches of random item ids (the items a model of ``max_len`` positions trains on)."""
    import numpy as np

    sizes = ds.sizes[0] if isinstance(ds.sizes, list) else ds.sizes
    ok = np.flatnonzero(np.asarray(sizes) <= max_len)
    idx = np.random.default_rng(0).choice(ok, size=min(n_items, len(ok)), replace=False)
    return [idx[i:i + bsz].tolist() for i in range(0, len(idx), bsz)]


def time_round(ds, batches, epoch):
    """Seconds and tokens for the worker's work on ``batches`` in ``epoch``."""
    ds.set_epoch(epoch)
    ntok = nitems = 0
    t0 = time.process_time()  # CPU time of this (single-threaded) process: the per-core cost
    for b in batches:
        sample = ds.collater([ds[i] for i in b])
        ntok += sample["ntokens"]
        nitems += len(b)
    return time.process_time() - t0, ntok, nitems


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "data-bin", "en-fr"), help="data-bin of the pair (en-fr recipe)")
    p.add_argument("--langs", default="en,fr", help="languages (subdirectories of --data)")
    p.add_argument("--items", type=int, default=3072, help="items per round (random training blocks)")
    p.add_argument("--batch-size", type=int, default=256, help="items per batch (the issue's GPU batch: 256)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per mode (medians reported)")
    p.add_argument("--modes", default="none,multiview", help="comma-separated --cs-mode values")
    p.add_argument("--label", default="current", help="key of this run in the JSON (e.g. before / after)")
    p.add_argument("--append", action="store_true",
                   help="add this run's rounds to those already stored under --label (to interleave runs of two "
                        "code trees, e.g. before/after, over several invocations); medians are over all rounds")
    p.add_argument("--profile", default="", help="print a cProfile of one round of this mode and exit")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "data_path.json"), help="JSON to merge into")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    modes = args.modes.split(",")
    sets = {m: build(args.data, args.langs, m) for m in modes}
    batches = batches_of(sets[modes[0]], args.items, args.batch_size)
    for m in modes:  # warm-up: page in data and tables
        time_round(sets[m], batches[:2], 1)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        time_round(sets[args.profile], batches, 2)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return
    rounds = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in modes:
            dt, ntok, nitems = time_round(sets[m], batches, 2 + r)
            rounds[m].append(dict(tokens_per_s=ntok / dt, us_per_item=dt / nitems * 1e6, tokens=int(ntok), items=nitems))
    allres = {}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            allres = json.load(fh)
    if args.append and args.label in allres:
        for m in modes:
            rounds[m] = allres[args.label]["rounds"].get(m, []) + rounds[m]
    med = {m: dict(tokens_per_s=statistics.median(x["tokens_per_s"] for x in rs),
                   us_per_item=statistics.median(x["us_per_item"] for x in rs)) for m, rs in rounds.items()}
    res = dict(machine=dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                            cpus=os.cpu_count(), python=platform.python_version(), torch=torch.__version__,
                            threads=torch.get_num_threads()),
               data=os.path.abspath(args.data), langs=args.langs, items=args.items, batch_size=args.batch_size,
               rounds=rounds, median=med, code=ROOT,
               what="DataLoader worker's per-batch work: collater([dataset[i] for i in batch]) of the task's training "
                    "dataset (block, <s>, masking, code-switching, collate); tokens = fairseq ntokens; one thread; "
                    "time = process CPU time (time.process_time), i.e. per core")
    if "none" in med and "multiview" in med:
        res["multiview_over_none"] = med["multiview"]["tokens_per_s"] / med["none"]["tokens_per_s"]
    allres[args.label] = res
    from csfair.io import atomic_write

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with atomic_write(args.out) as fh:
        json.dump(allres, fh, indent=2)
    print(f"| {args.label}: --cs-mode | tokens/s per core (median of {len(rounds[modes[0]])}) | µs/item | rounds (tokens/s) |")
    print("|---|---|---|---|")
    for m in modes:
        print(f"| {m} | {med[m]['tokens_per_s']:,.0f} | {med[m]['us_per_item']:.1f} | "
              f"{', '.join(format(x['tokens_per_s'], ',.0f') for x in rounds[m])} |")
    if "multiview_over_none" in res:
        print(f"multiview / none: {res['multiview_over_none']:.3f}")
    print(f"wrote {args.out} [{args.label}]")


if __name__ == "__main__":
    main()
