"""Fine-tuning and zero-shot evaluation data: task definitions and converters.

Each task (Visser et al., 2025, Section 3.4; the LinCE-style code-switched tasks of the
Spanglish-mBERT study and Winata et al., 2021) names its training language data, its English (or
in-domain) dev set for model selection, and its zero-shot test sets per language, all from
``$CSFAIR_DATA``. The tasks are declared in a data file, ``csfair/evaluation/tasks.toml`` (its
header documents the keys; more files through :func:`add_tasks_file` or ``$CSFAIR_TASKS_FILE``),
and read by the readers of :mod:`csfair.evaluation.readers`. :func:`write_task_data` writes
``fairseq-preprocess`` inputs with a pretrained checkpoint's sentencepiece model:

    <out>/raw/<lang>.<split>.input0   pieces (space-separated)
    <out>/raw/<lang>.<split>.input1   second text's pieces (sentence pairs)
    <out>/raw/<lang>.<split>.label    tagging: one label per piece (first piece of a word; <pad>
                                      on the others); classification: one label per line
    <out>/raw/<lang>.<split>.jsonl    the kept gold words and labels (tagging), for reports
    <out>/raw/stats.json              counts per language and split

Splits: ``train`` and ``valid`` in the training language, ``test`` in every evaluated language.
"""
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from csfair.evaluation.corpora import TaggedSentence, TextExample, split_by_premise, subsample
from csfair.evaluation.readers import READERS, read_hf, reader as reader_fn
from csfair.io import InputFormatError, PathLike, atomic_write
from csfair.paths import data_root
from csfair.evaluation.tagging import align_first_piece
from csfair.text import moses_tokenize_lines

#: The built-in tasks file.
DEFAULT_TASKS_FILE = Path(__file__).with_name("tasks.toml")

#: Seeds under ``--paper`` when a task declares none (the paper's NER: 10 runs; Sec. 3.4).
PAPER_SEEDS = 10


class MissingDataError(FileNotFoundError):
    """A task's data is not under the data root; the message lists every missing file and how to get it."""


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
        load: ``(seed) -> {"train": [...], "valid": [...], "test": {lang: [...]}}``; raises
            :class:`MissingDataError` when data is missing, InputFormatError on bad input.
        pair: sentence-pair classification.
        pretokenize: Moses-tokenise the raw text of each language (classification).
        notes: free text.
        title: the tables' name of the task (a fallback protocol says so here).
        labels: the declared label set (None: not checked).
        embedding_langs: fastText languages of the meta-embedding taggers.
        paper_seeds: number of seeds under ``--paper`` (seeds 1..N).
        fallback: task used under ``--paper`` when this one's data is missing.
        source: how to get the data (part of the missing-data message).
        missing: ``() -> [(split, langs, alternatives)]``: the data files not found.
        declaration: the task's resolved declaration (after ``inherit``).
        origin: the tasks file it came from.
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
    title: str = ""
    labels: Optional[Sequence[str]] = None
    embedding_langs: Sequence[str] = ()
    paper_seeds: int = PAPER_SEEDS
    fallback: str = ""
    source: str = ""
    missing: Callable[[], List[Tuple[str, Tuple[str, ...], Tuple[str, ...]]]] = lambda: []
    declaration: Dict = field(default_factory=dict)
    origin: str = ""

    def __post_init__(self):
        self.title = self.title or self.name

    @property
    def digest(self) -> str:
        """12 hex digits of the SHA-256 of the resolved declaration (part of the runner's protocol key)."""
        text = json.dumps(self.declaration, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def missing_message(self) -> str:
        """What is missing and where it is expected (empty when nothing is)."""
        gone = self.missing()
        if not gone:
            return ""
        how = "CSFAIR_DATA" if os.environ.get("CSFAIR_DATA") else "default ../shared/data; set CSFAIR_DATA"
        lines = [f"task {self.name}: data not found under the data root {data_root()} ({how}):"]
        for split, langs, alts in gone:
            lines.append(f"  {split} ({', '.join(langs)}): " + " or ".join(alts))
        if self.source:
            lines.append(f"  get it: {self.source}")
        return "\n".join(lines)


def _split_off(items: List, frac: float, seed: int):
    """Seeded split of a list into (rest, held-out fraction)."""
    import random

    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    n = max(1, round(len(items) * frac))
    held = set(idx[:n])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


# --- the tasks file -------------------------------------------------------------------------------

_KEYS = {"inherit", "title", "kind", "pair", "pretokenize", "metric", "metric_fn", "epochs", "train_lang", "langs",
         "reader", "options", "train", "valid", "test", "files", "splits", "split_by_premise", "extra_train",
         "labels", "embedding_langs", "paper_seeds", "fallback", "source", "notes"}
_ENTRY_KEYS = {"path", "paths", "reader", "options", "lang", "holdout",
               "dataset", "config", "split", "data_files", "disk", "revision", "cache_dir", "columns", "label_names"}
_HF_KEYS = ("dataset", "config", "split", "data_files", "disk", "revision", "cache_dir", "label_names")


def _fill(template, lang: str, split: str):
    """``{lang}`` and ``{split}`` of a string (or of every string of a list / dict)."""
    if isinstance(template, str):
        return template.replace("{lang}", lang).replace("{split}", split)
    if isinstance(template, list):
        return [_fill(t, lang, split) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, lang, split) for k, v in template.items()}
    return template


