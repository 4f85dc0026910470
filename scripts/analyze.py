#!/usr/bin/env python
"""Alignment analysis report for one or more checkpoints (e.g. IBM-1 code-switching vs no code-switching).

On parallel text (Multi30k val, XNLI dev rows, which are row-aligned) and the MUSE dictionary:
UMAP figures of sentence (``<s>`` and mean-pooled) and word embeddings coloured by language, one
panel per checkpoint; bilingual word retrieval P@1/P@5 on MUSE test-range pairs whose source word
is in none of the compared checkpoints' substitution tables (code-switching never showed the pair); parallel sentence
retrieval accuracy per layer; a language-identity probe. Writes ``<out>/report.md``, PNGs and
``<out>/analysis.json``.

Usage:
    python scripts/analyze.py --checkpoint ibm1=checkpoints/en-fr/ibm1 --checkpoint none=checkpoints/en-fr/none \\
        [--src en --tgt fr] [--sentences 500] [--words 500] [--out results/analysis]
"""
import argparse
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from csfair.evaluation import analysis as A
from csfair.evaluation.corpora import read_xnli
from csfair.paths import data_file


def read_lines(rel, n):
    import gzip

    path = data_file(rel)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        return [next(fh).strip() for _ in range(n)]


def sentence_vectors(hub, sents, lang):
    """Per layer: mean-pooled (over pieces, without <s> </s>) and <s> vectors, as numpy arrays."""
    toks = [hub.encode(s, lang=lang) for s in sents]
    states = hub.extract_features(toks, return_all_hiddens=True)
    n_layers = len(states[0])
    mean = [np.stack([s[layer][1:-1].mean(0).cpu().numpy() for s in states]) for layer in range(n_layers)]
    cls = [np.stack([s[layer][0].cpu().numpy() for s in states]) for layer in range(n_layers)]
    return mean, cls


def word_vectors(hub, words):
    """Last-layer mean over a word's pieces, the word encoded alone."""
    toks = [hub.encode(w, lang=None) for w in words]
    states = hub.extract_features(toks)
    return np.stack([s[1:-1].mean(0).cpu().numpy() for s in states])


