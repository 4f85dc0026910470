"""Paired bootstrap of span F1 (issue 11, point 3): per-sentence per-type tp/fp/fn counts that sum to
seqeval's corpus scores, resampled as sentences, pooled over seeds, in the tables like accuracies."""
import csv
import io
import json
import math
import random

import numpy as np
import pytest

from conftest import data_path
from csfair.evaluation.corpora import read_ner
from csfair.evaluation.metrics import span_counts, span_f1, span_score_from_counts
from csfair.evaluation.results import (
    SpanItems,
    add_significance,
    aggregate,
    append_items,
    item_scores,
    load_items,
    to_csv,
    to_json,
    to_markdown,
)
from csfair.evaluation.stats import paired_bootstrap_counts

TYPES = ("PER", "ORG", "LOC")


@pytest.fixture(scope="module")
def gold():
    """The first 300 sentences of the WikiANN German test set (BIO tags)."""
    out = []
    for s in read_ner(data_path("ner/wikiann/de/test.conllu")):
        out.append(list(s.labels))
        if len(out) == 300:
            break
    return out


def perturb(gold, rng, p_keep):
    """Predictions: a sentence is kept with probability p_keep, else its tags are damaged: a span's
    type changed (possibly to a type absent from the gold, MISC), a boundary moved, a tag dropped or added."""
    pred = []
    for g in gold:
        p = list(g)
        if rng.random() >= p_keep:
            for i in range(len(p)):
                r = rng.random()
                if r < 0.15 and p[i] != "O":
                    p[i] = p[i][:2] + rng.choice(TYPES + ("MISC",))
                elif r < 0.25:
                    p[i] = "O"
                elif r < 0.32:
                    p[i] = rng.choice(("B-", "I-")) + rng.choice(TYPES)
        pred.append(p)
    return pred


def test_summed_sentence_counts_give_seqeval_scores_exactly(gold):
    rng = random.Random(0)
    for p_keep in (0.0, 0.5, 0.9):
        pred = perturb(gold, rng, p_keep)
        types, counts = span_counts(gold, pred)
        assert counts.shape == (len(gold), len(types), 3) and counts.min() >= 0
        ref = span_f1(gold, pred)
        total = counts.sum(0)
        for metric in ("macro_f1", "micro_f1", "precision", "recall"):
            assert float(span_score_from_counts(total, metric)) == ref[metric], (p_keep, metric)
        # a predicted-only type (MISC) takes part in seqeval's macro average
        assert p_keep == 0.9 or "MISC" in types
    # the same counts on a wider type list (a type nobody predicted) score the same
    types, counts = span_counts(gold, pred)
    wide_types, wide = span_counts(gold, pred, types=list(types) + ["ZZZ"])
    assert np.array_equal(wide[:, :-1], counts) and not wide[:, -1].any()
    assert span_score_from_counts(wide.sum(0), "macro_f1") == span_score_from_counts(counts.sum(0), "macro_f1")
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        span_counts([["O", "O"]], [["O"]])


def test_bootstrap_of_span_f1(gold):
    rng = random.Random(1)
    worse, better = perturb(gold, rng, 0.3), perturb(gold, rng, 0.9)
    union = sorted(set(span_counts(gold, worse)[0]) | set(span_counts(gold, better)[0]))
    a = span_counts(gold, worse, union)[1]
    b = span_counts(gold, better, union)[1]
    for metric in ("macro_f1", "micro_f1"):
        stat = lambda c: span_score_from_counts(c, metric)  # noqa: E731
        same = paired_bootstrap_counts(a, a, stat, n_boot=300)
        assert same["diff"] == 0 and same["lo"] == same["hi"] == 0 and not same["significant"]
        assert same["p_value"] == 1.0
        up = paired_bootstrap_counts(a, b, stat, n_boot=300)
        assert up["significant"] == 1.0 and 0 < up["lo"] <= up["diff"] <= up["hi"] and up["n_items"] == len(gold)
        assert math.isclose(up["diff"], span_f1(gold, better)[metric] - span_f1(gold, worse)[metric], abs_tol=1e-12)
        assert paired_bootstrap_counts(a, b, stat, n_boot=300) == up  # seeded: reproducible
        down = paired_bootstrap_counts(b, a, stat, n_boot=300)
        assert down["significant"] == 1.0 and down["hi"] < 0
    with pytest.raises(ValueError, match="one shape"):
        paired_bootstrap_counts(a, b[:-1], stat)


