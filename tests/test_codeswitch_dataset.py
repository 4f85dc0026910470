"""The codeswitch_masked_lm task and its dataset wrapper on real data (tiny en-fr pipeline)."""
import numpy as np
import pytest
import torch

import user_dir  # noqa: F401  (registers the task, criterion and architectures)
from csfair.pretraining.sampler import NUM_STATS, CodeSwitchConfig
from csfair.pretraining.masking import MaskConfig
from csfair.pretraining.substitution_table import SubstitutionTable
from fairseq.data import MaskTokensDataset
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask
from user_dir.data.codeswitch_mask_tokens_dataset import CodeSwitchMaskTokensDataset, word_start_mask
from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask


def make_task(tiny_pair, **kw):
    args = dict(data=str(tiny_pair["bin"]), langs="en,fr", cs_mode="multiview", cs_table_name="ibm1",
                tokens_per_sample=128, sample_break_mode="eos", seed=1)
    args.update(kw)
    return CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(**args))


def batches(task, split, epoch=1, num_workers=0, bsz=16):
    itr = task.get_batch_iterator(
        dataset=task.dataset(split), max_sentences=bsz, max_positions=task.max_positions(),
        ignore_invalid_inputs=True, seed=1, num_workers=num_workers, epoch=epoch, disable_iterator_cache=True,
    )
    return list(itr.next_epoch_itr(shuffle=True))


def assert_same_batches(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        # csfair's bookkeeping (the epoch an item was drawn for) is the only extra entry
        assert set(x.keys()) - {"draw_epoch"} == set(y.keys()) - {"draw_epoch"}
        assert x["net_input"].keys() == y["net_input"].keys()
        for k in ("id", "target"):
            assert torch.equal(x[k], y[k])
        for k in x["net_input"]:
            assert torch.equal(x["net_input"][k], y["net_input"][k])
        assert x["nsentences"] == y["nsentences"] and x["ntokens"] == y["ntokens"]


@pytest.mark.parametrize("split,break_mode", [("train", "none"), ("valid", "complete"), ("train", "eos")])
def test_mode_none_batches_equal_stock_masked_lm(tiny_pair, split, break_mode):
    data = str(tiny_pair["bin"] / "fr")
    stock = MaskedLMTask.setup_task(MaskedLMConfig(data=data, tokens_per_sample=64, sample_break_mode=break_mode, seed=3))
    ours = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=str(tiny_pair["bin"]), langs="fr", cs_mode="none", tokens_per_sample=64,
        sample_break_mode=break_mode, seed=3))
    for t in (stock, ours):
        t.load_dataset(split)
    for epoch in (1, 2):
        assert_same_batches(batches(stock, split, epoch), batches(ours, split, epoch))


def test_masks_equal_fairseq_mask_tokens_dataset_with_whole_words_and_spans(tiny_pair):
    task = make_task(tiny_pair, cs_mode="none", langs="fr")
    task.load_dataset("valid")
    base = task.dataset("valid").dataset.defn["target"].dataset.dataset.dataset  # blocks with <s>
    d = task.source_dictionary
    wwm = torch.from_numpy(word_start_mask(d).astype(np.uint8))
    for kw in (dict(mask_whole_words=wwm), dict(mask_multiple_length=3, mask_stdev=1.0), dict(random_token_prob=0.3)):
        src_ds, tgt_ds = MaskTokensDataset.apply_mask(base, d, pad_idx=d.pad(), mask_idx=task.mask_idx, seed=5, **kw)
        mcfg = MaskConfig(**{k: v for k, v in kw.items() if k != "mask_whole_words"})
        ours = CodeSwitchMaskTokensDataset(base, d, d.pad(), task.mask_idx, seed=5, mask_cfg=mcfg,
                                           mask_whole_words="mask_whole_words" in kw)
        for epoch in (1, 4):
            for ds in (src_ds, tgt_ds, ours):
                ds.set_epoch(epoch)
            for i in range(0, len(base), 7):
                assert torch.equal(ours[i]["source"], src_ds[i]) and torch.equal(ours[i]["target"], tgt_ds[i])


