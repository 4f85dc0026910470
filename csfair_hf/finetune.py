"""Fine-tune a transformers encoder on word tagging or sentence classification as the fairseq columns are.

The zero-shot runner (``scripts/zeroshot.py``, through :mod:`csfair_hf.zeroshot`) fine-tunes a
``NAME=hf:PATH_OR_ID`` column with the functions here, on the same task data, seeds, selection
rule and metrics as its fairseq columns (``user_dir/finetune.py``):

* words to pieces: the model's own fast tokenizer with ``is_split_into_words=True``; a word's label
  sits on its first piece (the tokenizer's ``word_ids``), ``-100`` (ignored) on the others and on
  the special tokens (Devlin et al., 2019, Section 5.3; the fairseq path's
  ``csfair.evaluation.tagging.align_first_piece``). A word the tokenizer turns into no piece at all
  becomes the unknown token (``align_first_piece``'s ``unk_piece``); a sentence longer than the
  model's positions keeps its longest prefix of whole words (counted as ``words_truncated``).
* sentence pairs: ``tokenizer(a, b, truncation="longest_first")`` (the transformers convention;
  the fairseq path gives each side an equal share instead).
* training: ``transformers.Trainer`` (:func:`train_and_select`) with the fairseq columns' settings:
  AdamW on every parameter (fairseq's ``adam`` applies decoupled weight decay to every parameter
  too, biases and layer norms included; the stock ``Trainer`` exempts them, so ``get_decay_parameter_names``
  is overridden), betas (0.9, 0.999), eps 1e-8, no gradient clipping (fairseq's ``--clip-norm 0``),
  and the ``linear`` schedule, which is fairseq's ``polynomial_decay`` with power 1 and end 0 update
  for update (the rate ``lr * n / warmup`` before update ``n + 1``, starting at 0, then linearly to
  0 at the last update; ``tests/test_zeroshot_hf.py`` compares the two schedulers).
* loss (``compute_loss_func``): cross-entropy averaged over the labelled words (fairseq's
  ``token_tagging`` criterion: summed, divided by the number of words), optionally weighted by
  ``N / (C * n_c)`` (``balanced``) and/or focal ``(1 - p_t) ** gamma`` (Lin et al., 2017, Eq. 4),
  the same formulas; sentence classification: mean cross-entropy (fairseq's ``sentence_prediction``).
* selection: the training language's dev set is scored with the task's metric after every epoch
  and the best epoch's weights are kept, the earliest on ties (``load_best_model_at_end``, which
  replaces the best only on a strict improvement), as the fairseq columns.

Hub ids are resolved offline only (:func:`resolve_model`): nothing here downloads.
"""
import contextlib
import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

IGNORE_INDEX = -100  # transformers' (and torch's CrossEntropyLoss') ignored label

#: Files of a model directory that define what a column starts from: weights, config, tokenizer.
WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pt", ".pth")
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth")
CONFIG_FILES = ("config.json",)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spm.model", "spiece.model")


