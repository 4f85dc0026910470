#!/usr/bin/env python
"""The code-switching dose a training run would log, without training: per direction, the rates of
``codeswitch_masked_lm``'s items (``cs_inst``, ``cs_word``, ``cs_same``, ``cs_tok``, ``cs_cut``) over
whole epochs of a data-bin, for several block rules and overflow rules (csfair issue 20, part 3).

Items are drawn exactly as in training (same task, dataset and (seed, epoch, index) keyed draws; with
DataLoader workers they are the same items: tests/test_codeswitch_dataset.py), in this process.

    python scripts/cs_rates.py data-bin/en-fr --langs en,fr --cs-table-name ibm1 \\
        --break-modes complete,none --overflows truncate,drop --epochs 2

Columns: ``cs_word`` replaced / eligible words of code-switched instances (identical candidates
included), ``cs_same`` replaced words whose candidate was the word itself, ``cs_tok`` input tokens
holding a translation / input tokens (all instances), ``cs_cut`` tokens cut from instance ends / input
tokens, ``cand_len`` mean tokens of the candidates that changed a word. Output: a table on stdout and,
with ``--json``, one record per row.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def rates(data: str, langs: str, epochs: int, break_mode: str, overflow: str, tokens_per_sample: int, seed: int,
          cs_table_name: str = "", cs_tables: str = "", cs_mode: str = "multiview", max_items: int = 0) -> list:
    """One row per direction: the summed item statistics and their rates (see the module docstring)."""
    import user_dir  # noqa: F401  (registers the task)
    from csfair.pretraining.sampler import (
        NUM_STATS, STAT_CHANGED_TOKENS, STAT_CUT_TOKENS, STAT_ELIGIBLE, STAT_INSTANCE, STAT_REPLACED, STAT_TOKENS,
        STAT_UNCHANGED,
    )
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    task = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=data, langs=langs, cs_mode=cs_mode, cs_table_name=cs_table_name, cs_tables=cs_tables,
        tokens_per_sample=tokens_per_sample, sample_break_mode=break_mode, seed=seed, cs_overflow=overflow))
    task.load_dataset("train")
    w = task._wrappers[-1]
    n = len(w) if not max_items else min(max_items, len(w))
    seg = np.searchsorted(w.segment_offsets, np.arange(n), side="right") - 1
    sums = np.zeros((len(task.langs), NUM_STATS + 1), dtype=np.int64)
    for epoch in range(1, epochs + 1):
        w.set_epoch(epoch)
        for i in range(n):
            s = w[i]["cs_stats"].numpy()
            sums[seg[i], :NUM_STATS] += s[:NUM_STATS]
            sums[seg[i], NUM_STATS] += 1
    rows = []
    for k, name in enumerate(task.cs_directions()):
        s = sums[k]
        if name is None or s[NUM_STATS] == 0:
            continue
        changed_words = s[STAT_REPLACED] - s[STAT_UNCHANGED]
        rows.append(dict(
            direction=name, break_mode=break_mode, overflow=overflow, epochs=epochs, items=int(s[NUM_STATS]),
            eligible=int(s[STAT_ELIGIBLE]), replaced=int(s[STAT_REPLACED]), unchanged=int(s[STAT_UNCHANGED]),
            changed_tokens=int(s[STAT_CHANGED_TOKENS]), tokens=int(s[STAT_TOKENS]), cut_tokens=int(s[STAT_CUT_TOKENS]),
            cs_inst=s[STAT_INSTANCE] / s[NUM_STATS], cs_word=s[STAT_REPLACED] / max(1, s[STAT_ELIGIBLE]),
            cs_same=s[STAT_UNCHANGED] / max(1, s[STAT_REPLACED]), cs_tok=s[STAT_CHANGED_TOKENS] / max(1, s[STAT_TOKENS]),
            cs_cut=s[STAT_CUT_TOKENS] / max(1, s[STAT_TOKENS]),
            cand_len=s[STAT_CHANGED_TOKENS] / changed_words if changed_words else float("nan"),
        ))
    return rows


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="data-bin (fairseq-preprocess per language, as the recipes write it)")
    ap.add_argument("--langs", default="en,fr")
    ap.add_argument("--cs-table-name", default="", help="DATA/tables/NAME.<lang>-<other> (as --cs-table-name)")
    ap.add_argument("--cs-tables", default="", help="LANG:PATH,... (as --cs-tables)")
    ap.add_argument("--cs-mode", default="multiview", choices=["static", "multiview"])
    ap.add_argument("--break-modes", default="complete,none", help="comma-separated --sample-break-mode values")
    ap.add_argument("--overflows", default="truncate", help="comma-separated --cs-overflow values")
    ap.add_argument("--tokens-per-sample", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-items", type=int, default=0, help="only the first N items of the split (0: all)")
    ap.add_argument("--json", default=None, help="also write the rows here (JSON list)")
    args = ap.parse_args(argv)
    if not (args.cs_table_name or args.cs_tables):
        ap.error("give --cs-table-name or --cs-tables")
    rows = []
    for bm in args.break_modes.split(","):
        for ov in args.overflows.split(","):
            rows += rates(args.data, args.langs, args.epochs, bm, ov, args.tokens_per_sample, args.seed,
                          args.cs_table_name, args.cs_tables, args.cs_mode, args.max_items)
    cols = ["direction", "break_mode", "overflow", "items", "eligible", "cs_inst", "cs_word", "cs_same", "cs_tok",
            "cs_cut", "cand_len"]
    print("\t".join(cols))
    for r in rows:
        print("\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
