"""Frozen-encoder probes of transformers models on csfair's tasks (the Spanglish study's protocol).

"Enhancing Multilingual Language Models for Code-Switched Input Data" compares a model before and
after continued MLM on code-switched text with classification heads trained on a *frozen* encoder
(LID, POS, NER, sentiment) and UMAP pictures of the latent space. For a transformers model this
module trains ``AutoModelForTokenClassification`` / ``AutoModelForSequenceClassification`` heads with
every encoder parameter frozen (embeddings and layers; a pooler that the MLM checkpoint lacks is
new and trained with the head), on the task data of :data:`csfair.evaluation.tasks.TASKS` (the same
loaders, splits, subsets and metrics as ``scripts/zeroshot.py``): the training set is subsampled
with seed 1 (``max_train``), every evaluation set too (``max_eval``); the fine-tuning seed only
changes the head's initialisation and the batch order. Selection: the epoch with the best dev
metric, whose test metric is reported. Tagging labels the first sub-token of each word (the words
are the task's gold words, ``is_split_into_words``); words cut by ``max_length`` get the most
frequent training label and are counted.

``python -m csfair_hf.probe --model before=PATH --model after=PATH --tasks lid-calcs,... --out DIR``
writes ``DIR/hf_probe.json`` and prints one Markdown table per task (mean ± std over seeds), plus,
with ``--umap``, a before/after UMAP figure of mean-pooled sentence vectors coloured by language
and the language-probe accuracy that goes with it (:mod:`csfair.evaluation.analysis`).
"""
import argparse
import json
import os
import time
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from csfair.evaluation import metrics as M
from csfair.evaluation.corpora import subsample
from csfair.evaluation.tasks import TASKS, TaskSpec


def _tokenizer(path: str):
    from transformers import AutoConfig, AutoTokenizer

    kw = {}
    if AutoConfig.from_pretrained(path).model_type in ("roberta", "gpt2", "longformer", "bart"):
        kw["add_prefix_space"] = True  # byte-level BPE: pre-split words need their Ġ
    tok = AutoTokenizer.from_pretrained(path, **kw)
    if not tok.is_fast:
        raise ValueError(f"{path}: a fast tokenizer is required (word_ids)")
    return tok


def _freeze_encoder(model) -> int:
    """Freeze the encoder (not a pooler the MLM checkpoint did not have); returns trainable parameters."""
    for name, p in model.base_model.named_parameters():
        p.requires_grad = "pooler" in name
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _encode_tagging(tok, sents, label2id, max_length):
    out = []
    for s in sents:
        enc = tok(list(s.words), is_split_into_words=True, truncation=True, max_length=max_length)
        wids = enc.word_ids()
        labels, first, seen = [], [], set()
        for k, w in enumerate(wids):
            if w is None or w in seen:
                labels.append(-100)
            else:
                seen.add(w)
                first.append(k)
                labels.append(label2id.get(s.labels[w], -100))  # a label unseen in training: not trained on
        out.append(dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels,
                        first=first, n_words=len(s.words), kept=len(first)))
    return out


def _encode_text(tok, items, label2id, max_length):
    out = []
    for x in items:
        enc = tok(x.text_a, x.text_b, truncation=True, max_length=max_length) if x.text_b else \
            tok(x.text_a, truncation=True, max_length=max_length)
        out.append(dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                        labels=label2id.get(x.label, -100)))
    return out


def _batches(items, batch_size, pad_id, order=None):
    order = range(len(items)) if order is None else order
    order = list(order)
    for a in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[a:a + batch_size]]
        T = max(len(c["input_ids"]) for c in chunk)
        ids = torch.full((len(chunk), T), pad_id, dtype=torch.long)
        att = torch.zeros((len(chunk), T), dtype=torch.long)
        tagging = isinstance(chunk[0]["labels"], list)
        lab = torch.full((len(chunk), T), -100, dtype=torch.long) if tagging else torch.tensor([c["labels"] for c in chunk])
        for i, c in enumerate(chunk):
            n = len(c["input_ids"])
            ids[i, :n] = torch.tensor(c["input_ids"])
            att[i, :n] = 1
            if tagging:
                lab[i, :n] = torch.tensor(c["labels"])
        yield ids, att, lab


@torch.no_grad()
def _predict(model, items, batch_size, pad_id, id2label, fallback) -> List:
    model.eval()
    preds = []
    tagging = bool(items) and "first" in items[0]
    for a, (ids, att, _) in zip(range(0, len(items), batch_size), _batches(items, batch_size, pad_id)):
        best = model(input_ids=ids, attention_mask=att).logits.argmax(-1)
        for i in range(ids.shape[0]):
            if not tagging:
                preds.append(id2label[int(best[i])])
                continue
            it = items[a + i]
            row = [id2label[int(best[i, k])] for k in it["first"]]
            # words cut by max_length: the most frequent training label
            preds.append(row + [fallback] * (it["n_words"] - len(row)))
    return preds


