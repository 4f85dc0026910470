#!/usr/bin/env python
"""Cost of checking a substitution table against its meta.json checksum when it is loaded (csfair issue 21).

Usage: python bench/table_verify.py data-bin/en-fr/tables/ibm1.en-fr [--repeat 5]

Prints the best of ``--repeat`` loads without the check, with the check (first load in a process),
and again (the check is cached by path, size, mtime and inode of each file).
"""
import argparse
import time

from csfair.pretraining import table_format as tf
from csfair.pretraining.substitution_table import SubstitutionTable


def best(fn, repeat):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return 1e3 * min(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("table")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    arrays, _ = tf.load_arrays(args.table, verify=False)
    mb = sum(a.nbytes for a in arrays.values()) / 1e6
    plain = best(lambda: SubstitutionTable(*tf.load_arrays(args.table, verify=False)), args.repeat)

    def first():
        tf._VERIFIED.clear()
        SubstitutionTable.load(args.table)

    checked = best(first, args.repeat)
    cached = best(lambda: SubstitutionTable.load(args.table), args.repeat)
    print(f"{args.table}: {mb:.1f} MB of arrays; load without the check {plain:.1f} ms, first load with the "
          f"SHA-256 check {checked:.1f} ms, later loads (cached) {cached:.1f} ms (best of {args.repeat})")


if __name__ == "__main__":
    main()
