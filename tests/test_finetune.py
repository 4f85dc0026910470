"""Fine-tuning and zero-shot evaluation: alignment, metrics, XNLI split, aggregation, end to end."""
import json
import math
import sys

import pytest
import torch

from conftest import ROOT, data_path, run
from csfair.evaluation.corpora import (
    read_calcs,
    read_sentimix,
    read_udpos_tsv,
    read_xnli,
    split_by_premise,
)
from csfair.io import InputFormatError
from csfair.evaluation.metrics import mean_std, sentence_metrics, span_f1, token_accuracy
from csfair.evaluation.results import BELOW_MAJORITY, COLLAPSED, aggregate, to_csv, to_markdown
from csfair.evaluation.tagging import IGNORE, align_first_piece, first_piece_positions


def test_labels_sit_on_first_pieces(tiny_pair):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_pair["spm"]))
    enc = lambda w: sp.encode(w, out_type=str)  # noqa: E731
    words = ["Unbelievably", "small", "dogs", "sleep", "."]
    labels = ["ADV", "ADJ", "NOUN", "VERB", "PUNCT"]
    a = align_first_piece(words, labels, enc)
    assert len(a.pieces) == len(a.piece_labels) > len(words)  # at least one word has several pieces
    firsts = first_piece_positions(a.piece_labels)
    assert [a.piece_labels[i] for i in firsts] == labels
    assert all(a.pieces[i].startswith("\u2581") for i in firsts)
    # every piece between two first pieces belongs to the earlier word and is ignored
    expected = [lab for w, lab in zip(words, labels) for lab in [lab] + [IGNORE] * (len(enc(w)) - 1)]
    assert a.piece_labels == expected
    # truncation keeps whole words only and counts the rest
    budget = len(enc(words[0])) + len(enc(words[1])) + 1
    cut = align_first_piece(words, labels, enc, max_pieces=budget)
    assert cut.words == words[:2] and cut.dropped == 3 and len(cut.pieces) <= budget
    with pytest.raises(ValueError):
        align_first_piece(words, labels[:-1], enc)


def test_span_f1_and_accuracy_on_hand_made_cases():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]]
    m = span_f1(gold, pred, report=True)
    # spans: PER ok, LOC missed, ORG ok -> P = 2/2, R = 2/3, micro F1 = 0.8
    assert m["precision"] == 1.0 and math.isclose(m["recall"], 2 / 3)
    assert math.isclose(m["micro_f1"], 0.8)
    # per type F1: PER 1, ORG 1, LOC 0 -> macro 2/3
    assert math.isclose(m["macro_f1"], 2 / 3)
    assert m["per_class"]["LOC"]["recall"] == 0.0
    # a wrong boundary is a wrong span (CoNLL evaluation)
    assert span_f1([["B-PER", "I-PER"]], [["B-PER", "O"]])["micro_f1"] == 0.0
    acc = token_accuracy([["NOUN", "VERB"], ["DET"]], [["NOUN", "NOUN"], ["DET"]])
    assert math.isclose(acc["accuracy"], 2 / 3) and acc["n_words"] == 3
    s = sentence_metrics(["a", "a", "b", "c"], ["a", "b", "b", "c"])
    # accuracy 3/4; F1 a = 2/3, b = 2/3, c = 1 -> macro 7/9
    assert s["accuracy"] == 0.75 and math.isclose(s["macro_f1"], 7 / 9)
    with pytest.raises(ValueError):
        span_f1([["O", "O"]], [["O"]])


def test_xnli_split_by_premise_shares_no_premise():
    rows = {lg: read_xnli(data_path(f"nli/xnli-xtreme/dev-{lg}.tsv")) for lg in ("en", "fr", "hi")}
    train, dev, tests = split_by_premise(rows, "en", dev=0.1, test=0.3, seed=1)
    p_train, p_dev = {x.group for x in train}, {x.group for x in dev}
    p_test = {x.group for x in tests["en"]}
    assert not (p_train & p_dev) and not (p_train & p_test) and not (p_dev & p_test)
    assert len(train) + len(dev) + len(tests["en"]) == len(rows["en"]) == 2490
    assert len(p_train | p_dev | p_test) == 830  # 3 hypotheses per premise
    # target-language test rows are the same rows (translations), in the same order
    for lg in ("fr", "hi"):
        assert [x.label for x in tests[lg]] == [x.label for x in tests["en"]]
        assert len(tests[lg]) == len(tests["en"])
    # another seed, another split; same seed, same split
    assert {x.group for x in split_by_premise(rows, "en", seed=2)[0]} != p_train
    assert {x.group for x in split_by_premise(rows, "en", seed=1)[0]} == p_train


