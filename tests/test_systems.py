"""The other systems: alignments, WEAM, TLM, meta-embedding taggers, CRF, scratch baselines."""
import itertools
import json
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, VENV_BIN, data_path, run
from csfair.lexicons.alignment import DirectionalAligner, grow_diag_final_and
from csfair.lexicons.ibm1 import FastAlignTable


def test_grow_diag_final_and_on_hand_made_cases():
    # grow-diag walks from the intersection to neighbouring union points that align a new word
    fwd, bwd = {(0, 0), (1, 1), (2, 3)}, {(0, 0), (1, 1), (1, 2), (3, 3)}
    assert grow_diag_final_and(fwd, bwd) == {(0, 0), (1, 1), (1, 2), (2, 3), (3, 3)}
    # a union point whose two words are already aligned is not added by grow-diag
    assert grow_diag_final_and({(0, 0), (1, 1), (0, 1)}, {(0, 0), (1, 1), (1, 0)}) == {(0, 0), (1, 1)}
    # final-and: an isolated directional point joins only if both its words are still unaligned
    assert grow_diag_final_and({(0, 0), (2, 2)}, {(0, 0), (2, 3)}) == {(0, 0), (2, 2)}
    # identical directions: the alignment itself
    same = {(0, 1), (1, 0), (2, 2)}
    assert grow_diag_final_and(same, same) == same


def test_directional_viterbi_prefers_translations_and_null():
    vocab = ["<bad0>", "<eps>", "|||", "the", "house", "la", "maison", "x"]
    # rows: the -> la .9 maison .1; house -> maison .95; NULL -> x .9
    t = FastAlignTable(vocab, np.array([3, 4, 1], np.int32), np.array([0, 2, 3, 4]),
                       np.array([5, 6, 6, 7], np.int32), np.array([0.9, 0.1, 0.95, 0.9], np.float32))
    al = DirectionalAligner(t, favor_diagonal=False)
    assert al.align(["the", "house"], ["la", "maison", "x"]) == [(0, 0), (1, 1)]  # "x" goes to NULL
    diag = DirectionalAligner(t, favor_diagonal=True)
    assert diag.align(["the", "house"], ["la", "maison"]) == [(0, 0), (1, 1)]


def _toy_dict():
    from fairseq.data import Dictionary

    d = Dictionary()
    for s in ["\u2581a", "\u2581b", "\u2581c", "x", "y", "\u2581d", "\u2581e", "z"]:
        d.add_symbol(s)
    d.add_symbol("<mask>")
    return d


def test_weam_cross_lingual_targets_point_at_aligned_tokens_only():
    from fairseq.data import ListDataset

    from csfair.pretraining.masking import MaskConfig
    from user_dir.data.codeswitch_mask_tokens_dataset import word_start_mask
    from user_dir.data.weam_dataset import WeamDataset

    d = _toy_dict()
    i = d.index
    src_rows = [[i("\u2581a"), i("x"), i("\u2581b"), i("\u2581c"), d.eos()], [i("\u2581a"), i("\u2581b"), d.eos()]]
    tgt_rows = [[i("\u2581d"), i("\u2581e"), i("z"), d.eos()], [i("\u2581e"), i("\u2581d"), i("y"), d.eos()]]
    links = [[(0, 1), (2, 0)], [(0, 1), (1, 0)]]  # first-piece links (src, tgt)
    mk = lambda rows: ListDataset([torch.tensor(r) for r in rows], np.array([len(r) for r in rows]))  # noqa: E731
    offsets = np.array([0, 2, 4])
    flat = np.array([p for row in links for p in row], dtype=np.int32)
    for exchange in (0.0, 1.0):
        ds = WeamDataset(mk(src_rows), mk(tgt_rows), offsets, flat, d, d.pad(), d.index("<mask>"), 1,
                         MaskConfig(mask_prob=0.6, random_token_prob=0.0), None, word_start_mask(d), exchange)
        hits = 0
        for epoch in range(1, 30):
            ds.set_epoch(epoch)
            for index in range(4):
                item = ds[index]
                tgt, xl = item["target"], item["xl_target"]
                assert ((xl != d.pad()) <= (tgt != d.pad())).all()  # only at masked positions
                own = (src_rows if index < 2 else tgt_rows)[index % 2]
                other = (tgt_rows if index < 2 else src_rows)[index % 2]
                pairs = [(p, q) if index < 2 else (q, p) for p, q in links[index % 2]]
                for pos in torch.nonzero(xl != d.pad()).view(-1).tolist():
                    hits += 1
                    if exchange == 0.0:
                        # the item is <s> + own: the position is an aligned word's first piece
                        p = pos - 1
                        q = dict(pairs)[p]
                        assert xl[pos] == other[q] and tgt[pos] == own[p]
                    else:
                        # every aligned word was exchanged: it predicts the word it replaced
                        assert int(xl[pos]) in {own[p] for p, _ in pairs}
        assert hits > 10


