"""Zero-shot results without training: protocol keys, failure flags, tables with n and significance,
unseen test labels, the CRF's empty-sentence guard, <unk> rates (issue 11, part 3)."""
import csv
import io
import json
import math

import pytest
import torch

from csfair.evaluation.results import (
    BELOW_MAJORITY,
    COLLAPSED,
    add_significance,
    aggregate,
    append_items,
    failure_flags,
    item_scores,
    load_items,
    majority_predictions,
    protocol_key,
    to_csv,
    to_json,
    to_markdown,
)


def test_protocol_key_changes_with_every_value_and_not_with_key_order():
    proto = dict(task="pos", lr=5e-5, epochs=3, batch_size=32, start="ab" * 32, data={"en.train": 3000}, code="c0ffee")
    key = protocol_key(proto)
    assert key == protocol_key(dict(reversed(list(proto.items()))))
    for k, v in [("lr", 5.000001e-5), ("epochs", 4), ("batch_size", 16), ("start", "cd" * 32),
                 ("data", {"en.train": 2999}), ("code", "c0ffef")]:
        assert protocol_key(dict(proto, **{k: v})) != key, k


def test_failure_flags_majority_baseline_and_collapse():
    gold = ["a", "b", "c", "a", "b", "c"] * 10
    train = ["a"] * 5 + ["b"] * 3 + ["c"] * 2
    maj = majority_predictions(train, gold)
    assert set(maj) == {"a"}
    maj_acc = sum(g == p for g, p in zip(gold, maj)) / len(gold)
    # the XNLI failure of the old tables: exactly the majority baseline, every prediction one label
    assert failure_flags(maj_acc, maj_acc, gold, maj) == [BELOW_MAJORITY, COLLAPSED]
    good = list(gold)
    good[0] = "b"
    acc = sum(g == p for g, p in zip(gold, good)) / len(gold)
    assert failure_flags(acc, maj_acc, gold, good) == []
    # tagging: 97% of the predicted words one label is a collapse unless the gold is as one-sided
    gold_t = [["NOUN", "VERB", "DET", "ADJ"]] * 25
    pred_t = [["NOUN"] * 4] * 24 + [["NOUN", "VERB", "DET", "ADJ"]]
    assert failure_flags(None, None, gold_t, pred_t) == [COLLAPSED]
    gold_o = [["O"] * 40] * 24 + [["B-PER"] + ["O"] * 39]
    assert failure_flags(None, None, gold_o, [["O"] * 40] * 25) == []
    assert majority_predictions(gold_o, [["x"] * 3, ["y"]]) == [["O"] * 3, ["O"]]


def _rec(model, seed, value, lang="fr", proto="p1", flags=(), items=None, unk=None):
    return dict(model=model, task="pos", lang=lang, split="test", seed=seed, protocol=proto, flags=list(flags),
                metrics={"accuracy": value}, items=items, unk_rate=unk)


def test_failed_runs_are_out_of_the_mean_and_cells_show_n():
    recs = [_rec("ibm1", 1, 0.5), _rec("ibm1", 2, 0.7), _rec("ibm1", 3, 0.07, flags=[COLLAPSED]),
            _rec("ibm1", 4, 0.9), _rec("ibm1", 4, 0.6),  # a re-run replaces
            _rec("none", 1, 0.3333, flags=[BELOW_MAJORITY, COLLAPSED]), _rec("none", 2, 0.3333, flags=[BELOW_MAJORITY]),
            _rec("ibm1", 1, 0.1, lang="hi", unk=0.98)]
    t = aggregate(recs, "pos", "accuracy")
    c = t["fr"]["ibm1"]
    assert c.n == 3 and c.failed == 1 and math.isclose(c.mean, 0.6) and math.isclose(c.std, 0.1)
    assert c.flags == {3: [COLLAPSED]} and t["fr"]["none"].n == 0 and t["fr"]["none"].failed == 2
    md = to_markdown(t)
    assert "| fr | 0.6000 ± 0.1000 (n=3); 1 failed | failed (2 of 2) |" in md
    assert "| hi | 0.1000 ± 0.0000 (n=1) | - |" in md
    assert "hi / ibm1: 98% of the input pieces are <unk>" in md and "fr / none: seed(s) 1, 2 failed" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert rows[0]["ibm1_n"] == "3" and rows[0]["ibm1_failed"] == "1" and rows[0]["none_mean"] == ""
    assert json.loads(json.dumps(to_json(t)))["fr"]["none"]["mean"] is None


def test_a_cell_never_mixes_protocols():
    recs = [_rec("ibm1", 1, 0.5, proto="old"), _rec("ibm1", 2, 0.9, proto="old"),
            _rec("ibm1", 1, 0.4, proto="new"), _rec("none", 1, 0.2, proto="new")]
    t = aggregate(recs, "pos", "accuracy")
    assert sorted(t["fr"]) == ["ibm1@new", "ibm1@old", "none"]
    assert t["fr"]["ibm1@old"].n == 2 and t["fr"]["ibm1@new"].values == [0.4]
    only = aggregate(recs, "pos", "accuracy", protocols={"new"})
    assert sorted(only["fr"]) == ["ibm1", "none"] and only["fr"]["ibm1"].values == [0.4]


