"""Property-based tests (hypothesis) of code-switching over random sequences, masks and tables."""
from collections import OrderedDict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from csfair.codeswitch import CodeSwitchConfig, code_switch
from csfair.lexicon import Lexicon
from csfair.masking import MaskConfig, mask_tokens, random_token_weights
from csfair.substitution_table import SubstitutionTable, TableConfig, word_hashes

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
    table, _ = SubstitutionTable.build(lex, lambda w: enc[w], UNK, TableConfig(min_prob=0.0, case_variants=False))
    # a sequence mixing table words and random words, between <s> and </s>
    parts = draw(st.lists(st.one_of(st.sampled_from(keys), piece_word()), min_size=1, max_size=25))
    seq = np.array([BOS] + [t for w in parts for t in w] + [EOS], dtype=np.int64)
    cfg = CodeSwitchConfig(
        mode=draw(st.sampled_from(["static", "multiview"])),
        instance_prob=draw(st.sampled_from([1.0, 0.5])),
        word_prob=draw(st.floats(0.0, 1.0)),
        max_len=draw(st.integers(max(1, len(seq) - 5), len(seq) + 15)),
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
    # length bound (an item never grows beyond max_len; it is never cut either)
    assert len(out_src) == len(out_tgt) <= max(cfg.max_len, len(seq))
    # targets intact: the same original tokens, in the same order, and nothing else
    np.testing.assert_array_equal(out_tgt[out_tgt != PAD], tgt[tgt != PAD])
    # masked positions never substituted: their (masked or randomised) input is unchanged
    np.testing.assert_array_equal(out_src[out_tgt != PAD], src[tgt != PAD])
    # special tokens intact, in order
    np.testing.assert_array_equal(out_src[SPECIAL[out_src]], src[SPECIAL[src]])
    # counts are consistent; nothing replaced means nothing changed
    assert 0 <= stats[2] <= stats[1]
    if stats[2] == 0:
        assert out_src is src and out_tgt is tgt
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
