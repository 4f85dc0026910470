#!/usr/bin/env python
"""Resident memory of DataLoader workers that share the memory-mapped substitution tables.

Runs ``fairseq-train --num-workers N`` on the recipe's data with code-switching on and samples
``/proc/<pid>/smaps`` of the trainer and of each worker every 0.5 s: the whole process (RSS,
PSS: proportional set size, each shared page divided by the number of processes mapping it)
and the table files' mappings alone. Shared pages of the memory-mapped ``.npy`` arrays are page
cache: a worker's table RSS counts them, its PSS only its share.

Usage (after ``bash scripts/recipes/en-fr.sh`` built data-bin/en-fr):
    python bench/worker_memory.py [--table-name muse] [--workers 2] [--updates 150]
Writes bench/results/worker_memory.json and prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smaps(pid, needle):
    """(rss_kb, pss_kb) of the whole process and of mappings whose path contains ``needle``."""
    tot = [0, 0]
    sel = [0, 0]
    cur_match = False
    try:
        with open(f"/proc/{pid}/smaps") as fh:
            for line in fh:
                parts = line.split()
                if not parts:
                    continue
                if not parts[0].endswith(":") or "-" in parts[0]:
                    # a mapping header: "start-end perms offset dev inode [path]"
                    cur_match = len(parts) >= 6 and needle in parts[-1]
                    continue
                if parts[0] in ("Rss:", "Pss:"):
                    k = 0 if parts[0] == "Rss:" else 1
                    tot[k] += int(parts[1])
                    if cur_match:
                        sel[k] += int(parts[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return tot, sel


def children(pid):
    """Child processes of any thread of ``pid`` (fairseq forks DataLoader workers from a background thread)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return sorted(set(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "data-bin", "en-fr"))
    p.add_argument("--table-name", default="muse", help="the larger tables (30 MB each on the demo data)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--updates", type=int, default=150)
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "worker_memory.json"))
    args = p.parse_args()
    cmd = [sys.executable, "-m", "fairseq_cli.train", args.data, "--user-dir", os.path.join(ROOT, "user_dir"),
           "--task", "codeswitch_masked_lm", "--langs", "en,fr", "--cs-table-name", args.table_name,
           "--arch", "cs_roberta_tiny", "--criterion", "cs_masked_lm", "--tokens-per-sample", "128",
           "--sample-break-mode", "complete", "--optimizer", "adam", "--lr", "5e-4", "--batch-size", "32",
           "--max-update", str(args.updates), "--num-workers", str(args.workers), "--no-save",
           "--disable-validation", "--cpu", "--log-format", "simple", "--log-interval", "50"]
    tables_dir = os.path.abspath(os.path.join(args.data, "tables"))
    table_bytes = sum(
        os.path.getsize(os.path.join(tables_dir, f"{args.table_name}.{d}", f))
        for d in ("en-fr", "fr-en") for f in os.listdir(os.path.join(tables_dir, f"{args.table_name}.{d}"))
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    peak = {}
    while proc.poll() is None:
        pids = {"trainer": proc.pid}
        for i, c in enumerate(children(proc.pid)):
            pids[f"worker{i}"] = c
        for name, pid in pids.items():
            m = smaps(pid, tables_dir)
            if m is None:
                continue
            (rss, pss), (trss, tpss) = m
            best = peak.setdefault(name, dict(rss_kb=0, pss_kb=0, table_rss_kb=0, table_pss_kb=0))
            for k, v in (("rss_kb", rss), ("pss_kb", pss), ("table_rss_kb", trss), ("table_pss_kb", tpss)):
                best[k] = max(best[k], v)
        time.sleep(0.5)
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}): {' '.join(cmd)}")
    res = dict(command=" ".join(cmd), table_files_bytes=table_bytes, workers=args.workers, peaks=peak)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)
    print(f"tables {args.table_name}.en-fr + {args.table_name}.fr-en: {table_bytes / 2**20:.1f} MiB on disk")
    print("| process | RSS MiB | PSS MiB | table RSS MiB | table PSS MiB |")
    print("|---|---|---|---|---|")
    for name, v in peak.items():
        print(f"| {name} | {v['rss_kb'] / 1024:.1f} | {v['pss_kb'] / 1024:.1f} | "
              f"{v['table_rss_kb'] / 1024:.1f} | {v['table_pss_kb'] / 1024:.1f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
