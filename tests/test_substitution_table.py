"""Substitution-table maths and filters (Visser et al., 2025, Section 3.1 and Table 1)."""
from collections import OrderedDict

import numpy as np
import pytest

from csfair.lexicons.lexicon import Lexicon
from csfair.pretraining.substitution_table import MAX_WORD_PIECES, SubstitutionTable, sampling_probs, word_hashes
from csfair.pretraining.table_build import TableConfig, build_table

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
    table, stats = build_table(lex, enc, enc.unk, TableConfig(**cfg))
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
    # memory-mapped, not read into memory: the arrays keep the mapping (workers share its pages);
    # the attributes are plain ndarray views of it (indexing an np.memmap is slow on the per-item path)
    assert isinstance(loaded.arrays["cand_cdf"], np.memmap)
    assert not loaded.cand_cdf.flags.owndata and loaded.cand_cdf.base is not None
    assert np.shares_memory(loaded.cand_cdf, loaded.arrays["cand_cdf"])
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


# ---------------------------------------------------------------- filters on real data slices
# (csfair issue 10, part 2: identical candidates, stopwords, casing)
import functools  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402

from csfair.io import sha256_file  # noqa: E402
from csfair.paths import data_file  # noqa: E402
from csfair.text import (  # noqa: E402
    FREQUENCY_STOPWORDS, CorpusCounts, is_capitalised, load_stopwords, lower, moses_tokenize_lines, stopword_list,
    title, upper,
)


def muse_slice(tmp_path, pair, n_lines, keep=None):
    """The first ``n_lines`` of a real MUSE dictionary (optionally only pairs whose source is in ``keep``)."""
    src, tgt = pair.split("-")
    out = tmp_path / f"muse.{pair}.txt"
    with open(data_file(f"dict/muse/{pair}.txt"), encoding="utf-8") as fh:
        lines = [ln for ln in itertools.islice(fh, n_lines) if keep is None or ln.split()[0] in keep]
    out.write_text("".join(lines), encoding="utf-8")
    return Lexicon.read_muse(out, src, tgt)


@functools.lru_cache(maxsize=None)
def mono_tokens(lang, n_lines=2000):
    """The first ``n_lines`` of the real monolingual text, Moses-tokenised."""
    with open(data_file(f"mono/derived/{lang}.txt"), encoding="utf-8") as fh:
        lines = list(itertools.islice(fh, n_lines))
    return tuple(moses_tokenize_lines(lines, lang))


@functools.lru_cache(maxsize=None)
def mono_counts(lang, n_lines=2000):
    """Word counts of :func:`mono_tokens`."""
    return CorpusCounts.from_lines(mono_tokens(lang, n_lines), lang)


def build_with(lex, src_corpus=None, tgt_corpus=None, **cfg):
    enc = ChunkEncoder()
    return build_table(lex, enc, enc.unk, TableConfig(**cfg), src_corpus=src_corpus, tgt_corpus=tgt_corpus)


def all_pairs(table):
    """``[(source form, candidate), ...]`` of a table."""
    src, cands = table.source_words(), table.cand_words()
    return [(src[e], cands[c]) for e in range(len(table))
            for c in range(int(table.cand_offsets[e]), int(table.cand_offsets[e + 1]))]