def resolve_model(name_or_path: str) -> str:
    """The local directory of a model: a directory as given, or the cached snapshot of a Hub id.

    A Hub id (``bert-base-multilingual-cased``, ``org/name``, ``org/name@REVISION``) is looked up in
    the local Hugging Face cache only (``huggingface_hub.snapshot_download(local_files_only=True)``).

    Raises:
        ValueError: a path that is not a directory, or an id not in the local cache.
    """
    if os.path.isdir(name_or_path):
        return os.path.abspath(name_or_path)
    if os.path.exists(name_or_path) or name_or_path.startswith((".", "/", "~")):
        raise ValueError(f"{name_or_path}: not a transformers model directory")
    from huggingface_hub import snapshot_download

    repo, _, revision = name_or_path.partition("@")
    try:
        return snapshot_download(repo, revision=revision or None, local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError, HFValidationError, ...: all mean "not here"
        raise ValueError(f"{name_or_path}: neither a directory nor a model in the local Hugging Face cache "
                         f"({type(err).__name__}); nothing is downloaded here: fetch it first, e.g. "
                         f"`huggingface-cli download {repo}`") from None


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_DIGESTS: Dict[tuple, dict] = {}


def model_digest(directory: str) -> dict:
    """SHA-256 of the files that define a model: weights, ``config.json`` and the tokenizer's files.

    The digest is over the files' bytes (a Hub snapshot's symlinks are followed to their blobs), so
    retrained or edited weights under the same name get another digest. READMEs, training states
    (``optimizer.pt``, ``training_args.bin``) and sub-directories are not part of it.

    Returns:
        ``{"sha256": digest of the sorted "name sha256" lines, "files": {name: sha256}}``.

    Raises:
        ValueError: the directory has no weight file or no ``config.json``.
    """
    names = sorted(n for n in os.listdir(directory) if os.path.isfile(os.path.join(directory, n)) and (
        n in CONFIG_FILES or n in TOKENIZER_FILES or (n.endswith(WEIGHT_SUFFIXES) and n not in NOT_WEIGHTS)))
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names) or "config.json" not in names:
        raise ValueError(f"{directory}: no weight file (*.safetensors, *.bin) or no config.json: not a transformers model")
    stamp = tuple((n, os.stat(os.path.join(directory, n)).st_size, os.stat(os.path.join(directory, n)).st_mtime_ns)
                  for n in names)
    key = (os.path.abspath(directory), stamp)
    if key not in _DIGESTS:
        files = {n: _sha256(os.path.join(directory, n)) for n in names}
        blob = "".join(f"{n} {h}\n" for n, h in files.items()).encode("utf-8")
        _DIGESTS[key] = {"sha256": hashlib.sha256(blob).hexdigest(), "files": files}
    return _DIGESTS[key]