def _abs(rel: str) -> Path:
    return data_root() / rel  # an absolute ``rel`` stays itself


class _Entry:
    """One split's data source: files (with alternatives) and a reader, a Hugging Face split, or a holdout."""

    def __init__(self, where: str, value, decl: dict, split: str):
        if isinstance(value, (str, list)):
            value = {"paths": value}
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a path, a list of paths or a table, got {value!r}")
        bad = set(value) - _ENTRY_KEYS
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(_ENTRY_KEYS))})")
        self.holdout = value.get("holdout")
        if self.holdout is not None:
            if split != "valid" or not 0 < float(self.holdout) < 1:
                raise ValueError(f"{where}: holdout = FRACTION (0 < FRACTION < 1) is for valid only")
            return
        self.reader = value.get("reader", decl.get("reader"))
        if not self.reader:
            raise ValueError(f"{where}: no reader (set reader for the task or the split)")
        reader_fn(self.reader)  # raises KeyError for an unknown name
        self.options = dict(decl.get("options") or {}, **(value.get("options") or {}))
        self.lang = value.get("lang")
        self.split = split
        if self.reader == "hf":
            self.hf = {k: value[k] for k in _HF_KEYS if k in value}
            self.columns = value.get("columns") or self.options.pop("columns", None) or {}
            if "split" not in self.hf:
                self.hf["split"] = "validation" if split == "valid" else split
            if "dataset" not in self.hf and "disk" not in self.hf:
                raise ValueError(f"{where}: reader 'hf' needs dataset = NAME or disk = PATH")
            self.paths = []
        else:
            paths = value.get("paths", value.get("path"))
            if paths is None:
                raise ValueError(f"{where}: no path")
            self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.multilingual = READERS.get(self.reader, (None, False))[1]

    def local_files(self, lang: str) -> List[str]:
        """Alternatives (relative to the data root) that must exist, for one language."""
        lang = self.lang or lang
        if self.reader != "hf":
            return [_fill(p, lang, self.split) for p in self.paths]
        local = self.hf.get("disk") or self.hf.get("data_files")
        if local is None:
            return []  # a hub name: nothing to check before loading
        local = _fill(local, lang, self.split)
        if isinstance(local, dict):
            local = list(local.values())
        return [" + ".join(local)] if isinstance(local, list) else [local]

    def find(self, lang: str) -> Optional[Path]:
        for alt in self.local_files(lang):
            parts = alt.split(" + ")
            if all(_abs(p).exists() for p in parts):
                return _abs(parts[0])
        return None

    def read(self, kind: str, lang: str, langs: Sequence[str], cache: dict):
        lang = self.lang or lang
        if self.reader == "hf":
            hf = _fill(dict(self.hf), lang, self.split)
            for key in ("disk", "cache_dir"):  # relative to the data root, as every path of the tasks file
                if key in hf:
                    hf[key] = _abs(hf[key])
            if "data_files" in hf:
                df = hf["data_files"]
                hf["data_files"] = ({k: str(_abs(v)) for k, v in df.items()} if isinstance(df, dict) else
                                    [str(_abs(v)) for v in df] if isinstance(df, list) else str(_abs(df)))
            return read_hf(kind, _fill(self.columns, lang, self.split), **hf, **self.options)
        path = self.find(lang)
        fn = READERS[self.reader][0]
        if not self.multilingual:
            return fn(path, **self.options)
        key = (self.reader, str(path), json.dumps(self.options, sort_keys=True))
        if key not in cache:
            cache[key] = fn(path, langs=set(langs), **self.options)
        if lang not in cache[key]:
            raise InputFormatError(path, 0, f"no rows in language {lang!r} (has: {', '.join(sorted(cache[key])) or 'none'})")
        return cache[key][lang]


