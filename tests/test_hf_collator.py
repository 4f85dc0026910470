"""csfair_hf's code-switching collator on the three tokenizer families (WordPiece, sentencepiece
Unigram, byte-level BPE), with tables built by ``csfair-lexicon table --hf-tokenizer`` from MUSE."""
import numpy as np
import pytest
import torch

FAMILIES = ("bert", "xlmr", "roberta")


def _setup(hf_models, hf_tables, fam, max_length=48, n=400):
    from transformers import AutoTokenizer

    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair_hf.tokenization import read_lines, tokenize_lines

    tok = AutoTokenizer.from_pretrained(hf_models[fam])
    lines = read_lines(hf_models["text_en"], limit=n)
    return tok, tokenize_lines(tok, lines, max_length), SubstitutionTable.load(hf_tables[fam])


def _strip(batch):
    return [{k: v for k, v in ex.items() if k != "word_ids"} for ex in batch]


@pytest.mark.parametrize("fam", FAMILIES)
def test_off_is_stock_collator_and_on_keeps_the_masks(hf_models, hf_tables, fam):
    """Code-switching off gives exactly DataCollatorForLanguageModeling's batches (same seed); on, the
    masks (positions' inputs and labels, in order) are the same draws, every row within max_seq_length."""
    from transformers import DataCollatorForLanguageModeling

    from csfair_hf.collator import DataCollatorForCodeSwitchedLM

    tok, ex, table = _setup(hf_models, hf_tables, fam)
    stock = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=7)
    off = DataCollatorForCodeSwitchedLM(tok, mlm_probability=0.15, seed=7, cs_mode="none", cs_tables=[table])
    none = DataCollatorForCodeSwitchedLM(tok, mlm_probability=0.15, seed=7, cs_tables=None)
    on = DataCollatorForCodeSwitchedLM(tok, mlm_probability=0.15, seed=7, cs_tables=[table], max_seq_length=50,
                                       cs_instance_prob=1.0, cs_word_prob=0.3)
    assert not off.code_switching and not none.code_switching and on.code_switching
    changed_rows = 0
    for a in range(0, 128, 16):
        b = ex[a:a + 16]
        s, o, n, c = stock(_strip(b)), off(b), none(b), on(b)
        assert s.keys() == o.keys() == n.keys()
        for k in s:
            assert torch.equal(s[k], o[k]) and torch.equal(s[k], n[k]), (fam, k)
        assert c["input_ids"].shape[1] <= 50 and c["labels"].shape == c["input_ids"].shape
        for i, e in enumerate(b):
            sl, cl = s["labels"][i], c["labels"][i]
            # the same masked positions, in order: inputs (mask/random/kept) and labels (originals)
            assert torch.equal(sl[sl != -100], cl[cl != -100])
            assert torch.equal(s["input_ids"][i][sl != -100], c["input_ids"][i][cl != -100])
            orig = torch.tensor(e["input_ids"])
            assert torch.equal(sl[: len(orig)][sl[: len(orig)] != -100], orig[sl[: len(orig)] != -100])
            L = int(c["attention_mask"][i].sum())
            assert (c["input_ids"][i, L:] == tok.pad_token_id).all() and (c["labels"][i, L:] == -100).all()
            changed_rows += int(L != len(orig) or not torch.equal(c["input_ids"][i, :L], s["input_ids"][i, :L]))
    assert changed_rows > 0  # the test exercised substitutions


@pytest.mark.parametrize("fam", FAMILIES)
def test_substitutions_are_whole_unmasked_table_words(hf_models, hf_tables, fam):
    """Every substituted span replaces one whole word (the tokenizer's word_ids) that is a table key,
    holds no masked token, with one of its candidates; the rest of the row is unchanged."""
    from csfair.pretraining.substitution_table import word_hashes
    from csfair_hf.collator import DataCollatorForCodeSwitchedLM

    tok, ex, table = _setup(hf_models, hf_tables, fam, n=96)
    # no masking at all (mlm_probability 0): the input of a row is the original with words replaced
    on = DataCollatorForCodeSwitchedLM(tok, mlm_probability=0.0, seed=3, cs_tables=[table], cs_instance_prob=1.0,
                                       cs_word_prob=0.5, max_seq_length=128)
    cands = {}

    def candidates(word):
        h = word_hashes(np.array(word), np.array([0]), np.array([len(word)]))
        e = int(table.lookup(h)[0])
        if e < 0 or not table.verify(np.array([e]), np.array(word), np.array([0]), np.array([len(word)]))[0]:
            return []
        if e not in cands:
            c0, c1 = int(table.cand_offsets[e]), int(table.cand_offsets[e + 1])
            cands[e] = [table.candidate_tokens(np.array([c]))[0].tolist() for c in range(c0, c1)]
        return cands[e]

    n_sub = 0
    for a in range(0, len(ex), 32):
        b = ex[a:a + 32]
        c = on(b)
        for i, e in enumerate(b):
            orig, wids = e["input_ids"], e["word_ids"]
            got = c["input_ids"][i][: int(c["attention_mask"][i].sum())].tolist()
            words, j = [], 0
            while j < len(orig):  # the tokenizer's words (each special or cut token on its own)
                k = j + 1
                while k < len(orig) and wids[j] >= 0 and wids[k] == wids[j]:
                    k += 1
                words.append((orig[j:k], wids[j] >= 0))
                j = k
            # every way of reading `got` as each word kept or replaced by one of its candidates
            ends = {0}
            for word, is_word in words:
                nxt = {p + len(word) for p in ends if got[p:p + len(word)] == word}
                if is_word:
                    nxt |= {p + len(cd) for p in ends for cd in candidates(word) if got[p:p + len(cd)] == cd}
                ends = nxt
                assert ends, f"{tok.convert_ids_to_tokens(got)} is not {tok.convert_ids_to_tokens(orig)} with words replaced"
            assert len(got) in ends
            n_sub += int(got != orig)
    assert n_sub > 20, n_sub


