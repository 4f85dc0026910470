"""The paper's eight pairs as one recipe table (scripts/recipes/pair.sh): the table agrees with
csfair-data's sources, and the availability check (no training) names exactly what is missing, on the
real $CSFAIR_DATA and on temporary folders missing files.
"""
import os
import subprocess
from pathlib import Path

import pytest

from csfair.cli import data as cd
from csfair.paths import REPO_ROOT, data_root

PAIR_SH = REPO_ROOT / "scripts" / "recipes" / "pair.sh"
PAIRS = cd.PAPER_PAIRS
SOURCES = cd.load_sources()["kinds"]


def recipe(*args, data=None):
    env = dict(os.environ, CSFAIR_DATA=str(data or data_root()))
    return subprocess.run(["bash", str(PAIR_SH), *args], capture_output=True, text=True, env=env, timeout=60)


def table():
    p = recipe("--list")
    assert p.returncode == 0, p.stderr
    rows = {}
    for line in p.stdout.splitlines()[1:]:
        bits = line.split()
        if bits and bits[0] in PAIRS:
            rows[bits[0]] = {"staged": bits[2], "lex": bits[3].split(","), "eval": bits[4].split(","),
                             "iso": bits[5], "avail": " ".join(bits[6:])}
    return rows


def test_the_table_has_the_eight_pairs_and_agrees_with_the_sources():
    rows = table()
    assert sorted(rows) == sorted(PAIRS)
    for pair, row in rows.items():
        tgt = pair.split("-")[1]
        assert ("muse" in row["lex"]) == (tgt in SOURCES["muse"]["langs"]), pair
        assert "ibm1" in row["lex"] and tgt in SOURCES["parallel"]["langs"] and tgt in SOURCES["mono"]["langs"]
        for kind in ("xnli", "afrixnli", "panx"):
            assert (kind in row["eval"]) == (tgt in SOURCES[kind]["langs"]), (pair, kind)
        assert row["eval"], pair  # every pair has a zero-shot evaluation set
    # the paper: no MUSE dictionary for Swahili and Xhosa; Xhosa evaluated on AfriXNLI
    assert [p for p, r in rows.items() if "muse" not in r["lex"]] == ["en-sw", "en-xh"]
    assert rows["en-xh"]["eval"] == ["afrixnli"]


@pytest.mark.parametrize("pair", PAIRS)
def test_check_on_the_real_data_names_what_is_missing(pair):
    p = recipe(pair, "--check")
    data = data_root()
    if p.returncode == 0:
        assert "input files present" in p.stdout
        return
    assert p.returncode == 1, p.stderr
    listed = [ln.strip() for ln in p.stderr.splitlines() if ln.startswith(f"   {data}/")]
    assert listed and all(not Path(f).exists() for f in listed)
    assert f"csfair-data get --pair {pair} --what " in p.stderr or "README.md" in p.stderr


def test_staged_pairs_are_ready_and_the_others_need_the_paper_sources():
    rows = table()
    for pair, row in rows.items():
        if row["staged"] == "yes":
            assert recipe(pair, "--check").returncode == 0
        else:
            assert "staged" not in row["avail"] and recipe(pair, "--data", "staged", "--check").returncode == 2


@pytest.mark.parametrize("pair", PAIRS)
def test_csfair_data_layout_satisfies_the_recipe_and_a_missing_file_is_named(pair, tmp_path):
    tgt = pair.split("-")[1]
    # the default stopwords: UD function words (English's treebank for every pair), stopwords-iso for Swahili
    kinds = ["parallel", "mono", "ud"] + (["muse"] if tgt in SOURCES["muse"]["langs"] else [])
    kinds += ["stopwords"] if tgt not in SOURCES["ud"]["langs"] and table()[pair]["iso"] == "yes" else []
    jobs, _ = cd.plan(cd.load_sources(), pair, kinds)
    paths = [o.rel for j in jobs for o in j.outputs]
    for rel in paths:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    p = recipe(pair, "--data", "paper", "--check", data=tmp_path)
    assert p.returncode == 0, p.stderr
    gone = next(r for r in paths if r.startswith("mono/") and not r.endswith("/en.txt"))
    (tmp_path / gone).unlink()
    p = recipe(pair, "--data", "paper", "--check", data=tmp_path)
    assert p.returncode == 1
    listed = [ln.strip() for ln in p.stderr.splitlines() if ln.startswith("   /")]
    assert listed == [str(tmp_path / gone)]
    assert f"csfair-data get --pair {pair} --what mono --out" in p.stderr


