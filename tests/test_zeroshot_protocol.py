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


def _rec(model, seed, value, lang="fr", proto="p1", flags=(), items=None, unk=None, unk_words=None, eval_flags=(), n=None):
    return dict(model=model, task="pos", lang=lang, split="test", seed=seed, protocol=proto, flags=list(flags),
                metrics={"accuracy": value}, items=items, unk_rate=unk, unk_word_rate=unk_words,
                eval_flags=list(eval_flags), n=n)


def test_failed_runs_are_out_of_the_mean_and_cells_show_n():
    """Runs flagged on dev are out of the mean; a test-time collapse is a note next to a value that stays in."""
    recs = [_rec("ibm1", 1, 0.5, n=500), _rec("ibm1", 2, 0.7, n=500), _rec("ibm1", 3, 0.07, flags=[COLLAPSED], n=500),
            _rec("ibm1", 4, 0.9), _rec("ibm1", 4, 0.6, n=500),  # a re-run replaces
            _rec("none", 1, 0.3333, flags=[BELOW_MAJORITY, COLLAPSED]), _rec("none", 2, 0.3333, flags=[BELOW_MAJORITY]),
            _rec("ibm1", 1, 0.07, lang="hi", unk=0.49, unk_words=0.977, eval_flags=[COLLAPSED], n=300),
            _rec("ibm1", 2, 0.08, lang="hi", unk=0.49, unk_words=0.977, n=300)]
    t = aggregate(recs, "pos", "accuracy")
    c = t["fr"]["ibm1"]
    assert c.n == 3 and c.failed == 1 and math.isclose(c.mean, 0.6) and math.isclose(c.std, 0.1) and c.n_items == 500
    assert c.flags == {3: [COLLAPSED]} and t["fr"]["none"].n == 0 and t["fr"]["none"].failed == 2
    hi = t["hi"]["ibm1"]
    assert hi.n == 2 and math.isclose(hi.mean, 0.075) and hi.notes == {1: [COLLAPSED]} and hi.failed == 0
    md = to_markdown(t, train_lang="en")
    assert "| fr | 0.6000 ± 0.1000 (n=3, 500 items); 1 failed | failed (2 of 2) |" in md
    assert "| hi | 0.0750 ± 0.0071 (n=2, 300 items) † | - |" in md
    assert "hi / ibm1: 98% of the words are entirely <unk> for this vocabulary (49% of the pieces)" in md
    assert "hi / ibm1: run(s) 1 collapsed on this test set; kept in the mean" in md
    assert "fr / none: run(s) 1, 2 excluded on the en dev set (below_majority, collapsed)" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert rows[0]["ibm1_n"] == "3" and rows[0]["ibm1_failed"] == "1" and rows[0]["none_mean"] == ""
    assert rows[0]["ibm1_items"] == "500" and rows[1]["ibm1_notes"] == "1" and rows[1]["ibm1_unk_word_rate"] == "0.9770"
    assert json.loads(json.dumps(to_json(t)))["fr"]["none"]["mean"] is None
    # only the command's seeds enter a cell
    assert aggregate(recs, "pos", "accuracy", seeds={1, 2})["fr"]["ibm1"].values == [0.5, 0.7]


def test_a_cell_never_mixes_protocols():
    recs = [_rec("ibm1", 1, 0.5, proto="old"), _rec("ibm1", 2, 0.9, proto="old"),
            _rec("ibm1", 1, 0.4, proto="new"), _rec("none", 1, 0.2, proto="new")]
    t = aggregate(recs, "pos", "accuracy")
    assert sorted(t["fr"]) == ["ibm1@new", "ibm1@old", "none"]
    assert t["fr"]["ibm1@old"].n == 2 and t["fr"]["ibm1@new"].values == [0.4]
    only = aggregate(recs, "pos", "accuracy", protocols={"new"})
    assert sorted(only["fr"]) == ["ibm1", "none"] and only["fr"]["ibm1"].values == [0.4]