def muse_test_pairs(src, tgt, exclude, n):
    """MUSE pairs of the test range (source ranks 5000-6500) whose source word is not in ``exclude``
    (the source words of every compared checkpoint's substitution table: all checkpoints are scored
    on the same pairs, none of which code-switching showed to any of them)."""
    seen_src = []
    pairs = {}
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
    in_table = exclude
    # identical spellings (e.g. "internet" -> "internet") have identical contextless vectors:
    # they would be found trivially, so pairs with such a translation are left out
    test_src = [s for s in seen_src[5000:6500] if s not in in_table and s.isalpha() and s not in pairs[s]]
    return [(s, pairs[s]) for s in test_src[:n]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=DIR (checkpoint_last.pt inside) or NAME=FILE")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="fr")
    p.add_argument("--sentences", type=int, default=500)
    p.add_argument("--words", type=int, default=500)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "analysis"))
    args = p.parse_args(argv)
    from user_dir.hub_interface import from_pretrained

    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    src_m30k = read_lines(f"parallel/multi30k/val.{args.src}.gz", args.sentences)
    tgt_m30k = read_lines(f"parallel/multi30k/val.{args.tgt}.gz", args.sentences)
    xs = read_xnli(data_file(f"nli/xnli-xtreme/dev-{args.src}.tsv"))
    xt = read_xnli(data_file(f"nli/xnli-xtreme/dev-{args.tgt}.tsv"))
    premise_rows = [i for i in range(0, len(xs), 3)][: args.sentences]  # one row per premise
    src_xnli = [xs[i].text_a for i in premise_rows]
    tgt_xnli = [xt[i].text_a for i in premise_rows]

    results, panels = {}, {"sent_mean": [], "sent_cls": [], "words": []}
    hubs, exclude = {}, set()
    for spec in args.checkpoint:
        name, path = spec.split("=", 1)
        d, f = (path, "checkpoint_last.pt") if os.path.isdir(path) else (os.path.dirname(path), os.path.basename(path))
        hub = hubs[name] = from_pretrained(d, f, device="cpu")
        try:
            table = hub.table_for(args.src)
        except (ValueError, FileNotFoundError):
            table = None  # a model without code-switching: use the IBM-1 table's words if there is one
            cand = os.path.join(hub.data_dir, "tables", f"ibm1.{args.src}-{args.tgt}")
            if os.path.exists(cand):
                from csfair.pretraining.substitution_table import SubstitutionTable

                table = SubstitutionTable.load(cand)
        if table is not None:
            exclude |= {w.lower() for w in table.source_words()}
    pairs = muse_test_pairs(args.src, args.tgt, exclude, args.words)
    if not pairs:
        raise SystemExit("no MUSE test-range pair is outside every checkpoint's substitution table")
    for name, hub in hubs.items():
        res = {}
        for corpus, (a, b) in {"multi30k": (src_m30k, tgt_m30k), "xnli": (src_xnli, tgt_xnli)}.items():
            ma, ca = sentence_vectors(hub, a, args.src)
            mb, cb = sentence_vectors(hub, b, args.tgt)
            res[f"{corpus}_sentence_retrieval_by_layer"] = [
                round(A.parallel_retrieval_accuracy(ma[layer], mb[layer]), 4) for layer in range(len(ma))]
            res[f"{corpus}_sentence_retrieval_cls_last"] = round(A.parallel_retrieval_accuracy(ca[-1], cb[-1]), 4)
            if corpus == "multi30k":
                x = np.concatenate([ma[-1], mb[-1]])
                y = [args.src] * len(a) + [args.tgt] * len(b)
                res["language_probe_accuracy_last_layer"] = round(A.language_probe(x, y), 4)
                mid = len(ma) // 2
                res["language_probe_accuracy_middle_layer"] = round(
                    A.language_probe(np.concatenate([ma[mid], mb[mid]]), y), 4)
                panels["sent_mean"].append({"title": name, "x": x, "labels": y})
                panels["sent_cls"].append({"title": name, "x": np.concatenate([ca[-1], cb[-1]]), "labels": y})
        targets = sorted({t for _, ts in pairs for t in ts})
        index = {t: i for i, t in enumerate(targets)}
        sv = word_vectors(hub, [s for s, _ in pairs])
        tv = word_vectors(hub, targets)
        res["word_retrieval"] = A.retrieval_precision(sv, tv, [[index[t] for t in ts] for _, ts in pairs])
        res["word_retrieval"]["candidates"] = len(targets)
        panels["words"].append({"title": name, "x": np.concatenate([sv, tv]),
                                "labels": [args.src] * len(sv) + [args.tgt] * len(tv)})
        results[name] = res
        print(f"[analyze] {name}: " + json.dumps(res), flush=True)

    figs = {}
    titles = {"sent_mean": "sentence embeddings (mean-pooled, last layer), Multi30k val",
              "sent_cls": "sentence embeddings (<s>, last layer), Multi30k val",
              "words": "word embeddings (MUSE test-range words in no substitution table)"}
    for key, pan in panels.items():
        figs[key] = os.path.basename(A.umap_figure(pan, os.path.join(args.out, f"umap_{key}.png"), titles[key]))

    names = list(results)
    lines = [f"# Cross-lingual alignment: {args.src}-{args.tgt}", "",
             f"Checkpoints: {', '.join(f'`{s}`' for s in args.checkpoint)}. {args.sentences} parallel sentences "
             f"per corpus (Multi30k val; XNLI dev premises), {len(pairs)} MUSE test-range word pairs "
             "whose source word is in none of the checkpoints' substitution tables and has no identically "
             "spelled translation (the same pairs for every checkpoint).", "",
             "| measure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(results[n]) for n in names) + " |")

    row("word retrieval P@1", lambda r: f"{r['word_retrieval']['p@1']:.4f}")
    row("word retrieval P@5", lambda r: f"{r['word_retrieval']['p@5']:.4f}")
    for corpus in ("multi30k", "xnli"):
        row(f"{corpus} sentence retrieval, mean-pooled, last layer",
            lambda r, c=corpus: f"{r[f'{c}_sentence_retrieval_by_layer'][-1]:.4f}")
        row(f"{corpus} sentence retrieval, mean-pooled, best layer",
            lambda r, c=corpus: "{:.4f} (layer {})".format(max(r[f"{c}_sentence_retrieval_by_layer"]),
                                                          int(np.argmax(r[f"{c}_sentence_retrieval_by_layer"]))))
        row(f"{corpus} sentence retrieval, <s>, last layer", lambda r, c=corpus: f"{r[f'{c}_sentence_retrieval_cls_last']:.4f}")
    row("language-identity probe, last layer (lower = more language-neutral)",
        lambda r: f"{r['language_probe_accuracy_last_layer']:.4f}")
    row("language-identity probe, middle layer", lambda r: f"{r['language_probe_accuracy_middle_layer']:.4f}")
    lines += ["", "Sentence retrieval accuracy by layer (0 = embeddings), Multi30k:", "",
              "| layer | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for layer in range(len(results[names[0]]["multi30k_sentence_retrieval_by_layer"])):
        lines.append(f"| {layer} | " + " | ".join(
            f"{results[n]['multi30k_sentence_retrieval_by_layer'][layer]:.4f}" for n in names) + " |")
    lines += [""] + [f"![{titles[k]}]({v})" for k, v in figs.items()]
    lines += ["", f"Generated by `scripts/analyze.py` in {time.time() - t0:.0f} s."]
    with open(os.path.join(args.out, "report.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "analysis.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
