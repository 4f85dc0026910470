"""Substitution-table maths and filters (Visser et al., 2025, Section 3.1 and Table 1)."""
from collections import OrderedDict

import numpy as np
import pytest

from csfair.lexicon import Lexicon
from csfair.substitution_table import MAX_WORD_PIECES, SubstitutionTable, TableConfig, sampling_probs, word_hashes

# Table 1 of the paper: French IBM-1 candidates of "work" (p) and their "NL" column p**(1/3).
WORK = [
    ("travail", 0.3689, 0.717), ("travailler", 0.2252, 0.608), ("travaille", 0.0544, 0.379),
    ("travaillent", 0.0405, 0.343), ("de", 0.0312, 0.314), ("pour", 0.0244, 0.289), ("et", 0.0164, 0.254),
    ("les", 0.0154, 0.248), ("à", 0.0150, 0.246), ("le", 0.0136, 0.238), ("des", 0.0133, 0.236),
    ("travaillons", 0.0112, 0.223), ("fonctionnent", 0.0098, 0.214),
]
FR_STOP = frozenset({"de", "pour", "et", "les", "à", "le", "des"})


class ChunkEncoder:
    """Test encoder: a word is '▁'+word cut in 3-character pieces, each piece its own id."""

    def __init__(self):
        self.ids = {}
        self.unk = 3

    def __call__(self, word):
        if "#" in word:  # stands for a character outside the vocabulary
            return [self.unk]
        text = "\u2581" + word
        return [self.ids.setdefault(text[i:i + 3], 4 + len(self.ids)) for i in range(0, len(text), 3)]


def lexicon(rows, probabilistic=True, kind="ibm1"):
    m = OrderedDict()
    for src, tgt, p in rows:
        m.setdefault(src, []).append((tgt, p))
    return Lexicon.from_mapping(m, "en", "fr", kind, probabilistic)


def build(lex, **cfg):
    enc = ChunkEncoder()
    table, stats = SubstitutionTable.build(lex, enc, enc.unk, TableConfig(**cfg))
    return table, stats, enc


def test_table1_nl_column_is_p_to_the_one_third():
    p = np.array([r[1] for r in WORK])
    nl = np.array([r[2] for r in WORK])
    # the paper prints p rounded to 4 decimals and NL computed from the unrounded p: within 1.1e-3
    np.testing.assert_allclose(p ** (1 / 3), nl, atol=1.1e-3)
    # the paper's own check: work -> travail
    assert round(0.3689 ** (1 / 3), 3) == 0.717


def test_sampling_probs_renormalise_nl_within_each_word():
    p = np.array([0.3689, 0.2252, 0.0544, 0.5, 0.5])
    groups = np.array([0, 0, 0, 1, 1])
    q = sampling_probs(p, groups, 3.0)
    nl = p[:3] ** (1 / 3)
    np.testing.assert_allclose(q[:3], nl / nl.sum())
    np.testing.assert_allclose(np.bincount(groups, weights=q), [1.0, 1.0])
    np.testing.assert_allclose(sampling_probs(p, groups, 1.0)[:3], p[:3] / p[:3].sum())
    with pytest.raises(ValueError):
        sampling_probs(p, groups, 0.0)


def test_work_row_after_paper_filters():
    lex = lexicon([("work",) + r[:2] for r in WORK])
    table, stats, _ = build(lex, tgt_stopwords=FR_STOP, case_variants=False)
    (e,) = table.entries_for("work")
    rows = table.rows(e)
    # p > 0.02 keeps 6 candidates, of which "de" and "pour" are French stopwords
    assert [t for t, _, _ in rows] == ["travail", "travailler", "travaille", "travaillent"]
    nl = np.array([0.3689, 0.2252, 0.0544, 0.0405]) ** (1 / 3)
    np.testing.assert_allclose([q for _, _, q in rows], nl / nl.sum(), rtol=1e-9)
    np.testing.assert_allclose([p for _, p, _ in rows], [0.3689, 0.2252, 0.0544, 0.0405])
    assert stats["cand_below_min_prob"] == 7 and stats["cand_stopword"] == 2


def test_min_prob_is_strict_and_applies_to_probabilistic_lexicons_only():
    rows = [("house", "maison", 0.9), ("house", "foyer", 0.02), ("house", "logis", 0.0201)]
    table, _, _ = build(lexicon(rows), case_variants=False)
    assert [t for t, _, _ in table.rows(table.entries_for("house")[0])] == ["maison", "logis"]
    # the same words from a MUSE dictionary: every translation kept, uniform probabilities
    muse = lexicon([(s, t, 1 / 3) for s, t, _ in rows], probabilistic=False, kind="muse")
    table, _, _ = build(muse, case_variants=False)
    got = table.rows(table.entries_for("house")[0])
    assert [t for t, _, _ in got] == ["maison", "foyer", "logis"]
    np.testing.assert_allclose([q for _, _, q in got], [1 / 3] * 3)


