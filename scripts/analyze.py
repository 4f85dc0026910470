#!/usr/bin/env python
"""Alignment analysis report for one or more checkpoints, with its controls, on the project's data or yours.

On parallel text and word pairs: parallel sentence retrieval per layer (mean-pooled; mean-centred and
raw; the ``<s>`` state), bilingual word translation P@1 (nearest neighbour and CSLS, centred), a
language-identity probe and UMAP figures, one panel per checkpoint. Every number is printed beside
its controls (csfair issue 24): ``random-init``, the first checkpoint's architecture with random
weights, and ``no-model``, bags of sentencepiece pieces (what shared subwords alone give). Measures:
``csfair.evaluation.crosslingual``; vectors: ``user_dir/features.py`` (lines longer than the model's
positions are truncated, with a warning and a count in the report). Writes ``<out>/report.md``, PNGs
and ``<out>/analysis.json``.

Default data: Multi30k val and XNLI dev premises (row-aligned), MUSE test-range pairs whose source word
is in none of the compared checkpoints' substitution tables. Your own: ``--parallel SRC_FILE TGT_FILE``
(line-aligned raw text; ``--tokenised`` if already tokenised) and ``--word-pairs FILE`` (``source
target`` per line; several lines per source word for several translations).

Usage:
    python scripts/analyze.py --checkpoint ibm1=checkpoints/en-fr/ibm1 --checkpoint none=checkpoints/en-fr/none \\
        [--src en --tgt fr] [--sentences 500] [--words 500] [--out results/analysis]
    python scripts/analyze.py --checkpoint ibm1=... --parallel my.en my.fr --word-pairs my_pairs.txt
"""
import argparse
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from csfair.evaluation import analysis as A
from csfair.evaluation import crosslingual as X
from csfair.evaluation.corpora import read_xnli
from csfair.paths import data_file


def read_lines(path, n=None):
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        for line in fh:
            if n is not None and len(out) >= n:
                break
            out.append(line.rstrip("\n"))
    return out


def read_word_pairs(path, n=None):
    """``[(source, [targets])]`` from ``source target`` lines (order of first appearance)."""
    from csfair.io import InputFormatError

    pairs = {}
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            f = line.split()
            if not f:
                continue
            if len(f) != 2:
                raise InputFormatError(path, lineno, f"expected 'source target', got {len(f)} fields")
            pairs.setdefault(f[0], []).append(f[1])
    items = list(pairs.items())
    return items[:n] if n else items