def wrapper_pair(task, tiny_pair, cs_cfg, lang="en", split="train"):
    """(code-switched wrapper, the same wrapper without code-switching) over one language's blocks."""
    t = make_task(tiny_pair, cs_mode="none", langs=lang, sample_break_mode="eos")
    t.load_dataset(split)
    base = t.dataset(split).dataset.defn["target"].dataset.dataset.dataset
    table = task.tables[lang]
    d = task.source_dictionary
    mk = dict(vocab=d, pad_idx=d.pad(), mask_idx=task.mask_idx, seed=1, mask_cfg=MaskConfig())
    cs = CodeSwitchMaskTokensDataset(base, cs_cfg=cs_cfg, tables=[table], **mk)
    plain = CodeSwitchMaskTokensDataset(base, **mk)
    return base, cs, plain


def kept(a, b, cut):
    """``a`` equals ``b``, or (a cut item) ``b``'s head, possibly followed by ``b``'s last element (kept last)."""
    a, b = a.tolist(), b.tolist()
    if not cut:
        return a == b
    return a == b[:len(a)] or (a[:-1] == b[:len(a) - 1] and a[-1:] == b[-1:])


def test_invariants_masked_positions_targets_specials_length(tiny_pair):
    task = make_task(tiny_pair)
    # a bound below most sentences' length: their replacements cut tails (a bound above leaves room)
    base, cs, plain = wrapper_pair(task, tiny_pair, CodeSwitchConfig("multiview", 1.0, 0.5, max_len=30))
    d = task.source_dictionary
    pad = d.pad()
    replaced = changed = cuts = 0
    for i in range(len(base)):
        orig = base[i]
        a, b = cs[i], plain[i]
        src, tgt, stats = a["source"], a["target"], a["cs_stats"]
        # targets: the original tokens at the masked positions, in the same order, nothing else (less the
        # tail cut to keep the item within the bound: --cs-overflow truncate; a final </s> stays last)
        cut = int(stats[6])
        assert torch.equal(b["target"][b["target"] != pad], orig[b["target"] != pad])
        assert kept(tgt[tgt != pad], b["target"][b["target"] != pad], cut)
        # masked positions are never substituted: the masked input there is unchanged
        assert kept(src[tgt != pad], b["source"][b["target"] != pad], cut)
        # special tokens (and <mask>) untouched: the same ones, in the same order, first and last kept
        # (fairseq's masking itself may mask <s> or </s>, as stock masked_lm does)
        spec = lambda x: x[(x < d.nspecial) | (x == task.mask_idx)]  # noqa: E731
        assert kept(spec(src), spec(b["source"]), cut)
        assert src[0] == b["source"][0] and src[-1] == b["source"][-1]
        # length bound (blocks longer than the bound are left alone); a cut item fills it exactly
        assert len(src) == len(tgt) and len(src) <= max(30, len(orig))
        assert not cut or len(src) == max(30, len(orig))
        replaced += int(stats[2])
        cuts += cut > 0
        changed += int(not torch.equal(src, b["source"]))
        if stats[2] == 0:
            assert torch.equal(src, b["source"]) and torch.equal(tgt, b["target"])
    assert replaced > 100 and changed > 50 and cuts > 100