def test_source_filters_short_words_stopwords_punctuation_and_oov():
    rows = [("cat", "chat", 0.9), ("door", "porte", 0.9), ("also", "aussi", 0.9), ("....", "...", 0.9),
            ("na#ve", "naïf", 0.9), ("tree", "arb#re", 0.9)]
    table, stats, _ = build(lexicon(rows), src_stopwords=frozenset({"also"}), case_variants=False)
    assert table.source_words() == ["door"]
    assert stats["src_short"] == 1 and stats["src_stopword"] == 1 and stats["src_punct"] == 1
    assert stats["src_oov"] == 1 and stats["cand_oov"] == 1
    # shorter-than-4 is configurable
    table, _, _ = build(lexicon(rows[:1]), min_word_len=3, case_variants=False)
    assert table.source_words() == ["cat"]


def test_case_variants_carry_casing_to_candidates():
    table, _, enc = build(lexicon([("house", "maison", 0.7), ("house", "domicile", 0.3)]))
    assert sorted(table.source_words()) == ["HOUSE", "House", "house"]
    assert [t for t, _, _ in table.rows(table.entries_for("House")[0])] == ["Maison", "Domicile"]
    e = table.entries_for("HOUSE")[0]
    toks, lens = table.candidate_tokens(np.array([table.cand_offsets[e]]))
    assert toks.tolist() == enc("MAISON")


def test_lookup_and_verify_find_exact_words_only():
    words = [f"word{i:03d}x" for i in range(200)]
    table, _, enc = build(lexicon([(w, "mot" + w, 0.5) for w in words]), case_variants=False)
    seq = [0]
    spans = []
    for w in ["word007x", "unknown", "word123x", "wor"]:
        ids = enc(w)
        spans.append((len(seq), len(ids)))
        seq += ids
    tokens = np.array(seq, dtype=np.int64)
    starts = np.array([0] + [s for s, _ in spans])
    lengths = np.array([1] + [n for _, n in spans])
    entries = table.lookup(word_hashes(tokens, starts, lengths))
    names = table.source_words()
    assert [names[e] if e >= 0 else None for e in entries] == [None, "word007x", None, "word123x", None]
    hit = entries >= 0
    assert table.verify(entries[hit], tokens, starts[hit], lengths[hit]).all()
    # a wrong span for a right entry fails verification
    assert not table.verify(entries[1:2], tokens, starts[3:4], lengths[3:4]).any()


def test_sampling_matches_the_distribution(tmp_path):
    lex = lexicon([("work",) + r[:2] for r in WORK[:4]] + [("house", "maison", 0.6), ("house", "foyer", 0.4)])
    table, _, _ = build(lex, case_variants=False)
    table = SubstitutionTable.load(table.save(tmp_path / "t"))  # memory-mapped copy
    e = np.array(table.entries_for("work") * 100000 + table.entries_for("house") * 100000)
    rng = np.random.default_rng(0)
    c = table.sample(e, rng.random(len(e)))
    for ent in np.unique(e):
        a, b = table.cand_offsets[ent], table.cand_offsets[ent + 1]
        picked = c[e == ent]
        assert ((picked >= a) & (picked < b)).all()
        freq = np.bincount(picked - a, minlength=b - a) / len(picked)
        np.testing.assert_allclose(freq, table.cand_sampling[a:b], atol=0.006)
    # u -> 1 stays inside the block; static picks the most probable
    assert table.sample(e[:1], np.array([1.0 - 1e-17]))[0] == table.cand_offsets[e[0] + 1] - 1
    assert table.top(e[:1])[0] == table.cand_offsets[e[0]]


def test_with_sampling_recomputes_and_refuses_lower_threshold():
    lex = lexicon([("work",) + r[:2] for r in WORK] + [("solo", "seul", 0.03)])
    table, _, _ = build(lex, case_variants=False)
    t1 = table.with_sampling(1.0, 0.02)
    rows = t1.rows(t1.entries_for("work")[0])
    p = np.array([r[1] for r in rows])
    np.testing.assert_allclose([r[2] for r in rows], p / p.sum())
    strict = table.with_sampling(3.0, 0.05)
    assert [r[0] for r in strict.rows(strict.entries_for("work")[0])] == ["travail", "travailler", "travaille"]
    assert strict.entries_for("solo") == []  # lost every candidate: entry removed
    assert table.with_sampling(3.0, 0.02) is table
    with pytest.raises(ValueError, match="rebuild the table"):
        table.with_sampling(3.0, 0.01)


def test_save_load_roundtrip_and_checksum(tmp_path):
    table, _, _ = build(lexicon([("house", "maison", 0.7), ("house", "domicile", 0.3)]))
    path = table.save(tmp_path / "tbl")
    loaded = SubstitutionTable.load(path)
    assert isinstance(loaded.cand_cdf, np.memmap)
    assert loaded.checksum() == table.checksum() == loaded.meta["checksum"]
    for name in SubstitutionTable.ARRAYS:
        np.testing.assert_array_equal(np.asarray(loaded.arrays[name]), table.arrays[name])
    with pytest.raises(FileNotFoundError, match="not found"):
        SubstitutionTable.load(tmp_path / "nope")


def test_word_hashes_distinguish_order_and_length():
    toks = np.array([5, 6, 6, 5, 5, 6, 0], dtype=np.int64)
    starts = np.array([0, 2, 4, 6])
    lengths = np.array([2, 2, 2, 1])
    h = word_hashes(toks, starts, lengths)
    assert h[0] == h[2] and h[0] != h[1] and len(set(h.tolist())) == 3
    long = np.arange(MAX_WORD_PIECES + 5, dtype=np.int64)
    assert word_hashes(long, np.array([0]), np.array([len(long)])).shape == (1,)
