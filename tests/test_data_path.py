"""The fast data path gives the stock draws and items exactly (csfair issue 13, part 4)."""
import numpy as np
import pytest
import torch

import user_dir  # noqa: F401
from csfair.pretraining import word_scan
from csfair.pretraining.keyed_rng import KeyedGenerator
from csfair.pretraining.masking import MaskConfig, draw_random_tokens, fairseq_item_seed, mask_tokens, random_token_cdf
from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask


def test_keyed_generator_draws_equal_default_rng():
    r = np.random.default_rng(0)
    keys = [0, 1, 999, 1000, 2**32 - 1, 2**32, 2**70 + 3, [0], [1, 2, 3, 0xC0DE5], [2**33, 7], list(range(16)),
            list(range(17))]
    keys += [int(k) for k in r.integers(0, 2000, 50)] + [[int(x) for x in r.integers(0, 2**32, 4)] for _ in range(50)]
    for table in (0, 1000):
        gen = KeyedGenerator(table_keys=table)
        for k in keys:
            a, b = np.random.default_rng(k), gen(k)
            assert a.random() == b.random()
            assert np.array_equal(a.choice(120, 18, replace=False), b.choice(120, 18, replace=False)), k
            assert np.array_equal(a.random(7), b.random(7)) and a.integers(0, 10**9) == b.integers(0, 10**9)
    with pytest.raises(ValueError, match="non-negative"):
        KeyedGenerator()(-1)


def test_random_tokens_from_the_cdf_equal_choice_with_p():
    r = np.random.default_rng(1)
    for w in (np.ones(8002), r.random(8002) ** 3, np.r_[np.zeros(4), r.integers(1, 1000, 500)]):
        w = w / w.sum()
        cdf = random_token_cdf(w)
        for seed in range(20):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            k = seed % 5
            assert np.array_equal(a.choice(len(w), k, p=w), draw_random_tokens(b, cdf, k))
            assert a.random() == b.random()  # and the streams stay aligned


def blocks(tiny_pair, langs="en,fr", mode="complete"):
    task = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=str(tiny_pair["bin"]), langs=langs, cs_mode="none", tokens_per_sample=64, sample_break_mode=mode, seed=1))
    task.load_dataset("train")
    return task, task._wrappers[-1]


@pytest.mark.parametrize("mode", ["none", "complete", "eos"])
def test_block_reader_items_equal_fairseq_blocks(tiny_pair, mode):
    _, w = blocks(tiny_pair, mode=mode)
    assert w._reader is not None
    base = w.dataset
    for i in range(len(base)):
        assert np.array_equal(w._reader[i], base[i].numpy()), i


def test_compiled_word_scan_equals_numpy_scan_and_masks_equal_with_the_cdf(tiny_pair):
    task, w = blocks(tiny_pair)
    tables = {lang: t for lang, t in CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=str(tiny_pair["bin"]), langs="en,fr", cs_table_name="ibm1", tokens_per_sample=64)).tables.items()}
    d = task.source_dictionary
    cfg = MaskConfig(random_token_prob=0.3)
    eligible = 0
    for i in range(0, len(w), 2):
        orig = w._reader[i]
        seg = int(np.searchsorted(w.segment_offsets, i, side="right")) - 1
        table = tables[("en", "fr")[seg]]
        # masks: the precomputed CDF gives numpy's choice(p=...) draws
        src, tgt = mask_tokens(orig, np.random.default_rng(fairseq_item_seed(1, 2, i)), cfg, task.mask_idx, d.pad(),
                               w.weights)
        src2, tgt2 = mask_tokens(orig, KeyedGenerator()(fairseq_item_seed(1, 2, i)), cfg, task.mask_idx, d.pad(),
                                 w.weights, weights_cdf=random_token_cdf(w.weights))
        assert torch.equal(torch.from_numpy(src), torch.from_numpy(src2)) and np.array_equal(tgt, tgt2)
        got = word_scan.scan_words(orig, tgt, d.pad(), w.word_start, w.special, table)
        want = word_scan.scan_words_numpy(orig, tgt, d.pad(), w.word_start, w.special, table)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and np.array_equal(a, b), i
        eligible += int(want[3].sum())
    assert eligible > 200
    assert word_scan.numba is not None  # the compiled path is the one tested against the reference here


