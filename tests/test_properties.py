"""Property-based tests (hypothesis) of code-switching over random sequences, masks and tables."""
from collections import OrderedDict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from csfair.pretraining.sampler import CodeSwitchConfig, code_switch
from csfair.lexicons.lexicon import Lexicon
from csfair.pretraining.masking import MaskConfig, mask_tokens, random_token_weights
from csfair.pretraining.substitution_table import word_hashes
from csfair.pretraining.table_build import TableConfig, build_table

BOS, PAD, EOS, UNK = 0, 1, 2, 3
V = 40
MASK = V - 1
SPECIAL = np.zeros(V, dtype=bool)
SPECIAL[[BOS, PAD, EOS, UNK, MASK]] = True
# tokens 4..21 start a word, 22..38 continue one
WORD_START = SPECIAL.copy()
WORD_START[4:22] = True


@st.composite
def piece_word(draw, max_len=3):
    first = draw(st.integers(4, 21))
    rest = draw(st.lists(st.integers(22, 38), max_size=max_len - 1))
    return (first, *rest)


@st.composite
def scenario(draw):
    keys = draw(st.lists(piece_word(), min_size=1, max_size=6, unique=True))
    mapping, enc = OrderedDict(), {}
    for k, key in enumerate(keys):
        src = f"src{k}"
        enc[src] = key
        cands = draw(st.lists(piece_word(4), min_size=1, max_size=3))
        probs = draw(st.lists(st.floats(0.01, 1.0), min_size=len(cands), max_size=len(cands)))
        mapping[src] = []
        for j, (c, p) in enumerate(zip(cands, probs)):
            enc[f"cand{k}x{j}"] = c
            mapping[src].append((f"cand{k}x{j}", p))
    lex = Lexicon.from_mapping(mapping, "xx", "yy", "ibm1", True)
    table, _ = build_table(lex, lambda w: enc[w], UNK, TableConfig(min_prob=0.0, case_variants=False))
    # a sequence mixing table words and random words, between <s> and </s>
    parts = draw(st.lists(st.one_of(st.sampled_from(keys), piece_word()), min_size=1, max_size=25))
    seq = np.array([BOS] + [t for w in parts for t in w] + [EOS], dtype=np.int64)
    cfg = CodeSwitchConfig(
        mode=draw(st.sampled_from(["static", "multiview"])),
        instance_prob=draw(st.sampled_from([1.0, 0.5])),
        word_prob=draw(st.floats(0.0, 1.0)),
        max_len=draw(st.integers(max(1, len(seq) - 5), len(seq) + 15)),
        overflow=draw(st.sampled_from(["truncate", "drop"])),
    )
    mcfg = MaskConfig(mask_prob=draw(st.floats(0.01, 0.9)), random_token_prob=draw(st.sampled_from([0.0, 0.1])))
    seed = draw(st.integers(0, 2**31 - 1))
    return table, seq, cfg, mcfg, seed


