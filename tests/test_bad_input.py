"""Bad input: a clear error naming file and line, or a counted and reported skip; no partial outputs."""
import subprocess
import sys

import pytest

from conftest import VENV_BIN, data_path, head_lines
from csfair.io import InputFormatError, LineIssues, atomic_write, iter_lines, iter_parallel
from csfair.lexicons.lexicon import Lexicon
from csfair.pretraining.vocab import FairseqVocab


def cli(*args):
    return subprocess.run([str(VENV_BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True)


def test_iter_lines_skips_and_counts_bad_lines(tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_bytes(b"good one\r\n\n   \nbad \xff byte\nnul\x00here\n" + b"x" * 100_000 + b"\nlast line")
    issues = LineIssues("corpus")
    got = list(iter_lines(f, issues, max_chars=10_000))
    assert got == [(1, "good one"), (7, "last line")]
    assert issues.total == 5
    assert issues.counts == {"empty line": 2, "invalid UTF-8": 1, "NUL byte in line": 1, "line longer than 10000 characters": 1}
    assert f"{f}:4: invalid UTF-8 (byte 4)" in issues.summary()
    with pytest.raises(InputFormatError, match=r"corpus.txt:2: empty line"):
        list(iter_lines(f, LineIssues("corpus", strict=True)))


def test_parallel_reader_skips_pairs_and_rejects_length_mismatch(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\n\nfour\n")
    b.write_bytes(b"un\nd\xe9ux\ntrois\nquatre\n")
    issues = LineIssues("pair")
    assert list(iter_parallel(a, b, issues)) == [(1, "one", "un"), (4, "four", "quatre")]
    assert issues.total == 2
    b.write_text("un\ndeux\n")
    with pytest.raises(InputFormatError, match=r"b.txt:3: parallel files differ in length"):
        list(iter_parallel(a, b))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        list(iter_parallel(a, tmp_path / "missing.txt"))


def test_muse_malformed_and_duplicate_lines(tmp_path):
    f = tmp_path / "muse.txt"
    f.write_text("house maison\nhouse maison\nhouse logis extra\ncat chat\nlonely\n")
    issues = LineIssues("muse")
    lex = Lexicon.read_muse(f, "en", "fr", issues=issues)
    assert lex.candidates("house") == [("maison", 1.0)] and lex.candidates("cat") == [("chat", 1.0)]
    assert issues.counts == {"duplicate pair": 1, "expected 2 fields 'source target', got 3": 1,
                             "expected 2 fields 'source target', got 1": 1}
    with pytest.raises(InputFormatError, match=r"muse.txt:2: duplicate pair"):
        Lexicon.read_muse(f, "en", "fr", issues=LineIssues("muse", strict=True))
    # the CLI reports the skips and still writes the lexicon; --strict fails naming file and line
    out = tmp_path / "lex.tsv"
    p = cli("csfair-lexicon", "muse", "--muse-dict", f, "--src-lang", "en", "--tgt-lang", "fr", "--out", out)
    assert p.returncode == 0 and "skipped 3 line(s)" in p.stderr and out.exists() and "deprecated" not in p.stderr
    out2 = tmp_path / "lex2.tsv"
    # the old spelling --dict still works, with a deprecation warning (`table --dict` is fairseq's dict.txt)
    p = cli("csfair-lexicon", "muse", "--dict", f, "--src-lang", "en", "--tgt-lang", "fr", "--out", out2, "--strict")
    assert p.returncode == 2 and "muse.txt:2" in p.stderr and not out2.exists()
    assert "--dict is deprecated, use --muse-dict" in p.stderr


def test_atomic_write_leaves_nothing_partial(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("previous complete output\n")
    with pytest.raises(RuntimeError):
        with atomic_write(dest) as fh:
            fh.write("half of the new out")
            raise RuntimeError("crash mid-write")
    assert dest.read_text() == "previous complete output\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_cli_errors_name_the_file_and_line(tmp_path):
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en.txt", 30)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr.txt", 25)
    p = cli("csfair-lexicon", "ibm1", "--src-file", en, "--tgt-file", fr, "--src-lang", "en", "--tgt-lang", "fr",
            "--out-dir", tmp_path / "lex", "--quiet")
    assert p.returncode == 2 and "fr.txt:26: parallel files differ in length" in p.stderr
    assert not (tmp_path / "lex").exists()
    p = cli("csfair-prep", "split", "--input", tmp_path / "nope.txt", "--out-prefix", tmp_path / "x")
    assert p.returncode == 2 and "nope.txt: no such file" in p.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok line\n\xc3\x28 broken\nanother\nthird\n")
    p = cli("csfair-prep", "split", "--input", bad, "--out-prefix", tmp_path / "s", "--valid", "1")
    assert p.returncode == 0 and "bad.txt:2: invalid UTF-8" in p.stderr
    assert (tmp_path / "s.train.txt").read_text().count("\n") == 2


def test_fairseq_dictionary_errors(tmp_path):
    d = tmp_path / "dict.txt"
    d.write_text("\u2581the 10\n\u2581a 5\n\u2581the 3\n")
    with pytest.raises(ValueError, match=r"dict.txt:3: duplicate symbol"):
        FairseqVocab(d)
    d.write_text("\u2581the 10\nnocount\n")
    with pytest.raises(ValueError, match=r"dict.txt:2: expected '<symbol> <count>'"):
        FairseqVocab(d)


def test_table_cli_reports_words_outside_the_vocabulary(tiny_pair, tmp_path):
    lex = tmp_path / "lex.tsv"
    lex.write_text("# csfair-lexicon\tkind=ibm1\tsrc=en\ttgt=fr\tprobabilistic=1\n"
                   "house\tmaison\t0.9\nhouse\t\u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac\t0.1\n\u4e2d\u6587\u5b57\u7b26\tchinois\t1.0\n")
    out = tmp_path / "table"
    p = cli("csfair-lexicon", "table", "--lexicon", lex, "--spm-model", tiny_pair["spm"], "--dict", tiny_pair["dict"],
            "--out", out, "--quiet", "--src-stopwords", "none", "--tgt-stopwords", "none")
    assert p.returncode == 0, p.stderr
    import json

    stats = json.loads(p.stdout)
    assert stats["cand_oov"] >= 1 and stats["src_oov"] >= 1 and stats["entries"] >= 1
    p = cli("csfair-lexicon", "inspect", out, "house")
    assert p.stdout.splitlines() == ["maison\t0.9000\t1.0000"]


def test_tabs_inside_words_crlf_and_huge_lines_in_parallel_text(tmp_path):
    from csfair.lexicons.ibm1 import build_ibm1_lexicons
    from csfair.text import moses_tokenize

    # a tab inside a line is whitespace for Moses: it separates tokens, never hides in one
    assert moses_tokenize("a\tsmall\t\tdog.", "en") == "a small dog ."
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en.txt", 300)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr.txt", 300)
    with open(en, "ab") as fh:
        fh.write(b"x" * 100_000 + b"\r\n" + b"the\tdog\r\n")
    with open(fr, "ab") as fh:
        fh.write(b"y" * 10 + b"\r\n" + b"le\tchien\r\n")
    issues = LineIssues("pair")
    fwd, _, stats = build_ibm1_lexicons(en, fr, "en", "fr", progress=False, issues=issues)
    assert stats["pairs_read"] == 301 and issues.counts == {"line longer than 10000 characters": 1}
    assert all("\t" not in w and "\r" not in w for w in fwd.src_words + fwd.tgt_words)


def test_muse_with_crlf_and_tab_separators(tmp_path):
    f = tmp_path / "muse.txt"
    f.write_bytes(b"house\tmaison\r\ncat chat\r\n\r\n")
    issues = LineIssues("muse")
    lex = Lexicon.read_muse(f, "en", "fr", issues=issues)
    assert lex.candidates("house") == [("maison", 1.0)] and lex.candidates("cat") == [("chat", 1.0)]
    assert issues.counts == {"empty line": 1}


def test_failed_table_build_leaves_no_table(tiny_pair, tmp_path):
    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair.pretraining.table_build import TableConfig, build_table

    lex = Lexicon.load_tsv(tiny_pair["lex_en_fr"])
    calls = {"n": 0}

    def flaky(word):
        calls["n"] += 1
        if calls["n"] > 500:
            raise OSError("disk full while encoding")
        return tiny_pair["encoder"](word)

    with pytest.raises(OSError):
        table, _ = build_table(lex, flaky, 3, TableConfig())
        table.save(tmp_path / "t")
    assert not (tmp_path / "t").exists()
    # and a save that fails midway keeps the previous complete table
    good, _ = build_table(Lexicon.load_tsv(tiny_pair["lex_en_fr"]), tiny_pair["encoder"], 3, TableConfig())
    good.save(tmp_path / "t")
    before = SubstitutionTable.load(tmp_path / "t").checksum()
    good.arrays["cand_cdf"] = object()  # np.save will fail on this
    with pytest.raises(Exception):
        good.save(tmp_path / "t")
    assert SubstitutionTable.load(tmp_path / "t").checksum() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