def _metric_fn(kind: str, metric: str) -> str:
    if kind == "classification":
        return "sentence_metrics"
    return "token_accuracy" if metric == "accuracy" else "span_f1"


def _check_labels(name: str, labels: Sequence[str], data: Dict) -> None:
    """Every label of the loaded data is in the declared set.

    Raises:
        InputFormatError: at the item's ``path:line`` (a sentence's first line; the token is named).
    """
    allowed = set(labels)

    def fail(item, reason):
        path, _, line = item.source.rpartition(":")
        raise InputFormatError(path or item.source, int(line) if line.isdigit() else 0,
                               f"{reason} is not in task {name}'s label set ({', '.join(labels)})")

    for items in [data["train"], data["valid"], *data["test"].values()]:
        for it in items:
            if isinstance(it, TaggedSentence):
                bad = next((i for i, lab in enumerate(it.labels) if lab not in allowed), None)
                if bad is not None:
                    fail(it, f"label {it.labels[bad]!r} of token {bad + 1} ({it.words[bad]!r})")
            elif it.label not in allowed:
                fail(it, f"label {it.label!r}")


def _build(name: str, decl: dict, origin: str) -> TaskSpec:
    where = f"{origin}: task {name}"
    bad = set(decl) - _KEYS
    if bad:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(_KEYS))})")
    for k in ("kind", "metric", "epochs", "train_lang", "langs"):
        if k not in decl:
            raise ValueError(f"{where}: {k} is required")
    kind = decl["kind"]
    if kind not in ("tagging", "classification"):
        raise ValueError(f"{where}: kind must be tagging or classification, got {kind!r}")
    train_lang, langs = decl["train_lang"], list(decl["langs"])
    entries: Dict[str, _Entry] = {}
    by_premise = decl.get("split_by_premise")
    if by_premise is not None:
        if any(k in decl for k in ("train", "valid", "test", "files")):
            raise ValueError(f"{where}: split_by_premise replaces train, valid, test and files")
        entries["rows"] = _Entry(f"{where} split_by_premise", by_premise["files"], decl, "test")
    else:
        files, splits = decl.get("files"), decl.get("splits") or {}
        if files is not None and not (isinstance(files, str) or
                                      (isinstance(files, list) and all(isinstance(x, str) for x in files))):
            raise ValueError(f"{where}: files must be a path template or a list of them (a table goes in train/valid/test)")
        for split in ("train", "valid", "test"):
            value = decl.get(split)
            if value is None and files is not None:
                value = _fill(files if isinstance(files, list) else [files], "{lang}", splits.get(split, split))
            if value is None:
                raise ValueError(f"{where}: no {split} (give {split} = PATH, or files + splits)")
            entries[split] = _Entry(f"{where} {split}", value, decl, split)
    extra = [_Entry(f"{where} extra_train", e, decl, "train") for e in decl.get("extra_train", [])]
    labels = decl.get("labels")

    def langs_of(split):
        return [train_lang] if split in ("train", "valid") else langs

    def missing():
        out = []
        checks = [(s, e, langs_of(s)) for s, e in entries.items() if s != "rows" and e.holdout is None]
        if "rows" in entries:
            checks.append(("split_by_premise", entries["rows"], list(dict.fromkeys([train_lang, *langs]))))
        checks += [("extra_train", e, [train_lang]) for e in extra]
        for split, e, lgs in checks:
            gone: Dict[Tuple[str, ...], List[str]] = {}
            for lg in lgs:
                if e.local_files(lg) and e.find(lg) is None:
                    # grouped by the unfilled templates: one line for every language of a split
                    gone.setdefault(tuple(e.local_files("{lang}")), []).append(lg)
            out += [(split, tuple(lg), tuple(_fill(list(alts), lg[0], split)) if len(lg) == 1 else alts)
                    for alts, lg in gone.items()]
        return out

    spec = None

    def load(seed: int) -> Dict:
        msg = spec.missing_message()
        if msg:
            raise MissingDataError(msg)
        cache: dict = {}
        every = list(dict.fromkeys([train_lang, *langs]))
        if "rows" in entries:
            rows = {lg: entries["rows"].read(kind, lg, every, cache) for lg in every}
            train, valid, tests = split_by_premise(rows, train_lang, dev=float(by_premise.get("dev", 0.1)),
                                                   test=float(by_premise.get("test", 0.3)), seed=seed)
            test = {lg: tests[lg] for lg in langs}
        else:
            train = entries["train"].read(kind, train_lang, every, cache)
            if entries["valid"].holdout is not None:
                train, valid = _split_off(train, float(entries["valid"].holdout), seed)
            else:
                valid = entries["valid"].read(kind, train_lang, every, cache)
            test = {lg: entries["test"].read(kind, lg, every, cache) for lg in langs}
        for e in extra:
            train = train + e.read(kind, train_lang, every, cache)
        data = {"train": train, "valid": valid, "test": test}
        if labels is not None:
            _check_labels(name, labels, data)
        return data

    spec = TaskSpec(
        name, kind, decl["metric"], decl.get("metric_fn") or _metric_fn(kind, decl["metric"]), int(decl["epochs"]),
        train_lang, tuple(langs), load, pair=bool(decl.get("pair", False)),
        pretokenize=bool(decl.get("pretokenize", False)), notes=decl.get("notes", ""), title=decl.get("title", ""),
        labels=tuple(labels) if labels is not None else None, embedding_langs=tuple(decl.get("embedding_langs", ())),
        paper_seeds=int(decl.get("paper_seeds", PAPER_SEEDS)), fallback=decl.get("fallback", ""),
        source=decl.get("source", ""), missing=missing, declaration=decl, origin=origin)
    return spec