def test_tlm_positions_restart_for_the_second_sentence(tiny_pair):
    from argparse import Namespace

    from csfair.pretraining.masking import MaskConfig
    from user_dir.data.tlm_dataset import TlmDataset
    from user_dir.models.tlm_roberta import TlmRobertaModel, tlm_roberta_tiny_architecture
    from fairseq.data import Dictionary, ListDataset
    from fairseq.utils import make_positions

    d = Dictionary.load(str(tiny_pair["dict"]))
    d.add_symbol("<mask>")
    mk = lambda rows: ListDataset([torch.tensor(r) for r in rows], np.array([len(r) for r in rows]))  # noqa: E731
    from csfair.pretraining.masking import random_token_weights

    ds = TlmDataset(mk([[10, 11, 2]]), mk([[12, 13, 14, 2]]), d, d.pad(), d.index("<mask>"), 1,
                    MaskConfig(), random_token_weights(len(d), d.nspecial))
    item = ds[0]
    assert item["positions"].tolist() == [2, 3, 4, 5, 2, 3, 4, 5, 6]  # <s> a a </s> | </s> b b b </s>
    assert len(item["source"]) == len(item["positions"])
    args = Namespace(encoder_layers=1, max_positions=64, tokens_per_sample=64)
    tlm_roberta_tiny_architecture(args)

    class _Task:
        source_dictionary = d
    torch.manual_seed(0)
    model = TlmRobertaModel.build_model(args, _Task()).eval()
    tokens = torch.tensor([[0, 10, 11, 2, 2, 12, 13, 2, 1]])
    plain = model(tokens, features_only=True)[0]
    same = model(tokens, features_only=True, positions=make_positions(tokens, d.pad(), False))[0]
    reset = model(tokens, features_only=True, positions=torch.tensor([[2, 3, 4, 5, 2, 3, 4, 5, 1]]))[0]
    assert torch.allclose(plain, same, atol=1e-6)
    assert not torch.allclose(plain[0, 4:8], reset[0, 4:8], atol=1e-4)
    assert set(model.state_dict()) == set(k for k in model.state_dict())  # same names as RoBERTa
    assert "encoder.sentence_encoder.embed_positions.weight" in model.state_dict()


def test_mme_attention_weights_sum_to_one_per_word():
    from user_dir.models.meta_embedding_tagger import MetaEmbedding

    torch.manual_seed(0)
    me = MetaEmbedding([100, 100, 50], 200, "attention")
    x = [torch.randn(3, 7, 100), torch.randn(3, 7, 100), torch.randn(3, 7, 50)]
    u, alpha = me(x)
    assert u.shape == (3, 7, 200) and alpha.shape == (3, 7, 3)
    assert torch.allclose(alpha.sum(-1), torch.ones(3, 7), atol=1e-6) and (alpha > 0).all()
    # the combination is the alpha-weighted sum of the projections
    proj = torch.stack([p(s) for p, s in zip(me.projs, x)], 2)
    assert torch.allclose(u, (alpha.unsqueeze(-1) * proj).sum(2), atol=1e-5)
    for comb in ("concat", "linear"):
        u2, a2 = MetaEmbedding([100, 100, 50], 200, comb)(x)
        assert u2.shape == (3, 7, 200) and a2 is None