def test_aggregator_mean_std_and_tables():
    recs = [dict(model=m, task="pos", lang=lg, split="test", seed=s, metrics={"accuracy": v})
            for m, lg, s, v in [("ibm1", "fr", 1, 0.5), ("ibm1", "fr", 2, 0.7), ("ibm1", "fr", 3, 0.9),
                                ("none", "fr", 1, 0.4), ("ibm1", "de", 1, 0.3), ("ibm1", "fr", 3, 0.6)]]
    t = aggregate(recs, "pos", "accuracy")
    c = t["fr"]["ibm1"]  # the later seed-3 record (0.6) replaces the first
    assert c.n == 3 and math.isclose(c.mean, 0.6) and math.isclose(c.std, 0.1)
    assert (t["fr"]["none"].mean, t["fr"]["none"].std, t["fr"]["none"].n) == (0.4, 0.0, 1) and t["de"]["none"].empty
    md = to_markdown(t)
    assert "| fr | 0.6000 ± 0.1000 (n=3) | 0.4000 ± 0.0000 (n=1) |" in md and "| de | 0.3000 ± 0.0000 (n=1) | - |" in md
    assert to_csv(t).splitlines()[0].startswith("lang,ibm1_mean,ibm1_std,ibm1_n,ibm1_failed,")
    m, s, n = mean_std([1.0, 2.0, 4.0])
    assert math.isclose(m, 7 / 3) and math.isclose(s, math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))


def test_converters_reject_malformed_lines(tmp_path):
    f = tmp_path / "pos.tsv"
    f.write_text("The\tDET\ndog\tNOUN\textra\n\n")
    with pytest.raises(InputFormatError, match=r"pos.tsv:2: expected 2 tab-separated columns, got 3"):
        read_udpos_tsv(f)
    f.write_text("The\tDET\n\tNOUN\n")
    with pytest.raises(InputFormatError, match=r"pos.tsv:2: empty token"):
        read_udpos_tsv(f)
    x = tmp_path / "xnli.tsv"
    x.write_text("A man.\tA person.\tentailment\nA man.\tA dog.\tmaybe\n")
    with pytest.raises(InputFormatError, match=r"xnli.tsv:2: unknown label 'maybe'"):
        read_xnli(x)
    s = tmp_path / "sm.txt"
    s.write_text("hola\tlang2\n")
    with pytest.raises(InputFormatError, match=r"sm.txt:1: token line before the first 'meta' line"):
        read_sentimix(s)
    # "meta" is also a Spanish word: a two-column "meta" line is a token, not a header
    s.write_text("meta\t1\tpositive\nmi\tlang2\nmeta\tlang2\n\nmeta\t2\tnegative\nok\tlang1\n")
    got = read_sentimix(s)
    assert [g.words for g in got] == [["mi", "meta"], ["ok"]] and got[1].meta["sentiment"] == "negative"
    c = tmp_path / "calcs.tsv"
    c.write_text("1\tu\t0\t3\thola\tes\n1\tu\t5\t7\tyou\ten\n2\tu\t0\t2\tok\n")
    with pytest.raises(InputFormatError, match=r"calcs.tsv:3: expected 6 tab-separated columns"):
        read_calcs(c)


def zeroshot(tiny_pair, ckpt, out, *extra):
    return run([sys.executable, ROOT / "scripts" / "zeroshot.py", "--checkpoint", f"tiny={ckpt}",
                "--spm", tiny_pair["spm"], "--dict", tiny_pair["dict"], "--out", out, *extra])


def test_frozen_encoder_with_crf_and_sentence_pair_classification(tiny_pair, tiny_mlm, tmp_path):
    zeroshot(tiny_pair, tiny_mlm, tmp_path, "--tasks", "ner-wikiann", "--langs", "de", "--seeds", "1",
             "--max-train", "150", "--max-eval", "60", "--lr", "1e-3", "--epochs", "1", "--freeze-encoder", "--crf",
             "--keep-checkpoints")
    ft = next((tmp_path / "runs").rglob("checkpoint_best.pt"))
    a = torch.load(tiny_mlm, map_location="cpu", weights_only=False)["model"]
    b = torch.load(ft, map_location="cpu", weights_only=False)["model"]
    enc = [k for k in a if k.startswith("encoder.sentence_encoder.")]
    assert enc and all(torch.equal(a[k], b[k]) for k in enc)  # frozen: the encoder did not move
    assert any(k.endswith("crf.transitions") for k in b)
    zeroshot(tiny_pair, tiny_mlm, tmp_path, "--tasks", "xnli", "--langs", "fr", "--seeds", "1",
             "--max-train", "200", "--max-eval", "60", "--lr", "1e-3", "--epochs", "1")
    recs = [json.loads(x) for x in open(tmp_path / "results.jsonl")]
    tasks = {(r["task"], r["model"], r["split"]) for r in recs}
    assert ("ner-wikiann", "tiny/frozen/crf", "test") in tasks and ("xnli", "tiny", "test") in tasks
    # NER evaluations store per-sentence span counts that sum to the record's seqeval scores
    import numpy as np

    from csfair.evaluation.metrics import span_score_from_counts
    from csfair.evaluation.results import SpanItems, load_items

    items = load_items(tmp_path / "items.jsonl")
    ner = [r for r in recs if r["task"] == "ner-wikiann"]
    assert ner and all(isinstance(items[r["items"]], SpanItems) for r in ner)
    for r in ner:
        counts = items[r["items"]].counts
        assert len(counts) == r["n"]
        if items[r["items"]].types:
            total = np.asarray(counts).sum(0)
            assert float(span_score_from_counts(total, "micro_f1")) == pytest.approx(r["metrics"]["micro_f1"], abs=1e-12)
    xnli = next(r for r in recs if r["task"] == "xnli" and r["split"] == "test")
    assert 0.0 <= xnli["metrics"]["accuracy"] <= 1.0 and xnli["n"] == 60


