"""IBM-1 via fast_align or Thot: the binary table parser, real-data estimation, lexicon files."""
import importlib.util
import json
import struct
import sys

import numpy as np
import pytest

from conftest import data_path, head_lines
from csfair.lexicons import ibm1
from csfair.lexicons.ibm1 import build_ibm1_lexicons, read_fast_align_table, table_to_lexicon, train_ibm1
from csfair.io import InputFormatError
from csfair.lexicons.lexicon import Lexicon


def write_table(path, vocab, rows, tag=2):
    """Write the binary format documented in csfair.lexicons.ibm1."""
    b = struct.pack("<ii", tag, len(vocab)) + b"".join(w.encode() + b"\0" for w in vocab)
    b += struct.pack("<i", max(s for s, _ in rows) + 1)
    for sid, cands in rows:
        b += struct.pack("<ii", sid, len(cands))
        for t, p in cands:
            b += struct.pack("<if", t, p)
    path.write_bytes(b)
    return b


def test_parser_reads_handmade_table(tmp_path):
    vocab = ["<eps>", "|||", "house", "maison", "cat", "chat", "été"]
    write_table(tmp_path / "t.bin", vocab, [(1, [(4, 0.5), (6, 0.5)]), (3, [(4, 0.75), (7, 0.25)]), (5, [(6, 1.0)])])
    t = read_fast_align_table(tmp_path / "t.bin")
    assert t.vocab[1:] == vocab
    assert t.src_ids.tolist() == [1, 3, 5]
    assert t.row("house") == {"maison": 0.75, "été": 0.25}
    lex = table_to_lexicon(t, "en", "fr", min_prob=0.3)
    assert lex.src_words == ["house", "cat"]  # NULL row dropped
    assert lex.candidates("house") == [("maison", 0.75)]


def test_parser_rejects_truncated_and_inconsistent_files(tmp_path):
    vocab = ["<eps>", "|||", "house", "maison"]
    good = write_table(tmp_path / "t.bin", vocab, [(3, [(4, 1.0)])])
    (tmp_path / "trunc.bin").write_bytes(good[:-3])
    with pytest.raises(InputFormatError, match="trunc.bin.*beyond the end"):
        read_fast_align_table(tmp_path / "trunc.bin")
    (tmp_path / "short.bin").write_bytes(good[:5])
    with pytest.raises(InputFormatError, match="header"):
        read_fast_align_table(tmp_path / "short.bin")
    write_table(tmp_path / "bad.bin", vocab, [(3, [(99, 1.0)])])
    with pytest.raises(InputFormatError, match="outside the vocabulary"):
        read_fast_align_table(tmp_path / "bad.bin")


def test_ibm1_on_real_multi30k_slice(tmp_path):
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en", 2000)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr", 2000)
    pairs = [(a.lower(), b.lower()) for a, b in zip(en.read_text().split("\n"), fr.read_text().split("\n")) if a and b]
    fw, bw = train_ibm1(pairs, iterations=5)
    assert fw.vocab == bw.vocab and fw.vocab[1] == "<eps>"
    # the permissive export beam keeps whole distributions: every row sums to 1
    sums = np.add.reduceat(fw.probs.astype(np.float64), fw.row_offsets[:-1])
    np.testing.assert_allclose(sums, 1.0, atol=2e-3)
    dog = fw.row("dog")
    assert max(dog, key=dog.get) == "chien"
    chien = bw.row("chien")
    assert max(chien, key=chien.get) == "dog"


def test_build_ibm1_lexicons_moses_lowercase_and_counts(tmp_path):
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en", 1500)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr", 1500)
    with open(en, "a") as fh:
        fh.write("   \n")  # an empty pair: skipped and counted
    with open(fr, "a") as fh:
        fh.write("vide\n")
    fwd, bwd, stats = build_ibm1_lexicons(en, fr, "en", "fr", progress=False)
    assert stats["pairs_read"] == 1500 and stats["pairs_skipped"] == 1
    assert fwd.src_lang == "en" and bwd.src_lang == "fr"
    assert all(w == w.lower() for w in fwd.src_words)
    assert "." in bwd.src_words and "dog." not in fwd.src_words  # Moses split the punctuation
    assert fwd.candidates("dog")[0][0] == "chien"
    # single-threaded EM: the same tables, to the last digit, on a second run
    again, _, _ = build_ibm1_lexicons(en, fr, "en", "fr", progress=False)
    assert again.src_words == fwd.src_words and again.tgt_words == fwd.tgt_words
    np.testing.assert_array_equal(again.probs, fwd.probs)


def test_mismatched_parallel_files_name_the_file_and_line(tmp_path):
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en.txt", 20)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr.txt", 18)
    with pytest.raises(InputFormatError) as e:
        build_ibm1_lexicons(en, fr, "en", "fr", progress=False)
    assert "fr.txt:19" in str(e.value) and "differ in length" in str(e.value)


