#!/usr/bin/env python
"""The ``Trainer`` fine-tuning of ``hf:`` columns against the hand-written loop it replaced (csfair issue 22).

The loop is ``csfair_hf/finetune.py`` as of commit ``--old`` (read with ``git show``), with one edit:
its per-epoch shuffle is reseeded with the key the ``Trainer`` version uses (``seed * 2**20 + epoch - 1``,
accelerate's ``SeedableRandomSampler``), so both see the same batches. Dropout is switched off in both
(the global random stream is drawn differently: ``Trainer`` re-seeds it when it starts). Everything else
(initial head, AdamW, learning rates, loss, best-epoch selection, restored weights) must then agree.

Models: the small offline test models of ``tests/hf_models.py`` (BERT, XLM-R, RoBERTa families; built in
a temporary directory). Data: ``$CSFAIR_DATA/pos/udpos-xtreme/dev-fr.tsv`` (training: the first 160
sentences, dev: sentences 200-247); tagging with plain cross-entropy and with balanced weights + focal
loss (gamma 2), and sentence-pair classification (the two halves of a sentence, its first tag as label).
3 epochs, batch 16, lr 2e-3, weight decay 0.01, warm-up ratio 0.25, one CPU thread.

Usage: python bench/hf_finetune_equivalence.py [--old COMMIT] [--families bert,xlmr,roberta]
Prints one line per case: best epoch, dev scores, max |weight difference|, dev predictions equal.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

SHUFFLE = "        order = torch.randperm(n, generator=gen).tolist()\n"


def old_module(rev: str, folder: str):
    src = subprocess.run(["git", "show", f"{rev}:csfair_hf/finetune.py"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    if "def train_and_select(" not in src or SHUFFLE not in src:
        raise SystemExit(f"{rev}: csfair_hf/finetune.py has no hand-written loop (give --old a commit before the Trainer)")
    src = src.replace(SHUFFLE, "        gen.manual_seed(seed * 2 ** 20 + ep - 1)\n" + SHUFFLE)
    path = os.path.join(folder, "finetune_loop.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location("finetune_loop", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", default=None,
                   help="a commit whose csfair_hf/finetune.py has the loop (default: the parent of the commit that "
                        "removed it)")
    p.add_argument("--families", default="bert,xlmr,roberta")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    import csfair_hf.finetune as new
    from csfair.evaluation import metrics as M
    from csfair.evaluation.corpora import read_udpos_tsv
    from csfair.paths import data_file
    from hf_models import build_all

    rev = args.old
    if rev is None:  # the newest commit that took the loop's optimiser line out, and its parent
        last = subprocess.run(["git", "log", "-1", "--format=%H", "-S", "get_linear_schedule_with_warmup(opt", "--",
                               "csfair_hf/finetune.py"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        if not last.strip():
            raise SystemExit("no commit removed the loop from csfair_hf/finetune.py: give --old")
        rev = last.strip() + "^"
    tmp = tempfile.mkdtemp(prefix="hf_equiv_")
    old = old_module(rev, tmp)
    print(f"loop: csfair_hf/finetune.py at {rev}")
    models = build_all(__import__("pathlib").Path(tmp) / "models")
    sents = read_udpos_tsv(data_file("pos/udpos-xtreme/dev-fr.tsv"))
    tr, dv = sents[:160], sents[200:248]
    accuracy = lambda pairs: M.token_accuracy([g for g, _ in pairs], [q for _, q in pairs])["accuracy"]
    macro_f1 = lambda pairs: M.sentence_metrics([g for g, _ in pairs], [q for _, q in pairs])["macro_f1"]

    def nodrop(m):
        for x in m.modules():
            if isinstance(x, torch.nn.Dropout):
                x.p = 0.0
        return m

    def pair_data(tok, ss):
        a = [" ".join(s.words[: len(s.words) // 2]) for s in ss]
        b = [" ".join(s.words[len(s.words) // 2:]) for s in ss]
        return new.encode_classification(tok, a, b, [s.labels[0] for s in ss], 64)

    for fam in args.families.split(","):
        tok = new.load_tokenizer(str(models[fam]))
        tag_train = new.encode_tagging(tok, [(s.words, s.labels) for s in tr], 128)
        tag_dev = new.encode_tagging(tok, [(s.words, s.labels) for s in dv], 128)
        tag_labels = new.label_list([s.labels for s in tr])
        balanced = new.balanced_weights([s.labels for s in tr], tag_labels)
        cls_train, cls_dev = pair_data(tok, tr), pair_data(tok, dv)
        cls_labels = new.label_list(cls_train.labels)
        cases = [("tagging", "cross-entropy", tag_train, tag_dev, tag_labels, accuracy, None, 0.0),
                 ("tagging", "balanced+focal2", tag_train, tag_dev, tag_labels, accuracy, balanced, 2.0),
                 ("classification", "pairs", cls_train, cls_dev, cls_labels, macro_f1, None, 0.0)]
        for kind, what, train, dev, labels, score, weights, gamma in cases:
            a = nodrop(new.load_model(str(models[fam]), kind, labels, 3))
            t = time.process_time()
            ra = old.train_and_select(a, kind, train, labels, lambda m: score(old.predict(m, dev, kind, tok.pad_token_id)),
                                      3, 2e-3, 3, 16, 0.01, 0.25, tok.pad_token_id, class_weights=weights,
                                      focal_gamma=gamma, log=lambda s: None)
            ta = time.process_time() - t
            b = nodrop(new.load_model(str(models[fam]), kind, labels, 3))
            t = time.process_time()
            rb = new.train_and_select(b, kind, train, dev, labels, tok, score, 3, 2e-3, 3, 16, 0.01, 0.25,
                                      os.path.join(tmp, "trainer"), class_weights=weights, focal_gamma=gamma,
                                      log=lambda s: None)
            tb = time.process_time() - t
            diff = max((x - y).abs().max().item() for x, y in zip(a.state_dict().values(), b.state_dict().values()))
            same = old.predict(a, dev, kind, tok.pad_token_id) == new.predict(b, dev, kind, tok)
            print(f"{fam} {kind} {what}: loop {ra} ({ta:.1f} s cpu) | Trainer {rb} ({tb:.1f} s cpu) | "
                  f"max |weight diff| {diff:.2e} | dev predictions equal {same}", flush=True)


if __name__ == "__main__":
    main()