def reference_code_switch(source, target, original, pad, word_start, special, table, keys, rng, cfg):
    """Word-by-word loop version of csfair.pretraining.sampler.code_switch (same draws, same order)."""
    from csfair.pretraining.substitution_table import MAX_WORD_PIECES

    if rng.random() >= cfg.instance_prob:
        return source, target, [0, 0, 0, 0, len(source), 0, 0]
    L = len(original)
    starts = [i for i in range(L) if i == 0 or word_start[original[i]]]
    spans = list(zip(starts, starts[1:] + [L]))
    entries = []
    for k, (s, e) in enumerate(spans):
        ent = keys.get(tuple(original[s:e]), -1)
        ok = ent >= 0 and e - s <= MAX_WORD_PIECES and all(target[j] == pad and not special[original[j]] for j in range(s, e))
        # fragments cut by a block boundary: a first word that does not start a word, a last one
        # not followed by a special symbol
        ok = ok and not (k == 0 and not word_start[original[0]]) and not (k == len(spans) - 1 and not special[original[-1]])
        entries.append(ent if ok else -1)
    draws = rng.random(len(spans))
    chosen = [k for k in range(len(spans)) if entries[k] >= 0 and draws[k] < cfg.word_prob]
    us = rng.random(len(chosen)) if cfg.mode == "multiview" else [None] * len(chosen)
    window = max(cfg.max_len, L)
    keep_last = bool(special[original[-1]])
    picks, visible, cur = {}, {}, L
    for k, u in zip(chosen, us):
        ent = entries[k]
        a, b = int(table.cand_offsets[ent]), int(table.cand_offsets[ent + 1])
        c = a if u is None else next(c for c in range(a, b) if table.cand_cdf[c] - ent > u or c == b - 1)
        toks = table.cand_tokens[table.cand_tok_offsets[c]:table.cand_tok_offsets[c + 1]].tolist()
        grow = len(toks) - (spans[k][1] - spans[k][0])
        if cfg.overflow == "truncate":
            # applied unless pushed wholly past the window (before a final special kept last): cut with the tail
            if spans[k][0] + (cur - L) >= window - keep_last:
                continue
            visible[k] = min(len(toks), window - keep_last - (spans[k][0] + cur - L))
        elif cur + grow > window:
            continue  # does not fit: dropped, later (shorter) replacements may still fit
        cur += grow
        picks[k] = toks
    out_s, out_t = [], []
    for k, (s, e) in enumerate(spans):
        if k in picks:
            out_s += picks[k]
            out_t += [pad] * len(picks[k])
        else:
            out_s += source[s:e].tolist()
            out_t += target[s:e].tolist()
    cut = max(0, len(out_s) - window)
    if cut:
        out_s = out_s[:window - 1] + out_s[-1:] if keep_last else out_s[:window]
        out_t = out_t[:window - 1] + out_t[-1:] if keep_last else out_t[:window]
    same = [k for k, t in picks.items() if t == original[spans[k][0]:spans[k][1]].tolist()]
    changed = sum(visible.get(k, len(t)) for k, t in picks.items() if k not in same)
    return np.array(out_s), np.array(out_t), [1, sum(x >= 0 for x in entries), len(picks), changed, len(out_s),
                                              len(same), cut]


@pytest.mark.parametrize("mode,word_prob,max_len,overflow", [
    ("static", 1.0, 512, "truncate"), ("multiview", 0.4, 512, "truncate"), ("multiview", 0.6, 40, "truncate"),
    ("multiview", 0.6, 40, "drop")])
def test_vectorised_code_switch_equals_word_by_word_reference(tiny_pair, mode, word_prob, max_len, overflow):
    from csfair.pretraining.sampler import code_switch
    from csfair.pretraining.masking import fairseq_item_seed, mask_tokens

    task = make_task(tiny_pair)
    base, cs, _ = wrapper_pair(task, tiny_pair, CodeSwitchConfig(mode, 1.0, word_prob, max_len, overflow))
    table = task.tables["en"]
    keys = {tuple(table.key_tokens[table.key_offsets[e]:table.key_offsets[e + 1]].tolist()): e for e in range(len(table))}
    d = task.source_dictionary
    cfg = cs.cs_cfg
    total = 0
    for i in range(0, len(base), 3):
        orig = base[i].numpy().astype(np.int64)
        src, tgt = mask_tokens(orig, np.random.default_rng(fairseq_item_seed(1, 0, i)), MaskConfig(), task.mask_idx,
                               d.pad(), cs.weights)
        seed = [1, 0, i, 0xC0DE5]
        got = code_switch(src, tgt, orig, d.pad(), cs.word_start, cs.special, table, np.random.default_rng(seed), cfg)
        want = reference_code_switch(src, tgt, orig, d.pad(), cs.word_start, cs.special, table, keys,
                                     np.random.default_rng(seed), cfg)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2].tolist() == want[2]
        # and the dataset wrapper returns the same item
        assert cs[i]["source"].tolist() == got[0].tolist()
        total += want[2][2]
    assert total > 50


def test_determinism_per_seed_epoch_index_and_change_across_epochs(tiny_pair):
    task = make_task(tiny_pair)
    cfg = CodeSwitchConfig("multiview", 0.5, 0.3, max_len=128)
    base, cs1, _ = wrapper_pair(task, tiny_pair, cfg)
    _, cs2, _ = wrapper_pair(task, tiny_pair, cfg)
    idx = range(0, len(base), 3)
    for ds in (cs1, cs2):
        ds.set_epoch(2)
    first = [cs1[i]["source"] for i in idx]
    assert all(torch.equal(x, cs2[i]["source"]) for x, i in zip(first, idx))
    cs1.set_epoch(3)
    differ = sum(not torch.equal(x, cs1[i]["source"]) for x, i in zip(first, idx))
    assert differ > len(first) * 0.5
    cs1.set_epoch(2)
    assert all(torch.equal(x, cs1[i]["source"]) for x, i in zip(first, idx))