@pytest.mark.parametrize("fam", FAMILIES)
def test_table_keys_are_the_words_of_running_text(hf_models, hf_tables, fam):
    """A word of running text (the tokenizer's word_ids, offsets) that hits a table key is that key's
    source word: ``##``, ``▁`` and ``Ġ`` conventions agree between the table build and the text."""
    from csfair.pretraining.substitution_table import word_hashes

    tok, ex, table = _setup(hf_models, hf_tables, fam, n=200)
    from csfair_hf.tokenization import read_lines

    lines = read_lines(hf_models["text_en"], limit=200)
    src_words = table.source_words()
    hits = 0
    for line in lines:
        enc = tok(line, return_offsets_mapping=True)
        ids, wids, offs = enc["input_ids"], enc.word_ids(), enc["offset_mapping"]
        for w in sorted({x for x in wids if x is not None}):
            pos = [k for k, x in enumerate(wids) if x == w]
            word = ids[pos[0]:pos[-1] + 1]
            e = int(table.lookup(word_hashes(np.array(word), np.array([0]), np.array([len(word)])))[0])
            if e >= 0 and table.verify(np.array([e]), np.array(word), np.array([0]), np.array([len(word)]))[0]:
                text = line[offs[pos[0]][0]:offs[pos[-1]][1]].strip()
                assert src_words[e] == text, (fam, src_words[e], text)
                hits += 1
    assert hits > 50, hits


@pytest.mark.parametrize("fam", FAMILIES)
def test_paper_defaults_dose_and_length_bound(hf_models, hf_tables, fam):
    """Paper defaults on real text: ~50% of instances, ~3% of eligible words (within 4 standard
    errors); with a tight max_seq_length no row is longer: replacements are dropped (cs_overflow="drop") or tails
    cut (default "truncate"), not rows."""
    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.tokenization import CUT_WORD, tokenize_lines, read_lines

    tok, ex, table = _setup(hf_models, hf_tables, fam, n=2000)
    col = DataCollatorForCodeSwitchedLM(tok, seed=11, cs_tables=[table], max_seq_length=48)
    for a in range(0, len(ex), 64):
        col(ex[a:a + 64])
    r = col.cs_rates()
    n, e = r["instances"], r["eligible"]
    assert abs(r["cs_inst"] - 0.5) < 4 * (0.25 / n) ** 0.5, r
    assert e > 1000 and abs(r["cs_word"] - 0.03) < 4 * (0.03 * 0.97 / e) ** 0.5, r
    assert 0 < r["cs_tok"] < 0.05, r

    # truncation marks the cut word; a tight bound drops replacements that would overflow
    long_lines = [ln for ln in read_lines(hf_models["text_en"], limit=2000) if len(ln.split()) > 14][:64]
    short = tokenize_lines(tok, long_lines, 12)
    full = tokenize_lines(tok, long_lines, 512)
    n_cut = 0
    for s, f in zip(short, full):
        sw = [w for w in s["word_ids"] if w != -1]  # content tokens: a prefix of the full line's
        fw = [w for w in f["word_ids"] if w != -1]
        n = len(sw)
        cut = n < len(fw) and fw[n - 1] == fw[n]
        assert [x for x in s["input_ids"] if x not in tok.all_special_ids] == \
            [x for x in f["input_ids"] if x not in tok.all_special_ids][:n]
        assert [k for k, w in enumerate(sw) if w == CUT_WORD] == ([k for k in range(n) if fw[k] == fw[n - 1]] if cut else [])
        n_cut += cut
    assert n_cut > 0
    tight = DataCollatorForCodeSwitchedLM(tok, seed=5, cs_tables=[table], max_seq_length=12, mlm_probability=0.0,
                                          cs_instance_prob=1.0, cs_word_prob=1.0, cs_overflow="drop")
    b = tight(short)
    assert b["input_ids"].shape[1] <= 12
    r = tight.cs_rates()
    assert 0 < r["replaced"] < r["eligible"] and r["cut_tokens"] == 0, r  # some fit, the longer ones were dropped
    # truncate (default): every row within the bound too, the tails cut instead
    cut = DataCollatorForCodeSwitchedLM(tok, seed=5, cs_tables=[table], max_seq_length=12, mlm_probability=0.0,
                                        cs_instance_prob=1.0, cs_word_prob=1.0)
    assert cut(short)["input_ids"].shape[1] <= 12
    rc = cut.cs_rates()
    assert rc["replaced"] > r["replaced"] and rc["cut_tokens"] > 0, rc