def load_tokenizer(directory: str):
    """The model's fast tokenizer, able to take pre-split words.

    Byte-level BPE tokenizers (RoBERTa, GPT-2) take pre-split words only with
    ``add_prefix_space=True`` (each word then gets its word-start marker ``Ġ``, as in running text);
    they are reloaded with it.

    Raises:
        ValueError: the directory has no fast (``tokenizers``) tokenizer: word ids need one.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{directory}: {type(tok).__name__} is not a fast tokenizer; word-piece alignment needs "
                         "word_ids() (save the model with a tokenizer.json)")
    try:
        tok([["a", "b"]], is_split_into_words=True)
    except Exception:  # RoBERTa-style: "You need to instantiate ... with add_prefix_space=True"
        tok = AutoTokenizer.from_pretrained(directory, add_prefix_space=True)
    if tok.pad_token_id is None:
        raise ValueError(f"{directory}: the tokenizer has no padding token")
    return tok


@dataclass
class Encoded:
    """One split of a task encoded for a model.

    Attributes:
        input_ids: per example, token ids with the model's special tokens.
        token_type_ids: per example (sentence pairs of models that use them), else None.
        first: tagging: per example, the position of each kept word's first piece.
        labels: tagging: per example, per kept word, the gold label; classification: per example.
        stats: ``examples``, ``words``/``pieces``/``words_truncated`` (tagging) or
            ``texts_truncated``/``labels`` (classification), ``unk_rate`` (share of the non-special
            tokens that are the unknown token), ``unk_word_rate`` (share of the words that are nothing
            but the unknown token).
    """

    input_ids: List[List[int]]
    labels: List
    first: Optional[List[List[int]]] = None
    token_type_ids: Optional[List[List[int]]] = None
    stats: Dict = field(default_factory=dict)


def _unk_share(tokenizer, rows: Sequence[Sequence[int]]) -> float:
    specials = set(tokenizer.all_special_ids)
    unk = tokenizer.unk_token_id
    total = bad = 0
    for ids in rows:
        for t in ids:
            if t not in specials or t == unk:
                total += 1
                bad += t == unk
    return bad / total if total else 0.0


def _unk_word_share(tokenizer, enc, n: int) -> float:
    """Share of the words of ``enc`` (a fast tokenizer's batch encoding of ``n`` examples) whose tokens are
    all the unknown token, or bare word-boundary markers (``▁``, ``Ġ``) beside one: the word-level rate of
    :func:`csfair.evaluation.tasks.unk_word_rates` (a script the vocabulary lacks is ``▁`` + ``<unk>`` per word
    under sentencepiece, half ``<unk>`` by pieces but entirely unknown by words)."""
    unk = tokenizer.unk_token_id
    if unk is None or n == 0:
        return 0.0
    boundary = {i for t, i in tokenizer.get_vocab().items() if not t.strip("\u2581\u0120 ")}
    total = bad = 0
    for i in range(n):
        words = {}
        for t, w, sq in zip(enc["input_ids"][i], enc.word_ids(i), enc.sequence_ids(i)):
            if w is None:
                continue
            st = words.setdefault((sq, w), [False, True])
            st[0] |= t == unk
            st[1] &= t == unk or t in boundary
        total += len(words)
        bad += sum(a and b for a, b in words.values())
    return bad / total if total else 0.0


def encode_tagging(tokenizer, sentences: Sequence[Tuple[Sequence[str], Sequence[str]]], max_length: int) -> Encoded:
    """Words and labels to token ids with first-piece positions (see the module docstring).

    Args:
        tokenizer: a fast tokenizer (:func:`load_tokenizer`).
        sentences: ``(words, labels)`` per sentence, one label per word.
        max_length: longest input including the special tokens (the runner: 128).

    Returns:
        Encoded (``first``: one position per kept word; ``labels``: the kept words' labels).

    Raises:
        ValueError: a sentence with as many words as labels does not, or the tokenizer lost a word.
    """
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    words = [[w if w.strip() else tokenizer.unk_token for w in ws] for ws, _ in sentences]
    for i, (ws, labs) in enumerate(sentences):
        if len(ws) != len(labs):
            raise ValueError(f"sentence {i}: {len(ws)} words but {len(labs)} labels")
    kept_words, dropped = [], 0
    if words:
        with _quiet():  # lengths beyond the maximum are cut below, at a word boundary
            plain = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    for i, ws in enumerate(words):
        wid = plain.word_ids(i)
        missing = set(range(len(ws))) - set(wid)
        if missing:  # a word the tokenizer drops entirely (e.g. a control character) keeps its label on <unk>
            ws = [tokenizer.unk_token if j in missing else w for j, w in enumerate(ws)]
            words[i] = ws
            wid = tokenizer([ws], is_split_into_words=True, add_special_tokens=False).word_ids(0)
        k = len(ws) if len(wid) <= budget else wid[budget]  # the word whose pieces cross the budget is cut
        kept_words.append(ws[:k])
        dropped += len(ws) - k
    enc = tokenizer(kept_words, is_split_into_words=True, add_special_tokens=True) if kept_words else None
    input_ids, first, labels = [], [], []
    for i, ws in enumerate(kept_words):
        ids = enc["input_ids"][i]
        wid = enc.word_ids(i)
        pos = [j for j, w in enumerate(wid) if w is not None and (j == 0 or wid[j - 1] != w)]
        if len(pos) != len(ws) or len(ids) > max_length:
            raise ValueError(f"sentence {i}: {len(ws)} words but {len(pos)} first pieces in {len(ids)} tokens "
                             f"(max {max_length}); the tokenizer does not keep pre-split words apart")
        input_ids.append(ids)
        first.append(pos)
        labels.append(list(sentences[i][1][: len(ws)]))
    stats = dict(examples=len(sentences), words=sum(len(w) for w in kept_words),
                 pieces=sum(len(x) - tokenizer.num_special_tokens_to_add(pair=False) for x in input_ids),
                 words_truncated=dropped, unk_rate=_unk_share(tokenizer, input_ids),
                 unk_word_rate=_unk_word_share(tokenizer, enc, len(kept_words)) if enc is not None else 0.0)
    return Encoded(input_ids=input_ids, labels=labels, first=first, stats=stats)


def encode_classification(tokenizer, texts_a: Sequence[str], texts_b: Optional[Sequence[str]], labels: Sequence[str],
                          max_length: int) -> Encoded:
    """Texts (or text pairs) to token ids, truncated to ``max_length`` (longest first).

    Returns:
        Encoded (``labels``: one label per example; ``texts_truncated``: examples that were cut).
    """
    args = (list(texts_a),) + ((list(texts_b),) if texts_b is not None else ())
    if not texts_a:
        return Encoded([], [], stats=dict(examples=0, texts_truncated=0, labels={}, unk_rate=0.0, unk_word_rate=0.0))
    with _quiet():  # "sequence length is longer than the maximum": counted here, then truncated
        full = tokenizer(*args, truncation=False)["input_ids"]
    enc = tokenizer(*args, truncation=True, max_length=max_length)
    counts: Dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    stats = dict(examples=len(texts_a), texts_truncated=sum(len(x) > max_length for x in full), labels=counts,
                 unk_rate=_unk_share(tokenizer, enc["input_ids"]),
                 unk_word_rate=_unk_word_share(tokenizer, enc, len(texts_a)))
    return Encoded(input_ids=enc["input_ids"], labels=list(labels), token_type_ids=enc.get("token_type_ids"),
                   stats=stats)


def label_list(train_labels: Sequence) -> List[str]:
    """The head's labels: every training label, most frequent first (ties by name), as fairseq's label dictionary."""
    counts: Dict[str, int] = {}
    for x in train_labels:
        for lab in (x if isinstance(x, (list, tuple)) else [x]):
            counts[lab] = counts.get(lab, 0) + 1
    return sorted(counts, key=lambda lab: (-counts[lab], lab))


def balanced_weights(train_labels: Sequence, labels: Sequence[str]) -> torch.Tensor:
    """``N / (C * n_c)`` per head label from the training label counts (fairseq ``token_tagging``'s ``balanced``)."""
    counts = torch.zeros(len(labels))
    index = {lab: i for i, lab in enumerate(labels)}
    for x in train_labels:
        for lab in (x if isinstance(x, (list, tuple)) else [x]):
            counts[index[lab]] += 1
    return counts.sum() / (len(labels) * counts)


@contextlib.contextmanager
def _quiet(warnings: bool = False):
    """transformers' progress bars off, and its warnings unless ``warnings`` (expected ones: a new head, untruncated
    lengths counted)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if not warnings:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(directory: str, kind: str, labels: Sequence[str], seed: int, freeze_encoder: bool = False):
    """A ``AutoModelFor{Token,Sequence}Classification`` with a fresh head of ``len(labels)`` outputs.

    The head is initialised under ``seed`` (``transformers.set_seed``). With ``freeze_encoder``
    only the head trains (and the pooler, which in BERT-style models is the dense + tanh layer
    that fairseq's sentence head holds itself).
    """
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    transformers.set_seed(seed)
    cls = AutoModelForTokenClassification if kind == "tagging" else AutoModelForSequenceClassification
    with _quiet():  # "Some weights ... newly initialized": the head, as intended
        model = cls.from_pretrained(directory, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                    label2id={lab: i for i, lab in enumerate(labels)})
    if freeze_encoder:
        for name, p in model.base_model.named_parameters():
            if ".pooler." not in f".{name}":
                p.requires_grad = False
    return model


def features(data: Encoded, kind: str, label2id: Optional[Dict[str, int]] = None) -> List[Dict[str, list]]:
    """The examples as the stock collators take them (``DataCollatorForTokenClassification``, ``DataCollatorWithPadding``).

    Args:
        data: an encoded split.
        kind: ``tagging`` or ``classification``.
        label2id: with it, ``labels``: tagging, per token the word's label on its first piece and
            ``-100`` elsewhere; classification, one id. A label the head lacks (an evaluation label
            unseen in training) is ``-100``; metrics read ``data.labels``, not these ids.

    Returns:
        One dict per example: ``input_ids`` (``token_type_ids`` for pairs of models that use them), ``labels``.
    """
    out = []
    for i, ids in enumerate(data.input_ids):
        ex = {"input_ids": list(ids)}
        if data.token_type_ids is not None:
            ex["token_type_ids"] = list(data.token_type_ids[i])
        if label2id is not None:
            if kind == "tagging":
                target = [IGNORE_INDEX] * len(ids)
                for p, lab in zip(data.first[i], data.labels[i]):
                    target[p] = label2id.get(lab, IGNORE_INDEX)
                ex["labels"] = target
            else:
                ex["labels"] = label2id.get(data.labels[i], IGNORE_INDEX)
        out.append(ex)
    return out


def collator(kind: str, tokenizer):
    """The stock padding collator of the task (right padding: word positions are counted from the left)."""
    from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

    if tokenizer.padding_side != "right":
        raise ValueError(f"{type(tokenizer).__name__}: padding side {tokenizer.padding_side!r}; first-piece "
                         "positions need right padding")
    if kind == "tagging":
        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE_INDEX)
    return DataCollatorWithPadding(tokenizer)


def _pairs(data: Encoded, kind: str, start: int, argmax, id2label) -> List[Tuple]:
    """``(gold, pred)`` of examples ``start, start + 1, ...`` from their argmax ids (rows of ``argmax``)."""
    out = []
    for r in range(len(argmax)):
        i = start + r
        if kind == "tagging":
            out.append((list(data.labels[i]), [id2label[int(argmax[r][p])] for p in data.first[i]]))
        else:
            out.append((data.labels[i], id2label[int(argmax[r])]))
    return out


def loss_function(kind: str, class_weights: Optional[torch.Tensor] = None, focal_gamma: float = 0.0):
    """``Trainer``'s ``compute_loss_func``: the fairseq criteria's losses (see the module docstring).

    Tagging: per labelled word ``-log p_t``, times ``(1 - p_t) ** focal_gamma`` (Lin et al., 2017,
    Eq. 4) and ``class_weights[t]``, summed and divided by the number of labelled words (the
    ``token_tagging`` criterion); classification: mean cross-entropy (``sentence_prediction``).
    A batch without a labelled word has loss 0 (the update still happens, as in fairseq, which
    divides by ``sample_size or 1``).

    Returns:
        ``f(outputs, labels, num_items_in_batch=None) -> scalar tensor``; ``labels``: (batch, tokens)
        int64 with ``-100`` ignored (tagging) or (batch,) int64 (classification).
    """
    def compute(outputs, labels, num_items_in_batch=None):  # no gradient accumulation: the batch is the whole step
        logits = outputs.logits.float()
        keep = labels != IGNORE_INDEX
        if not keep.any():
            return logits.sum() * 0.0
        lp = torch.log_softmax(logits[keep], dim=-1)
        t = labels[keep]
        nll = -lp.gather(1, t[:, None]).squeeze(1)
        if kind == "tagging":
            if focal_gamma > 0:
                nll = (1 - torch.exp(-nll)).pow(focal_gamma) * nll
            if class_weights is not None:
                nll = nll * class_weights.to(nll.device)[t]
        return nll.sum() / keep.sum()

    return compute


def _trainer_class():
    from transformers import Trainer

    class AllParamDecayTrainer(Trainer):
        """``Trainer`` whose AdamW decays every parameter, as fairseq's ``adam`` (``--weight-decay``) does.

        The stock ``Trainer`` exempts biases and layer norms from weight decay; the fairseq columns
        do not, so the transformers columns do not either.
        """

        def get_decay_parameter_names(self, model) -> List[str]:
            return [name for name, _ in model.named_parameters()]

    return AllParamDecayTrainer


def train_and_select(model, kind: str, train: Encoded, dev: Encoded, labels: Sequence[str], tokenizer,
                     dev_score: Callable[[List[Tuple]], float], seed: int, lr: float, epochs: int, batch_size: int,
                     weight_decay: float, warmup_ratio: float, output_dir: str,
                     class_weights: Optional[torch.Tensor] = None, focal_gamma: float = 0.0,
                     log: Callable[[str], None] = print, callbacks: Sequence = ()) -> Tuple[int, List[float], int]:
    """Fine-tune with ``transformers.Trainer``, score dev after each epoch, leave the best epoch's weights in ``model``.

    The settings are the fairseq columns' (module docstring); fp32. The best epoch is
    ``load_best_model_at_end`` with ``save_strategy="best"`` (a checkpoint only on a strict
    improvement: ties keep the earliest epoch). Epoch ``e`` is shuffled under ``data_seed + e``
    (accelerate's ``SeedableRandomSampler``) with ``data_seed = seed * 2**20``: no two (seed, epoch)
    share an order; dropout follows ``seed`` (``Trainer`` calls ``set_seed``).

    Args:
        model: from :func:`load_model`.
        kind: ``tagging`` or ``classification``.
        train: the training split; dev: the training language's dev split.
        labels: the head's labels (index = output).
        tokenizer: the model's tokenizer (padding).
        dev_score: ``[(gold, pred), ...]`` of the dev split (as :func:`predict`) to the dev score of the
            task's metric (higher is better; must be finite).
        seed: the fine-tuning seed.
        lr, epochs, batch_size, weight_decay, warmup_ratio: as the fairseq columns.
        output_dir: where ``Trainer`` writes the best checkpoint; removed afterwards.
        class_weights: per-label loss weights (tagging), or None.
        focal_gamma: focal-loss gamma (tagging; 0: cross-entropy).
        log: receives one line per epoch.
        callbacks: extra ``TrainerCallback``s (tests read the learning rate of each update).

    Returns:
        (best epoch (1-based), dev score per epoch (rounded to 6 places), number of updates).

    Raises:
        ValueError: ``epochs < 1``, an empty training split, a non-finite dev score, or a batch size
            that the visible GPUs do not divide.
    """
    import shutil

    from transformers import PrinterCallback, TrainingArguments

    if epochs < 1 or not train.input_ids:
        raise ValueError(f"nothing to train: {epochs} epochs, {len(train.input_ids)} training examples")
    label2id = {lab: i for i, lab in enumerate(labels)}
    per_epoch = math.ceil(len(train.input_ids) / batch_size)
    total = epochs * per_epoch
    by_epoch: List[float] = []

    def compute_metrics(pred):  # predictions: the argmax ids of the dev split in order (eval is sequential)
        value = float(dev_score(_pairs(dev, kind, 0, pred.predictions, model.config.id2label)))
        if not math.isfinite(value):
            raise ValueError(f"dev score {value} after epoch {len(by_epoch) + 1}: the best epoch is undefined")
        by_epoch.append(value)
        log(f"epoch {len(by_epoch)}: dev {value:.4f}")
        return {"dev": value}

    cuda = torch.cuda.device_count()
    if cuda > 1 and batch_size % cuda:  # Trainer splits a batch over the visible GPUs (DataParallel)
        raise ValueError(f"batch size {batch_size} is not a multiple of the {cuda} visible GPUs; "
                         "set CUDA_VISIBLE_DEVICES to one GPU")
    per_device = batch_size // max(cuda, 1)
    targs = TrainingArguments(
        output_dir=output_dir, seed=seed, data_seed=seed * 2 ** 20,
        per_device_train_batch_size=per_device, per_device_eval_batch_size=64, num_train_epochs=epochs,
        optim="adamw_torch", learning_rate=lr, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        weight_decay=weight_decay, lr_scheduler_type="linear", warmup_steps=math.ceil(warmup_ratio * total),
        max_grad_norm=0.0,  # fairseq's --clip-norm 0
        eval_strategy="epoch", save_strategy="best", save_only_model=True, save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="dev", greater_is_better=True,
        logging_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=cuda > 0)
    assert targs.train_batch_size == batch_size, (targs.train_batch_size, batch_size)
    trainer = _trainer_class()(
        model=model, args=targs, data_collator=collator(kind, tokenizer),
        train_dataset=features(train, kind, label2id), eval_dataset=features(dev, kind, label2id),
        compute_loss_func=loss_function(kind, class_weights, focal_gamma if kind == "tagging" else 0.0),
        compute_metrics=compute_metrics, preprocess_logits_for_metrics=lambda logits, _: logits.argmax(-1),
        callbacks=list(callbacks))
    trainer.remove_callback(PrinterCallback)  # compute_metrics' epoch lines are the log
    try:
        with _quiet(warnings=True):  # a "Writing model shards" bar per checkpoint
            trainer.train()
        state = trainer.state
        if state.global_step != total or len(by_epoch) != epochs or state.best_global_step is None:
            raise RuntimeError(f"Trainer ran {state.global_step} of {total} updates with {len(by_epoch)} of "
                               f"{epochs} evaluations (best step {state.best_global_step})")
        best_epoch = state.best_global_step // per_epoch
    finally:
        trainer.accelerator.free_memory()  # the optimizer's moments go with the trainer
        shutil.rmtree(output_dir, ignore_errors=True)
    model.eval()
    return best_epoch, [round(v, 6) for v in by_epoch], total


@torch.no_grad()
def predict(model, data: Encoded, kind: str, tokenizer, batch_size: int = 64) -> List[Tuple]:
    """``[(gold, pred), ...]`` per example in data order, as ``user_dir.finetune.predict``.

    Tagging: label lists over the kept words (the argmax at each word's first piece);
    classification: label strings. Labels are the model's ``config.id2label``; batches are padded
    by the same collator as in training.
    """
    model.eval()
    device = next(model.parameters()).device
    pad = collator(kind, tokenizer)
    feats = features(data, kind)
    out = []
    for start in range(0, len(feats), batch_size):
        batch = pad(feats[start:start + batch_size])
        arg = model(**{k: v.to(device) for k, v in batch.items()}).logits.argmax(-1).cpu()
        out.extend(_pairs(data, kind, start, arg, model.config.id2label))
    return out
