#!/usr/bin/env python
"""IBM-1 lexicon induction speed (sentence pairs per second) at 29k and ~1M pairs.

The ~1M-pair corpus is Multi30k en-fr train repeated (35 x 29,000 = 1,015,000 pairs), written to a
temporary directory. Times: Moses tokenisation (2 processes), fast_align EM (single-threaded,
5 iterations, both directions) and table parsing, each in pairs per second.

Usage: python bench/lexicon_speed.py [--repeat 35]
Writes bench/results/lexicon_speed.json.
"""
import argparse
import gzip
import json
import os
import platform
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(src, tgt, n):
    from csfair.lexicons.ibm1 import table_to_lexicon, train_ibm1
    from csfair.io import iter_parallel
    from csfair.text import moses_tokenize_lines

    t0 = time.time()
    pairs = [(s, t) for _, s, t in iter_parallel(src, tgt)]
    s_tok = list(moses_tokenize_lines([s for s, _ in pairs], "en", True, workers=2))
    t_tok = list(moses_tokenize_lines([t for _, t in pairs], "fr", True, workers=2))
    t1 = time.time()
    fw, bw = train_ibm1(zip(s_tok, t_tok), iterations=5)
    t2 = time.time()
    lex = table_to_lexicon(fw, "en", "fr")
    t3 = time.time()
    return dict(pairs=len(pairs), tokenise_s=round(t1 - t0, 1), em_s=round(t2 - t1, 1), convert_s=round(t3 - t2, 1),
                total_s=round(t3 - t0, 1), pairs_per_s_total=round(len(pairs) / (t3 - t0)),
                pairs_per_s_em=round(len(pairs) / (t2 - t1)), lexicon_words=len(lex))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=35)
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "lexicon_speed.json"))
    args = p.parse_args()
    from csfair.paths import data_file

    src, tgt = data_file("parallel/multi30k/train.en.gz"), data_file("parallel/multi30k/train.fr.gz")
    rows = [run(src, tgt, 29000)]
    print(json.dumps(rows[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        big = []
        for f, name in ((src, "en"), (tgt, "fr")):
            data = gzip.open(f, "rb").read()
            path = os.path.join(tmp, f"big.{name}")
            with open(path, "wb") as fh:
                for _ in range(args.repeat):
                    fh.write(data)
            big.append(path)
        rows.append(run(big[0], big[1], 29000 * args.repeat))
        print(json.dumps(rows[-1]), flush=True)
    res = dict(machine=dict(platform=platform.platform(), cpus=os.cpu_count()), rows=rows,
               notes="fast_align single-threaded (bit-reproducible); tokenisation with 2 processes")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