def test_muse_and_iso_stopwords_fail_clearly_where_they_do_not_exist(tmp_path):
    for pair in ("en-sw", "en-xh"):
        p = recipe(pair, "--cs", "muse", "--data-bin", str(tmp_path / "bin"), "--work", str(tmp_path / "w"))
        assert p.returncode == 2 and "has no MUSE dictionary" in p.stderr
    p = recipe("en-xh", "--stopwords", "iso", "--check")
    assert p.returncode == 2 and "no Xhosa (xh) list" in p.stderr
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_staged_pair_missing_one_file(tmp_path):
    data = data_root()
    need = ["parallel/multi30k/train.en.gz", "parallel/multi30k/train.fr.gz", "mono/derived/en.txt",
            "dict/muse/en-fr.txt", "dict/muse/fr-en.txt"]
    for rel in need:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(data / rel)
    (tmp_path / "ud").symlink_to(data / "ud")  # the default stopwords' treebanks
    p = recipe("en-fr", "--check", data=tmp_path)
    assert p.returncode == 1
    assert [ln.strip() for ln in p.stderr.splitlines() if ln.startswith("   /")] == [str(tmp_path / "mono/derived/fr.txt")]


def test_the_default_stopwords_need_each_languages_treebank(tmp_path):
    jobs, _ = cd.plan(cd.load_sources(), "en-pt", ["parallel", "mono", "muse"])
    for rel in [o.rel for j in jobs for o in j.outputs]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    p = recipe("en-pt", "--data", "paper", "--check", data=tmp_path)
    assert p.returncode == 1
    listed = sorted(ln.strip() for ln in p.stderr.splitlines() if ln.startswith("   /"))
    assert listed == [str(tmp_path / "ud/UD_English-EWT-v2.5/en_ewt-ud-train.conllu"),
                      str(tmp_path / "ud/UD_Portuguese-Bosque-v2.5/pt_bosque-ud-train.conllu")]
    assert "csfair-data get --pair en-pt --what ud --out" in p.stderr
    # English's treebank is fetched for every pair, also where the other language has none
    jobs, _ = cd.plan(cd.load_sources(), "en-xh", ["ud"])
    assert [o.rel for j in jobs for o in j.outputs][0].startswith("ud/UD_English-EWT-v2.5/")
    assert recipe("en-pt", "--data", "paper", "--stopwords", "top:20", "--check", data=tmp_path).returncode == 0


def test_tables_built_with_other_options_are_refused(tmp_path):
    """A data-bin whose tables were built with other table options (or before they were recorded: top:20
    stopwords, identical candidates dropped) is refused before anything runs, naming both."""
    config = "pair=en-fr vocab=8000 max_train=all test=2000 valid=500 split_seed=1 heldout=2"
    bin_, work = tmp_path / "bin", tmp_path / "work"
    for d in (bin_, work):
        d.mkdir()
        (d / "config.txt").write_text(config + "\n")
    (bin_ / "tables" / "ibm1.en-fr").mkdir(parents=True)
    (bin_ / "tables" / "ibm1.en-fr" / "meta.json").write_text("{}")
    args = ("en-fr", "--data-bin", str(bin_), "--work", str(work), "--save-root", str(tmp_path / "ck"))
    p = recipe(*args)
    assert p.returncode == 1 and "was built with: older options (top:20 stopwords" in p.stderr, p.stderr
    assert "now asked for: tables=2 stopwords=function identical=keep" in p.stderr
    (bin_ / "tables" / "config.txt").write_text("tables=2 stopwords=function identical=keep\n")
    p = recipe(*args, "--identical", "drop")
    assert p.returncode == 1 and "now asked for: tables=2 stopwords=function identical=drop" in p.stderr
    assert not (work / "heldout.json").exists()  # nothing ran
