"""Significance of span F1 (issue 11, point 3; issue 19): per-sentence per-type tp/fp/fn counts that sum
to seqeval's corpus scores, resampled as sentences within the hierarchical test over seeds, in the
tables like accuracies."""
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
from csfair.evaluation.stats import hierarchical_bootstrap

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


def test_hierarchical_test_of_span_f1(gold):
    """Seeds of a worse and a better tagger on real WikiANN German sentences: each seed's score is its
    seqeval F1, the difference is that of the seed means, and it is significant both ways round."""
    rng = random.Random(1)
    worse = [perturb(gold, rng, 0.3) for _ in range(3)]
    better = [perturb(gold, rng, 0.9) for _ in range(3)]
    union = sorted({t for p in worse + better for t in span_counts(gold, p)[0]})
    a = np.stack([span_counts(gold, p, union)[1] for p in worse])
    b = np.stack([span_counts(gold, p, union)[1] for p in better])
    for metric in ("macro_f1", "micro_f1"):
        stat = lambda c: span_score_from_counts(c, metric)  # noqa: E731
        same = hierarchical_bootstrap(a, a, statistic=stat, n_boot=300)
        assert same["diff"] == 0 and not same["significant"] and same["p"] == 1.0
        up = hierarchical_bootstrap(a, b, statistic=stat, n_boot=300)
        assert up["significant"] and 0 < up["lo"] <= up["diff"] <= up["hi"] and up["n_items"] == len(gold)
        want = np.mean([span_f1(gold, p)[metric] for p in better]) - np.mean([span_f1(gold, p)[metric] for p in worse])
        assert math.isclose(up["diff"], want, abs_tol=1e-12)
        assert hierarchical_bootstrap(a, b, statistic=stat, n_boot=300) == up  # seeded: reproducible
        down = hierarchical_bootstrap(b, a, statistic=stat, n_boot=300)
        assert down["significant"] and down["hi"] < 0
    with pytest.raises(ValueError, match="same items"):
        hierarchical_bootstrap(a, b[:, :-1], statistic=stat)


def _rec(model, seed, value, items, metric="macro_f1", n=300):
    return dict(model=model, task="ner-wikiann", lang="de", split="test", seed=seed, protocol="p1", flags=[],
                metrics={metric: value}, items=items, n=n)


def test_span_f1_cells_get_the_hierarchical_test(gold, tmp_path):
    rng = random.Random(2)
    path = tmp_path / "items.jsonl"
    append_items(path, "old|1", [1, 0, 1], [2, 1, 1])  # an accuracy line of an older run: still loads
    recs, preds = [], {}
    for model, p_keep in (("none", 0.3), ("ibm1", 0.9), ("muse", 0.3)):
        for seed in (1, 2, 3):
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
    assert up["significant"] and up["lo"] > 0 and up["n_items"] == len(gold) and up["runs_a"] == up["runs_b"] == 3
    # the difference of the cells' means (each seed's seqeval F1, averaged over the seeds)
    assert math.isclose(up["diff"], t["de"]["ibm1"].mean - t["de"]["none"].mean, abs_tol=1e-12)
    assert same["lo"] <= same["diff"] <= same["hi"] and "error" in old and t["de"]["none"].sig is None
    md = to_markdown(t, reference="none")
    cells = [c.strip() for c in md.split("| de |")[1].split("|")]
    assert cells[1].endswith(f"(n=3, {len(gold)} items) *") and not cells[0].endswith("*") and not cells[3].endswith("*")
    assert "excludes 0" in md and "not computed for span F1" not in md
    assert "significance not computed for de / old: no per-item scores" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert float(rows[0]["ibm1_lo"]) > 0 and rows[0]["none_lo"] == "" and rows[0]["old_lo"] == ""
    assert json.loads(json.dumps(to_json(t)))["de"]["ibm1"]["sig"]["significant"] is True
    # span counts need the table's span metric; micro F1 is bootstrapped as micro F1
    add_significance(t, items, "none", n_boot=300)
    assert "span metric" in t["de"]["ibm1"].sig["error"]
    add_significance(t, items, "none", n_boot=300, metric="micro_f1")
    micro = {m: np.mean([span_f1(gold, preds[m, k])["micro_f1"] for k in (1, 2, 3)]) for m in ("none", "ibm1")}
    assert math.isclose(t["de"]["ibm1"].sig["diff"], micro["ibm1"] - micro["none"], abs_tol=1e-12)
