"""The zero-shot runner's backend for transformers columns (``scripts/zeroshot.py --checkpoint NAME=hf:PATH_OR_ID``).

The same five functions as the runner's fairseq path, with the same signatures and return values, so
that the runner records an ``hf:`` column exactly as it records a fairseq one (results.jsonl
fields, items for the paired bootstrap, failure flags, parameter counts, tables):

* :func:`prepare`: the task's data (the same ``TaskSpec`` loader, seed-1 subsets of the same sizes
  as ``csfair.evaluation.tasks.write_task_data``) encoded with the model's tokenizer, in memory;
  counts, ``<unk>`` rates and unseen test labels per ``<lang>.<split>``;
* :func:`finetune_and_select`: ``AutoModelFor{Token,Sequence}Classification`` fine-tuned by
  ``transformers.Trainer`` for the runner's epochs, the best epoch on the training language's dev set kept, the dev pairs, flags
  and the majority-class baseline;
* :func:`evaluate`, :func:`count_parameters`, :func:`discard`.

:func:`column_digest` replaces the checkpoint SHA-256 of the protocol key: the digest of the
model's weights, config and tokenizer files (:func:`csfair_hf.finetune.model_digest`).

Text of classification tasks is given to the tokenizer as it is, except for models exported by
csfair (``csfair_export.json`` in the directory), which read Moses-tokenised text as csfair's
fairseq models do (the same Moses languages as ``write_task_data``).
"""
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch

from csfair.evaluation import metrics as M
from csfair.evaluation.corpora import subsample
from csfair.evaluation.results import failure_flags, majority_predictions
from csfair.text import moses_tokenize_lines
from csfair_hf.finetune import (
    Encoded,
    balanced_weights,
    encode_classification,
    encode_tagging,
    label_list,
    load_model,
    load_tokenizer,
    model_digest,
    predict,
    resolve_model,
    train_and_select,
)

MAX_LENGTH = 128  # the runner's fine-tuning length (Visser et al., 2025, Table 2)
DATA_SEED = 1  # the runner's data_seed: subsets and splits never depend on the fine-tuning seed
ROBERTA_LIKE = ("roberta", "camembert")  # learned positions offset by padding_idx + 1


def log(msg):
    print(f"[zeroshot/hf] {msg}", flush=True)


@dataclass
class HFTaskData:
    """A task encoded for one transformers model (the ``data_root`` of an ``hf:`` column)."""

    directory: str
    tokenizer: object
    labels: List[str]
    train_labels: List
    splits: Dict[Tuple[str, str], Encoded] = field(default_factory=dict)


def column_digest(name_or_path: str) -> str:
    """``hf:`` + the model's digest (weights, config, tokenizer files); what the protocol key holds."""
    return "hf:" + model_digest(resolve_model(name_or_path))["sha256"]


def _score(spec, pairs):
    """The task's metrics dict (the runner's ``score``: csfair.evaluation.metrics by ``spec.metric_fn``)."""
    return getattr(M, spec.metric_fn)([g for g, _ in pairs], [p for _, p in pairs])


_TASK_DATA: Dict[tuple, dict] = {}


def _load(spec) -> dict:
    """The task's loader output under the data seed, read once per process (columns share it; never mutated)."""
    key = (spec.name, getattr(spec, "digest", None))  # a task redeclared under the same name is another task
    if key not in _TASK_DATA:
        _TASK_DATA[key] = spec.load(DATA_SEED)
    return _TASK_DATA[key]


def _max_length(config, tokenizer) -> int:
    positions = config.max_position_embeddings
    if any(k in config.model_type for k in ROBERTA_LIKE):
        positions -= (config.pad_token_id or 0) + 1
    limit = tokenizer.model_max_length if tokenizer.model_max_length and tokenizer.model_max_length < 10 ** 6 else positions
    return min(MAX_LENGTH, positions, limit)


