#!/usr/bin/env python
"""Paired bootstrap of span F1 from saved predictions, for NER runs recorded before ``items.jsonl`` held
span counts (``scripts/zeroshot.py`` now stores them and its tables carry the bootstrap themselves).

Per language, each column's per-sentence (tp, fp, fn) counts per entity type
(:func:`csfair.evaluation.metrics.span_counts`) are summed over its unflagged seeds, as
:func:`csfair.evaluation.results.add_significance` pools new runs, and
:func:`csfair.evaluation.stats.paired_bootstrap_counts` resamples test sentences for the difference
``column - reference`` of the macro span F1 (seqeval's). Each column's latest protocol is used; the
predictions are ``<out>/runs/<model>/<task>/seed<k>/predictions-<protocol>.json``.

Usage: python scripts/span_significance.py OUT TASK REFERENCE   (e.g. results/zeroshot ner-wikiann none)
"""
import json
import os
import sys
from functools import partial
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from csfair.evaluation.metrics import span_counts, span_score_from_counts
from csfair.evaluation.stats import paired_bootstrap_counts

if len(sys.argv) != 4:
    raise SystemExit(__doc__.split("Usage: ")[1])
out, task, ref = sys.argv[1], sys.argv[2], sys.argv[3]
recs = [json.loads(x) for x in open(os.path.join(out, "results.jsonl"))]
recs = [r for r in recs if r["task"] == task and r["split"] == "test" and "protocol" in r]
models = sorted({r["model"] for r in recs}, key=lambda m: [ref, "ibm1", "muse"].index(m) if m in (ref, "ibm1", "muse") else 9)
# the latest protocol of each model
proto = {m: [r for r in recs if r["model"] == m][-1]["protocol"] for m in models}
langs = sorted({r["lang"] for r in recs})
types = ["LOC", "ORG", "PER"]  # WikiANN / WikiNEuRal entity types
def pooled(m, lang):
    total = None
    seeds = []
    for r in recs:
        if r["model"] != m or r["protocol"] != proto[m] or r["lang"] != lang or r.get("flags"):
            continue
        f = os.path.join(out, "runs", m, task, f"seed{r['seed']}", f"predictions-{proto[m]}.json")
        pairs = json.load(open(f))[f"{lang}|test"]
        _, c = span_counts([g for g, p in pairs], [p for g, p in pairs], types)
        total = c if total is None else total + c
        seeds.append(r["seed"])
    return total, seeds
stat = partial(span_score_from_counts, metric="macro_f1")
for lang in langs:
    a, sa = pooled(ref, lang)
    for m in models:
        if m == ref:
            continue
        b, sb = pooled(m, lang)
        s = paired_bootstrap_counts(a, b, stat)
        print(f"{task} {lang} {m} - {ref} (seeds {sb} vs {sa}, {s['n_items']} sentences): diff {s['diff']:+.4f} "
              f"[{s['lo']:+.4f}, {s['hi']:+.4f}] p {s['p_value']:.3f}{' *' if s['significant'] else ''}")