def masked(seq, mcfg, seed):
    weights = random_token_weights(V, 4) if mcfg.random_token_prob > 0 else None
    return mask_tokens(seq, np.random.default_rng(seed), mcfg, MASK, PAD, weights)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_code_switching_invariants(case):
    table, seq, cfg, mcfg, seed = case
    src, tgt = masked(seq, mcfg, seed)
    out_src, out_tgt, stats = code_switch(src, tgt, seq, PAD, WORD_START, SPECIAL, table,
                                          np.random.default_rng([seed, 1, 7]), cfg)
    # length bound: an item never grows beyond max_len (blocks already longer are left alone)
    assert len(out_src) == len(out_tgt) <= max(cfg.max_len, len(seq))
    cut = int(stats[6])
    assert cut >= 0 and (cfg.overflow == "truncate" or cut == 0)
    if cut:  # truncate: the item fills the window exactly, its tail is gone, a final special stays last
        assert len(out_src) == max(cfg.max_len, len(seq)) and stats[4] == len(out_src)
    keep_last = bool(SPECIAL[seq[-1]])

    def kept(a, b):
        """``a`` is ``b``, or ``b``'s head (plus ``b``'s last element when a final special was kept)."""
        a, b = a.tolist(), b.tolist()
        if cut == 0:
            return a == b
        return a == b[:len(a)] or (keep_last and a[:-1] == b[:len(a) - 1] and a[-1:] == b[-1:])

    # targets intact: the same original tokens, in the same order, and nothing else (less a cut tail)
    assert kept(out_tgt[out_tgt != PAD], tgt[tgt != PAD])
    # masked positions never substituted: their (masked or randomised) input is unchanged
    assert kept(out_src[out_tgt != PAD], src[tgt != PAD])
    # special tokens intact, in order (less a cut tail; a final one is never cut)
    assert kept(out_src[SPECIAL[out_src]], src[SPECIAL[src]])
    if keep_last:
        assert out_src[-1] == src[-1] and out_tgt[-1] == tgt[-1]
    # counts are consistent; nothing replaced means nothing changed
    assert 0 <= stats[2] <= stats[1] and 0 <= stats[5] <= stats[2]
    if stats[2] == 0:
        assert out_src is src and out_tgt is tgt and cut == 0
    # determinism per seed
    again = code_switch(src, tgt, seq, PAD, WORD_START, SPECIAL, table, np.random.default_rng([seed, 1, 7]), cfg)
    np.testing.assert_array_equal(again[0], out_src)
    np.testing.assert_array_equal(again[1], out_tgt)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_table_lookup_equals_a_dictionary_lookup(case):
    table, seq, _, _, _ = case
    starts = np.flatnonzero(WORD_START[seq])
    lengths = np.diff(np.append(starts, len(seq)))
    got = table.lookup(word_hashes(seq, starts, lengths))
    keys = {tuple(table.key_tokens[table.key_offsets[e]:table.key_offsets[e + 1]].tolist()): e for e in range(len(table))}
    want = [keys.get(tuple(seq[s:s + n].tolist()), -1) for s, n in zip(starts, lengths)]
    hit = got >= 0
    assert table.verify(got[hit], seq, starts[hit], lengths[hit]).all()
    assert got.tolist() == want


@settings(max_examples=100, deadline=None)
@given(scenario(), st.integers(0, 2**31 - 1))
def test_sampled_candidates_belong_to_their_entry(case, seed):
    table = case[0]
    rng = np.random.default_rng(seed)
    e = rng.integers(0, len(table), size=500)
    c = table.sample(e, rng.random(500))
    assert ((c >= table.cand_offsets[e]) & (c < table.cand_offsets[e + 1])).all()
    cdf = np.asarray(table.cand_cdf)
    ends = table.cand_offsets[1:] - 1
    np.testing.assert_allclose(cdf[ends], np.arange(len(table)) + 1.0)
    assert (np.diff(cdf) > 0).all()


def toy_table(mapping_tokens):
    """A table from {source word pieces: [(candidate pieces, p), ...]} (word strings made up)."""
    mapping, enc = OrderedDict(), {}
    for k, (key, cands) in enumerate(mapping_tokens.items()):
        enc[f"src{k}"] = key
        mapping[f"src{k}"] = []
        for j, (c, p) in enumerate(cands):
            enc[f"cand{k}x{j}"] = c
            mapping[f"src{k}"].append((f"cand{k}x{j}", p))
    lex = Lexicon.from_mapping(mapping, "xx", "yy", "ibm1", True)
    table, _ = build_table(lex, lambda w: enc[w], UNK, TableConfig(min_prob=0.0, case_variants=False))
    return table


def switch_all(seq, table, max_len, overflow="truncate"):
    """Every eligible word replaced (instance and word probability 1), nothing masked."""
    seq = np.asarray(seq, dtype=np.int64)
    tgt = np.full(len(seq), PAD, dtype=np.int64)
    cfg = CodeSwitchConfig("static", 1.0, 1.0, max_len=max_len, overflow=overflow)
    return code_switch(seq.copy(), tgt, seq, PAD, WORD_START, SPECIAL, table, np.random.default_rng(0), cfg)