def test_identical_candidates_kept_by_default_and_dropped_with_the_flag(tmp_path):
    lex = muse_slice(tmp_path, "en-fr", 3000)
    ident = [(s, t) for s, t in zip(np.repeat(lex.src_words, np.diff(lex.offsets)), lex.tgt_words)
             if len(s) >= 4 and s == t]
    assert len(ident) > 100  # real MUSE: numbers, names, loan words
    kept, kstats = build_with(lex, case_variants=False)
    assert set(ident) <= set(all_pairs(kept)) and kept.meta["keep_identical"] is True
    # MUSE (the paper): uniform over every listed translation, the word itself included
    for s, _ in ident[:50]:
        (e,) = kept.entries_for(s)
        rows = kept.rows(e)
        assert sorted(t for t, _, _ in rows) == sorted(lex.candidates(s)[k][0] for k in range(len(rows)))
        np.testing.assert_allclose([q for _, _, q in rows], 1 / len(lex.candidates(s)))
    table, stats = build_with(lex, case_variants=False, keep_identical=False)
    assert not any(s.lower() == c.lower() for s, c in all_pairs(table))
    assert kstats["cand_identical"] == stats["cand_identical"] == stats["cand_identical_dropped"] == len(ident)
    assert kstats["cand_identical_dropped"] == 0
    assert kept.num_candidates - table.num_candidates == len(ident)
    # a word whose only translation is itself: in the table (never changed) or gone (dropped)
    only_self = {s for s, _ in ident if len(lex.candidates(s)) == 1}
    assert only_self and not only_self & set(table.source_words()) and stats["src_only_identical"] == len(only_self)
    assert only_self <= set(kept.source_words()) and kstats["src_only_identical"] == len(only_self)
    assert table.meta["keep_identical"] is False
    # the same filter for a probabilistic (IBM-1) lexicon, compared case-insensitively; kept, the identity keeps its
    # share of p**(1/T) / sum p**(1/T)
    ibm = lexicon([("paris", "Paris", 0.5), ("paris", "parisien", 0.25), ("1999", "1999", 1.0)])
    t, st = build_with(ibm, case_variants=False, keep_identical=False)
    assert all_pairs(t) == [("paris", "parisien")] and st["cand_identical"] == 2
    t, st = build_with(ibm, case_variants=False)
    q = np.array([0.5, 0.25]) ** (1 / 3)
    np.testing.assert_allclose([x for _, _, x in t.rows(t.entries_for("paris")[0])], q / q.sum())
    assert [x for _, _, x in t.rows(t.entries_for("1999")[0])] == [1.0]


def test_frequency_stopwords_are_the_same_rule_for_every_language(tmp_path):
    n = int(FREQUENCY_STOPWORDS.split(":")[1])
    # Maghrebi Arabic (Arabizi, "qaf") has no stopwords-iso list
    forms = []
    with open(data_file("ud-cs/UD_Maghrebi_Arabic_French-Arabizi/qaf_arabizi-ud-train.conllu"), encoding="utf-8") as fh:
        sent = []
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) == 10 and cols[0].isdigit():
                sent.append(cols[1])
            elif not line.strip() and sent:
                forms.append(" ".join(sent))
                sent = []
    with pytest.raises(KeyError, match="no stopword list"):
        load_stopwords("iso", "qaf")
    texts = {lang: mono_tokens(lang) for lang in ("en", "fr", "de")}
    texts["qaf"] = tuple(forms)
    sizes = {}
    for lang, lines in texts.items():
        corpus = CorpusCounts.from_lines(lines, lang)
        words, meta = stopword_list(FREQUENCY_STOPWORDS, lang, corpus)
        # independently: rank the lower-cased tokens that contain a letter
        from collections import Counter

        totals = Counter(lower(t, lang) for line in lines for t in line.split() if any(c.isalpha() for c in t))
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
        assert words == frozenset(w for w, _ in ranked[:n])
        assert min(totals[w] for w in words) >= ranked[n][1]
        assert meta["sha256"] == hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()
        assert meta["spec"] == FREQUENCY_STOPWORDS and meta["corpus"]["tokens"] == corpus.n_tokens
        sizes[lang] = len(words)
    assert set(sizes.values()) == {n}
    with pytest.raises(ValueError, match="--src-corpus"):
        stopword_list(FREQUENCY_STOPWORDS, "en", None)


def test_stopword_checksum_and_provenance_in_table_metadata(tmp_path):
    tok = tmp_path / "fr.tok"
    with open(data_file("mono/derived/fr.txt"), encoding="utf-8") as fh:
        tok.write_text("\n".join(moses_tokenize_lines(itertools.islice(fh, 500), "fr")) + "\n", encoding="utf-8")
    fr = CorpusCounts.from_files(tok, "fr")
    words, info = stopword_list("top:20", "fr", fr)
    iso, iso_info = stopword_list("iso", "en")
    lex = muse_slice(tmp_path, "en-fr", 500)
    table, _ = build_with(lex, tgt_stopwords=words, tgt_stopwords_info=info, src_stopwords=iso,
                          src_stopwords_info=iso_info)
    meta = SubstitutionTable.load(table.save(tmp_path / "t")).meta
    assert meta["tgt_stopwords"]["sha256"] == hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()
    assert meta["tgt_stopwords"]["corpus"]["sha256"] == [sha256_file(tok)] and meta["tgt_stopwords"]["n_words"] == 20
    assert meta["src_stopwords"]["n_words"] == len(iso) == 1298
    assert meta["src_stopwords"]["file_sha256"] == sha256_file(data_file("stopwords/stopwords-iso/stopwords-iso.json"))
    assert not any(lower(c, "fr") in words for c in table.cand_words())


