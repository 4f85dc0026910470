#!/usr/bin/env python
"""A/A check of the zero-shot tables' significance test on real results: seeds of one checkpoint against
each other.

Every cell of a results directory (``scripts/zeroshot.py --out DIR``; a column = one model under one
protocol, a row = a test language) whose column has at least ``2 * --min-half`` kept seeds is split
into two halves of its seeds in every possible way (6 seeds: the 10 splits 3 vs 3; 4 seeds: the 3
splits 2 vs 2), and each half is compared with the other by the test of the tables
(:func:`csfair.evaluation.results.compare_runs`, i.e.
:func:`csfair.evaluation.stats.hierarchical_bootstrap`). The two halves are the same system, so
every "significant" split is a false positive: the printed rate should be near 5%. For accuracy
metrics the test the tables used before csfair issue 19 (per item the mean over each half's seeds,
then the paired bootstrap over items only) is run on the same splits for comparison.

The splits of one cell share seeds, so they are not independent comparisons; the rate is a check,
not a precise estimate. A column with 3 seeds (the CPU preset) cannot be split into halves that
each have a seed variance: run the reference column with 6 seeds first, e.g.

    bash scripts/recipes/zeroshot.sh --tasks pos --seeds 1,2,3,4,5,6 none=checkpoints/en-fr/none/checkpoint_last.pt
    python scripts/aa_check.py runs/zeroshot --task pos

Usage:
    python scripts/aa_check.py OUT --task TASK [--split test] [--column NAME] [--protocol KEY]
        [--metric NAME] [--min-half 2] [--n-boot 1000] [--json PATH]
Exit status 1 when no cell has enough seeds (nothing was checked).
"""
import argparse
import itertools
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from csfair.evaluation.results import SpanItems, compare_runs, load_items, load_results  # noqa: E402


def splits(seeds, min_half):
    """Every split of ``seeds`` into two halves of sizes ``len // 2`` and the rest (each unordered pair once)."""
    k = len(seeds)
    h = k // 2
    if h < min_half:
        return []
    out = []
    for a in itertools.combinations(seeds, h):
        b = tuple(s for s in seeds if s not in a)
        if len(a) == len(b) and (b, a) in out:
            continue
        out.append((a, b))
    return out


def items_only(keys_a, keys_b, items, n_boot, seed):
    """The pre-issue-19 test: per item the mean over each side's seeds, the paired bootstrap over items."""
    from csfair.evaluation.stats import paired_bootstrap

    got = [items[k] for k in keys_a + keys_b]
    if any(isinstance(g, SpanItems) for g in got):
        return None
    mean = lambda keys: [sum(x) / len(keys) for x in zip(*(items[k][0] for k in keys))]  # noqa: E731
    return bool(paired_bootstrap(mean(keys_a), mean(keys_b), items[keys_a[0]][1], n_boot=n_boot, seed=seed)["significant"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("out", help="a scripts/zeroshot.py output directory (results.jsonl, items.jsonl)")
    p.add_argument("--task", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--column", default=None, help="only this model (default: every model)")
    p.add_argument("--protocol", default=None, help="only this protocol key (default: every protocol)")
    p.add_argument("--metric", default=None, help="the table's metric (default: the task's, from the tasks file)")
    p.add_argument("--min-half", type=int, default=2, help="seeds per half (>= 2: a half needs a seed variance)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--boot-seed", type=int, default=12345)
    p.add_argument("--json", default=None, help="also write every split's result here")
    args = p.parse_args(argv)
    if args.min_half < 2:
        p.error("--min-half must be at least 2")
    metric = args.metric
    if metric is None:
        from csfair.evaluation.tasks import TASKS

        if args.task not in TASKS:
            p.error(f"task {args.task!r} is not declared; give --metric")
        metric = TASKS[args.task].metric
    path = os.path.join(args.out, "results.jsonl")
    if not os.path.exists(path):
        raise SystemExit(f"{path}: no such results file")
    items = load_items(os.path.join(args.out, "items.jsonl"))
    cells = {}
    for r in load_results(path):
        if (r.get("task") != args.task or r.get("split") != args.split or r.get("flags") or not r.get("items")
                or metric not in r.get("metrics", {}) or r.get("seed") == 0
                or (args.column and r["model"] != args.column) or (args.protocol and r.get("protocol") != args.protocol)):
            continue
        cells.setdefault((r["model"], r["protocol"], r["lang"]), {})[r["seed"]] = r["items"]  # a re-run replaces
    rows, total, sig, old_total, old_sig = [], 0, 0, 0, 0
    for (model, proto, lang), by_seed in sorted(cells.items()):
        seeds = sorted(by_seed)
        parts = splits(seeds, args.min_half)
        if not parts:
            print(f"{model} [{proto[:8]}] {lang}: {len(seeds)} kept seed(s), too few for two halves of "
                  f">= {args.min_half}; skipped")
            continue
        n_sig = n_old = n_old_sig = 0
        for a, b in parts:
            ka, kb = [by_seed[s] for s in a], [by_seed[s] for s in b]
            res = compare_runs(ka, kb, items, metric, n_boot=args.n_boot, seed=args.boot_seed)
            if "error" in res:
                raise SystemExit(f"{model} {lang} seeds {a} vs {b}: {res['error']}")
            old = items_only(ka, kb, items, args.n_boot, args.boot_seed)
            n_sig += bool(res["significant"])
            if old is not None:
                n_old += 1
                n_old_sig += old
            rows.append(dict(model=model, protocol=proto, lang=lang, seeds_a=a, seeds_b=b, diff=res["diff"],
                             lo=res["lo"], hi=res["hi"], p=res["p"], significant=bool(res["significant"]),
                             items_only_significant=old))
        total += len(parts)
        sig += n_sig
        old_total += n_old
        old_sig += n_old_sig
        old_text = f"; items-only (before issue 19) {n_old_sig}/{n_old}" if n_old else ""
        print(f"{model} [{proto[:8]}] {lang}: {len(parts)} splits {len(parts[0][0])} vs {len(parts[0][1])} seeds: "
              f"hierarchical {n_sig}/{len(parts)} significant{old_text}")
    if not total:
        raise SystemExit(f"no cell of {args.task}/{args.split} in {args.out} has 2 x {args.min_half} kept seeds: nothing "
                         "checked (run one column with more seeds, e.g. --seeds 1,2,3,4,5,6)")
    print(f"A/A false-positive rate, {args.task} {args.split}, {metric}: hierarchical {sig}/{total} = "
          f"{sig / total:.3f}" + (f"; items-only (before issue 19) {old_sig}/{old_total} = {old_sig / old_total:.3f}"
                                  if old_total else ""))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(task=args.task, split=args.split, metric=metric, splits=total, significant=sig,
                           rate=sig / total, items_only_rate=old_sig / old_total if old_total else None, rows=rows),
                      fh, indent=1)
    return sig, total


if __name__ == "__main__":
    main()
