"""Held-out data (csfair.evaluation.overlap, ``csfair-prep split-pair`` / ``audit``) on real slices.

Multi30k en-fr pairs, ``mono/derived`` text (whose first lines are Multi30k training captions, as in
the demo's data) and the WikiANN German test set: the naive split leaks, the held-out split does not,
and the audit says so (exit status included).
"""
import gzip
import json
import random
import subprocess

import pytest

from conftest import VENV_BIN, data_path, head_lines
from csfair.evaluation.corpora import read_ner
from csfair.io import InputFormatError
from csfair.evaluation.overlap import (
    audit,
    file_eval_split,
    file_keys,
    normalize,
    split_pair,
    task_eval_splits,
    translation_splits,
)


def lines_of(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [x.rstrip("\n") for x in fh if x.strip()]


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    """1,500 Multi30k en-fr pairs and the first 1,000 lines of mono/derived/{en,fr}.txt."""
    d = tmp_path_factory.mktemp("overlap")
    return {
        "dir": d,
        "par_en": head_lines(data_path("parallel/multi30k/train.en.gz"), d / "m30k.en", 1500),
        "par_fr": head_lines(data_path("parallel/multi30k/train.fr.gz"), d / "m30k.fr", 1500),
        "en": head_lines(data_path("mono/derived/en.txt"), d / "mono.en", 1000),
        "fr": head_lines(data_path("mono/derived/fr.txt"), d / "mono.fr", 1000),
    }


def test_normalize_is_an_idempotent_nfkc_casefold_whitespace_key(slices):
    for line in lines_of(slices["fr"])[:50]:
        k = normalize(line)
        assert normalize(k) == k
        assert normalize("  " + line.upper().replace(" ", " \t ") + "\n") == k
        assert normalize(line + " .") != k  # punctuation is kept
    assert normalize("une ﬁlle") == normalize("UNE FILLE")  # NFKC folds the ligature
    assert normalize(" \t ") == ""


def test_split_pair_holds_test_and_translations_out_of_everything(slices):
    d = slices["dir"] / "heldout"
    stats = split_pair({"en": slices["en"], "fr": slices["fr"]}, "fr", (slices["par_en"], slices["par_fr"]), d,
                       eval_splits=[], n_test=200, n_valid=50, seed=3, src_lang="en")
    test = lines_of(d / "text/fr.test.txt")
    test_keys = {normalize(x) for x in test}
    pairs = list(zip(lines_of(slices["par_en"]), lines_of(slices["par_fr"])))
    # the naive split leaks: the test captions are Multi30k training captions (precondition)
    leaked = [(e, f) for e, f in pairs if normalize(f) in test_keys]
    assert len(leaked) >= 100
    translations = {normalize(e) for e, _ in leaked}

    kept = list(zip(lines_of(d / "parallel/train.en"), lines_of(d / "parallel/train.fr")))
    assert set(kept) <= set(pairs) and len(kept) == stats["parallel"]["kept"]
    assert stats["parallel"]["kept"] + stats["parallel"]["dropped"] == len(pairs)
    for e, f in kept:
        assert normalize(f) not in test_keys and normalize(e) not in translations
    for lang in ("en", "fr"):
        text = lines_of(d / f"text/{lang}.train.txt") + lines_of(d / f"text/{lang}.valid.txt")
        keys = {normalize(x) for x in text}
        assert not keys & test_keys and not keys & translations
        s = stats[lang]
        assert s["train"] + s["valid"] + s.get("test", 0) + s["dropped_heldout"] == s["usable"] == 1000
        assert len(lines_of(d / f"text/{lang}.valid.txt")) == s["valid"] == 50
    assert stats["en"]["dropped_heldout"] >= len(translations & file_keys(slices["en"])) > 0

    # the test set is the one `csfair-prep split` cuts with the same seed (same shuffle)
    order = list(range(1000))
    random.Random(3).shuffle(order)
    fr = lines_of(slices["fr"])
    assert test == [fr[i] for i in sorted(order[:200])]

    # the audit: overlaps found before (counted independently here), none after
    test_split = file_eval_split("mlm/fr.test", d / "text/fr.test.txt")
    splits = [test_split] + translation_splits([test_split], slices["par_en"], slices["par_fr"])
    before = audit({"lexicon.fr": slices["par_fr"], "lexicon.en": slices["par_en"], "en": slices["en"]}, splits)
    assert not before["ok"]
    assert before["overlaps"]["mlm/fr.test"]["lexicon.fr"]["count"] == sum(
        normalize(x) in {normalize(f) for _, f in pairs} for x in test)
    assert before["overlaps"]["mlm/fr.test~translations"]["lexicon.en"]["count"] > 0
    after = audit({f"{lg}.{p}": d / f"text/{lg}.{p}.txt" for lg in ("en", "fr") for p in ("train", "valid")}
                  | {"lexicon.en": d / "parallel/train.en", "lexicon.fr": d / "parallel/train.fr"}, splits)
    assert after["ok"] and after["test_overlaps"] == 0


def test_wikiann_de_test_is_deduplicated_out_of_german_text(tmp_path):
    de = head_lines(data_path("mono/derived/de.txt"), tmp_path / "de.txt", 2500, skip=28900)
    en = head_lines(data_path("mono/derived/en.txt"), tmp_path / "en.txt", 300)
    (split,) = task_eval_splits(["de"], tasks=["ner-wikiann"])
    assert split.name == "ner-wikiann/de.test" and split.kind == "test"
    gold = read_ner(data_path("ner/wikiann/de/test.conllu"))
    assert len(split.keys) == len(gold)  # one item per test sentence, read by the runner's reader
    before = audit({"de": de}, [split])
    n_before = before["overlaps"][split.name]["de"]["count"]
    assert n_before > 0 and not before["ok"]
    stats = split_pair({"de": de, "en": en}, "de", None, tmp_path / "out", [split], n_test=100, n_valid=50)
    inputs = {f"de.{p}": tmp_path / f"out/text/de.{p}.txt" for p in ("train", "valid")}
    after = audit(inputs, [split])
    assert after["ok"]
    assert stats["de"]["dropped_heldout"] > 0


def cli(*args):
    return subprocess.run([str(VENV_BIN / "csfair-prep"), *map(str, args)], capture_output=True, text=True)


def test_audit_cli_fails_on_a_test_overlap_and_writes_the_table_as_json(slices, tmp_path):
    test = head_lines(slices["fr"], tmp_path / "test.fr", 30)
    common = ["--test-file", f"mlm/fr.test={test}", "--eval-langs", "fr", "--eval-tasks", "none",
              "--translations", f"{slices['par_en']}:{slices['par_fr']}"]
    p = cli("audit", "--input", f"lexicon.en={slices['par_en']}", "--json", tmp_path / "a.json", *common)
    assert p.returncode == 1 and "FAIL" in p.stdout
    report = json.loads((tmp_path / "a.json").read_text())
    row = report["overlaps"]["mlm/fr.test~translations"]["lexicon.en"]
    assert f"| mlm/fr.test~translations | test | {report['splits']['mlm/fr.test~translations']['items']} | " \
           f"{row['count']} |" in p.stdout
    assert row["count"] >= 30 and report["test_overlaps"] == sum(
        r[n]["count"] for s, r in report["overlaps"].items() for n in r if report["splits"][s]["kind"] == "test")
    clean = head_lines(slices["en"], tmp_path / "clean.en", 5, skip=990)  # not the test captions' translations
    p = cli("audit", "--input", f"other={clean}", *common)
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr
    p = cli("audit", "--input", f"no-name-{clean}", *common)
    assert p.returncode != 0 and "NAME=PATH" in p.stderr


def test_split_pair_rejects_misaligned_parallel_text(slices, tmp_path):
    short = head_lines(slices["par_fr"], tmp_path / "short.fr", 1000)
    with pytest.raises(InputFormatError, match="short.fr:1001: parallel files differ in length"):
        split_pair({"fr": slices["fr"]}, "fr", (slices["par_en"], short), tmp_path / "o", [], n_test=10,
                   n_valid=10, src_lang="en")
    assert not (tmp_path / "o" / "heldout.json").exists()