def test_stopword_token_fraction_counts_eligible_tokens(tmp_path):
    en = mono_counts("en")
    lex = muse_slice(tmp_path, "en-fr", 3000)
    stop = frozenset({"with", "wearing", "people"})
    table, st = build_with(lex, src_corpus=en, src_stopwords=stop, case_variants=False)
    free, fst = build_with(lex, src_corpus=en, case_variants=False)
    # eligible words are the same with and without the list; the removed tokens are the listed words'
    assert st["src_eligible_tokens"] == fst["src_eligible_tokens"] > 0 and fst["src_stopword_tokens"] == 0
    listed = [w for w in stop if w in free.source_words()]
    assert st["src_stopword_tokens"] == sum(en.count(w) for w in listed) > 0
    assert st["src_stopword_token_fraction"] == pytest.approx(st["src_stopword_tokens"] / st["src_eligible_tokens"])


def test_german_candidates_take_their_corpus_casing(tmp_path):
    de = mono_counts("de")
    lex = muse_slice(tmp_path, "en-de", 4000)
    table, stats = build_with(lex, tgt_corpus=de)
    words = table.source_words()
    (e,) = [i for i, w in enumerate(words) if w == "house"]
    assert "Haus" in [t for t, _, _ in table.rows(e)]
    (e,) = [i for i, w in enumerate(words) if w == "House"]
    assert "Haus" in [t for t, _, _ in table.rows(e)]
    checked = capitalised = 0
    for s, c in all_pairs(table):
        if s.islower() and de.truecase(c) is not None:
            checked += 1
            assert c == de.truecase(c)
            capitalised += is_capitalised(c)
    assert checked > 500 and capitalised > 0.3 * checked  # German nouns
    assert stats["cand_recased"] > 0
    # German source words: the capitalised noun itself is a key, with candidates in their own casing
    table, stats = build_with(muse_slice(tmp_path, "de-en", 1500), src_corpus=de, tgt_corpus=mono_counts("en"))
    e = table.entries_for("Haus")
    assert table.source_words()[e[0]] == "Haus" and "house" in [t for t, _, _ in table.rows(e[0])]
    assert stats["src_capitalised_nouns"] > 0 and stats["src_names"] == 0


def test_mostly_capitalised_source_words_get_no_case_variants(tmp_path):
    en = mono_counts("en", 4000)
    lex = muse_slice(tmp_path, "en-fr", 6000)
    table, stats = build_with(lex, src_corpus=en)
    keys = set(table.source_words())
    names = lower_words = 0
    for w in set(lower(k, "en") for k in keys):
        cap, total = en.capitalised(w)
        if total and cap > 0.5 * total:
            names += 1
            assert w in keys and title(w, "en") not in keys and upper(w, "en") not in keys, w
        elif title(w, "en") != w:
            lower_words += 1
            assert title(w, "en") in keys and upper(w, "en") in keys, w
    assert names > 5 and names == stats["src_names"] and lower_words > 100
    # the threshold is a flag: 1.0 restores the variants
    table, stats = build_with(lex, src_corpus=en, name_min_capitalised=1.0)
    assert stats["src_names"] == 0 and "John" in table.source_words()


def test_turkish_and_azerbaijani_casing(tmp_path):
    for lang in ("tr", "az"):
        assert upper("istanbul", lang) == "İSTANBUL" and title("istanbul", lang) == "İstanbul"
        assert lower("İSTANBUL", lang) == "istanbul" and lower("ISI", lang) == "ısı" and upper("ısı", lang) == "ISI"
    assert upper("istanbul", "en") == "ISTANBUL" and lower("ISI", "en") == "isi"
    # the IBM-1 lexicons' lower-casing (Moses tokenisation) follows the same rules
    assert moses_tokenize_lines(["İSTANBUL ISI."], "tr", lowercase=True).__next__() == "istanbul ısı ."
    # a real English-Turkish MUSE slice: Turkish candidates cased the Turkish way
    src = tmp_path / "en-tr.txt"
    src.write_text("ISTANBUL İSTANBUL\nheat ISI\nhuman İnsan\n", encoding="utf-8")
    assert Lexicon.read_muse(src, "en", "tr").tgt_words == ["istanbul", "ısı", "insan"]
    lex = muse_slice(tmp_path, "en-tr", 3000)
    assert not any("\u0307" in t for t in lex.tgt_words)
    table, _ = build_with(lex)
    n_dotted = 0
    for s, c in all_pairs(table):
        if s.isupper() and len(s) > 1:
            assert c == upper(lower(c, "tr"), "tr") and "i" not in c and "ı" not in c
            n_dotted += "İ" in c
        elif is_capitalised(s) and lower(c, "tr")[:1] == "i":
            assert c[0] == "İ"
    assert n_dotted > 50
    # through the table, both directions: İstanbul / ısı
    table, _ = build_with(Lexicon.read_muse(src, "en", "tr"))
    got = {w: [t for t, _, _ in table.rows(e)] for e, w in enumerate(table.source_words())}
    assert got["HEAT"] == ["ISI"] and got["Human"] == ["İnsan"] and got["HUMAN"] == ["İNSAN"]
    rev = Lexicon.from_mapping(OrderedDict([("ısı", [("heat", 1.0)]), ("istanbul", [("constantinople", 1.0)])]),
                               "tr", "en", "muse", False)
    table, _ = build_with(rev, min_word_len=3)
    assert sorted(table.source_words()) == sorted(["ısı", "Isı", "ISI", "istanbul", "İstanbul", "İSTANBUL"])


