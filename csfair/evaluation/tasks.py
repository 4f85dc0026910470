"""Fine-tuning and zero-shot evaluation data: task definitions and converters.

Each task (Visser et al., 2025, Section 3.4; the LinCE-style code-switched tasks of the
Spanglish-mBERT study and Winata et al., 2021) names its training language data, its English (or
in-domain) dev set for model selection, and its zero-shot test sets per language, all from
``$CSFAIR_DATA``. :func:`write_task_data` writes ``fairseq-preprocess`` inputs with a pretrained
checkpoint's sentencepiece model:

    <out>/raw/<lang>.<split>.input0   pieces (space-separated)
    <out>/raw/<lang>.<split>.input1   second text's pieces (sentence pairs)
    <out>/raw/<lang>.<split>.label    tagging: one label per piece (first piece of a word; <pad>
                                      on the others); classification: one label per line
    <out>/raw/<lang>.<split>.jsonl    the kept gold words and labels (tagging), for reports
    <out>/raw/stats.json              counts per language and split

Splits: ``train`` and ``valid`` in the training language, ``test`` in every evaluated language.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from csfair.evaluation.corpora import (
    TaggedSentence,
    TextExample,
    read_calcs,
    read_conllu_upos,
    read_ner,
    read_sentimix,
    read_sick,
    read_udpos_tsv,
    read_xnli,
    split_by_premise,
    subsample,
)
from csfair.io import PathLike, atomic_write
from csfair.paths import data_file
from csfair.evaluation.tagging import align_first_piece
from csfair.text import moses_tokenize_lines


@dataclass
class TaskSpec:
    """A fine-tuning task and its zero-shot evaluation.

    Attributes:
        name: registry name (``pos``, ``ner-wikiann``, ``xnli``, ...).
        kind: ``tagging`` or ``classification``.
        metric: the table's metric (a key of the metrics dict).
        metric_fn: ``token_accuracy``, ``span_f1`` or ``sentence_metrics`` (csfair.evaluation.metrics).
        epochs: the paper's epochs for this task type (Table 2: 3 for NER, 4 for NLI).
        source_lang: training language (the row name of the dev results).
        test_langs: evaluated languages.
        load: ``(seed) -> {"train": [...], "valid": [...], "test": {lang: [...]}}``.
        pair: sentence-pair classification.
        text_lang: language for Moses pre-tokenisation of raw text (classification), per split/lang.
    """

    name: str
    kind: str
    metric: str
    metric_fn: str
    epochs: int
    source_lang: str
    test_langs: Sequence[str]
    load: Callable[[int], Dict]
    pair: bool = False
    pretokenize: bool = False
    notes: str = ""
    extra: Dict = field(default_factory=dict)


def _split_off(items: List, frac: float, seed: int):
    """Seeded split of a list into (rest, held-out fraction)."""
    import random

    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    n = max(1, round(len(items) * frac))
    held = set(idx[:n])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


POS_LANGS = ("fr", "de", "es", "tr", "fi", "hi")
XNLI_LANGS = ("fr", "de", "es", "tr", "sw", "hi")


def _pos(seed):
    return {"train": read_udpos_tsv(data_file("pos/udpos-xtreme/train-en.tsv")),
            "valid": read_udpos_tsv(data_file("pos/udpos-xtreme/dev-en.tsv")),
            "test": {lg: read_udpos_tsv(data_file(f"pos/udpos-xtreme/dev-{lg}.tsv")) for lg in POS_LANGS}}


def _wikiann(seed):
    return {"train": read_ner(data_file("ner/wikiann/en/train.conllu")),
            "valid": read_ner(data_file("ner/wikiann/en/val.conllu")),
            "test": {lg: read_ner(data_file(f"ner/wikiann/{lg}/test.conllu")) for lg in ("de", "es")}}


def _wikineural(seed):
    # WikiNEuRal is staged as val + test only: English val trains, English test selects.
    return {"train": read_ner(data_file("ner/wikineural/en/val.conllu")),
            "valid": read_ner(data_file("ner/wikineural/en/test.conllu")),
            "test": {lg: read_ner(data_file(f"ner/wikineural/{lg}/test.conllu")) for lg in ("fr", "de", "es")}}


def _xnli(seed, sick=False):
    rows = {lg: read_xnli(data_file(f"nli/xnli-xtreme/dev-{lg}.tsv")) for lg in ("en",) + XNLI_LANGS}
    train, dev, tests = split_by_premise(rows, "en", dev=0.1, test=0.3, seed=seed)
    if sick:
        train = train + read_sick(data_file("nli/sick/SICK.txt"))
    return {"train": train, "valid": dev, "test": {lg: tests[lg] for lg in XNLI_LANGS}}


def _calcs(seed):
    train, dev = _split_off(read_calcs(data_file("codeswitch/calcs2016-lid-spaeng/train_data.tsv")), 0.1, seed)
    return {"train": train, "valid": dev, "test": {"es-en": read_calcs(data_file("codeswitch/calcs2016-lid-spaeng/dev_data.tsv"))}}


def _sentimix_lid(seed):
    train, dev = _split_off(read_sentimix(data_file("codeswitch/sentimix2020/train_conll_spanglish.txt")), 0.1, seed)
    return {"train": train, "valid": dev, "test": {"es-en": read_sentimix(data_file("codeswitch/sentimix2020/spanglish_trial.txt"))}}


def _as_text(sents: List[TaggedSentence]) -> List[TextExample]:
    return [TextExample(" ".join(s.words), None, s.meta["sentiment"], s.source) for s in sents]


def _sentimix_sentiment(seed):
    d = _sentimix_lid(seed)
    return {"train": _as_text(d["train"]), "valid": _as_text(d["valid"]),
            "test": {k: _as_text(v) for k, v in d["test"].items()}}


def _ud(folder, prefix, lang):
    def load(seed):
        base = f"ud-cs/{folder}/{prefix}"
        return {"train": read_conllu_upos(data_file(f"{base}-train.conllu")),
                "valid": read_conllu_upos(data_file(f"{base}-dev.conllu")),
                "test": {lang: read_conllu_upos(data_file(f"{base}-test.conllu"))}}
    return load


TASKS: Dict[str, TaskSpec] = {
    t.name: t for t in [
        TaskSpec("pos", "tagging", "accuracy", "token_accuracy", 3, "en", POS_LANGS, _pos,
                 notes="XTREME UD-POS: English train, target-language dev sets as test"),
        TaskSpec("ner-wikiann", "tagging", "macro_f1", "span_f1", 3, "en", ("de", "es"), _wikiann,
                 notes="WikiANN (PAN-X): English train/val, de/es test; macro span F1 as the paper"),
        TaskSpec("ner-wikineural", "tagging", "macro_f1", "span_f1", 3, "en", ("fr", "de", "es"), _wikineural,
                 notes="WikiNEuRal (silver): English val trains, English test selects; fr/de/es test"),
        TaskSpec("xnli", "classification", "accuracy", "sentence_metrics", 4, "en", XNLI_LANGS, _xnli,
                 pair=True, pretokenize=True, notes="XNLI dev split by premise: 60% train, 10% dev (en), 30% test"),
        TaskSpec("xnli-sick", "classification", "accuracy", "sentence_metrics", 4, "en", XNLI_LANGS,
                 lambda seed: _xnli(seed, sick=True), pair=True, pretokenize=True,
                 notes="as xnli, with SICK's 9,927 English pairs added to training"),
        TaskSpec("lid-calcs", "tagging", "accuracy", "token_accuracy", 3, "cs", ("es-en",), _calcs,
                 notes="CALCS-2016 word-level LID: train (90/10 train/dev), official dev as test"),
        TaskSpec("lid-sentimix", "tagging", "accuracy", "token_accuracy", 3, "cs", ("es-en",), _sentimix_lid,
                 notes="SentiMix Spanglish token LID: train (90/10), trial as test"),
        TaskSpec("sentiment-sentimix", "classification", "macro_f1", "sentence_metrics", 3, "cs", ("es-en",),
                 _sentimix_sentiment, notes="SentiMix Spanglish tweet sentiment: train (90/10), trial as test"),
        TaskSpec("pos-sagt", "tagging", "accuracy", "token_accuracy", 3, "cs", ("tr-de",),
                 _ud("UD_Turkish_German-SAGT", "qtd_sagt-ud", "tr-de"), notes="SAGT Turkish-German UPOS"),
        TaskSpec("pos-arabizi", "tagging", "accuracy", "token_accuracy", 3, "cs", ("ar-fr",),
                 _ud("UD_Maghrebi_Arabic_French-Arabizi", "qaf_arabizi-ud", "ar-fr"), notes="Arabizi UPOS"),
    ]
}


def write_task_data(
    spec: TaskSpec,
    spm_model: PathLike,
    out_dir: PathLike,
    max_positions: int = 128,
    max_train: Optional[int] = None,
    max_eval: Optional[int] = None,
    seed: int = 1,
    langs: Optional[Sequence[str]] = None,
    workers: int = 1,
    word_level: bool = False,
) -> dict:
    """Write the raw (fairseq-preprocess input) files of a task; returns and saves the counts.

    Args:
        spec: the task.
        spm_model: the pretrained checkpoint's sentencepiece model.
        out_dir: where ``raw/`` goes.
        max_positions: longest input including ``<s>``/``</s>`` (paper: 128); longer inputs are
            cut at a word boundary (tagging) or in pieces (classification), and counted.
        max_train, max_eval: seeded subsets of the training set and of each evaluation set.
        seed: subsampling and split seed (the data split does not depend on the fine-tuning seed).
        langs: evaluate only these languages (default: the task's).
        workers: Moses tokenisation processes.
        word_level: tagging over whole words (meta-embedding taggers): every word is one "piece"
            (internal whitespace removed); ``spm_model`` is not used.

    Returns:
        stats: ``{"<lang>.<split>": {examples, words|pieces, truncated, ...}}``.
    """
    if word_level:
        if spec.kind != "tagging":
            raise ValueError(f"word-level data is for tagging tasks; {spec.name} is {spec.kind}")
        sp = None
    else:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    data = spec.load(seed)
    parts = {(spec.source_lang, "train"): subsample(data["train"], max_train, seed),
             (spec.source_lang, "valid"): subsample(data["valid"], max_eval, seed)}
    for lg in (langs or spec.test_langs):
        if lg not in data["test"]:
            raise KeyError(f"task {spec.name} has no test set for {lg!r} (has: {', '.join(data['test'])})")
        parts[(lg, "test")] = subsample(data["test"][lg], max_eval, seed)
    raw = os.path.join(out_dir, "raw")
    stats = {}
    for (lg, split), items in parts.items():
        prefix = os.path.join(raw, f"{lg}.{split}")
        if spec.kind == "tagging":
            stats[f"{lg}.{split}"] = _write_tagging(items, sp, prefix, max_positions - 2)
        else:
            text_lang = "en" if lg in (spec.source_lang, "cs") else lg.split("-")[0]
            stats[f"{lg}.{split}"] = _write_classification(items, sp, prefix, max_positions, spec.pair,
                                                           text_lang if spec.pretokenize else None, workers)
    with atomic_write(os.path.join(raw, "stats.json")) as fh:
        json.dump(stats, fh, indent=2)
    return stats


def _write_tagging(items: List[TaggedSentence], sp, prefix: str, max_pieces: int) -> dict:
    n_words = n_trunc = n_pieces = 0

    def encode(word):
        if sp is None:  # word level: the word itself is the symbol
            return ["".join(word.split()) or "<unk>"]
        return sp.encode(word, out_type=str)

    with atomic_write(prefix + ".input0") as f0, atomic_write(prefix + ".label") as fl, \
            atomic_write(prefix + ".jsonl") as fj:
        for s in items:
            a = align_first_piece(s.words, s.labels, encode, max_pieces)
            f0.write(" ".join(a.pieces) + "\n")
            fl.write(" ".join(a.piece_labels) + "\n")
            fj.write(json.dumps({"words": a.words, "labels": a.labels, "dropped": a.dropped, "source": s.source},
                                ensure_ascii=False) + "\n")
            n_words += len(a.words)
            n_trunc += a.dropped
            n_pieces += len(a.pieces)
    return dict(examples=len(items), words=n_words, pieces=n_pieces, words_truncated=n_trunc)


def _write_classification(items: List[TextExample], sp, prefix: str, max_positions: int, pair: bool,
                          moses_lang: Optional[str], workers: int) -> dict:
    a_text = [x.text_a for x in items]
    b_text = [x.text_b or "" for x in items]
    if moses_lang:
        a_text = list(moses_tokenize_lines(a_text, moses_lang, workers=workers))
        if pair:
            b_text = list(moses_tokenize_lines(b_text, moses_lang, workers=workers))
    # <s> a </s> [</s> b </s>]: each side gets an equal share of the positions
    budget = (max_positions - 4) // 2 if pair else max_positions - 2
    n_trunc = 0
    with atomic_write(prefix + ".input0") as f0, atomic_write(prefix + ".label") as fl, \
            (atomic_write(prefix + ".input1") if pair else _null()) as f1:
        for x, a, b in zip(items, a_text, b_text):
            pa = sp.encode(a, out_type=str)
            n_trunc += len(pa) > budget
            f0.write(" ".join(pa[:budget] or ["<unk>"]) + "\n")
            if pair:
                pb = sp.encode(b, out_type=str)
                n_trunc += len(pb) > budget
                f1.write(" ".join(pb[:budget] or ["<unk>"]) + "\n")
            fl.write(x.label + "\n")
    labels = {}
    for x in items:
        labels[x.label] = labels.get(x.label, 0) + 1
    return dict(examples=len(items), texts_truncated=n_trunc, labels=labels)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def unk_rates(raw_dir: PathLike, vocabulary: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Share of input pieces that are ``<unk>`` for a model's vocabulary, per ``<lang>.<split>``.

    A piece counts as unknown when sentencepiece gave ``<unk>`` or when it is not in the model's
    fairseq dictionary (binarisation maps it to ``<unk>``). A language whose script the
    pretraining vocabulary lacks (Hindi under an en-fr model) is mostly ``<unk>``: its scores
    measure the label prior, not transfer, and the runner reports the rate with every result.

    Args:
        raw_dir: the ``raw/`` directory of :func:`write_task_data` (``input0`` and ``input1`` files).
        vocabulary: the dictionary's symbols; None: only sentencepiece's ``<unk>`` counts.

    Returns:
        ``{"<lang>.<split>": rate}`` (0.0 for a split with no pieces).
    """
    vocab = set(vocabulary) if vocabulary is not None else None
    out: Dict[str, float] = {}
    for name in sorted(os.listdir(raw_dir)):
        if not name.endswith(".input0"):
            continue
        base = name[: -len(".input0")]
        total = unk = 0
        for field_name in ("input0", "input1"):
            path = os.path.join(raw_dir, f"{base}.{field_name}")
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    for piece in line.split():
                        total += 1
                        unk += piece == "<unk>" or (vocab is not None and piece not in vocab)
        out[base] = unk / total if total else 0.0
    return out