def test_hierarchical_test_against_the_reference(tmp_path):
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
    assert up["significant"] and up["lo"] > 0 and up["n_items"] == 400 and up["runs_a"] == 2
    assert math.isclose(up["diff"], t["fr"]["ibm1"].mean - t["fr"]["none"].mean, abs_tol=1e-9)
    assert same["lo"] <= same["diff"] <= same["hi"]
    assert t["fr"]["none"].sig is None
    md = to_markdown(t, reference="none")
    cells = md.split("| fr |")[1].split("|")
    assert cells[1].strip().endswith("(n=2) *") and "excludes 0" in md and "1 failed" in cells[2]
    assert "hierarchical bootstrap (runs and test items" in md  # the legend names the test
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert float(rows[0]["ibm1_lo"]) > 0 and rows[0]["none_lo"] == ""
    # token accuracy items are sentences with their word counts (span F1: tests/test_span_f1_bootstrap.py)
    assert item_scores("token_accuracy", [["A", "B"], ["C"]], [["A", "A"], ["C"]]) == ([1, 1], [2, 1])
    with pytest.raises(KeyError, match="not a column"):
        add_significance(t, {}, "nosuch")
    # one kept seed: its seed variance is unknown, so no interval (said under the table)
    one = aggregate([r for r in recs if not (r["model"] == "ibm1" and r["seed"] == 2)], "pos", "accuracy")
    add_significance(one, load_items(path), "none", n_boot=200)
    assert "at least 2 runs" in one["fr"]["ibm1"].sig["error"]
    assert "significance not computed for fr / ibm1" in to_markdown(one, reference="none")
    # a column of two pretrained checkpoints (pretraining seeds): one column, the test's third level
    cols = {("none", "p1"): "none", ("ibm1", "p1"): "ibm1", ("ibm1b", "p1"): "ibm1"}
    for seed in (1, 2):
        pred = [g if rng.random() < 0.8 else "x" for g in gold]
        append_items(path, f"ibm1b|{seed}", *item_scores("sentence_metrics", gold, pred))
        recs.append(_rec("ibm1b", seed, sum(g == p for g, p in zip(gold, pred)) / 400, items=f"ibm1b|{seed}"))
    three = aggregate(recs, "pos", "accuracy", columns=cols)
    assert list(three["fr"]) == ["none", "ibm1"] and three["fr"]["ibm1"].n == 4 and three["fr"]["ibm1"].checkpoints == 2
    assert three["fr"]["ibm1"].groups == [0, 0, 1, 1]
    add_significance(three, load_items(path), "none", n_boot=200)
    sig = three["fr"]["ibm1"].sig
    assert sig["level_b"] == "pretraining checkpoints" and sig["units_b"] == 2 and sig["runs_b"] == 4
    assert "(n=4 in 2 ckpts)" in to_markdown(three, reference="none")


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


def test_unk_word_rates_count_words_that_are_nothing_but_unk(tmp_path):
    """A script the vocabulary lacks is a known boundary piece plus <unk> per word: half unknown by pieces,
    entirely unknown by words (Hindi POS under an en-fr vocabulary, csfair issue 19)."""
    from csfair.evaluation.tasks import unk_rates, unk_word_rates

    vocab = ["\u2581", "\u2581a", "\u2581b", "c"]
    (tmp_path / "hi.test.input0").write_text("\u2581 <unk> \u2581 <unk> \u2581a\n<unk> \u2581 <unk>\n")
    (tmp_path / "fr.test.input0").write_text("\u2581a c \u2581b <unk> \u2581 <unk> zz\n")
    (tmp_path / "fr.test.input1").write_text("\u2581a\n")
    words = unk_word_rates(tmp_path, vocab)
    assert unk_rates(tmp_path, vocab)["hi.test"] == 4 / 8 and words["hi.test"] == 4 / 5
    # "▁b <unk>" has a known piece: not an unknown word; "▁ <unk> zz" (zz not in the vocabulary) is
    assert words["fr.test"] == 1 / 4
    assert unk_word_rates(tmp_path)["fr.test"] == 0.0  # sentencepiece's <unk> only: zz counts as known