def test_observed_rates_match_instance_and_word_probabilities(tiny_pair):
    task = make_task(tiny_pair)
    base, cs, _ = wrapper_pair(task, tiny_pair, CodeSwitchConfig("multiview", 0.5, 0.03, max_len=512))
    inst = n = elig = repl = 0
    for epoch in (1, 2, 3, 4):
        cs.set_epoch(epoch)
        s = torch.stack([cs[i]["cs_stats"] for i in range(len(base))]).sum(0).tolist()
        inst, elig, repl, n = inst + s[0], elig + s[1], repl + s[2], n + len(base)
    sd_inst = (0.25 / n) ** 0.5
    sd_word = (0.03 * 0.97 / elig) ** 0.5
    assert abs(inst / n - 0.5) < 4 * sd_inst, (inst, n)
    assert elig > 5000
    assert abs(repl / elig - 0.03) < 4 * sd_word, (repl, elig)


def test_workers_and_batches_identical_across_num_workers(tiny_pair):
    task = make_task(tiny_pair)
    task.load_dataset("train")
    a = batches(task, "train", epoch=2, num_workers=0)
    b = batches(task, "train", epoch=2, num_workers=2)
    assert_same_batches(a, b)
    assert "cs_stats" in a[0] and a[0]["cs_stats"].shape[1] == NUM_STATS + 1  # + the language segment
    assert sum(int(x["cs_stats"][:, 2].sum()) for x in a) > 0


def test_valid_split_is_not_code_switched_unless_asked(tiny_pair):
    task = make_task(tiny_pair)
    task.load_dataset("valid")
    assert "cs_stats" not in batches(task, "valid")[0]
    task = make_task(tiny_pair, cs_valid=True)
    task.load_dataset("valid")
    assert "cs_stats" in batches(task, "valid")[0]


def test_language_sampling_resamples_training_split(tiny_pair):
    task = make_task(tiny_pair, lang_sampling_alpha=0.0)  # uniform over languages
    assert task.has_sharded_data("train")
    task.load_dataset("train", epoch=1)
    ds = task.dataset("train")
    wrapper = ds.dataset.defn["target"].dataset.dataset
    offsets = wrapper.segment_offsets
    assert offsets[1] - offsets[0] == offsets[2] - offsets[1]