def test_lexicon_cli_table_reports_every_filter_and_records_it(tiny_pair, tmp_path):
    import json
    import subprocess
    import sys

    d = tiny_pair["dir"]
    out = tmp_path / "tbl"
    cmd = [sys.executable, "-m", "csfair.cli.lexicon", "table", "--lexicon", str(tiny_pair["lex_en_fr"]),
           "--spm-model", str(tiny_pair["spm"]), "--dict", str(tiny_pair["dict"]), "--out", str(out), "--quiet",
           "--src-corpus", str(d / "en.train.tok"), "--tgt-corpus", str(d / "fr.train.tok")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    # every source token of the corpus is accounted for once, by the first filter that removes it
    en = CorpusCounts.from_files(d / "en.train.tok", "en")
    assert sum(stats["src_tokens"].values()) == stats["src_corpus_tokens"] == en.n_tokens
    assert stats["src_tokens"]["stopword"] == stats["src_stopword_tokens"] > 0 and stats["src_tokens"]["table"] > 0
    shares = stats["src_token_shares"]
    assert f"in the table {shares['table']:.2%} | shorter than min_word_len {shares['short']:.2%}" in p.stderr
    assert f"stopword {shares['stopword']:.2%} | no candidate left {shares['no_candidate']:.2%}" in p.stderr
    assert f"casing not a key (names) {shares['other_casing']:.2%}" in p.stderr and stats["src_tokens"]["other_casing"] > 0
    assert f"stopwords remove {stats['src_stopword_token_fraction']:.2%} of the en tokens" in p.stderr
    # identical candidates kept (the paper): a share of the draws keeps the word
    assert stats["cand_identical"] > 0 and stats["cand_identical_dropped"] == 0  # IBM-1 has identities (names, numbers)
    assert 0 < stats["identity_draw_share"] < 0.5 and f"{stats['identity_draw_share']:.2%} of the draws" in p.stderr
    meta = SubstitutionTable.load(out).meta
    assert meta["keep_identical"] is True and meta["casing"]["tgt_corpus"]["paths"] == [str(d / "fr.train.tok")]
    # the default stopwords: UD function words on both sides, measured on held-out UD data and printed
    for side, lang in (("src", "en"), ("tgt", "fr")):
        info = meta[f"{side}_stopwords"]
        h = info["heldout"]
        assert info["spec"] == "function" and not set(info["ud_build"]) & set(h["files"])
        assert h["content_share"] <= 0.05 and h["function_token_coverage"] >= 0.95, (lang, h)
        assert f"{side} stopwords function ({lang}, {info['n_words']} words" in p.stderr
        assert f"{h['content_share']:.1%} of its {h['words_seen']} words seen there are content words" in p.stderr
    # --drop-identical: the option, recorded and printed
    p = subprocess.run(cmd[:-4] + ["--out", str(tmp_path / "drop"), "--drop-identical"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert SubstitutionTable.load(tmp_path / "drop").meta["keep_identical"] is False
    assert "identical candidates dropped (--drop-identical)" in p.stderr
    # without a corpus the frequency rule cannot be made: a clear error, not a silent empty list
    p = subprocess.run(cmd[:-4] + ["--src-stopwords", "top:20"], capture_output=True, text=True)
    assert p.returncode != 0 and "--src-corpus" in p.stderr
