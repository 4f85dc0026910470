#!/usr/bin/env python
"""False-positive rate and power of the zero-shot tables' significance test, by seed count.

Simulated comparisons of two columns (:func:`csfair.evaluation.stats.simulate_scores`): binary
item scores on 500 shared items (item difficulties ``logit(0.7) + N(0, 1.5)``), per-run offsets
of sd 0.025 on the probability scale (the spread between fine-tuning seeds of one checkpoint on
POS, csfair issue 19), and a true difference of 0 (A/A) or 1, 2, 4 seed SDs (0.025, 0.05, 0.1)
plus the +0.08 of the calibration test. For each setting and each number of seeds per column,
the share of comparisons whose 95% interval excludes 0, for:

* ``hierarchical``: :func:`csfair.evaluation.stats.hierarchical_bootstrap` (the tables' test);
* ``welch``: its seed-level test alone (``welch_p < 0.05``, test items held fixed);
* ``items-only``: the test of the tables before issue 19 (per item the mean over each column's
  seeds, then the paired percentile bootstrap over items; seed variance never enters it);
* ``naive 2-level``: the percentile interval of resampling seeds within each column, then items.

Usage:
    python bench/significance_power.py [--sims 1000] [--seeds 3,5,10] [--items 500] [--n-boot 200]
Prints a Markdown table; ``--json PATH`` also writes the numbers.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from csfair.evaluation.stats import hierarchical_bootstrap, item_weights, simulate_scores  # noqa: E402


def items_only(a, b, rng, n_boot):
    d = b.mean(0) - a.mean(0)
    lo, hi = np.quantile(item_weights(rng, d.size, n_boot) @ d / d.size, [0.025, 0.975])
    return lo > 0 or hi < 0


def naive_two_level(a, b, rng, n_boot):
    n = a.shape[1]
    w = item_weights(rng, n, n_boot)
    ta, tb = (w @ a.T) / n, (w @ b.T) / n
    sa = rng.integers(0, a.shape[0], (n_boot, a.shape[0]))
    sb = rng.integers(0, b.shape[0], (n_boot, b.shape[0]))
    d = np.take_along_axis(tb, sb, 1).mean(1) - np.take_along_axis(ta, sa, 1).mean(1)
    lo, hi = np.quantile(d, [0.025, 0.975])
    return lo > 0 or hi < 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sims", type=int, default=1000, help="simulated comparisons per setting")
    p.add_argument("--seeds", default="3,5,10", help="fine-tuning seeds per column")
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--seed-sd", type=float, default=0.025)
    p.add_argument("--n-boot", type=int, default=200, help="item resamples per comparison")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    sd = args.seed_sd
    shifts = [("A/A (0)", 0.0), ("1 SD", sd), ("2 SD", 2 * sd), ("+0.08", 0.08), ("4 SD", 4 * sd)]
    rows, t0 = [], time.time()
    for m in [int(x) for x in args.seeds.split(",")]:
        for label, shift in shifts:
            rng = np.random.default_rng(1000 * m + round(1000 * shift))
            hits = dict(hierarchical=0, welch=0, items_only=0, naive_two_level=0)
            for k in range(args.sims):
                logits = math.log(0.7 / 0.3) + 1.5 * rng.standard_normal(args.items)
                a = simulate_scores(rng, m, args.items, seed_sd=sd, item_logits=logits)
                b = simulate_scores(rng, m, args.items, shift=shift, seed_sd=sd, item_logits=logits)
                r = hierarchical_bootstrap(a, b, n_boot=args.n_boot, seed=k)
                hits["hierarchical"] += r["significant"]
                hits["welch"] += r["welch_p"] < 0.05
                hits["items_only"] += items_only(a, b, rng, args.n_boot)
                hits["naive_two_level"] += naive_two_level(a, b, rng, args.n_boot)
            rows.append(dict(seeds=m, difference=label, shift=shift, **{k: v / args.sims for k, v in hits.items()}))
    print(f"Share of {args.sims} simulated comparisons whose 95% interval excludes 0 ({args.items} binary items, "
          f"per-seed offsets sd {sd}; rows A/A: false-positive rate, others: power); {time.time() - t0:.0f} s\n")
    print("| seeds per column | true difference | hierarchical (the tables' test) | welch (seeds only) | "
          "items-only (before issue 19) | naive 2-level percentile |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seeds']} | {r['difference']} | {r['hierarchical']:.3f} | {r['welch']:.3f} | "
              f"{r['items_only']:.3f} | {r['naive_two_level']:.3f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(args=vars(args), rows=rows), fh, indent=1)


if __name__ == "__main__":
    main()
