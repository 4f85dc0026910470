"""Transformers models as columns of the zero-shot runner (issue 14, part 3): first-piece labels for the
three tokenizer families, an hf: column recorded as the fairseq columns are (best epoch, flags, protocol,
parameters, items for the paired bootstrap, tables), protocol keys that follow the weights."""
import importlib.util
import json
import shutil

import pytest
import torch

from conftest import ROOT, data_path


def _zeroshot():
    spec = importlib.util.spec_from_file_location("zeroshot_hf_test", ROOT / "scripts" / "zeroshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("family", ["bert", "xlmr", "roberta"])
def test_first_piece_labels_and_word_boundary_truncation(hf_models, family):
    from csfair.evaluation.corpora import read_udpos_tsv
    from csfair_hf.finetune import IGNORE_INDEX, collator, encode_tagging, features, load_tokenizer

    tok = load_tokenizer(str(hf_models[family]))
    sents = read_udpos_tsv(data_path("pos/udpos-xtreme/dev-fr.tsv"))[:40]
    max_len = 24
    enc = encode_tagging(tok, [(s.words, s.labels) for s in sents], max_len)
    dropped = 0
    for s, ids, first, labels in zip(sents, enc.input_ids, enc.first, enc.labels):
        k = len(labels)
        assert labels == s.labels[:k] and len(first) == k and len(ids) <= max_len
        assert ids[0] in tok.all_special_ids and ids[-1] in tok.all_special_ids
        pos = first[0] if first else None
        for j, w in enumerate(s.words[:k]):  # each word's pieces are the word tokenised alone, in order
            alone = tok([[w]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
            assert first[j] == pos and ids[pos:pos + len(alone)] == alone, (family, w)
            pos += len(alone)
        if k < len(s.words):  # cut at a word boundary: the next word would not have fitted
            nxt = tok([[s.words[k]]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
            assert len(ids) + len(nxt) > max_len
        dropped += len(s.words) - k
    assert dropped > 0 and enc.stats["words_truncated"] == dropped
    assert enc.stats["words"] == sum(len(x) for x in enc.labels)
    # training targets as Trainer's batches hold them: the label on each word's first piece, ignored everywhere else
    labels = sorted({lab for x in enc.labels for lab in x})
    batch = collator("tagging", tok)(features(enc, "tagging", {lab: i for i, lab in enumerate(labels)})[:2])
    target = batch["labels"]
    for r in (0, 1):
        kept = target[r] != IGNORE_INDEX
        assert kept.nonzero().view(-1).tolist() == enc.first[r]
        assert [labels[t] for t in target[r][kept].tolist()] == enc.labels[r]
    # a word the tokenizer turns into no piece keeps its label, on the unknown token
    z = encode_tagging(tok, [(["le", "\u200b", "chat"], ["DET", "X", "NOUN"])], max_len)
    assert len(z.first[0]) == 3 and z.labels[0] == ["DET", "X", "NOUN"]


def test_hf_column_recorded_like_fairseq_columns(hf_models, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from csfair.evaluation.results import load_items, load_results
    from csfair_hf.zeroshot import column_digest

    bert = hf_models["bert"]
    other = tmp_path / "bert-perturbed"
    shutil.copytree(bert, other)
    digest = column_digest(str(bert))
    assert column_digest(str(other)) == digest  # the same bytes under another path: the same start
    (other / "README.md").write_text("a card is not part of the model\n")
    assert column_digest(str(other)) == digest
    state = load_file(other / "model.safetensors")
    key = next(k for k in state if k.endswith("word_embeddings.weight"))
    state[key] = state[key] + 0.01 * torch.randn_like(state[key])
    save_file(state, other / "model.safetensors", metadata={"format": "pt"})
    assert column_digest(str(other)) != digest  # other weights: another protocol key

    out = tmp_path / "zs"
    argv = ["--checkpoint", f"a=hf:{bert}", "--checkpoint", f"b=hf:{other}", "--tasks", "pos", "--langs", "fr",
            "--seeds", "1,2", "--max-train", "160", "--max-eval", "24", "--epochs", "2", "--lr", "2e-3",
            "--batch-size", "16", "--reference", "a", "--out", str(out)]
    zs = _zeroshot()
    zs.main(argv)
    recs = load_results(out / "results.jsonl")
    assert sorted((r["model"], r["lang"], r["split"], r["seed"]) for r in recs) == [
        (m, lg, sp, s) for m in "ab" for lg, sp in (("en", "valid"), ("fr", "test")) for s in (1, 2)]
    items = load_items(out / "items.jsonl")
    for r in recs:
        assert r["checkpoint"] == f"hf:{bert if r['model'] == 'a' else other}"
        dev = r["dev_by_epoch"]
        assert len(dev) == 2 and r["best_epoch"] == dev.index(max(dev)) + 1 and r["updates"] == 2 * 10
        assert isinstance(r["flags"], list) and 0 <= r["unk_rate"] < 0.5 and r["n"] == 24
        assert 0 <= r["unk_word_rate"] < 0.5  # counted by words on the transformers path too
        num, den = items[r["items"]]  # per-sentence scores of exactly this evaluation
        assert len(num) == r["n"] and sum(den) == r["metrics"]["n_words"]
        assert sum(num) / sum(den) == pytest.approx(r["metrics"]["accuracy"])
    by = {(r["model"], r["split"]): r for r in recs}
    assert by["a", "test"]["protocol"] != by["b", "test"]["protocol"]
    assert by["a", "test"]["params"] == by["b", "test"]["params"] > 0
    assert "majority_baseline" in by["a", "valid"]
    table = json.loads((out / "tables" / "pos.json").read_text())
    mb = by["a", "test"]["params"] / 1e6
    cols = table["fr"]
    assert set(cols) == {f"a ({mb:.1f}M)", f"b ({mb:.1f}M)"}
    for name, cell in cols.items():  # 20 updates at 2e-3 beat the majority class: unflagged, in the mean
        assert cell["protocol"] == by[name[0], "test"]["protocol"] and cell["n"] == 2 and cell["n_items"] == 24
        assert not any(r["flags"] for r in recs if r["model"] == name[0])
    sig = cols[f"b ({mb:.1f}M)"]["sig"]  # the tables' test: 2 seeds per column, the same 24 test sentences
    assert sig["lo"] <= sig["diff"] <= sig["hi"] and sig["runs_a"] == sig["runs_b"] == 2 and sig["n_items"] == 24
    acc = {m: [r["metrics"]["accuracy"] for r in recs if r["model"] == m and r["split"] == "test"] for m in "ab"}
    assert sig["diff"] == pytest.approx(sum(acc["b"]) / 2 - sum(acc["a"]) / 2)
    assert (out / "tables" / "pos.forest.png").exists() and (out / "tables" / "pos.manifest.json").exists()
    # the same command again: every run is found by its protocol key and skipped
    capsys.readouterr()
    zs.main(argv)
    assert len(load_results(out / "results.jsonl")) == len(recs)
    assert capsys.readouterr().out.count("done before") == 4
    with pytest.raises(SystemExit, match="--crf"):
        zs.main(argv[:2] + ["--tasks", "pos", "--crf", "--out", str(tmp_path / "crf")])


def test_head_initialised_by_seed_and_frozen_encoder(hf_models):
    from csfair_hf.finetune import load_model

    labels = ["NOUN", "VERB", "DET"]
    a, b, c = (load_model(str(hf_models["bert"]), "tagging", labels, seed) for seed in (1, 1, 2))
    assert torch.equal(a.classifier.weight, b.classifier.weight) and not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.equal(a.base_model.embeddings.word_embeddings.weight, c.base_model.embeddings.word_embeddings.weight)
    assert [a.config.id2label[i] for i in range(3)] == labels
    frozen = load_model(str(hf_models["bert"]), "classification", labels, 1, freeze_encoder=True)
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable == {"bert.pooler", "classifier.weight", "classifier.bias"}


def test_unk_word_rate_on_the_transformers_path(hf_models):
    """Words of a script the en+es vocabularies lack are nothing but the unknown token (with a bare ``▁``
    under sentencepiece): counted per word, as the fairseq path counts them (csfair issue 19)."""
    from csfair_hf.finetune import encode_classification, encode_tagging, load_tokenizer

    for fam in ("xlmr", "bert"):
        tok = load_tokenizer(str(hf_models[fam]))
        enc = encode_tagging(tok, [(["नमस्ते", "दुनिया", "hello"], ["X", "X", "X"])], 64)
        assert enc.stats["unk_word_rate"] == pytest.approx(2 / 3), fam
        assert enc.stats["unk_rate"] <= enc.stats["unk_word_rate"], fam
        pair = encode_classification(tok, ["नमस्ते hello"], ["दुनिया"], ["x"], 64)
        assert pair.stats["unk_word_rate"] == pytest.approx(2 / 3), fam

def test_trainer_matches_fairseq_optimiser_schedule_and_selection(hf_models, tmp_path):
    """``train_and_select`` (transformers' Trainer) updates with fairseq's Adam settings on every parameter and
    fairseq's ``polynomial_decay`` learning rate update for update (the fairseq columns' flags in
    scripts/zeroshot.py), keeps the best dev epoch (the earliest on ties) with its weights, and is
    reproducible under one seed."""
    from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig
    from fairseq.optim.lr_scheduler.polynomial_decay_schedule import (
        PolynomialDecayLRSchedule,
        PolynomialDecayLRScheduleConfig,
    )
    from transformers import TrainerCallback

    from csfair.evaluation.corpora import read_udpos_tsv
    from csfair_hf.finetune import encode_tagging, label_list, load_model, load_tokenizer, predict, train_and_select

    tok = load_tokenizer(str(hf_models["bert"]))
    sents = read_udpos_tsv(data_path("pos/udpos-xtreme/dev-fr.tsv"))
    train = encode_tagging(tok, [(s.words, s.labels) for s in sents[:48]], 64)
    dev = encode_tagging(tok, [(s.words, s.labels) for s in sents[100:116]], 64)
    labels = label_list(train.labels)
    lr, wd, epochs, batch = 2e-3, 0.01, 4, 16
    total, warmup = epochs * 3, 3  # 48 / 16 = 3 updates per epoch; ceil(0.25 * 12) warm-up updates

    class Updates(TrainerCallback):  # the rate each update is taken with, and the optimiser taking it
        def __init__(self):
            self.lrs, self.optimizer = [], None

        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            self.lrs.append(optimizer.param_groups[0]["lr"])
            self.optimizer = optimizer

    def run(seed, scores):
        seen, updates = [], Updates()

        def dev_score(pairs):  # scripted dev scores; records the predictions each epoch was scored on
            seen.append(pairs)
            return scores[len(seen) - 1]

        model = load_model(str(hf_models["bert"]), "tagging", labels, seed)
        best, by_epoch, n = train_and_select(model, "tagging", train, dev, labels, tok, dev_score, seed, lr, epochs, batch,
                                             wd, 0.25, str(tmp_path / f"out{seed}"), log=lambda m: None, callbacks=[updates])
        return model, best, by_epoch, n, seen, updates

    scores = [0.2, 0.9, 0.9, 0.5]  # a tie after the best: the earlier epoch is kept
    model, best, by_epoch, n, seen, updates = run(1, scores)
    assert (best, by_epoch, n) == (2, scores, total)
    final = predict(model, dev, "tagging", tok)
    assert seen[1] != seen[3]  # the weights moved after epoch 2 ...
    assert final == seen[1]  # ... and the kept model is epoch 2's, not the last
    assert not (tmp_path / "out1").exists()  # Trainer's checkpoints are removed

    fs_opt = FairseqAdam(FairseqAdamConfig(lr=[lr], adam_betas="(0.9,0.999)", adam_eps=1e-8, weight_decay=wd),
                         [torch.nn.Parameter(torch.zeros(1))])
    fs = PolynomialDecayLRSchedule(PolynomialDecayLRScheduleConfig(
        warmup_updates=warmup, end_learning_rate=0.0, power=1.0, total_num_update=total, lr=[lr]), fs_opt)
    # fairseq sets the rate of update n + 1 with step_update(n) (step_update(0) when the trainer is built)
    assert updates.lrs == pytest.approx([fs.step_update(k) for k in range(total)], rel=1e-12, abs=1e-15)
    assert updates.lrs[0] == 0.0 and max(updates.lrs) == pytest.approx(lr)
    opt = getattr(updates.optimizer, "optimizer", updates.optimizer)  # under accelerate's AcceleratedOptimizer
    assert isinstance(opt, torch.optim.AdamW)
    for key in ("betas", "eps"):
        assert {g[key] for g in opt.param_groups} == {fs_opt.optimizer.defaults[key]}
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == wd for p in g["params"]}
    assert decayed == {id(p) for p in model.parameters()}  # biases and layer norms too, as fairseq's adam

    again = run(1, scores)  # one seed: the same updates, the same predictions
    assert again[4] == seen and predict(again[0], dev, "tagging", tok) == final
    other = run(2, scores)
    assert other[4][0] != seen[0]  # another seed: another head, order and dropout