def load_tasks_file(path: PathLike, known: Optional[Dict[str, TaskSpec]] = None) -> Dict[str, TaskSpec]:
    """The tasks declared in a TOML file (one table per task; keys in ``tasks.toml``'s header).

    Args:
        path: the file.
        known: tasks an ``inherit`` may name besides this file's earlier ones.

    Returns:
        ``{name: TaskSpec}`` in file order.

    Raises:
        InputFormatError: not valid TOML (with its line).
        ValueError: an unknown or missing key, an unknown reader or inherited task (naming the file and task).
    """
    import tomllib

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise InputFormatError(path, int(m.group(1)) if m else 0, f"not valid TOML: {e}") from None
    decls = {n: s.declaration for n, s in (known or {}).items()}
    out: Dict[str, TaskSpec] = {}
    for name, decl in doc.items():
        if not isinstance(decl, dict):
            raise ValueError(f"{path}: {name} = {decl!r}: expected a [{name}] table")
        if "inherit" in decl:
            base = decl["inherit"]
            if base not in decls:
                raise ValueError(f"{path}: task {name}: inherit = {base!r}: no such task above (or built in)")
            decl = {**decls[base], **{k: v for k, v in decl.items() if k != "inherit"}}
        decls[name] = decl
        out[name] = _build(name, decl, str(path))
    return out