def test_lexicon_tsv_roundtrip_and_errors(tmp_path):
    lex = Lexicon.read_muse(data_path("dict/muse/en-fr.txt"), "en", "fr")
    assert not lex.probabilistic and lex.candidates("house")[0] == ("maison", 1.0)
    lex.save_tsv(tmp_path / "m.tsv")
    back = Lexicon.load_tsv(tmp_path / "m.tsv")
    assert back.src_words == lex.src_words and back.tgt_words == lex.tgt_words
    np.testing.assert_allclose(back.probs, lex.probs, rtol=1e-5)
    assert back.kind == "muse" and not back.probabilistic
    (tmp_path / "bad.tsv").write_text("# csfair-lexicon\tkind=ibm1\nhouse\tmaison\t0.5\nhouse\tfoyer\n")
    with pytest.raises(InputFormatError, match=r"bad.tsv:3: expected 3 tab-separated fields"):
        Lexicon.load_tsv(tmp_path / "bad.tsv")
    (tmp_path / "nohead.tsv").write_text("house\tmaison\t0.5\n")
    with pytest.raises(InputFormatError, match="nohead.tsv:1: not a csfair lexicon"):
        Lexicon.load_tsv(tmp_path / "nohead.tsv")


HAVE = {name: importlib.util.find_spec(mod) is not None for name, (mod, _) in ibm1._ALIGNER_MODULES.items()}


@pytest.mark.skipif(not all(HAVE.values()), reason="needs both systran-align (Python <= 3.11) and sil-thot")
def test_thot_gives_fast_align_ibm1_tables(tmp_path):
    """Thot's IBM-1 (the aligner on Python 3.12) against fast_align's, on 2,000 real pairs, one thread each:
    the same vocabulary, rows and candidates, every probability within 2e-6 (float32 storage), both ways."""
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en", 2000)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr", 2000)
    pairs = [(a.lower(), b.lower()) for a, b in zip(en.read_text().split("\n"), fr.read_text().split("\n")) if a and b]
    fa = train_ibm1(pairs, iterations=5, aligner="fast_align")
    th = train_ibm1(pairs, iterations=5, aligner="thot")
    for a, b in zip(fa, th):
        assert set(a.vocab[1:]) == set(b.vocab[1:]) and b.vocab[1:3] == ["<eps>", "|||"]
        rows_a = {a.vocab[s]: a.row(a.vocab[s]) for s in a.src_ids}
        rows_b = {b.vocab[s]: b.row(b.vocab[s]) for s in b.src_ids}
        assert rows_a.keys() == rows_b.keys() and len(rows_a) > 3000
        worst = 0.0
        for w, ra in rows_a.items():
            rb = rows_b[w]
            assert ra.keys() == rb.keys(), w
            worst = max(worst, max(abs(ra[k] - rb[k]) for k in ra))
        assert worst < 2e-6, worst
    # the default beam (-4) prunes the same way too
    fa4 = train_ibm1(pairs[:500], iterations=3, aligner="fast_align", beam_threshold=-4)
    th4 = train_ibm1(pairs[:500], iterations=3, aligner="thot", beam_threshold=-4)
    assert sorted(fa4[0].row("dog")) == sorted(th4[0].row("dog")) and len(fa4[0].tgt_ids) == len(th4[0].tgt_ids)


def test_without_systran_align_the_cli_uses_thot_and_says_what_is_missing(tmp_path, monkeypatch, capsys):
    """As on Python 3.12 (systran-align not installable): ``auto`` takes Thot, the lexicons are written and
    record it; ``--aligner fast_align`` and no aligner at all are one-line errors naming the package."""
    if not HAVE["thot"]:
        pytest.skip("sil-thot not installed")
    from csfair.cli import run_cli
    from csfair.cli.lexicon import build_parser

    real = ibm1._importable
    monkeypatch.setattr(ibm1, "_importable", lambda m: m != "systran_align" and real(m))
    en = head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en", 800)
    fr = head_lines(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr", 800)
    argv = ["ibm1", "--src-file", str(en), "--tgt-file", str(fr), "--src-lang", "en", "--tgt-lang", "fr",
            "--out-dir", str(tmp_path / "out"), "--workers", "1", "--quiet"]
    run_cli(build_parser(), argv)
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["aligner"] == "thot" and stats["pairs_used"] == 800 and stats["en-fr"]["words"] > 500
    lex = Lexicon.load_tsv(tmp_path / "out" / "ibm1.en-fr.tsv")
    assert lex.candidates("dog")[0][0] == "chien"
    with pytest.raises(SystemExit) as e:
        run_cli(build_parser(), argv + ["--aligner", "fast_align"])
    assert e.value.code == 2 and "needs systran-align==3.5.0" in capsys.readouterr().err
    monkeypatch.setattr(ibm1, "_importable", lambda m: False)
    with pytest.raises(SystemExit):
        run_cli(build_parser(), argv)
    err = capsys.readouterr().err
    assert "none is installed" in err and "sil-thot==3.5.3" in err and sys.executable in err
    # fast_align's diagonal model (word alignments) has no Thot equivalent: said, not replaced
    with pytest.raises(RuntimeError, match="diagonal model"):
        ibm1.resolve_aligner("thot", favor_diagonal=True)