def _rec(model, seed, value, items, metric="macro_f1"):
    return dict(model=model, task="ner-wikiann", lang="de", split="test", seed=seed, protocol="p1", flags=[],
                metrics={metric: value}, items=items)


def test_span_f1_cells_get_significance_pooled_over_seeds(gold, tmp_path):
    rng = random.Random(2)
    path = tmp_path / "items.jsonl"
    append_items(path, "old|1", [1, 0, 1], [2, 1, 1])  # an accuracy line of an older run: still loads
    recs, preds = [], {}
    for model, p_keep in (("none", 0.3), ("ibm1", 0.9), ("muse", 0.3)):
        for seed in (1, 2):
            pred = perturb(gold, rng, p_keep)
            preds[model, seed] = pred
            its = item_scores("span_f1", gold, pred)
            assert isinstance(its, SpanItems) and len(its.counts) == len(gold)
            append_items(path, f"{model}|{seed}", its)
            recs.append(_rec(model, seed, span_f1(gold, pred)["macro_f1"], f"{model}|{seed}"))
    recs.append(_rec("old", 1, 0.5, None))  # a record written before span items: no items key
    items = load_items(path)
    assert items["old|1"] == ([1, 0, 1], [2, 1, 1]) and isinstance(items["ibm1|1"], SpanItems)
    t = aggregate(recs, "ner-wikiann", "macro_f1")
    add_significance(t, items, "none", n_boot=300, metric="macro_f1")
    up, same, old = t["de"]["ibm1"].sig, t["de"]["muse"].sig, t["de"]["old"].sig
    assert up["significant"] == 1.0 and up["lo"] > 0 and up["n_items"] == len(gold)
    # pooled over seeds = the F1 of the seeds' predictions taken together as one corpus
    pooled = {m: span_f1(gold * 2, preds[m, 1] + preds[m, 2])["macro_f1"] for m in ("none", "ibm1")}
    assert math.isclose(up["diff"], pooled["ibm1"] - pooled["none"], abs_tol=1e-12)
    assert same["lo"] <= same["diff"] <= same["hi"] and "error" in old and t["de"]["none"].sig is None
    md = to_markdown(t, reference="none")
    cells = [c.strip() for c in md.split("| de |")[1].split("|")]
    assert cells[1].endswith("(n=2) *") and not cells[0].endswith("*") and not cells[3].endswith("*")
    assert "excludes 0" in md and "not computed for span F1" not in md
    assert "significance not computed for de / old: no per-item scores" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert float(rows[0]["ibm1_lo"]) > 0 and rows[0]["none_lo"] == "" and rows[0]["old_lo"] == ""
    assert json.loads(json.dumps(to_json(t)))["de"]["ibm1"]["sig"]["significant"] == 1.0
    # span counts need the table's span metric; micro F1 is bootstrapped as micro F1
    add_significance(t, items, "none", n_boot=300)
    assert "span metric" in t["de"]["ibm1"].sig["error"]
    add_significance(t, items, "none", n_boot=300, metric="micro_f1")
    pooled = {m: span_f1(gold * 2, preds[m, 1] + preds[m, 2])["micro_f1"] for m in ("none", "ibm1")}
    assert math.isclose(t["de"]["ibm1"].sig["diff"], pooled["ibm1"] - pooled["none"], abs_tol=1e-12)