def test_crf_decoding_matches_brute_force():
    from torchcrf import CRF

    torch.manual_seed(3)
    crf = CRF(3, batch_first=True)
    for length in (1, 2, 4, 5):
        em = torch.randn(1, length, 3)

        def score(tags):
            s = crf.start_transitions[tags[0]] + em[0, 0, tags[0]]
            for k in range(1, length):
                s = s + crf.transitions[tags[k - 1], tags[k]] + em[0, k, tags[k]]
            return s + crf.end_transitions[tags[-1]]

        best = max(itertools.product(range(3), repeat=length), key=lambda t: float(score(t)))
        assert crf.decode(em)[0] == list(best)
    # packing words' first pieces for the CRF keeps their order
    from user_dir.models.token_tagging_head import gather_words

    vals = torch.arange(12.0).view(2, 6)
    words = torch.tensor([[0, 1, 0, 1, 1, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    packed, mask = gather_words(vals, words)
    assert packed.tolist() == [[1.0, 3.0, 4.0], [6.0, 0.0, 0.0]] and mask.tolist() == [[True] * 3, [True, False, False]]


@pytest.fixture(scope="module")
def parallel(tiny_pair, tmp_path_factory):
    """Aligned parallel data (800 Multi30k pairs) with the tiny vocabulary, binarised."""
    pytest.importorskip("systran_align", reason="word alignments use fast_align's diagonal model (systran-align, "
                        "Python <= 3.11; csfair-prep parallel says so elsewhere)")
    d = tmp_path_factory.mktemp("para")
    run([VENV_BIN / "csfair-prep", "parallel", "--src-file", data_path("parallel/multi30k/train.en.gz"),
         "--tgt-file", data_path("parallel/multi30k/train.fr.gz"), "--src-lang", "en", "--tgt-lang", "fr",
         "--spm", tiny_pair["spm"], "--out-dir", d, "--max-pairs", "800", "--valid", "50"])
    for side in ("src", "tgt"):
        run([VENV_BIN / "fairseq-preprocess", "--only-source", "--srcdict", tiny_pair["dict"],
             "--trainpref", d / "raw" / f"train.{side}", "--validpref", d / "raw" / f"valid.{side}",
             "--destdir", d / side, "--workers", "1"])
    (d / "align").mkdir()
    for split in ("train", "valid"):
        (d / "align" / f"{split}.align").write_text((d / "raw" / f"{split}.align").read_text())
    return d


@pytest.mark.parametrize("system", ["weam", "tlm"])
def test_weam_and_tlm_train_above_chance(parallel, system):
    args = {"weam": ["--task", "weam_masked_lm", "--criterion", "weam_loss", "--arch", "cs_roberta_tiny",
                     "--weam-exchange-prob", "0.2"],
            "tlm": ["--task", "tlm_masked_lm", "--criterion", "cs_masked_lm", "--arch", "tlm_roberta_tiny"]}[system]
    p = run([VENV_BIN / "fairseq-train", parallel, "--user-dir", ROOT / "user_dir", *args, "--encoder-layers", "2",
             "--encoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256", "--encoder-attention-heads", "2",
             "--tokens-per-sample", "128", "--optimizer", "adam", "--lr", "2e-3", "--batch-size", "16",
             "--max-update", "60", "--no-save", "--cpu", "--log-format", "simple", "--log-interval", "20"])
    log = p.stdout + p.stderr
    import re

    acc = [float(x) for x in re.findall(r"train_inner.*? accuracy=([0-9.]+)", log)]
    valid = re.findall(r"valid on 'valid' subset \| loss ([0-9.]+).*?\| accuracy ([0-9.]+)", log)
    assert len(acc) == 3 and acc[-1] > acc[0]
    # chance for a 1,000-symbol vocabulary is 0.001; 60 updates reach frequent-token level at least
    assert float(valid[-1][1]) > 0.05
    if system == "weam":
        xl = [float(x) for x in re.findall(r"train_inner.*?xl_accuracy=([0-9.]+)", log)]
        assert xl and xl[-1] > 0.02


def test_taggers_and_scratch_baseline_beat_the_majority_class(tiny_pair, tmp_path):
    p = run([sys.executable, ROOT / "scripts" / "zeroshot.py", "--checkpoint", "mme=mme", "--checkpoint", "hme=hme",
             "--checkpoint", "s2=scratch:1:128", "--tasks", "lid-calcs", "--seeds", "1,2", "--max-train", "400",
             "--max-eval", "100", "--epochs", "3", "--scratch-lr", "2e-3", "--spm", tiny_pair["spm"],
             "--dict", tiny_pair["dict"], "--out", tmp_path, "--fasttext-lines", "8000", "--fasttext-bucket", "100000"])
    recs = [json.loads(x) for x in open(tmp_path / "results.jsonl")]
    gold = [json.loads(x)["labels"] for x in open(next((tmp_path / "data").rglob("raw/cs.valid.jsonl")))]
    flat = [t for s in gold for t in s]
    majority = max(flat.count(t) for t in set(flat)) / len(flat)
    for model in ("mme", "hme", "s2"):
        dev = [r["metrics"]["accuracy"] for r in recs if r["model"] == model and r["split"] == "valid"]
        assert len(dev) == 2 and max(dev) > majority + 0.05, (model, dev, majority)
    ens = [r for r in recs if r["model"] == "hme-ensemble" and r["split"] == "test"]
    assert len(ens) == 1 and 0 <= ens[0]["metrics"]["accuracy"] <= 1
    params = {r["model"]: r["params"] for r in recs if "params" in r}
    assert params["hme"] > params["mme"] > 0 and params["s2"] > 0  # HME adds subword and character encoders
    assert {r["checkpoint"] for r in recs if r["model"] == "s2"} == {"scratch:1:128"}
    assert "hme (" in p.stdout  # parameters next to the scores


@pytest.mark.parametrize("task", ["weam_masked_lm", "tlm_masked_lm"])
def test_weam_and_tlm_draw_anew_every_epoch_with_workers(parallel, task):
    """fairseq-train's own iterator (get_batch_iterator + next_epoch_itr), one persistent worker."""
    from user_dir.epoch_draws import epoch_digests  # scripts/check_epoch_draws.py's

    arch = "tlm_roberta_tiny" if task == "tlm_masked_lm" else "cs_roberta_tiny"
    seen = epoch_digests([str(parallel), "--user-dir", str(ROOT / "user_dir"), "--task", task, "--arch", arch,
                          "--tokens-per-sample", "128", "--batch-size", "16", "--num-workers", "1", "--cpu",
                          "--skip-invalid-size-inputs-valid-test"], epochs=2)
    ids = sorted(seen[1])
    assert len(ids) > 500 and sorted(seen[2]) == ids
    same = sum(seen[1][i] == seen[2][i] for i in ids)
    assert same <= 0.02 * len(ids), (task, same, len(ids))
