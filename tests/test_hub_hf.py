"""Hub interface, Hugging Face export/import round trips, alignment analysis, training plots."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, VENV_BIN, data_path, head_lines, run


@pytest.fixture(scope="module")
def hub(tiny_mlm):
    from user_dir.hub_interface import from_pretrained

    return from_pretrained(str(tiny_mlm.parent), tiny_mlm.name, device="cpu")


def test_hub_encode_decode_features_and_batching(hub):
    t = hub.encode("A dog runs in the park.")
    assert t[0] == hub.dictionary.bos() and t[-1] == hub.dictionary.eos()
    assert hub.decode(t) == "A dog runs in the park ."  # Moses-tokenised text round trip
    pair = hub.encode("A man sleeps.", "Nobody sleeps.")
    assert (pair == hub.dictionary.eos()).sum() == 3 and " | " in hub.decode(pair)
    layers = hub.extract_features(t, return_all_hiddens=True)
    assert len(layers) == 3 and layers[-1].shape == (1, len(t), 128)
    assert torch.allclose(hub.extract_features(t, layer=1), layers[1])
    # list input is sorted by length, padded, batched, and returned in input order
    sents = ["a dog .", "two women are sitting on a bench near the water .", "hello", "a man rides a horse"]
    toks = [hub.encode(s) for s in sents]
    batched = hub.extract_features(toks, batch_size=3)
    for x, f in zip(toks, batched):
        assert f.shape == (len(x), 128)
        assert torch.allclose(f, hub.extract_features(x)[0], atol=1e-5)


def test_hub_fill_mask_and_codeswitch(hub):
    out = hub.fill_mask("a man is riding a <mask> .", topk=4)
    probs = [p for _, p, _ in out]
    assert len(out) == 4 and probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1
    assert all("<mask>" not in s for s, _, _ in out)
    with pytest.raises(ValueError):
        hub.fill_mask("no mask here")
    text = "A woman is playing guitar while children are dancing near the beach ."
    a = hub.codeswitch(text, lang="en", seed=1, word_prob=1.0)
    assert a != text and a == hub.codeswitch(text, lang="en", seed=1, word_prob=1.0)
    outs = {hub.codeswitch(text, lang="en", seed=s, word_prob=0.5) for s in range(8)}
    assert len(outs) > 2  # new draws per seed
    assert hub.codeswitch(text, lang="en", seed=1, word_prob=0.0) == text


def test_hub_loads_without_user_dir_from_any_directory(tiny_mlm, tmp_path):
    code = ("from user_dir.hub_interface import from_pretrained; "
            f"h = from_pretrained({str(tiny_mlm.parent)!r}, {tiny_mlm.name!r}, device='cpu'); "
            "print(h.fill_mask('a <mask> .', topk=1)[0][2])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip()


def test_hub_predict_tags_and_predict_on_finetuned_checkpoints(tiny_pair, tiny_mlm, tmp_path):
    from user_dir.hub_interface import from_pretrained

    common = ["--spm", tiny_pair["spm"], "--dict", tiny_pair["dict"], "--out", tmp_path, "--seeds", "1",
              "--max-eval", "30", "--lr", "1e-3", "--epochs", "1", "--keep-checkpoints"]
    run([sys.executable, ROOT / "scripts" / "zeroshot.py", "--checkpoint", f"t={tiny_mlm}", "--tasks", "pos",
         "--langs", "fr", "--max-train", "100", *common])
    run([sys.executable, ROOT / "scripts" / "zeroshot.py", "--checkpoint", f"t={tiny_mlm}", "--tasks", "xnli",
         "--langs", "fr", "--max-train", "100", *common])
    tagger = from_pretrained(str(tmp_path / "runs" / "t" / "pos" / "seed1"), "checkpoint_best.pt", device="cpu")
    words = ["The", "small", "dog", "sleeps", "."]
    tags = tagger.predict_tags(words)
    upos = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
            "SCONJ", "SYM", "VERB", "X"}
    assert len(tags) == len(words) and set(tags) <= upos
    assert tagger.predict_tags([words, words[:2]])[1] == tagger.predict_tags(words[:2])
    nli = from_pretrained(str(tmp_path / "runs" / "t" / "xnli" / "seed1"), "checkpoint_best.pt", device="cpu")
    label, probs = nli.predict("A man is sleeping.", "Nobody sleeps.", return_probs=True)
    assert label in ("entailment", "neutral", "contradiction") and abs(sum(probs.values()) - 1) < 1e-5
    with pytest.raises(ValueError):
        nli.predict_tags(words)
    # the sentence classification head maps to transformers' *ForSequenceClassification; tagging heads do not
    from transformers import AutoModelForSequenceClassification

    from user_dir.hf_interop import export_checkpoint

    summary = export_checkpoint(str(tmp_path / "runs" / "t" / "xnli" / "seed1" / "checkpoint_best.pt"), str(tmp_path / "hf"))
    (name, info), = summary["heads_exported"].items()
    assert info["max_abs_logit_diff"] < 1e-4 and sorted(info["labels"]) == ["contradiction", "entailment", "neutral"]
    hf = AutoModelForSequenceClassification.from_pretrained(info["out_dir"]).eval()
    ids = nli.encode("A man is sleeping.", "Nobody sleeps.").unsqueeze(0)
    hf_probs = torch.softmax(hf(input_ids=ids).logits[0], -1)
    assert max(abs(hf_probs[hf.config.label2id[k]].item() - v) for k, v in probs.items()) < 1e-4
    tag_summary = export_checkpoint(str(tmp_path / "runs" / "t" / "pos" / "seed1" / "checkpoint_best.pt"),
                                    str(tmp_path / "hf-pos"))
    assert tag_summary["heads_exported"] == {} and len(tag_summary["heads_not_exported"]) == 1


def test_hf_export_equal_logits_tokenizer_and_roundtrip(hub, tiny_mlm, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from csfair.text import moses_tokenize
    from user_dir.hf_interop import export_checkpoint, import_hf, max_logit_difference

    sents = [s for s in head_lines(data_path("parallel/multi30k/val.en.gz"), tmp_path / "v.en", 12).read_text().splitlines()]
    batch = hub.encode_batch(sents)
    summary = export_checkpoint(str(tiny_mlm), str(tmp_path / "hf"), sample_batches=[batch])
    assert summary["max_abs_logit_diff"] < 1e-4
    hf = AutoModelForMaskedLM.from_pretrained(tmp_path / "hf")
    assert max_logit_difference(hub.model, hf, [batch]) < 1e-4
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    for s in sents:
        assert tok(moses_tokenize(s, "en"))["input_ids"] == hub.encode(s).tolist()
    # back into fairseq: the same weights
    r = import_hf(str(tmp_path / "hf"), str(tmp_path / "back" / "checkpoint.pt"), str(tmp_path / "back" / "data"))
    assert r["max_abs_logit_diff"] < 1e-4
    back = torch.load(tmp_path / "back" / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    orig = hub.model.state_dict()
    for k, v in orig.items():
        if torch.is_tensor(v) and k in back:
            assert torch.equal(v, back[k]), k


def test_hf_import_xlmr_from_config_and_continue_pretraining(tiny_pair, tmp_path):
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from user_dir.hf_interop import build_hf_tokenizer, import_hf

    tok = build_hf_tokenizer(str(tiny_pair["spm"]), str(tiny_pair["dict"]))
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    torch.manual_seed(0)
    XLMRobertaForMaskedLM(cfg).save_pretrained(tmp_path / "xlmr")
    tok.save_pretrained(tmp_path / "xlmr")
    shutil.copyfile(tiny_pair["spm"], tmp_path / "xlmr" / "sentencepiece.bpe.model")
    ids = torch.tensor([tok("a dog is running .")["input_ids"]])
    r = import_hf(str(tmp_path / "xlmr"), str(tmp_path / "imp" / "checkpoint.pt"), str(tmp_path / "imp" / "data"),
                  sample_batches=[ids])
    assert r["max_abs_logit_diff"] < 1e-4
    data = tmp_path / "imp" / "data"
    assert (data / "spm.model").exists()
    # continue MLM pretraining of the imported model on text binarised with its dictionary
    run([VENV_BIN / "fairseq-preprocess", "--only-source", "--srcdict", data / "dict.txt",
         "--trainpref", tiny_pair["dir"] / "fr.train.spm", "--validpref", tiny_pair["dir"] / "fr.valid.spm",
         "--destdir", data, "--workers", "1"])
    p = run([VENV_BIN / "fairseq-train", data, "--user-dir", ROOT / "user_dir", "--task", "codeswitch_masked_lm",
             "--cs-mode", "none", "--arch", "cs_roberta_base", "--encoder-layers", "2", "--encoder-embed-dim", "64",
             "--encoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2", "--tokens-per-sample", "64",
             "--max-positions", "64", "--criterion", "cs_masked_lm", "--sample-break-mode", "complete",
             "--finetune-from-model", tmp_path / "imp" / "checkpoint.pt", "--optimizer", "adam", "--lr", "1e-4",
             "--batch-size", "8", "--max-update", "3", "--save-dir", tmp_path / "cont", "--cpu",
             "--disable-validation", "--log-format", "simple", "--log-interval", "1"])
    assert "loaded checkpoint" in (p.stdout + p.stderr).lower() and (tmp_path / "cont" / "checkpoint_last.pt").exists()


def test_analysis_measures_on_known_geometry():
    from csfair.evaluation.analysis import language_probe, parallel_retrieval_accuracy, retrieval_precision

    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 16))
    assert parallel_retrieval_accuracy(a, a + 0.01 * rng.normal(size=a.shape)) == 1.0
    assert parallel_retrieval_accuracy(a, rng.normal(size=a.shape)) < 0.2
    r = retrieval_precision(a, a[::-1], [[49 - i] for i in range(50)], ks=(1, 5))
    assert r["p@1"] == 1.0 and r["n"] == 50
    r = retrieval_precision(a, a, [[(i + 1) % 50] for i in range(50)], ks=(1,))
    assert r["p@1"] == 0.0
    x = np.concatenate([rng.normal(0, 1, (60, 8)), rng.normal(3, 1, (60, 8))])
    assert language_probe(x, ["en"] * 60 + ["fr"] * 60) > 0.95
    assert language_probe(rng.normal(size=(120, 8)), ["en", "fr"] * 60) < 0.75


def test_analyze_report_and_training_plot(tiny_mlm, tmp_path):
    out = tmp_path / "an"
    run([sys.executable, ROOT / "scripts" / "analyze.py", "--checkpoint", f"a={tiny_mlm}",
         "--checkpoint", f"b={tiny_mlm}", "--sentences", "60", "--words", "40", "--out", out])
    report = (out / "report.md").read_text()
    assert "| word retrieval P@1 |" in report and "| language-identity probe, last layer" in report
    res = json.loads((out / "analysis.json").read_text())
    assert res["a"] == res["b"]  # the same checkpoint twice: the same numbers
    assert len(res["a"]["multi30k_sentence_retrieval_by_layer"]) == 3
    for f in ("umap_sent_mean.png", "umap_sent_cls.png", "umap_words.png"):
        assert (out / f).stat().st_size > 10000
    run([sys.executable, ROOT / "scripts" / "plot_training.py", tiny_mlm.parent / "train.log", "--out", tmp_path / "c.png"])
    assert (tmp_path / "c.png").stat().st_size > 10000
    from user_dir.training_curves import parse  # scripts/plot_training.py's log reader

    curves = parse(tiny_mlm.parent / "train.log")
    assert [u for u, _ in curves["train"]["loss"]] == [10, 20, 30, 40, 50, 60]
    # per-direction changed-token rates (metric names with a hyphen) are read too
    assert [u for u, _ in curves["train"]["cs_tok_en-fr"]] == [10, 20, 30, 40, 50, 60]
