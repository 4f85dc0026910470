#!/usr/bin/env python
"""Cost of code-switching: the dataset wrapper alone, and whole training steps.

Measured in one run, against a baseline measured in the same run:

1. wrapper: microseconds per item and tokens/s of ``CodeSwitchMaskTokensDataset`` with
   ``--cs-mode none`` (fairseq's masking only) and ``multiview`` (masking + code-switching), on
   the recipe's real training data, alternating modes over several rounds;
2. training: ``fairseq-train`` tokens/s (fairseq's ``wps``) of stock ``--task masked_lm`` and of
   ``codeswitch_masked_lm`` with ``--cs-mode none``, ``static`` and ``multiview`` on the same (French)
   data, model, seed and number of updates, runs interleaved; ratios to stock, pair by pair.

Usage (after ``bash scripts/recipes/en-fr.sh`` has built data-bin/en-fr):
    python bench/cs_overhead.py [--data data-bin/en-fr] [--updates 60] [--repeats 3]
Writes bench/results/cs_overhead.json and prints a Markdown table.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_wrapper(data, langs, n_items, rounds):
    import numpy as np

    import user_dir  # noqa: F401
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    out = {}
    for mode in ("none", "multiview") * rounds:
        cfg = CodeSwitchMaskedLMConfig(data=data, langs=langs, cs_mode=mode, cs_table_name="" if mode == "none" else "ibm1",
                                       tokens_per_sample=128, sample_break_mode="complete", seed=1)
        task = CodeSwitchMaskedLMTask.setup_task(cfg)
        task.load_dataset("train")
        wrapper = task._wrappers[-1]
        idx = np.random.default_rng(0).choice(len(wrapper), size=min(n_items, len(wrapper)), replace=False)
        wrapper.set_epoch(1)
        for i in idx[:50]:  # warm-up (page in the table)
            wrapper.dataset[int(i)]
        t0 = time.perf_counter()
        ntok = 0
        for epoch, i in enumerate(idx):
            wrapper.set_epoch(2 + epoch % 3)
            ntok += len(wrapper[int(i)]["source"])
        dt = time.perf_counter() - t0
        out.setdefault(mode, []).append(dict(us_per_item=dt / len(idx) * 1e6, tokens_per_s=ntok / dt))
    return out


def bench_training(data, updates, repeats):
    """Interleaved fairseq-train runs on the French training data: stock masked_lm and ours."""
    model = ["--arch", "cs_roberta_tiny", "--tokens-per-sample", "128", "--sample-break-mode", "complete",
             "--optimizer", "adam", "--lr", "5e-4", "--lr-scheduler", "fixed", "--batch-size", "32",
             "--max-update", str(updates), "--log-format", "simple", "--log-interval", str(updates), "--seed", "1",
             "--num-workers", "1", "--no-save", "--disable-validation", "--cpu",
             "--user-dir", os.path.join(ROOT, "user_dir")]
    ours = [data, "--task", "codeswitch_masked_lm", "--langs", "fr", "--criterion", "masked_lm"]
    modes = {
        "stock_masked_lm": [os.path.join(data, "fr"), "--task", "masked_lm", "--criterion", "masked_lm"],
        "none": ours + ["--cs-mode", "none"],
        "static": ours + ["--cs-mode", "static", "--cs-tables", "fr:tables/ibm1.fr-en"],
        "multiview": ours + ["--cs-mode", "multiview", "--cs-tables", "fr:tables/ibm1.fr-en"],
    }
    out = {m: [] for m in modes}
    for _ in range(repeats):
        for m, args in modes.items():
            p = subprocess.run([sys.executable, "-m", "fairseq_cli.train", *args, *model],
                               capture_output=True, text=True, cwd=ROOT)
            log = p.stdout + p.stderr
            if p.returncode != 0:
                raise RuntimeError(log[-3000:])
            out[m].append(float(re.findall(r"\| train \|.*?\| wps ([0-9.]+)", log)[-1]))
    ratios = {m: [b / a for a, b in zip(out["stock_masked_lm"], out[m])] for m in modes if m != "stock_masked_lm"}
    return out, ratios


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "data-bin", "en-fr"))
    p.add_argument("--langs", default="en,fr")
    p.add_argument("--items", type=int, default=3000, help="items timed per wrapper round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--updates", type=int, default=60, help="updates per training run")
    p.add_argument("--repeats", type=int, default=3, help="interleaved training pairs")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "cs_overhead.json"))
    args = p.parse_args()

    import torch

    wrapper = bench_wrapper(args.data, args.langs, args.items, args.rounds)
    train, ratios = bench_training(args.data, args.updates, args.repeats)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    res = dict(
        machine=dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                     cpus=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads()),
        data=args.data,
        wrapper={m: dict(us_per_item=med([r["us_per_item"] for r in rs]), tokens_per_s=med([r["tokens_per_s"] for r in rs]),
                         rounds=rs) for m, rs in wrapper.items()},
        training=dict(wps=train, median_wps={m: med(v) for m, v in train.items()}, ratio_over_stock=ratios,
                      median_ratio_over_stock={m: med(v) for m, v in ratios.items()}, updates=args.updates,
                      data="French training split", model="cs_roberta_tiny", batch="32 x <=128 tokens"),
    )
    res["wrapper"]["us_added_per_item"] = res["wrapper"]["multiview"]["us_per_item"] - res["wrapper"]["none"]["us_per_item"]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)
    w, t = res["wrapper"], res["training"]
    print("| measure | --cs-mode none | --cs-mode multiview | ratio |")
    print("|---|---|---|---|")
    print(f"| wrapper µs/item (median of {args.rounds}) | {w['none']['us_per_item']:.1f} | {w['multiview']['us_per_item']:.1f} "
          f"| {w['multiview']['us_per_item'] / w['none']['us_per_item']:.2f} |")
    print(f"| wrapper tokens/s | {w['none']['tokens_per_s']:,.0f} | {w['multiview']['tokens_per_s']:,.0f} | "
          f"{w['multiview']['tokens_per_s'] / w['none']['tokens_per_s']:.2f} |")
    print()
    print("| training (French data, interleaved) | tokens/s (median) | ratio to stock masked_lm (pairwise median) |")
    print("|---|---|---|")
    for m, v in t["median_wps"].items():
        r = "1" if m == "stock_masked_lm" else f"{t['median_ratio_over_stock'][m]:.3f}"
        print(f"| {m} | {v:,.0f} | {r} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