def prepare(spec, model, args, out):
    """Encode a task for the column's model; ``(data, protocol arch entries, max length, stats)``.

    Raises:
        SystemExit: an option the transformers heads do not have (``--crf``).
        ValueError: the model cannot be resolved offline, or (``--unseen-labels error``) an
            evaluation split has a label the training split lacks.
    """
    import transformers
    from transformers import AutoConfig

    if args.crf:
        raise SystemExit(f"{model.name}: --crf is not available for hf: columns (*ForTokenClassification has no CRF)")
    directory = resolve_model(model.hf)
    tokenizer = load_tokenizer(directory)
    config = AutoConfig.from_pretrained(directory)
    max_length = _max_length(config, tokenizer)
    moses = os.path.exists(os.path.join(directory, "csfair_export.json"))
    data = _load(spec)
    parts = {(spec.source_lang, "train"): subsample(data["train"], args.max_train, DATA_SEED),
             (spec.source_lang, "valid"): subsample(data["valid"], args.max_eval, DATA_SEED)}
    for lg in spec.test_langs:
        parts[(lg, "test")] = subsample(data["test"][lg], args.max_eval, DATA_SEED)
    train_labels = [list(s.labels) if spec.kind == "tagging" else s.label for s in parts[(spec.source_lang, "train")]]
    labels = label_list(train_labels)
    task = HFTaskData(directory, tokenizer, labels, train_labels)
    stats = {}
    known = set(labels)
    for (lg, split), items in parts.items():
        if spec.kind == "tagging":
            enc = encode_tagging(tokenizer, [(s.words, s.labels) for s in items], max_length)
            gold = [lab for labs in enc.labels for lab in labs]
        else:
            a, b = [x.text_a for x in items], [x.text_b or "" for x in items]
            if moses and spec.pretokenize:
                text_lang = "en" if lg in (spec.source_lang, "cs") else lg.split("-")[0]
                a = list(moses_tokenize_lines(a, text_lang))
                b = list(moses_tokenize_lines(b, text_lang)) if spec.pair else b
            enc = encode_classification(tokenizer, a, b if spec.pair else None, [x.label for x in items], max_length)
            gold = enc.labels
        unseen = dict(sorted(Counter(g for g in gold if g not in known).items()))
        if unseen:
            where = f"{spec.name} {lg}.{split}"
            if args.unseen_labels == "error":
                raise ValueError(f"{where}: labels {unseen} (label: occurrences) are not in the training labels; use "
                                 "--unseen-labels never-predicted to score them as a class the model never predicts")
            log(f"{where}: labels never seen in training, scored as never predicted: {unseen}")
        task.splits[(lg, split)] = enc
        stats[f"{lg}.{split}"] = dict(enc.stats, unseen_labels=unseen)
    kind = "TokenClassification" if spec.kind == "tagging" else "SequenceClassification"
    arch = ["hf", config.model_type, f"AutoModelFor{kind}", f"transformers={transformers.__version__}",
            f"moses={moses}", "first-piece labels", "pair truncation longest_first"]
    return task, arch, max_length, stats


_LIVE: Dict[str, tuple] = {}  # handle -> (model, task data): the fine-tuned model stays in memory until discarded


def _device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def finetune_and_select(spec, model, arch_args, max_pos, stats, data_root, run_dir, seed, lr, epochs, args):
    """Fine-tune, keep the best epoch on dev.

    Returns:
        (handle, updates, best epoch, dev per epoch, dev pairs, run flags, majority-class dev score);
        the handle names ``run_dir/hf-best`` (written with ``--keep-checkpoints``: a transformers
        directory of the fine-tuned model and its tokenizer).
    """
    _LIVE.clear()
    os.makedirs(run_dir, exist_ok=True)
    task: HFTaskData = data_root
    tok = task.tokenizer
    net = load_model(task.directory, spec.kind, task.labels, seed, args.freeze_encoder).to(_device())
    dev = task.splits[(spec.source_lang, "valid")]
    weights = None
    if spec.kind == "tagging" and args.class_weighting == "balanced":
        weights = balanced_weights(task.train_labels, task.labels)
    best_epoch, by_epoch, updates = train_and_select(
        net, spec.kind, task.splits[(spec.source_lang, "train")], dev, task.labels, tok,
        lambda pairs: _score(spec, pairs)[spec.metric],
        seed, lr, epochs, args.batch_size, args.weight_decay, args.warmup_ratio, os.path.join(run_dir, "hf-trainer"),
        class_weights=weights, focal_gamma=args.focal_gamma if spec.kind == "tagging" else 0.0,
        log=lambda m: log(f"{model.name} {spec.name} seed {seed} {m}"))
    pairs = predict(net, dev, spec.kind, tok)
    gold = [g for g, _ in pairs]
    majority = _score(spec, list(zip(gold, majority_predictions(task.train_labels, gold))))[spec.metric]
    flags = failure_flags(by_epoch[best_epoch - 1], majority, gold, [p for _, p in pairs])
    handle = os.path.join(run_dir, "hf-best")
    if os.path.isdir(handle):
        shutil.rmtree(handle)
    if args.keep_checkpoints:
        net.save_pretrained(handle)
        tok.save_pretrained(handle)
    _LIVE[handle] = (net, task)
    return handle, updates, best_epoch, by_epoch, pairs, flags, majority


def _model(handle):
    if handle not in _LIVE:
        raise KeyError(f"{handle}: no fine-tuned model in memory (discarded)")
    return _LIVE[handle][0]


def count_parameters(handle) -> int:
    """Parameters of the fine-tuned model (encoder and head; tied embeddings once; buffers excluded)."""
    return int(sum(p.numel() for p in _model(handle).parameters()))


def evaluate(spec, handle, data_root, langs, keep=None):
    """``{(lang, "test"): (metrics, n)}``; ``keep`` (a dict) receives the (gold, pred) pairs."""
    net = _model(handle)
    out = {}
    for lang in langs:
        pairs = predict(net, data_root.splits[(lang, "test")], spec.kind, data_root.tokenizer)
        out[(lang, "test")] = (_score(spec, pairs), len(pairs))
        if keep is not None:
            keep[(lang, "test")] = pairs
    return out


def discard(handle) -> None:
    """Free the fine-tuned model and remove its directory, if written."""
    _LIVE.pop(handle, None)
    if os.path.isdir(handle):
        shutil.rmtree(handle)