def test_table_built_for_another_dictionary_is_refused(tiny_pair, tmp_path):
    bad = SubstitutionTable.load(tiny_pair["bin"] / "tables" / "ibm1.en-fr")
    bad.meta["dict_sha256"] = "0" * 64
    bad.save(tmp_path / "other")
    with pytest.raises(ValueError, match="built for another dictionary"):
        make_task(tiny_pair, cs_table_name="", cs_tables=f"en:{tmp_path / 'other'},fr:tables/ibm1.fr-en")
    with pytest.raises(FileNotFoundError, match="substitution table not found"):
        make_task(tiny_pair, cs_table_name="", cs_tables=f"en:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="translates from 'fr' but is applied to 'en'"):
        make_task(tiny_pair, cs_table_name="", cs_tables="en:tables/ibm1.fr-en")
    with pytest.raises(ValueError, match="needs substitution tables"):
        make_task(tiny_pair, cs_table_name="")


def summed_stats(task, epochs, num_workers=0, max_len=None):
    """int64 ``[len(epochs), items, NUM_STATS]``: each item's cs_stats per epoch (through fairseq's batch iterator
    when ``num_workers``, else the wrapper in-process)."""
    task.load_dataset("train")
    w = task._wrappers[-1]
    if max_len is not None:
        w.set_max_len(max_len)
    out = np.zeros((len(epochs), len(w), NUM_STATS), dtype=np.int64)
    for k, epoch in enumerate(epochs):
        if num_workers:
            for b in batches(task, "train", epoch=epoch, num_workers=num_workers, bsz=64):
                out[k, b["id"].numpy()] = b["cs_stats"][:, :NUM_STATS].numpy()
        else:
            w.set_epoch(epoch)
            for i in range(len(w)):
                out[k, i] = w[i]["cs_stats"][:NUM_STATS].numpy()
    return out


def test_full_blocks_keep_the_word_rate_and_the_candidate_distribution(tiny_pair):
    """Full 128-token blocks (--sample-break-mode none): the replaced words are the drawn ones (compared with the same
    blocks and draws given room for every replacement), so the word rate and the candidates (their length, the
    identical ones) are the table's, and the rate is that of complete blocks (within 5%). Epoch 1 goes through
    fairseq's batch iterator with 2 DataLoader workers (the items are those of the in-process wrapper, which gives
    the other epochs faster). The old rule (--cs-overflow drop) fails the same comparison: in full blocks it keeps
    only the candidates that fit, the shorter ones."""
    from csfair.pretraining.sampler import STAT_CHANGED_TOKENS as CHG, STAT_CUT_TOKENS as CUT, STAT_ELIGIBLE as ELIG
    from csfair.pretraining.sampler import STAT_REPLACED as REPL, STAT_UNCHANGED as SAME

    kw = dict(cs_instance_prob=1.0)  # every instance code-switched: more words per second of test, same word rule
    task = lambda mode="none", **k: make_task(tiny_pair, sample_break_mode=mode, **kw, **k)  # noqa: E731
    epochs = (1, 2, 3, 4)
    full = summed_stats(task(), epochs)
    assert np.array_equal(summed_stats(task(), epochs[:1], num_workers=2)[0], full[0])
    complete = summed_stats(task("complete"), epochs)
    room = summed_stats(task(), epochs[:2], max_len=10**6)
    drop = summed_stats(task(cs_overflow="drop"), epochs[:2])
    f, f2, c = full.sum((0, 1)), full[:2].sum((0, 1)), complete.sum((0, 1))
    r, d = room.sum((0, 1)), drop.sum((0, 1))
    assert f[ELIG] > 60_000 and f[CUT] > 0
    # the rate: (nearly) every drawn replacement is applied; within 5% of complete blocks
    assert (f2[ELIG] == r[ELIG]) and f2[REPL] >= 0.99 * r[REPL], (f2, r)
    rate_full, rate_complete = f[REPL] / f[ELIG], c[REPL] / c[ELIG]
    assert abs(rate_full / rate_complete - 1) < 0.05, (rate_full, rate_complete)
    # the candidates: mean length of the changed ones and the number of identical ones, as drawn
    mean_len = lambda s: s[CHG] / (s[REPL] - s[SAME])  # noqa: E731
    assert abs(mean_len(f2) / mean_len(r) - 1) < 0.01 and f2[SAME] >= 0.99 * r[SAME], (f2, r)
    # power: the drop rule loses >10% of the draws in full blocks, and they are the longer candidates
    assert d[REPL] < 0.9 * r[REPL] and mean_len(d) < 0.95 * mean_len(r), (d, r)


def test_identical_candidates_are_drawn_at_the_papers_rate_on_real_tables(tiny_pair):
    """Real en-fr IBM-1 tables (the tiny pipeline's, built with the defaults): for the words whose candidates include
    the word itself, the sampler's draws follow p**(1/3) / sum p**(1/3) over every candidate with p > 0.02 that is not
    a stopword, the identity included (chi-square against the lexicon's raw p, computed here from its TSV). A drawn
    identity is a replacement that changes no token: the sampler's counters say so."""
    from scipy.stats import chi2

    from csfair.lexicons.lexicon import Lexicon
    from csfair.pretraining.sampler import code_switch
    from csfair.text import load_stopwords

    task = make_task(tiny_pair)
    d = task.source_dictionary
    ws, special = word_start_mask(d), np.zeros(len(d), dtype=bool)
    special[:d.nspecial] = True
    checked = rejected = 0
    for src, tgt, lex_path in (("fr", "en", tiny_pair["lex_fr_en"]), ("en", "fr", tiny_pair["lex_en_fr"])):
        table, lex = task.tables[src], Lexicon.load_tsv(lex_path)
        stop = load_stopwords("iso", tgt)  # the fixture's lists
        words = table.source_words()
        picked = []
        for e, w in enumerate(words):
            key = table.key_tokens[table.key_offsets[e]:table.key_offsets[e + 1]]
            a, b = int(table.cand_offsets[e]), int(table.cand_offsets[e + 1])
            cands = [tuple(table.cand_tokens[table.cand_tok_offsets[c]:table.cand_tok_offsets[c + 1]]) for c in range(a, b)]
            ident = [k for k, c in enumerate(cands) if c == tuple(key)]
            # lower-case keys with >= 3 candidates, each one word (so that the output splits into candidates)
            if w != w.lower() or b - a < 3 or len(ident) != 1 or len(set(cands)) != len(cands):
                continue
            if any(not ws[c[0]] or ws[list(c[1:])].any() for c in cands):
                continue
            # expected, from the lexicon itself: the paper's filters, then p**(1/3) / sum p**(1/3)
            lc = [(t, p) for t, p in lex.candidates(w) if p > 0.02 and t.lower() not in stop and any(ch.isalnum() for ch in t)]
            if sorted(t for t, _ in lc) != sorted(table.cand_words()[a:b]):
                continue  # a candidate outside the vocabulary: not this test's subject
            q = {t: p ** (1 / 3) for t, p in lc}
            lp = dict(lc)
            expected = np.array([q[t] for t in table.cand_words()[a:b]]) / sum(q.values())
            picked.append((e, key, cands, ident[0], expected, lp))
        picked = sorted(picked, key=lambda x: -x[4][x[3]])[:4]  # the words that keep themselves most often
        assert len(picked) == 4, (src, len(picked))
        for e, key, cands, k_id, expected, lp in picked:
            # one item: <s>, the word 300 times, </s>; every instance and every eligible word code-switched
            n_words = 300
            seq = np.array([d.bos()] + list(key) * n_words + [d.eos()], dtype=np.int64)
            counts, unchanged = np.zeros(len(cands), dtype=np.int64), 0
            for it in range(20):
                out, _, stats = code_switch(seq.copy(), np.full(len(seq), d.pad()), seq, d.pad(), ws, special, table,
                                            np.random.default_rng([7, checked, it]), CodeSwitchConfig("multiview", 1.0, 1.0, 10**6))
                body = out[1:-1].tolist()
                starts = [i for i, t in enumerate(body) if ws[t]] + [len(body)]
                drawn = [tuple(body[starts[j]:starts[j + 1]]) for j in range(len(starts) - 1)]
                assert len(drawn) == n_words == stats[2] == stats[1]
                for c in drawn:
                    counts[cands.index(c)] += 1
                assert stats[5] == sum(c == tuple(key) for c in drawn)  # identities: replaced, unchanged
                assert stats[3] == sum(len(c) for c in drawn if c != tuple(key))  # changed tokens: the others only
                unchanged += int(stats[5])
            assert unchanged == counts[k_id] > 0
            n = counts.sum()
            stat = ((counts - n * expected) ** 2 / (n * expected)).sum()
            assert chi2.sf(stat, len(cands) - 1) > 1e-3, (src, table.source_words()[e], counts, n * expected)
            # power: the same counts reject the raw p (T = 1) and the identity-dropped rule (it is never drawn there)
            p_raw = np.array([lp[t] for t in table.cand_words()[int(table.cand_offsets[e]):int(table.cand_offsets[e + 1])]])
            raw = p_raw / p_raw.sum()
            rejected += chi2.sf(((counts - n * raw) ** 2 / (n * raw)).sum(), len(cands) - 1) < 1e-6
            checked += 1
    assert checked == 8 and rejected >= 6, rejected


def test_cs_rates_script_reports_the_items_stats_per_direction(tiny_pair, tmp_path):
    """scripts/cs_rates.py (the dose a run would log, per direction, without training) sums the items' own stats."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("cs_rates", Path(__file__).resolve().parents[1] / "scripts" / "cs_rates.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main([str(tiny_pair["bin"]), "--cs-table-name", "ibm1", "--break-modes", "none",
                     "--overflows", "truncate,drop", "--json", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(rows))
    assert [(r["direction"], r["overflow"]) for r in rows] == [("en-fr", "truncate"), ("fr-en", "truncate"),
                                                             ("en-fr", "drop"), ("fr-en", "drop")]
    want = summed_stats(make_task(tiny_pair, sample_break_mode="none"), (1,))[0]
    assert rows[0]["replaced"] + rows[1]["replaced"] == int(want[:, 2].sum())
    assert rows[0]["items"] + rows[1]["items"] == len(want)
    assert all(0 < r["cs_word"] < 0.1 and r["tokens"] > 0 for r in rows)
