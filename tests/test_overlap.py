"""Held-out data (csfair.evaluation.overlap, ``csfair-prep split-pair`` / ``audit``) on real slices.

Multi30k en-fr pairs, ``mono/derived`` text (whose first lines are Multi30k training captions, as in
the demo's data) and the WikiANN German test set: the naive split leaks, the held-out split does not,
and the audit says so (exit status included).
"""
import dataclasses
import gzip
import json
import random
import subprocess

import pytest

from conftest import VENV_BIN, data_path, head_lines
from csfair.evaluation.corpora import read_ner, read_udpos_tsv
from csfair.evaluation.nearcopy import KINDS, NearCopyIndex, TextTable, word_lists, words
from csfair.io import InputFormatError
from csfair.evaluation.overlap import (
    audit,
    file_eval_split,
    file_keys,
    format_audit,
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
    p = cli("audit", "--input", f"other={clean}", "--ngram-threshold", "1.5", *common)
    assert p.returncode == 2 and "threshold must be in (0, 1]" in p.stderr  # a usage error, not a failed audit


def test_split_pair_rejects_misaligned_parallel_text(slices, tmp_path):
    short = head_lines(slices["par_fr"], tmp_path / "short.fr", 1000)
    with pytest.raises(InputFormatError, match="short.fr:1001: parallel files differ in length"):
        split_pair({"fr": slices["fr"]}, "fr", (slices["par_en"], short), tmp_path / "o", [], n_test=10,
                   n_valid=10, src_lang="en")
    assert not (tmp_path / "o" / "heldout.json").exists()


# --- near-copies and aligned rows (csfair issue 19, section 3) ------------------------------------------------


@pytest.fixture(scope="module")
def fr_eval():
    """The runner's French POS and XNLI test splits, with the aligned rows of the XNLI items ({name: split})."""
    return {s.name: s for s in task_eval_splits(["fr"], tasks=["pos", "xnli"])}


def _original(source):
    """The text of an XNLI row as it is in its file (``path:line``; premise, or hypothesis for "(second text)")."""
    path, _, rest = source.partition(":")
    lineno = int(rest.split(" ")[0])
    row = open(path, encoding="utf-8").read().split("\n")[lineno - 1].split("\t")
    return row[1] if "second text" in rest else row[0]


def _leaks(fr_eval):
    """The three leaks of the issue, built from real test items: (detokenised POS sentence, XNLI French
    premise, English original of another French XNLI test item) with the splits they come from."""
    from sacremoses import MosesDetokenizer

    pos, md = fr_eval["pos/fr.test"], MosesDetokenizer("fr")
    detok = next(d for k in pos.keys if "'" in k and len(words(k)) >= 8
                 for d in [md.detokenize(k.split(" "))] if normalize(d) != k)
    xnli = fr_eval["xnli/fr.test"]
    premises = [i for i, s in enumerate(xnli.sources) if "second text" not in s and len(words(xnli.keys[i])) >= 8]
    premise = _original(xnli.sources[premises[0]])
    aligned = fr_eval["xnli/en.test~aligned"]
    fr_line = xnli.sources[premises[-1]].split(":")[1]
    english = _original(next(s for s in aligned.sources if s.split(":")[1] == fr_line))
    return detok, premise, english


def test_words_ignore_moses_ptb_and_escapes_on_real_sentences(fr_eval):
    from sacremoses import MosesDetokenizer, MosesTokenizer

    assert words("l' homme") == words("l'homme") == ["l", "homme"]
    assert words("I do n't know , ca n't say") == words("I don't know, can't say") == words("I don&apos;t know, can't say")
    assert words(" ... ") == [] and words("Straße") == words("STRASSE")
    assert word_lists(["a&#10;b", "c"]) == [["a", "b"], ["c"]]  # a decoded newline does not split a text
    pos, md, mt = fr_eval["pos/fr.test"].keys[:1000], MosesDetokenizer("fr"), MosesTokenizer("fr")
    detok = [md.detokenize(k.split(" ")) for k in pos]
    assert sum(normalize(d) != k for d, k in zip(detok, pos)) > len(pos) / 2  # the exact key misses these
    assert all(words(d) == words(k) for d, k in zip(detok, pos))
    xnli = [_original(s) for s in fr_eval["xnli/fr.test"].sources[:200]]
    tok = [mt.tokenize(x, return_str=True, escape=True) for x in xnli]
    assert sum(normalize(t) != normalize(x) for t, x in zip(tok, xnli)) > 40
    assert all(words(t) == words(x) for t, x in zip(tok, xnli))
    en = [" ".join(s.words) for s in read_udpos_tsv(data_path("pos/udpos-xtreme/dev-en.tsv")) if "n't" in s.words]
    md = MosesDetokenizer("en")
    raw = [md.detokenize(k.split(" ")).replace(" n't", "n't") for k in en]
    assert len(en) > 20 and all(words(r) == words(k) for r, k in zip(raw, en))


def _reference(items, lines, n, threshold):
    """Every (line, item) hit by the module's definitions, pair by pair (the slow way)."""
    iw = [words(x) for x in items]
    lw = [words(x) for x in lines]
    grams = [set(zip(*(w[j:] for j in range(n)))) for w in iw]
    lgrams = [set(zip(*(w[j:] for j in range(n)))) for w in lw]
    out = {}
    for j, line in enumerate(lines):
        for i, item in enumerate(items):
            if normalize(item) and normalize(item) == normalize(line):
                out[(j, i)] = ("exact", 1.0)
            elif iw[i] and iw[i] == lw[j]:
                out[(j, i)] = ("copy", 1.0)
            elif len(iw[i]) >= n:
                share = len(grams[i] & lgrams[j]) / len(grams[i])
                if any(lw[j][k:k + len(iw[i])] == iw[i] for k in range(len(lw[j]) - len(iw[i]) + 1)):
                    out[(j, i)] = ("contained", share)
                elif share >= threshold:
                    out[(j, i)] = ("ngram", share)
    return out


@pytest.mark.parametrize("n,threshold", [(8, 0.7), (4, 0.5)])
def test_near_copy_index_finds_what_a_pairwise_check_finds(slices, fr_eval, n, threshold):
    from sacremoses import MosesDetokenizer

    items = fr_eval["pos/fr.test"].keys[:80] + fr_eval["xnli/fr.test"].keys[:40]
    rng, md = random.Random(5), MosesDetokenizer("fr")
    lines = lines_of(slices["fr"])[:120]
    for i in rng.sample(range(len(items)), 30):
        w = items[i].split(" ")
        lines += [md.detokenize(w), items[i],                                           # copies
                  f"{lines[i]} {items[i].upper()} {lines[i + 1]}",                      # inside a longer line
                  " ".join(w[:len(w) // 2] + ["xyz"] + w[len(w) // 2 + 1:]),           # one word changed
                  " ".join(w[:-2])]                                                     # shortened
    hits = NearCopyIndex(items, n, threshold).match(TextTable.build(lines, n))
    got = {(j, i): (KINDS[k], s) for j, i, k, s in zip(hits.line.tolist(), hits.item.tolist(), hits.kind.tolist(),
                                                        hits.share.tolist())}
    want = _reference(items, lines, n, threshold)
    assert got.keys() == want.keys()
    assert all(got[p][0] == want[p][0] and got[p][1] == pytest.approx(want[p][1]) for p in want)
    assert {k for k, _ in want.values()} == set(KINDS)  # every kind occurs in this sample


def test_aligned_rows_are_the_same_xnli_items_in_every_language(fr_eval):
    from csfair.evaluation.tasks import TASKS, with_langs

    fr = fr_eval["xnli/fr.test"]
    for lg in ("en", "de", "es", "tr", "sw", "hi"):
        al = fr_eval[f"xnli/{lg}.test~aligned"]
        assert al.kind == "test" and len(al.keys) == len(fr.keys)
        # row-aligned files: the same line (and text of the pair) in each language's file
        assert [s.split(":", 1)[1] for s in al.sources] == [s.split(":", 1)[1] for s in fr.sources]
        assert all(f"dev-{lg}.tsv:" in s for s in al.sources)
    assert not set(fr_eval["xnli/en.test~aligned"].keys) & set(fr.keys)
    spec = TASKS["xnli"]
    assert spec.declaration["aligned_test"] is True
    # the fine-tuning protocol key (scripts/zeroshot.py) is the one of the declaration without the new key
    without = dataclasses.replace(spec, declaration={k: v for k, v in spec.declaration.items() if k != "aligned_test"})
    assert without.digest == spec.digest
    assert len(with_langs(spec, ["en", "fr"]).load(1)["test"]["en"]) == len(fr.keys) // 2  # (premise, hypothesis)
    assert not any(s.endswith("~aligned") for s in fr_eval if s.startswith("pos/"))  # POS dev sets are not parallel


def test_audit_cli_names_file_and_line_of_each_injected_leak(slices, fr_eval, tmp_path):
    detok, premise, english = _leaks(fr_eval)
    fr, en = lines_of(slices["fr"]), lines_of(slices["en"])
    longer = f"{fr[300]} {premise} {fr[301]}"
    # the exact check of before misses all three (the English original is in no French split)
    plain = set().union(*(s.key_set for n, s in fr_eval.items() if not n.endswith("~aligned")))
    assert {normalize(detok), normalize(longer), normalize(english)}.isdisjoint(plain)
    splits = list(fr_eval.values())
    clean = {"fr.train": tmp_path / "clean.fr", "en.train": tmp_path / "clean.en"}
    clean["fr.train"].write_text("\n".join(fr) + "\n", encoding="utf-8")
    clean["en.train"].write_text("\n".join(en) + "\n", encoding="utf-8")
    report = audit(clean, splits)
    assert report["ok"] and report["test_overlaps"] == 0  # the real slice is clean

    fr[100] = detok                                       # fr.train:101
    fr[300] = longer                                      # fr.train:301
    en[200] = english                                     # en.train:201
    leaky = {"fr.train": tmp_path / "fr.train.txt", "en.train": tmp_path / "en.train.txt"}
    leaky["fr.train"].write_text("\n".join(fr) + "\n", encoding="utf-8")
    leaky["en.train"].write_text("\n".join(en) + "\n", encoding="utf-8")
    p = cli("audit", *(f"--input={k}={v}" for k, v in leaky.items()), "--eval-langs", "fr", "--eval-tasks", "pos,xnli",
            "--json", tmp_path / "a.json")
    assert p.returncode == 1 and "FAIL" in p.stdout, p.stdout + p.stderr
    named = {(ln.split(" (")[0].strip(), ln.split(" holds ")[1].split(" item ")[0], ln.split(" as ")[1].split(":")[0])
             for ln in p.stdout.splitlines() if " holds " in ln}
    assert named == {(f"{leaky['fr.train']}:101", "pos/fr.test", "copy"),
                     (f"{leaky['fr.train']}:301", "xnli/fr.test", "contained"),
                     (f"{leaky['en.train']}:201", "xnli/en.test~aligned", "exact")}
    report = json.loads((tmp_path / "a.json").read_text())
    hits = [(s, n, h) for s, row in report["overlaps"].items() for n, c in row.items() for h in c["hits"]]
    assert report["test_overlaps"] == len(hits) > 0
    assert all(h["source"].startswith(str(data_path(""))) for _, _, h in hits)  # the item's own file and line


def test_split_pair_holds_near_copies_and_aligned_rows_out(slices, fr_eval, tmp_path):
    detok, premise, english = _leaks(fr_eval)
    fr, en = lines_of(slices["fr"]), lines_of(slices["en"])
    par_en, par_fr = lines_of(slices["par_en"]), lines_of(slices["par_fr"])
    order = list(range(len(fr)))
    random.Random(1).shuffle(order)
    a, b = sorted(order[100:])[:2]  # lines the MLM test set (the first 100 of the seeded shuffle) does not take
    fr[a], fr[b], en[200] = detok, f"{fr[b]} {premise} {fr[b + 1]}", english
    par_fr[700] = detok.upper()  # a pair whose French side is a copy: its English side is held out too
    en[400] = par_en[700]
    files = {}
    for name, text in (("fr", fr), ("en", en), ("par.en", par_en), ("par.fr", par_fr)):
        files[name] = tmp_path / name
        files[name].write_text("\n".join(text) + "\n", encoding="utf-8")
    d = tmp_path / "out"
    splits = list(fr_eval.values())
    stats = split_pair({"en": files["en"], "fr": files["fr"]}, "fr", (files["par.en"], files["par.fr"]), d, splits,
                       n_test=100, n_valid=50, src_lang="en")
    kept = {lg: {normalize(x) for p in ("train", "valid") for x in lines_of(d / f"text/{lg}.{p}.txt")}
            for lg in ("en", "fr")}
    for lg, line in (("fr", detok), ("fr", fr[b]), ("en", english), ("en", par_en[700])):
        assert normalize(line) not in kept[lg]
    assert detok.upper() not in lines_of(d / "parallel/train.fr")
    assert stats["parallel"]["dropped_by_kind"]["copy"] >= 1
    # the detokenised sentence: a copy of the POS item, or an exact copy of the dropped pair's French side
    assert stats["fr"]["dropped_by_kind"]["contained"] >= 1 and stats["fr"]["dropped_heldout"] >= 2
    assert stats["en"]["dropped_by_kind"]["exact"] >= 2  # the English original and the dropped pair's English side
    for lg in ("en", "fr"):
        s = stats[lg]
        assert sum(s["dropped_by_kind"].values()) == s["dropped_heldout"]
        assert s["train"] + s["valid"] + s.get("test", 0) + s["dropped_heldout"] == s["usable"]
    outputs = {f"{lg}.{p}": d / f"text/{lg}.{p}.txt" for lg in ("en", "fr") for p in ("train", "valid")} | \
        {"lexicon.en": d / "parallel/train.en", "lexicon.fr": d / "parallel/train.fr"}
    test_split = file_eval_split("mlm/fr.test", d / "text/fr.test.txt")
    after = audit(outputs, splits + [test_split] + translation_splits(splits + [test_split], files["par.en"],
                                                                      files["par.fr"]))
    assert after["ok"], format_audit(after)


def test_a_data_bin_built_before_the_near_copy_split_is_refused(tmp_path):
    from csfair.paths import REPO_ROOT

    old = "pair=en-fr vocab=8000 max_train=all test=2000 valid=500 split_seed=1 heldout=2"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.txt").write_text(old + "\n")
    p = subprocess.run(["bash", str(REPO_ROOT / "scripts/recipes/pair.sh"), "en-fr", "--num-workers", "1",
                        "--data-bin", str(tmp_path / "bin"), "--work", str(tmp_path / "work"),
                        "--save-root", str(tmp_path / "ck")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and f"was built with: {old}" in p.stderr and "heldout=3" in p.stderr, p.stderr
    assert not (tmp_path / "work" / "heldout.json").exists()