def add_tasks_file(path: PathLike) -> List[str]:
    """Declare the tasks of another file in :data:`TASKS` (a task of the same name is replaced).

    Returns:
        the names declared by the file.
    """
    new = load_tasks_file(path, known=TASKS)
    TASKS.update(new)
    return list(new)


def paper_task(name: str, tasks: Optional[Dict[str, TaskSpec]] = None) -> Tuple[TaskSpec, Optional[str]]:
    """The task the paper's protocol runs for ``name`` (``--paper``), and a message when it changed or is missing.

    A task that is another task's ``fallback`` is replaced by that task when its data is present
    (``xnli`` -> ``xnli-mnli``); a task whose data is missing is replaced by its ``fallback``
    (``xnli-mnli`` -> ``xnli``), with a message naming what is missing and where it is expected.

    Raises:
        KeyError: an unknown task.
    """
    tasks = TASKS if tasks is None else tasks
    if name not in tasks:
        raise KeyError(f"unknown task {name!r} (known: {', '.join(tasks)})")
    spec = tasks[name]
    better = next((t for t in tasks.values() if t.fallback == name), None)
    if better is not None:
        if not better.missing():
            return better, f"--paper: {name} -> {better.name}: {better.title}"
        return spec, (f"--paper: the paper's protocol for {name} ({better.name}) has no data here, using "
                      f"{spec.title}\n{better.missing_message()}")
    if spec.missing() and spec.fallback:
        fb = tasks[spec.fallback]
        return fb, f"--paper: {name}'s data is missing, using {fb.title}\n{spec.missing_message()}"
    return spec, None


def _builtin_tasks() -> Dict[str, TaskSpec]:
    tasks = load_tasks_file(DEFAULT_TASKS_FILE)
    for extra in filter(None, os.environ.get("CSFAIR_TASKS_FILE", "").split(os.pathsep)):
        tasks.update(load_tasks_file(extra, known=tasks))
    return tasks


#: Every declared task by name: ``tasks.toml``, then the files of ``$CSFAIR_TASKS_FILE`` (os.pathsep-separated).
TASKS: Dict[str, TaskSpec] = _builtin_tasks()


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


def unk_word_rates(raw_dir: PathLike, vocabulary: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Share of input *words* that are entirely ``<unk>`` for a model's vocabulary, per ``<lang>.<split>``.

    :func:`unk_rates` counts pieces, and a script the vocabulary lacks is cut into a known
    word-boundary piece ``▁`` and an ``<unk>`` for the rest: Hindi under an en-fr vocabulary is
    ~0.5 ``<unk>`` by pieces although ~98% of its words carry nothing but ``<unk>``. A word here is a
    piece starting with ``▁`` (or a line's first piece) and the pieces up to the next such piece; it
    is unknown when it has an unknown piece (as in :func:`unk_rates`) and every other piece of it is
    a bare ``▁``.

    Args:
        raw_dir: the ``raw/`` directory of :func:`write_task_data` (``input0`` and ``input1`` files).
        vocabulary: the dictionary's symbols; None: only sentencepiece's ``<unk>`` counts.

    Returns:
        ``{"<lang>.<split>": rate}`` (0.0 for a split with no words).
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
                    word = None  # [has an unknown piece, every piece unknown or a bare boundary]
                    for j, piece in enumerate(line.split()):
                        if j == 0 or piece.startswith("\u2581"):
                            if word is not None:
                                total += 1
                                unk += word[0] and word[1]
                            word = [False, True]
                        bad = piece == "<unk>" or (vocab is not None and piece not in vocab)
                        word[0] |= bad
                        word[1] &= bad or piece == "\u2581"
                    if word is not None:
                        total += 1
                        unk += word[0] and word[1]
        out[base] = unk / total if total else 0.0
    return out