def test_word_ids_give_the_fairseq_word_starts_for_sentencepiece(hf_models, hf_tables):
    """For XLM-R's sentencepiece, the words from word_ids are the fairseq path's (a piece starting
    with ``▁`` or a special symbol starts a word): the sampler returns the same arrays either way."""
    from csfair.pretraining.sampler import CodeSwitchConfig, code_switch

    tok, ex, table = _setup(hf_models, hf_tables, "xlmr", n=200)
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    special = np.zeros(len(tok), dtype=bool)
    special[tok.all_special_ids] = True
    word_start = np.array([p.startswith("\u2581") for p in vocab]) | special
    cfg = CodeSwitchConfig("multiview", 1.0, 0.5, 128)
    n_changed = 0
    for k, e in enumerate(ex):
        orig = np.asarray(e["input_ids"], dtype=np.int64)
        w = np.asarray(e["word_ids"])
        starts = np.ones(len(w), dtype=bool)
        starts[1:] = (w[1:] != w[:-1]) | (w[1:] < 0)
        assert np.array_equal(starts, word_start[orig]), tok.convert_ids_to_tokens(e["input_ids"])
        target = np.full(len(orig), -100, dtype=np.int64)
        a = code_switch(orig.copy(), target, orig, -100, word_start, special, table, np.random.default_rng(k), cfg)
        b = code_switch(orig.copy(), target, orig, -100, None, special, table, np.random.default_rng(k), cfg,
                        pos_word_start=starts)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        n_changed += int(a[2][2] > 0)
    assert n_changed > 20


def test_grouped_blocks_mark_cut_words_and_stay_within_the_block(hf_models, hf_tables):
    """run_mlm.py's default grouping: blocks tile the tokenised text; a word cut by a block boundary is
    CUT_WORD on both sides (never substituted); full blocks never grow past max_seq_length."""
    from transformers import AutoTokenizer

    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.tokenization import CUT_WORD, group_lines, read_lines

    tok = AutoTokenizer.from_pretrained(hf_models["bert"])
    lines = read_lines(hf_models["text_en"], limit=150)
    blocks = group_lines(tok, lines, 32)
    flat = [t for ln in lines for t in tok(ln)["input_ids"]]
    assert [t for b in blocks for t in b["input_ids"]] == flat[: 32 * len(blocks)]
    n_cut = 0
    for b in blocks:
        w = b["word_ids"]
        cut = [k for k, x in enumerate(w) if x == CUT_WORD]
        # cut tokens form a prefix and/or a suffix of the block
        assert all(k < len(w) // 2 and all(x == CUT_WORD for x in w[:k + 1]) or
                   k >= len(w) // 2 and all(x == CUT_WORD for x in w[k:]) for k in cut)
        n_cut += bool(cut)
    assert n_cut > 0
    col = DataCollatorForCodeSwitchedLM(tok, seed=2, cs_tables=[SubstitutionTable.load(hf_tables["bert"])],
                                        max_seq_length=32, cs_instance_prob=1.0, cs_word_prob=0.5)
    out = col(blocks)
    assert out["input_ids"].shape[1] <= 32 and col.cs_rates()["replaced"] > 0


@pytest.mark.parametrize("fam", ["xlmr"])
def test_full_grouped_blocks_keep_the_drawn_replacements(hf_models, hf_tables, fam):
    """run_mlm-style grouped blocks are full: with cs_overflow="truncate" (default) the replaced words are the drawn
    ones (the same draws given room for everything), as on the fairseq path; "drop" keeps only candidates that fit."""
    from transformers import AutoTokenizer

    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.tokenization import group_lines, read_lines

    tok = AutoTokenizer.from_pretrained(hf_models[fam])
    table = SubstitutionTable.load(hf_tables[fam])
    blocks = group_lines(tok, read_lines(hf_models["text_en"], limit=3000), 48)
    kw = dict(seed=3, cs_tables=[table], cs_instance_prob=1.0, cs_word_prob=0.03)
    cols = {"bounded": DataCollatorForCodeSwitchedLM(tok, max_seq_length=48, **kw),
            "room": DataCollatorForCodeSwitchedLM(tok, max_seq_length=10**6, **kw),
            "drop": DataCollatorForCodeSwitchedLM(tok, max_seq_length=48, cs_overflow="drop", **kw)}
    for a in range(0, len(blocks), 32):
        for c in cols.values():
            assert c(blocks[a:a + 32])["input_ids"].shape[1] <= (48 if c is not cols["room"] else 10**6)
    b, r, d = (cols[k].cs_rates() for k in ("bounded", "room", "drop"))
    assert b["eligible"] == r["eligible"] == d["eligible"] > 2000 and r["replaced"] > 100
    assert b["replaced"] >= 0.97 * r["replaced"] and b["cut_tokens"] > 0, (b, r)
    assert d["replaced"] < 0.9 * r["replaced"], (d, r)