def test_pos_finetuning_best_epoch_protocol_keys_and_failed_runs(tiny_pair, tiny_mlm, tmp_path):
    """Fine-tuning beats the majority class on English dev, with the best epoch recorded; old results
    are served only under the same protocol; a run that learnt nothing is flagged and out of the mean."""
    import shutil

    ckpt = tmp_path / "ck.pt"
    shutil.copyfile(tiny_mlm, ckpt)
    out = tmp_path / "out"
    common = ["--tasks", "pos", "--langs", "fr", "--seeds", "1", "--reference", "tiny", "--max-train", "96",
              "--max-eval", "48", "--epochs", "3"]
    good = [*common, "--lr", "1e-3"]
    first = zeroshot(tiny_pair, ckpt, out, *good)
    recs = [json.loads(x) for x in open(out / "results.jsonl")]
    assert {r["split"] for r in recs} == {"valid", "test"} and len({r["protocol"] for r in recs}) == 1
    for r in recs:  # the best of the 3 epochs on English dev, and the dev scores it was chosen by
        assert len(r["dev_by_epoch"]) == 3 and r["dev_by_epoch"][r["best_epoch"] - 1] == max(r["dev_by_epoch"])
        assert r["unk_rate"] is not None and 0 <= r["unk_rate"] < 0.5 and r["flags"] == []
    dev = next(r for r in recs if r["split"] == "valid")
    test = next(r for r in recs if r["split"] == "test")
    assert dev["lang"] == "en" and test["lang"] == "fr" and test["n"] == 48
    assert math.isclose(dev["metrics"]["accuracy"], max(dev["dev_by_epoch"]), abs_tol=1e-6)
    # majority-class baseline of the same English dev sentences (the most frequent training label)
    gold = [json.loads(x)["labels"] for x in open(next((out / "data").rglob("raw/en.valid.jsonl")))]
    train = [t for x in open(next((out / "data").rglob("raw/en.train.jsonl"))) for t in json.loads(x)["labels"]]
    top = max(set(train), key=train.count)
    flat = [t for s in gold for t in s]
    assert math.isclose(dev["majority_baseline"], flat.count(top) / len(flat))
    assert dev["metrics"]["accuracy"] > dev["majority_baseline"] + 0.1, dev
    items = [json.loads(x) for x in open(out / "items.jsonl")]
    it = next(x for x in items if x["key"] == test["items"])
    assert math.isclose(sum(it["num"]) / sum(it["den"]), test["metrics"]["accuracy"]) and len(it["num"]) == 48
    assert "| fr | " in first.stdout and "(n=1, 48 items)" in first.stdout and (out / "tables" / "pos.json").exists()
    # the same protocol: served, not trained again; the column's parameter count is the one this code recorded
    # (tied embedding once), not an older record's of the same column (which counted it twice)
    params = test["params"]
    stale = dict(test, protocol="0" * 16, seed=9, params=params + 10 ** 7)
    lines = (out / "results.jsonl").read_text()
    (out / "results.jsonl").write_text(lines + json.dumps(stale) + "\n")
    again = zeroshot(tiny_pair, ckpt, out, *good).stdout
    assert "done before" in again and f"tiny ({params / 1e6:.1f}M)" in again
    assert f"({(params + 10 ** 7) / 1e6:.1f}M)" not in again
    (out / "results.jsonl").write_text(lines)
    dead = [*common, "--lr", "1e-9"]  # only the learning rate differs; the head stays at its random initialisation
    p = zeroshot(tiny_pair, ckpt, out, *dead)
    assert "done before" not in p.stdout
    recs = [json.loads(x) for x in open(out / "results.jsonl")]
    bad = [r for r in recs if r["lr"] == 1e-9]
    assert len({r["protocol"] for r in recs}) == 2 and len(bad) == 2 and all(r["flags"] for r in bad)
    assert set(bad[0]["flags"]) <= {BELOW_MAJORITY, COLLAPSED}
    table = (out / "tables" / "pos.md").read_text()
    assert "failed (1 of 1)" in table and "left out of the mean" in table and "(n=1," not in table
    # a retrained checkpoint under the same name: other bytes, other protocol, never the old results
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    k = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][k] = state["model"][k] + 0.01
    torch.save(state, ckpt)
    assert "done before" not in zeroshot(tiny_pair, ckpt, out, *dead).stdout
    assert len({json.loads(x)["protocol"] for x in open(out / "results.jsonl")}) == 3