def test_paired_bootstrap_against_the_reference_pooled_over_seeds(tmp_path):
    import random

    rng = random.Random(0)
    gold = [rng.choice("abc") for _ in range(400)]
    path = tmp_path / "items.jsonl"
    recs = []
    for model, p_right in (("none", 0.5), ("ibm1", 0.8), ("muse", 0.5)):
        for seed in (1, 2):
            pred = [g if rng.random() < p_right else "x" for g in gold]
            num, den = item_scores("sentence_metrics", gold, pred)
            append_items(path, f"{model}|{seed}", num, den)
            recs.append(_rec(model, seed, sum(num) / len(num), items=f"{model}|{seed}"))
    recs.append(_rec("muse", 3, 0.1, flags=[COLLAPSED], items="muse|3"))  # failed: not in the pooled items
    t = aggregate(recs, "pos", "accuracy")
    add_significance(t, load_items(path), "none", n_boot=500)
    up, same = t["fr"]["ibm1"].sig, t["fr"]["muse"].sig
    assert up["significant"] == 1.0 and up["lo"] > 0 and up["n_items"] == 400
    assert math.isclose(up["diff"], t["fr"]["ibm1"].mean - t["fr"]["none"].mean, abs_tol=1e-9)
    assert same["lo"] <= same["diff"] <= same["hi"]
    assert t["fr"]["none"].sig is None
    md = to_markdown(t, reference="none")
    cells = md.split("| fr |")[1].split("|")
    assert cells[1].strip().endswith("(n=2) *") and "excludes 0" in md and "1 failed" in cells[2]
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert float(rows[0]["ibm1_lo"]) > 0 and rows[0]["none_lo"] == ""
    # token accuracy items are sentences with their word counts (span F1: tests/test_span_f1_bootstrap.py)
    assert item_scores("token_accuracy", [["A", "B"], ["C"]], [["A", "A"], ["C"]]) == ([1, 1], [2, 1])
    with pytest.raises(KeyError, match="not a column"):
        add_significance(t, {}, "nosuch")


def _raw_tagging(d, train, test):
    d.mkdir(parents=True)
    for name, rows in (("en.train", train), ("en.valid", train), ("fr.test", test)):
        (d / f"{name}.input0").write_text("".join(" ".join("\u2581a" for _ in r) + "\n" for r in rows))
        (d / f"{name}.label").write_text("".join(" ".join(r) + "\n" for r in rows))


def test_unseen_test_labels_are_an_error_or_a_never_predicted_class(tiny_pair, tmp_path):
    from fairseq.data import Dictionary

    from user_dir.finetune import binarize_task
    from user_dir.tasks.token_tagging import TokenTaggingConfig, TokenTaggingTask

    raw = tmp_path / "raw"
    _raw_tagging(raw, [["NOUN", "VERB"], ["NOUN"]], [["NOUN", "INTJ"], ["SYM", "INTJ", "VERB"]])
    with pytest.raises(ValueError, match=r"fr\.test\.label: labels \{'INTJ': 2, 'SYM': 1\}"):
        binarize_task(str(raw), str(tmp_path / "bin-err"), str(tiny_pair["dict"]), False, "en")
    binarize_task(str(raw), str(tmp_path / "bin"), str(tiny_pair["dict"]), False, "en", unseen_labels="never-predicted")
    assert json.loads((tmp_path / "bin" / "unseen_labels.json").read_text()) == {"fr.test": {"INTJ": 2, "SYM": 1}}
    labels = Dictionary.load(str(tmp_path / "bin" / "fr" / "label" / "dict.txt"))
    assert labels.symbols[labels.nspecial:] == ["NOUN", "VERB", "INTJ", "SYM"]
    task = TokenTaggingTask(TokenTaggingConfig(data=str(tmp_path / "bin" / "en")), Dictionary.load(str(tiny_pair["dict"])),
                            Dictionary.load(str(tmp_path / "bin" / "en" / "label" / "dict.txt")))
    assert task.num_classes == 2  # the head never outputs INTJ or SYM
    # the test targets keep the unseen labels (class >= num_classes), none silently dropped
    from user_dir.data.tagging_target_dataset import TaggingTargetDataset
    from fairseq.data import data_utils

    ds = TaggingTargetDataset(data_utils.load_indexed_dataset(str(tmp_path / "bin" / "fr" / "label" / "test"), labels),
                              labels)
    assert [c for c in ds[1].tolist() if c >= 0] == [labels.index("SYM") - 4, labels.index("INTJ") - 4, 1]


def test_crf_decoding_skips_sentences_without_words():
    from user_dir.models.token_tagging_head import TokenTaggingHead, crf_decode

    torch.manual_seed(0)
    head = TokenTaggingHead(8, 8, 3, use_crf=True)
    em = torch.randn(3, 5, 3)
    words = torch.tensor([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)
    paths = crf_decode(head.crf, em, words)
    assert [len(p) for p in paths] == [3, 0, 1]
    # the non-empty rows decode as they would alone
    assert paths[0] == crf_decode(head.crf, em[:1], words[:1])[0]
    assert crf_decode(head.crf, em[1:2], words[1:2]) == [[]]


def test_unk_rates_per_language(tmp_path):
    from csfair.evaluation.tasks import unk_rates

    (tmp_path / "en.test.input0").write_text("\u2581a \u2581b\n\u2581c\n")
    (tmp_path / "hi.test.input0").write_text("<unk> <unk> \u2581a\n")
    (tmp_path / "hi.test.input1").write_text("<unk>\n")
    got = unk_rates(tmp_path, ["\u2581a", "\u2581b"])
    assert math.isclose(got["en.test"], 1 / 3) and got["hi.test"] == 0.75
    assert unk_rates(tmp_path)["en.test"] == 0.0