def run_task(model_path: str, spec: TaskSpec, seed: int, max_train=None, max_eval=None, epochs=None, lr=1e-3,
             batch_size=32, max_length=128) -> Dict:
    """Train a head on the frozen encoder of ``model_path`` for ``spec``; dev-selected test metrics.

    Returns:
        dict with ``metric`` (the task's), ``test`` (``{lang: metrics}`` at the best dev epoch),
        ``dev`` (per epoch), ``best_epoch``, ``majority`` (test metrics of predicting the most
        frequent training label everywhere), ``trainable_params``, ``truncated_words``, ``seconds``.
    """
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    t0 = time.time()
    data = spec.load(1)  # data split seed: fixed, not the fine-tuning seed (as write_task_data)
    train = subsample(data["train"], max_train, seed=1)
    valid = subsample(data["valid"], max_eval, seed=1)
    tests = {lg: subsample(v, max_eval, seed=1) for lg, v in data["test"].items()}
    tagging = spec.kind == "tagging"
    counts = Counter(lb for s in train for lb in s.labels) if tagging else Counter(x.label for x in train)
    labels = sorted(counts)
    label2id = {lb: i for i, lb in enumerate(labels)}
    id2label = {i: lb for lb, i in label2id.items()}
    fallback = counts.most_common(1)[0][0]
    tok = _tokenizer(model_path)
    enc = _encode_tagging if tagging else _encode_text
    tr, va = enc(tok, train, label2id, max_length), enc(tok, valid, label2id, max_length)
    te = {lg: enc(tok, v, label2id, max_length) for lg, v in tests.items()}
    torch.manual_seed(seed)
    cls = AutoModelForTokenClassification if tagging else AutoModelForSequenceClassification
    model = cls.from_pretrained(model_path, num_labels=len(labels), id2label=id2label, label2id=label2id)
    n_train = _freeze_encoder(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    fn = getattr(M, spec.metric_fn)
    gold_of = (lambda items: [list(s.labels) for s in items]) if tagging else (lambda items: [x.label for x in items])

    def score(items, raw):
        pred = _predict(model, items, batch_size, tok.pad_token_id, id2label, fallback)
        return fn(gold_of(raw), pred)

    rng = np.random.default_rng(seed)
    dev, best, best_test = [], -1.0, None
    epochs = epochs or spec.epochs
    for ep in range(1, epochs + 1):
        model.train()
        model.base_model.eval()  # frozen encoder: no dropout in it
        for ids, att, lab in _batches(tr, batch_size, tok.pad_token_id, order=rng.permutation(len(tr))):
            loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        d = score(va, valid)
        dev.append(d[spec.metric])
        if d[spec.metric] > best:
            best = d[spec.metric]
            best_test = {lg: score(te[lg], tests[lg]) for lg in te}
            best_epoch = ep
    # the floor every head must beat: the most frequent training label everywhere
    if tagging:
        majority = {lg: fn(gold_of(tests[lg]), [[fallback] * len(x.words) for x in tests[lg]]) for lg in tests}
    else:
        majority = {lg: fn(gold_of(tests[lg]), [fallback] * len(tests[lg])) for lg in tests}
    truncated = sum(it["n_words"] - it["kept"] for items in [tr, va, *te.values()] for it in items) if tagging else 0
    return dict(task=spec.name, metric=spec.metric, seed=seed, dev=dev, best_epoch=best_epoch, test=best_test,
                majority=majority,
                n_train=len(tr), n_valid=len(va), n_test={lg: len(v) for lg, v in te.items()},
                trainable_params=n_train, truncated_words=truncated, seconds=round(time.time() - t0, 1))


@torch.no_grad()
def sentence_vectors(model_path: str, lines: Sequence[str], batch_size: int = 32, max_length: int = 128) -> np.ndarray:
    """float32 ``[n, hidden]``: mean-pooled last-layer states (special tokens excluded) of each line."""
    from transformers import AutoModel

    tok = _tokenizer(model_path)
    model = AutoModel.from_pretrained(model_path)
    model.eval()
    out = []
    for a in range(0, len(lines), batch_size):
        enc = tok(list(lines[a:a + batch_size]), truncation=True, max_length=max_length, padding=True,
                  return_special_tokens_mask=True, return_tensors="pt")
        keep = (enc.pop("special_tokens_mask") == 0) & enc["attention_mask"].bool()
        h = model(**enc).last_hidden_state
        m = keep.unsqueeze(-1).float()
        out.append(((h * m).sum(1) / m.sum(1).clamp(min=1)).numpy())
    return np.concatenate(out).astype(np.float32)


def umap_before_after(models: Sequence[Tuple[str, str]], texts: Dict[str, List[str]], path: str) -> Dict[str, float]:
    """UMAP panels (one per model) of sentence vectors coloured by language; returns the
    cross-validated language-probe accuracy per model (lower: more language-neutral)."""
    from csfair.evaluation.analysis import language_probe, umap_figure

    panels, probe = [], {}
    langs = [lg for lg in texts for _ in texts[lg]]
    lines = [ln for lg in texts for ln in texts[lg]]
    for name, path_ in models:
        x = sentence_vectors(path_, lines)
        probe[name] = language_probe(x, langs)
        panels.append(dict(title=f"{name} (language probe {probe[name]:.3f})", x=x, labels=langs))
    umap_figure(panels, path, title="mean-pooled sentence vectors")
    return probe


def _table(results: List[Dict], task: str, models: Sequence[str]) -> str:
    rows = [r for r in results if r["task"] == task]
    if not rows:
        return ""
    metric = rows[0]["metric"]
    langs = sorted(rows[0]["test"])
    lines = [f"### {task} (frozen encoder; test {metric}, mean ± std over seeds, dev-selected epoch)", "",
             "| model | " + " | ".join(langs) + " | seeds |", "|---|" + "---|" * (len(langs) + 1)]
    for m in models:
        mr = [r for r in rows if r["model"] == m]
        cells = []
        for lg in langs:
            mean, std, n = M.mean_std([100 * r["test"][lg][metric] for r in mr])
            cells.append(f"{mean:.2f} ± {std:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {len(mr)} |")
    maj = rows[0]["majority"]
    lines.append("| majority class | " + " | ".join(f"{100 * maj[lg][metric]:.2f}" for lg in langs) + " | - |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m csfair_hf.probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="NAME=PATH_OR_HUB_ID (repeatable)")
    p.add_argument("--tasks", default="lid-calcs,lid-sentimix,sentiment-sentimix,pos-sagt,pos-arabizi",
                   help=f"comma-separated, of: {', '.join(TASKS)}")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (head initialisation and batch order)")
    p.add_argument("--max-train", type=int, default=3000, help="seeded subset of the training set")
    p.add_argument("--max-eval", type=int, default=500, help="seeded subset of each dev/test set")
    p.add_argument("--epochs", type=int, default=None, help="default: the task's (3)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of the head")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    p.add_argument("--umap", action="store_true", help="also the UMAP figure and language probe (en vs es lines)")
    p.add_argument("--umap-lines", type=int, default=300, help="lines per language for the UMAP")
    p.add_argument("--out", required=True, help="writes hf_probe.json (and umap_sent_mean.png) here")
    args = p.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the expected "head newly initialised" load reports, once per run
    models = []
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--model {spec!r}: expected NAME=PATH_OR_HUB_ID")
        models.append((name, path))
    tasks = [t for t in args.tasks.split(",") if t]
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        p.error(f"unknown task(s) {bad}; known: {', '.join(TASKS)}")
    os.makedirs(args.out, exist_ok=True)
    results = []
    for t in tasks:
        for name, path in models:
            for seed in [int(s) for s in args.seeds.split(",")]:
                r = run_task(path, TASKS[t], seed, args.max_train, args.max_eval, args.epochs, args.lr, args.batch_size)
                r["model"] = name
                results.append(r)
                print(f"{t} {name} seed {seed}: test " + ", ".join(f"{lg} {100 * v[r['metric']]:.2f}"
                      for lg, v in r["test"].items()) + f" (best epoch {r['best_epoch']}, {r['seconds']} s)", flush=True)
    report = dict(models=dict(models), tasks=tasks, seeds=args.seeds, max_train=args.max_train,
                  max_eval=args.max_eval, lr=args.lr, results=results)
    if args.umap:
        from csfair.paths import data_file

        texts = {}
        for lg in ("en", "es"):
            with open(data_file(f"mono/derived/{lg}.txt"), encoding="utf-8-sig") as fh:
                lines = [ln.strip() for ln in fh if ln.strip()]
            texts[lg] = lines[-args.umap_lines:]  # the file's last lines
        fig = os.path.join(args.out, "umap_sent_mean.png")
        report["language_probe"] = umap_before_after(models, texts, fig)
        report["umap"] = fig
    from csfair.io import atomic_write

    with atomic_write(os.path.join(args.out, "hf_probe.json")) as fh:
        json.dump(report, fh, indent=1)
    print()
    for t in tasks:
        print(_table(results, t, [m for m, _ in models]) + "\n")
    if "language_probe" in report:
        print("language probe (en vs es sentence vectors, 5-fold CV accuracy; lower = more language-neutral): " +
              ", ".join(f"{m} {v:.3f}" for m, v in report["language_probe"].items()) + f"; UMAP: {report['umap']}")


if __name__ == "__main__":
    main()