def muse_test_pairs(src, tgt, exclude, n):
    """MUSE pairs of the test range (source ranks 5000-6500) whose source word is not in ``exclude``
    (the source words of every compared checkpoint's substitution table: all checkpoints are scored
    on the same pairs, none of which code-switching showed to any of them)."""
    seen_src, pairs = [], {}
    with open(data_file(f"dict/muse/{src}-{tgt}.txt"), encoding="utf-8-sig") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 2:
                continue
            s, t = parts
            if s not in pairs:
                seen_src.append(s)
                pairs[s] = []
            pairs[s].append(t)
    # identical spellings (e.g. "internet" -> "internet") have identical contextless vectors:
    # they would be found trivially, so pairs with such a translation are left out
    test_src = [s for s in seen_src[5000:6500] if s not in exclude and s.isalpha() and s not in pairs[s]]
    return [(s, pairs[s]) for s in test_src[:n]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=DIR (checkpoint_last.pt inside) or NAME=FILE")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="fr")
    p.add_argument("--sentences", type=int, default=500, help="parallel sentences per corpus (at most)")
    p.add_argument("--words", type=int, default=500, help="word pairs (at most)")
    p.add_argument("--parallel", nargs=2, metavar=("SRC_FILE", "TGT_FILE"), default=None,
                   help="your own line-aligned parallel text (instead of Multi30k val and XNLI)")
    p.add_argument("--word-pairs", default=None, help="your own 'source target' word pairs (instead of MUSE)")
    p.add_argument("--tokenised", action="store_true", help="--parallel text is tokenised already (no Moses)")
    p.add_argument("--no-controls", action="store_true", help="leave out the random-init and no-model controls")
    p.add_argument("--no-figures", action="store_true", help="no UMAP figures")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "analysis"))
    args = p.parse_args(argv)
    import torch

    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair.text import moses_tokenize_lines
    from user_dir import features as F

    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    tok = (lambda lines, lang: lines) if args.tokenised else (lambda lines, lang: list(moses_tokenize_lines(lines, lang)))
    if args.parallel:
        a, b = read_lines(args.parallel[0], args.sentences), read_lines(args.parallel[1], args.sentences)
        if len(a) != len(b):
            raise SystemExit(f"--parallel: {args.parallel[0]} and {args.parallel[1]} differ in length "
                             f"(first {args.sentences} lines: {len(a)} vs {len(b)})")
        corpora = {"user": (a, b)}
    else:
        xs = read_xnli(data_file(f"nli/xnli-xtreme/dev-{args.src}.tsv"))
        xt = read_xnli(data_file(f"nli/xnli-xtreme/dev-{args.tgt}.tsv"))
        rows = list(range(0, len(xs), 3))[: args.sentences]  # one row per premise
        corpora = {"multi30k": (read_lines(data_file(f"parallel/multi30k/val.{args.src}.gz"), args.sentences),
                                read_lines(data_file(f"parallel/multi30k/val.{args.tgt}.gz"), args.sentences)),
                   "xnli": ([xs[i].text_a for i in rows], [xt[i].text_a for i in rows])}
    corpora = {k: (tok(a, args.src), tok(b, args.tgt)) for k, (a, b) in corpora.items()}

    hubs, exclude, files = {}, set(), []
    for spec in args.checkpoint:
        name, path = spec.split("=", 1)
        files.append(os.path.join(path, "checkpoint_last.pt") if os.path.isdir(path) else path)
        hubs[name] = hub = F.load(files[-1], None, None)
        try:
            table = hub.table_for(args.src)
        except (ValueError, FileNotFoundError):
            table = None  # a model without code-switching: use the IBM-1 table's words if there is one
            cand = os.path.join(hub.data_dir, "tables", f"ibm1.{args.src}-{args.tgt}")
            if os.path.exists(cand):
                table = SubstitutionTable.load(cand)
        if table is not None:
            exclude |= {w.lower() for w in table.source_words()}
    if args.word_pairs:
        pairs = read_word_pairs(args.word_pairs, args.words)
        pair_note = f"{len(pairs)} word pairs from {args.word_pairs}"
    else:
        pairs = muse_test_pairs(args.src, args.tgt, exclude, args.words)
        pair_note = (f"{len(pairs)} MUSE test-range word pairs whose source word is in none of the checkpoints' "
                     "substitution tables and has no identically spelled translation (the same pairs for every checkpoint)")
    if not pairs:
        raise SystemExit("no word pair to evaluate (no MUSE test-range pair outside every table, or an empty --word-pairs file)")
    targets = sorted({t for _, ts in pairs for t in ts})
    index = {t: i for i, t in enumerate(targets)}
    gold = [[index[t] for t in ts] for _, ts in pairs]
    first = next(iter(hubs))
    models = dict(hubs)
    if not args.no_controls:
        models["random-init"] = F.load(files[0], None, None, random_init=1)

    results, panels, truncated = {}, {"sent_mean": [], "sent_cls": [], "words": []}, {}
    for name, hub in models.items():
        enc = F.Encoder(hub)
        layers = list(range(len(hub.model.encoder.sentence_encoder.layers) + 1))
        res = {}
        with torch.no_grad():
            for corpus, (a, b) in corpora.items():
                va = F.sentence_vectors(hub, enc, a, layers, f"{corpus} {args.src}")
                vb = F.sentence_vectors(hub, enc, b, layers, f"{corpus} {args.tgt}")
                truncated[f"{corpus}.{args.src}"] = int(va["truncated"])
                truncated[f"{corpus}.{args.tgt}"] = int(vb["truncated"])
                res[f"{corpus}_sentence_retrieval_by_layer"] = [
                    round(float(X.sentence_retrieval(va[f"L{l}"], vb[f"L{l}"], centred=False).mean()), 4) for l in layers]
                res[f"{corpus}_sentence_retrieval_centred_by_layer"] = [
                    round(float(X.sentence_retrieval(va[f"L{l}"], vb[f"L{l}"], centred=True).mean()), 4) for l in layers]
                res[f"{corpus}_sentence_retrieval_cls_last"] = round(float(
                    X.sentence_retrieval(va[f"CLS{layers[-1]}"], vb[f"CLS{layers[-1]}"], centred=False).mean()), 4)
                if corpus == list(corpora)[0]:
                    y = [args.src] * len(a) + [args.tgt] * len(b)
                    x = np.concatenate([va[f"L{layers[-1]}"], vb[f"L{layers[-1]}"]])
                    res["language_probe_accuracy_last_layer"] = round(A.language_probe(x, y), 4)
                    mid = (len(layers)) // 2
                    res["language_probe_accuracy_middle_layer"] = round(
                        A.language_probe(np.concatenate([va[f"L{mid}"], vb[f"L{mid}"]]), y), 4)
                    panels["sent_mean"].append({"title": name, "x": x, "labels": y})
                    panels["sent_cls"].append({"title": name, "x": np.concatenate(
                        [va[f"CLS{layers[-1]}"], vb[f"CLS{layers[-1]}"]]), "labels": y})
            sv = F.word_vectors(hub, enc, [s for s, _ in pairs], layers)
            tv = F.word_vectors(hub, enc, targets, layers)
        for rep in ("emb", f"L{layers[-1]}"):
            for method in ("nn", "csls"):
                for c in (True, False):
                    key = f"word_translation_{rep}_{method}_{'centred' if c else 'raw'}"
                    res[key] = round(float(X.word_translation(sv[rep], tv[rep], gold, method, c).mean()), 4)
        res["word_retrieval"] = A.retrieval_precision(sv[f"L{layers[-1]}"], tv[f"L{layers[-1]}"], gold)
        res["word_retrieval"]["candidates"] = len(targets)
        panels["words"].append({"title": name, "x": np.concatenate([sv[f"L{layers[-1]}"], tv[f"L{layers[-1]}"]]),
                                "labels": [args.src] * len(sv["emb"]) + [args.tgt] * len(tv["emb"])})
        results[name] = res
        print(f"[analyze] {name}: " + json.dumps(res), flush=True)
    if not args.no_controls:  # bags of pieces: what the shared vocabulary alone gives
        enc = F.Encoder(hubs[first])
        V = len(hubs[first].dictionary)
        bag = lambda texts: X.bag_of_pieces([[i for w in t.split() for i in enc.word(w)] for t in texts], V)  # noqa: E731
        res = {}
        for corpus, (a, b) in corpora.items():
            r = float(X.top1_hits(X.similarity(bag(a), bag(b)), [[i] for i in range(len(a))]).mean())
            res[f"{corpus}_sentence_retrieval_by_layer"] = [round(r, 4)]
        res["word_retrieval"] = {"p@1": float(X.top1_hits(X.similarity(bag([s for s, _ in pairs]), bag(targets)), gold).mean())}
        results["no-model"] = res

    figs = {}
    titles = {"sent_mean": f"sentence embeddings (mean-pooled, last layer), {list(corpora)[0]}",
              "sent_cls": f"sentence embeddings (<s>, last layer), {list(corpora)[0]}",
              "words": "word embeddings (last layer)"}
    if not args.no_figures:
        for key, pan in panels.items():
            figs[key] = os.path.basename(A.umap_figure(pan, os.path.join(args.out, f"umap_{key}.png"), titles[key]))

    names = [n for n in results if n not in ("random-init", "no-model")] + [n for n in ("random-init", "no-model") if n in results]
    lines = [f"# Cross-lingual alignment: {args.src}-{args.tgt}", "",
             f"Checkpoints: {', '.join(f'`{s}`' for s in args.checkpoint)}. Parallel sentences: "
             + ", ".join(f"{k} {len(a)}" for k, (a, _) in corpora.items()) + f"; {pair_note}. Controls: "
             "`random-init` (the first checkpoint's architecture, random weights) and `no-model` (bags of sentencepiece "
             "pieces, cosine: what shared subwords alone give).", "",
             "| measure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label, fn):
        cells = []
        for n in names:
            try:
                cells.append(fn(results[n]))
            except (KeyError, IndexError):
                cells.append("")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("word retrieval P@1", lambda r: f"{r['word_retrieval']['p@1']:.4f}")
    row("word retrieval P@5", lambda r: f"{r['word_retrieval']['p@5']:.4f}")
    row("word translation P@1, input embeddings, CSLS, centred", lambda r: f"{r['word_translation_emb_csls_centred']:.4f}")
    for corpus in corpora:
        row(f"{corpus} sentence retrieval, mean-pooled, last layer",
            lambda r, c=corpus: f"{r[f'{c}_sentence_retrieval_by_layer'][-1]:.4f}")
        row(f"{corpus} sentence retrieval, mean-pooled, centred, last layer",
            lambda r, c=corpus: f"{r[f'{c}_sentence_retrieval_centred_by_layer'][-1]:.4f}")
        row(f"{corpus} sentence retrieval, mean-pooled, best layer",
            lambda r, c=corpus: "{:.4f} (layer {})".format(max(r[f"{c}_sentence_retrieval_by_layer"]),
                                                          int(np.argmax(r[f"{c}_sentence_retrieval_by_layer"]))))
        row(f"{corpus} sentence retrieval, <s>, last layer", lambda r, c=corpus: f"{r[f'{c}_sentence_retrieval_cls_last']:.4f}")
    row("language-identity probe, last layer (lower = more language-neutral)",
        lambda r: f"{r['language_probe_accuracy_last_layer']:.4f}")
    row("language-identity probe, middle layer", lambda r: f"{r['language_probe_accuracy_middle_layer']:.4f}")
    first_corpus = list(corpora)[0]
    lines += ["", f"Sentence retrieval accuracy by layer (0 = embeddings), {first_corpus}, raw / centred:", "",
              "| layer | " + " | ".join(n for n in names if n != "no-model") + " |",
              "|---|" + "---|" * len([n for n in names if n != "no-model"])]
    for layer in range(len(results[first][f"{first_corpus}_sentence_retrieval_by_layer"])):
        lines.append(f"| {layer} | " + " | ".join(
            f"{results[n][f'{first_corpus}_sentence_retrieval_by_layer'][layer]:.4f} / "
            f"{results[n][f'{first_corpus}_sentence_retrieval_centred_by_layer'][layer]:.4f}"
            for n in names if n != "no-model") + " |")
    trunc = {k: v for k, v in truncated.items() if v}
    if trunc:
        lines += ["", "Truncated to the model's positions (lines): " + ", ".join(f"{k} {v}" for k, v in trunc.items())]
    lines += [""] + [f"![{titles[k]}]({v})" for k, v in figs.items()]
    lines += ["", f"Generated by `scripts/analyze.py` in {time.time() - t0:.0f} s."]
    with open(os.path.join(args.out, "report.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "analysis.json"), "w") as fh:
        json.dump(dict(results, truncated=truncated), fh, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