def test_a_replacement_that_does_not_fit_drops_only_itself():
    # overflow="drop". Word (4,) -> 3 pieces (+2 tokens), word (5,) -> 1 piece (+0): with room for 1
    # more token the first cannot be applied, the second still is
    table = toy_table({(4,): [((6, 22, 23), 0.9)], (5,): [((7,), 0.9)]})
    seq = [BOS, 4, 5, EOS]
    src, _, stats = switch_all(seq, table, max_len=len(seq) + 1, overflow="drop")
    assert src.tolist() == [BOS, 4, 7, EOS] and stats[2] == 1 and stats[6] == 0
    src, _, stats = switch_all(seq, table, max_len=len(seq) + 2, overflow="drop")
    assert src.tolist() == [BOS, 6, 22, 23, 7, EOS] and stats[2] == 2


def test_truncate_applies_the_draw_and_cuts_the_tail_before_the_final_special():
    # overflow="truncate" (default), same table: with room for 1 more token the first (longer)
    # replacement is applied; the item's tail is cut before </s>, which takes the second word with it
    table = toy_table({(4,): [((6, 22, 23), 0.9)], (5,): [((7,), 0.9)]})
    src, tgt, stats = switch_all([BOS, 4, 5, EOS], table, max_len=5)
    assert src.tolist() == [BOS, 6, 22, 23, EOS] and len(tgt) == 5
    assert stats[2] == 1 and stats[6] == 1 and stats[4] == 5  # replaced, cut tokens, tokens
    # a replacement straddling the limit is applied and cut with the tail: its visible tokens count as changed
    src, _, stats = switch_all([BOS, 4, 5, EOS], table, max_len=4)
    assert src.tolist() == [BOS, 6, 22, EOS] and stats[2] == 1 and stats[3] == 2 and stats[6] == 2
    # a block that does not end with a special symbol (a full block) loses its last tokens
    table = toy_table({(5,): [((6, 22, 23), 0.9)]})
    src, _, stats = switch_all([BOS, 5, 8, 9], table, max_len=5)
    assert src.tolist() == [BOS, 6, 22, 23, 8] and stats[2] == 1 and stats[6] == 1
    # room for everything: nothing cut
    src, _, stats = switch_all([BOS, 5, 8, 9], table, max_len=6)
    assert src.tolist() == [BOS, 6, 22, 23, 8, 9] and stats[6] == 0


def test_words_cut_by_a_block_boundary_never_match_a_shorter_key():
    # key (4,) is the first piece of the word (4, 22) of the running text
    table = toy_table({(4,): [((7,), 0.9)], (5,): [((8,), 0.9)]})
    # block ends inside a word: its last "word" (4,) may be the start of (4, 22): not eligible
    src, _, stats = switch_all([BOS, 5, 4], table, max_len=10)
    assert src.tolist() == [BOS, 8, 4] and stats[1] == 1
    # block starts inside a word (no <s>): the leading continuation pieces are a fragment
    src, _, stats = switch_all([22, 5, EOS], table, max_len=10)
    assert src.tolist() == [22, 8, EOS] and stats[1] == 1
    # a complete last word before </s> is eligible
    src, _, _ = switch_all([BOS, 5, 4, EOS], table, max_len=10)
    assert src.tolist() == [BOS, 8, 7, EOS]


def test_changed_tokens_count_only_real_changes():
    # (4,) -> itself (a no-op insertion), (5,) -> two new pieces
    table = toy_table({(4,): [((4,), 0.9)], (5,): [((9, 24), 0.9)]})
    src, _, stats = switch_all([BOS, 4, 5, EOS], table, max_len=10)
    assert src.tolist() == [BOS, 4, 9, 24, EOS]
    assert stats[2] == 2 and stats[3] == 2 and stats[4] == 5  # replaced words, changed tokens, tokens
    assert stats[5] == 1  # one replaced word kept its pieces: a logged no-change