def test_compiled_replacement_equals_the_python_one(tiny_pair):
    task, w = blocks(tiny_pair, langs="en")
    table = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=str(tiny_pair["bin"]), langs="en,fr", cs_table_name="ibm1", tokens_per_sample=64)).tables["en"]
    d = task.source_dictionary
    replaced = cut = 0
    for i in range(len(w)):
        orig = w._reader[i]
        src, tgt = mask_tokens(orig, np.random.default_rng(i), MaskConfig(), task.mask_idx, d.pad(), w.weights)
        starts, lengths, entry, eligible = word_scan.scan_words(orig, tgt, d.pad(), w.word_start, w.special, table)
        r = np.random.default_rng(i)
        chosen = np.flatnonzero(eligible & (r.random(len(starts)) < 0.5))
        u = r.random(len(chosen))
        for multiview in (True, False):
            # tight budgets drop (drop) or cut (truncate) what does not fit; keep_last keeps a final </s>
            for budget, truncate, keep_last in ((0, False, False), (3, False, False), (64, False, False),
                                                (0, True, True), (0, True, False), (3, True, True)):
                got = word_scan.replace_words(src, tgt, orig, d.pad(), starts, lengths, chosen, entry, u, multiview,
                                              table, budget, truncate, keep_last)
                want = word_scan.replace_words_numpy(src, tgt, orig, d.pad(), starts, lengths, chosen, entry, u,
                                                     multiview, table, budget, truncate, keep_last)
                assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2:] == want[2:]
                assert got[0].dtype == want[0].dtype == src.dtype and len(got[0]) <= len(src) + budget
                if keep_last and got[2]:
                    assert got[0][-1] == src[-1] and got[1][-1] == tgt[-1]
                replaced += got[2]
                cut += got[5]
    assert replaced > 100 and cut > 20



NO_NUMBA = r"""
import sys
sys.modules["numba"] = None  # as if numba were not installed: ``import numba`` raises ImportError
import torch
import user_dir  # noqa: F401
from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask
from csfair.pretraining import word_scan
assert word_scan.numba is None
task = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
    data=sys.argv[1], langs="en,fr", cs_mode="multiview", cs_table_name="ibm1", tokens_per_sample=64,
    sample_break_mode="complete", seed=1))
task.load_dataset("train")
epochs = task.get_batch_iterator(dataset=task.dataset("train"), max_sentences=16, num_workers=2, seed=1)
for epoch in (1, 2):
    itr = epochs.next_epoch_itr(shuffle=True)
    stats = torch.cat([next(itr)["cs_stats"] for _ in range(3)])
    print("EPOCH", epoch, "items", len(stats), "code-switched", int(stats[:, 0].sum()), flush=True)
"""


def test_without_numba_the_data_path_warns_once_and_code_switches(tiny_pair):
    """numba missing: the training batches (the task's batch iterator, 2 DataLoader workers, 2 epochs, as
    fairseq-train draws them) say so once, on stderr, and are still code-switched (the NumPy fallback)."""
    import re
    import subprocess
    import sys

    from conftest import ROOT

    p = subprocess.run([sys.executable, "-c", NO_NUMBA, str(tiny_pair["bin"])], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr.count("numba cannot be imported") == 1, p.stderr[-3000:]
    assert "RuntimeWarning" in p.stderr and "NumPy versions" in p.stderr
    epochs = re.findall(r"EPOCH (\d) items (\d+) code-switched (\d+)", p.stdout)
    assert [e for e, *_ in epochs] == ["1", "2"], p.stdout
    assert all(int(n) == 48 and 0.2 * 48 < int(k) < 0.8 * 48 for _, n, k in epochs), epochs
