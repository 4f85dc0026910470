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
import glob
import hashlib
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from csfair.evaluation.corpora import TaggedSentence, TextExample, split_by_group, subsample
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


class TaskError(ValueError):
    """A task's declaration, or its data as declared, cannot be used: the message names the tasks file or
    the task, and what to change (a user error: the runner prints it as one line)."""


def _note(msg: str) -> None:
    """What loading a task changed or suspects (label maps applied, rows dropped, translations), on stderr."""
    print(f"[tasks] {msg}", file=sys.stderr, flush=True)


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
        # aligned_test only tells the held-out split what to hold out; fine-tuning data is the same
        decl = {k: v for k, v in self.declaration.items() if k != "aligned_test"}
        text = json.dumps(decl, sort_keys=True, ensure_ascii=False)
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
         "reader", "options", "train", "valid", "test", "files", "splits", "split_by_premise", "split_by_group",
         "extra_train", "labels", "label_map", "embedding_langs", "paper_seeds", "fallback", "source", "notes",
         "aligned_test"}
_SPLIT_KEYS = {"files", "dev", "test", "align", "placeholders", "placeholder_values"}
_ENTRY_KEYS = {"path", "paths", "by_lang", "reader", "options", "lang", "holdout",
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


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _resolve(alt: str, where: str) -> Optional[Path]:
    """The file of one alternative (relative to the data root; a glob pattern must match exactly one file)."""
    if not _is_glob(alt):
        return _abs(alt) if _abs(alt).exists() else None
    found = sorted(glob.glob(str(_abs(alt))))
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise TaskError(f"{where}: the pattern {alt!r} matches {len(found)} files ({shown}); make it match one, "
                        f"or give each language its file (by_lang = {{ LANG = PATH }})")
    return Path(found[0]) if found else None


class _Entry:
    """One split's data source: files (with alternatives, globs or per-language paths) and a reader, a Hugging
    Face split, or a holdout."""

    def __init__(self, where: str, value, decl: dict, split: str):
        self.where = where
        if isinstance(value, (str, list)):
            value = {"paths": value}
        if not isinstance(value, dict):
            raise TaskError(f"{where}: expected a path, a list of paths or a table, got {value!r}")
        bad = set(value) - _ENTRY_KEYS
        if bad:
            raise TaskError(f"{where}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(_ENTRY_KEYS))})")
        self.holdout = value.get("holdout")
        if self.holdout is not None:
            if split != "valid" or not 0 < float(self.holdout) < 1:
                raise TaskError(f"{where}: holdout = FRACTION (0 < FRACTION < 1) is for valid only")
            return
        self.reader = value.get("reader", decl.get("reader"))
        if not self.reader:
            raise TaskError(f"{where}: no reader (set reader for the task or the split)")
        try:
            reader_fn(self.reader)
        except KeyError as e:
            raise TaskError(f"{where}: {e.args[0]}") from None
        self.options = dict(decl.get("options") or {}, **(value.get("options") or {}))
        self.lang = value.get("lang")
        self.split = split
        self.by_lang: Dict[str, List[str]] = {}
        if self.reader == "hf":
            self.hf = {k: value[k] for k in _HF_KEYS if k in value}
            self.columns = value.get("columns") or self.options.pop("columns", None) or {}
            if "split" not in self.hf:
                self.hf["split"] = "validation" if split == "valid" else split
            if "dataset" not in self.hf and "disk" not in self.hf:
                raise TaskError(f"{where}: reader 'hf' needs dataset = NAME or disk = PATH")
            self.paths = []
        else:
            paths = value.get("paths", value.get("path"))
            by_lang = value.get("by_lang") or {}
            if not isinstance(by_lang, dict) or not all(isinstance(v, (str, list)) for v in by_lang.values()):
                raise TaskError(f"{where}: by_lang must be a table {{ LANG = PATH or [PATH, ...] }}")
            self.by_lang = {lg: [v] if isinstance(v, str) else list(v) for lg, v in by_lang.items()}
            if paths is None and not self.by_lang:
                raise TaskError(f"{where}: no path (path, paths or by_lang)")
            self.paths = [] if paths is None else [paths] if isinstance(paths, str) else list(paths)
        self.multilingual = READERS.get(self.reader, (None, False))[1]
        fn = READERS.get(self.reader, (None,))[0]
        self.takes_lang = fn is not None and "lang" in inspect.signature(fn).parameters and "lang" not in self.options

    def local_files(self, lang: str) -> List[str]:
        """Alternatives (relative to the data root; globs allowed) that must exist, for one language."""
        lang = self.lang or lang
        if self.reader != "hf":
            if lang in self.by_lang:
                return [_fill(p, lang, self.split) for p in self.by_lang[lang]]
            if not self.paths:
                raise TaskError(f"{self.where}: by_lang has no path for {lang!r} (has: {', '.join(self.by_lang)})")
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
            parts = [_resolve(p, self.where) for p in alt.split(" + ")]
            if all(p is not None for p in parts):
                return parts[0]
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
            items = read_hf(kind, _fill(self.columns, lang, self.split), **hf, **self.options)
            if not items:
                raise TaskError(f"{self.where}: {hf.get('dataset') or hf.get('disk')} [{hf['split']}] has no examples")
            return items
        path = self.find(lang)
        fn = READERS[self.reader][0]
        if not self.multilingual:
            # a reader that knows its language (PAN-X's prefixes) checks the file against the task's
            items = fn(path, **self.options, **({"lang": lang} if self.takes_lang and "-" not in lang else {}))
            if not items:
                raise InputFormatError(path, 0, f"no examples ({self.where}, {lang}): an empty file or one without "
                                                f"a single {'sentence' if kind == 'tagging' else 'row'}")
            return items
        key = (self.reader, str(path), json.dumps(self.options, sort_keys=True))
        if key not in cache:
            cache[key] = fn(path, langs=set(langs), **self.options)
        if not cache[key].get(lang):
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
                               f"{reason} is not in task {name}'s label set ({', '.join(labels)}); if it means one "
                               f"of them, map it in the task's declaration: label_map = {{ LABEL = \"NEW\" }}")

    for items in [data["train"], data["valid"], *data["test"].values()]:
        for it in items:
            if isinstance(it, TaggedSentence):
                bad = next((i for i, lab in enumerate(it.labels) if lab not in allowed), None)
                if bad is not None:
                    fail(it, f"label {it.labels[bad]!r} of token {bad + 1} ({it.words[bad]!r})")
            elif it.label not in allowed:
                fail(it, f"label {it.label!r}")


def _apply_label_map(name: str, label_map: Dict[str, str], data: Dict) -> None:
    """Replace labels by the declaration's ``label_map`` in every split (in place) and say how many were changed."""
    changed: Dict[str, int] = {}
    for items in [data["train"], data["valid"], *data["test"].values()]:
        for it in items:
            if isinstance(it, TaggedSentence):
                for i, lab in enumerate(it.labels):
                    if lab in label_map:
                        changed[lab] = changed.get(lab, 0) + 1
                        it.labels[i] = label_map[lab]
            elif it.label in label_map:
                changed[it.label] = changed.get(it.label, 0) + 1
                it.label = label_map[it.label]
    if changed:
        _note(f"task {name}: label_map changed {sum(changed.values())} label(s): "
              + ", ".join(f"{k} -> {label_map[k]}: {n}" for k, n in sorted(changed.items())))


def _line_of(item) -> Optional[int]:
    tail = item.source.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


def _is_placeholder(item, values) -> bool:
    """A row whose text is empty, or one of the declared placeholder values (a translation that is missing)."""
    if isinstance(item, TextExample):
        texts = [item.text_a] + ([item.text_b] if item.text_b is not None else [])
    else:
        texts = [" ".join(item.words)]
    return any(not t.strip() or t.strip() in values for t in texts)


def _align(name: str, rows: Dict[str, list], source_lang: str, how: dict) -> Dict[str, list]:
    """Rows of a row-aligned multilingual set, placeholder and missing rows found; dropped when declared.

    A placeholder row is a row of empty text (or of one of ``placeholder_values``); a missing row is
    a line of the training language's file that another language's reader did not return (a row it
    skipped). Rows are matched by their line numbers when the counts differ (files of the same
    layout). With ``placeholders = "drop"`` such rows are removed in every language and counted;
    otherwise they are an error naming the task.

    Raises:
        TaskError: placeholder or missing rows without ``placeholders = "drop"``; counts that differ
            in files whose rows have no line numbers.
    """
    values = set(how.get("placeholder_values", []))
    align = how.get("align", "rows")
    drop = how.get("placeholders", "error") == "drop"
    flagged = {lg: [i for i, x in enumerate(r) if _is_placeholder(x, values)] for lg, r in rows.items()}
    if align == "group":  # no row alignment: a placeholder is dropped in its own language only
        if any(flagged.values()) and not drop:
            lg = next(lg for lg, f in flagged.items() if f)
            raise TaskError(f"task {name}: {lg} has {len(flagged[lg])} placeholder row(s) (empty text; e.g. "
                            f"{rows[lg][flagged[lg][0]].source}); set placeholders = \"drop\" in split_by_group to drop them")
        if any(flagged.values()):
            _note(f"task {name}: dropped placeholder rows: " + ", ".join(f"{lg} {len(f)}" for lg, f in flagged.items() if f))
        return {lg: [x for i, x in enumerate(r) if i not in set(flagged[lg])] for lg, r in rows.items()}
    base = rows[source_lang]
    same_count = all(len(r) == len(base) for r in rows.values())
    problems, keep = [], None
    if same_count:
        bad = sorted({i for f in flagged.values() for i in f})
        for lg, f in flagged.items():
            if f:
                problems.append(f"{lg} has {len(f)} placeholder row(s) (empty text; e.g. {rows[lg][f[0]].source})")
        keep_idx = set(range(len(base))) - set(bad)
        keep = {lg: [x for i, x in enumerate(r) if i in keep_idx] for lg, r in rows.items()}
    else:
        lines = {lg: [_line_of(x) for x in r] for lg, r in rows.items()}
        if any(n is None for ln in lines.values() for n in ln):
            counts = ", ".join(f"{lg} {len(r)}" for lg, r in rows.items())
            raise TaskError(f"task {name}: the languages' files are not row-aligned ({counts} rows); fix the files, "
                            f"or split by a shared group key: split_by_group = {{ ..., align = \"group\" }}")
        common = set.intersection(*(set(ln) for ln in lines.values()))
        for lg, ln in lines.items():
            gone = sorted(set(lines[source_lang]) - set(ln))
            extra = sorted(set(ln) - set(lines[source_lang]))
            if gone:
                problems.append(f"{lg} lacks {len(gone)} row(s) of {source_lang} (e.g. line {gone[0]}: skipped by its "
                                f"reader or missing)")
            if extra:
                problems.append(f"{lg} has {len(extra)} row(s) {source_lang} lacks (e.g. line {extra[0]})")
            if flagged[lg]:
                problems.append(f"{lg} has {len(flagged[lg])} placeholder row(s) (empty text; e.g. "
                                f"{rows[lg][flagged[lg][0]].source})")
        common -= {_line_of(rows[lg][i]) for lg, f in flagged.items() for i in f}
        keep = {lg: [x for x in r if _line_of(x) in common] for lg, r in rows.items()}
    if not problems:
        return rows
    if not drop:
        raise TaskError(f"task {name}: rows are not aligned across languages: {'; '.join(problems)}; set "
                        f"placeholders = \"drop\" in split_by_group (or split_by_premise) to drop these rows in every "
                        f"language, or fix the files")
    _note(f"task {name}: dropped {len(base) - len(keep[source_lang])} row(s) in every language: {'; '.join(problems)}")
    return keep


def _translation_warnings(name: str, entries: Dict, data: Dict, kind: str, train_lang: str) -> List[str]:
    """Signs that a test set holds translations of training rows (a task with separate train and test entries).

    * train and test come from the same path template, with only ``{lang}`` differing (XTREME-style
      ``dev-{lang}.tsv`` files are translations of each other);
    * training and test rows share group keys (XNLI 1.0 ``promptID``, PAWS-X ``id``);
    * classification: a test language has as many rows as training, with the same label sequence.
    """
    out = []
    train = data["train"] + data["valid"]
    tr, te = entries.get("train"), entries.get("test")
    if tr is not None and te is not None and tr.reader != "hf" and te.reader != "hf":
        lang = tr.lang or train_lang
        trained = {p.replace("{lang}", lang) for p in tr.paths + tr.by_lang.get(lang, [])}
        shared = [p for p in te.paths if "{lang}" in p and p.replace("{lang}", lang) in trained]
        if shared:
            out.append(f"train and test are read from the same files {shared[0]!r} in different languages: "
                       f"translations of the same rows? (split_by_group keeps a row's translations in one part)")
    groups = {x.group for x in train if isinstance(x, TextExample) and x.group not in (None, x.text_a)}
    for lg, items in data["test"].items():
        shared = sum(1 for x in items if isinstance(x, TextExample) and x.group in groups)
        if shared:
            out.append(f"{shared} of the {len(items)} {lg} test rows share a group key with training rows "
                       f"(translations of training rows?)")
        if kind == "classification" and len(items) == len(data["train"]) >= 10 and \
                [x.label for x in items] == [x.label for x in data["train"]]:
            out.append(f"the {len(items)} {lg} test rows have the training rows' labels in the same order "
                       f"(translations of the training rows?)")
    for msg in out:
        _note(f"warning: task {name}: {msg}")
    return out


def _build(name: str, decl: dict, origin: str) -> TaskSpec:
    where = f"{origin}: task {name}"
    bad = set(decl) - _KEYS
    if bad:
        raise TaskError(f"{where}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(_KEYS))})")
    for k in ("kind", "metric", "epochs", "train_lang", "langs"):
        if k not in decl:
            raise TaskError(f"{where}: {k} is required")
    kind = decl["kind"]
    if kind not in ("tagging", "classification"):
        raise TaskError(f"{where}: kind must be tagging or classification, got {kind!r}")
    train_lang, langs = decl["train_lang"], list(decl["langs"])
    entries: Dict[str, _Entry] = {}
    if "split_by_premise" in decl and "split_by_group" in decl:
        raise TaskError(f"{where}: split_by_premise and split_by_group are the same thing: give one")
    by_group = decl.get("split_by_group", decl.get("split_by_premise"))
    split_key = "split_by_group" if "split_by_group" in decl else "split_by_premise"
    if by_group is not None:
        if any(k in decl for k in ("train", "valid", "test", "files")):
            raise TaskError(f"{where}: {split_key} replaces train, valid, test and files")
        if not isinstance(by_group, dict) or "files" not in by_group:
            raise TaskError(f"{where}: {split_key} = {{ files = PATH, dev = 0.1, test = 0.3 }}")
        bad = set(by_group) - _SPLIT_KEYS
        if bad:
            raise TaskError(f"{where}: {split_key}: unknown key(s) {', '.join(sorted(bad))} "
                            f"(known: {', '.join(sorted(_SPLIT_KEYS))})")
        if by_group.get("align", "rows") not in ("rows", "group"):
            raise TaskError(f"{where}: {split_key}: align must be \"rows\" or \"group\"")
        if by_group.get("placeholders", "error") not in ("error", "drop"):
            raise TaskError(f"{where}: {split_key}: placeholders must be \"error\" or \"drop\"")
        entries["rows"] = _Entry(f"{where} {split_key}", by_group["files"], decl, "test")
    else:
        files, splits = decl.get("files"), decl.get("splits") or {}
        if files is not None and not (isinstance(files, str) or
                                      (isinstance(files, list) and all(isinstance(x, str) for x in files))):
            raise TaskError(f"{where}: files must be a path template or a list of them (a table goes in train/valid/test)")
        for split in ("train", "valid", "test"):
            value = decl.get(split)
            if value is None and files is not None:
                value = _fill(files if isinstance(files, list) else [files], "{lang}", splits.get(split, split))
            if value is None:
                raise TaskError(f"{where}: no {split} (give {split} = PATH, or files + splits)")
            entries[split] = _Entry(f"{where} {split}", value, decl, split)
    extra = [_Entry(f"{where} extra_train", e, decl, "train") for e in decl.get("extra_train", [])]
    labels = decl.get("labels")
    label_map = decl.get("label_map") or {}
    if not isinstance(label_map, dict) or not all(isinstance(v, str) for v in label_map.values()):
        raise TaskError(f"{where}: label_map must be a table {{ LABEL = \"NEW\" }}")
    if labels is not None and any(v not in labels for v in label_map.values()):
        raise TaskError(f"{where}: label_map maps to {sorted(set(label_map.values()) - set(labels))}, not in labels")

    def langs_of(split):
        return [train_lang] if split in ("train", "valid") else langs

    def missing():
        out = []
        checks = [(s, e, langs_of(s)) for s, e in entries.items() if s != "rows" and e.holdout is None]
        if "rows" in entries:
            checks.append((split_key, entries["rows"], list(dict.fromkeys([train_lang, *langs]))))
        checks += [("extra_train", e, [train_lang]) for e in extra]
        for split, e, lgs in checks:
            gone: Dict[Tuple[str, ...], List[str]] = {}
            for lg in lgs:
                if e.local_files(lg) and e.find(lg) is None:
                    # grouped by the unfilled templates: one line for every language of a split
                    key = tuple(e.local_files(lg)) if lg in e.by_lang else tuple(e.local_files("{lang}"))
                    gone.setdefault(key, []).append(lg)
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
            rows = _align(name, rows, train_lang, by_group)
            try:
                train, valid, tests = split_by_group(rows, train_lang, dev=float(by_group.get("dev", 0.1)),
                                                     test=float(by_group.get("test", 0.3)), seed=seed,
                                                     align=by_group.get("align", "rows"), name=f"task {name}:")
            except ValueError as e:
                raise TaskError(f"{e}; fix the files, or declare placeholders = \"drop\" in {split_key}") from None
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
        for part, items in [("train", train), ("valid", valid), *((f"test {lg}", v) for lg, v in test.items())]:
            if not items:
                why = (f"too few groups for the dev/test fractions of {split_key}" if "rows" in entries else
                       "too few rows for the holdout fraction" if part == "valid" else "no examples")
                raise TaskError(f"task {name}: the {part} split is empty ({why})")
        if label_map:
            _apply_label_map(name, label_map, data)
        if labels is not None:
            _check_labels(name, labels, data)
        if "rows" not in entries:
            data["warnings"] = _translation_warnings(name, entries, data, kind, train_lang)
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
        FileNotFoundError: no such file.
        InputFormatError: not valid TOML (with its line), a file that declares no task.
        TaskError: an unknown or missing key, an unknown reader or inherited task (naming the file and task).
    """
    from csfair.io import read_toml

    doc = read_toml(path)
    if not doc:
        raise InputFormatError(path, 0, "declares no task (expected [NAME] tables with the keys of "
                                        "csfair/evaluation/tasks.toml)")
    decls = {n: s.declaration for n, s in (known or {}).items()}
    out: Dict[str, TaskSpec] = {}
    for name, decl in doc.items():
        if not isinstance(decl, dict):
            raise TaskError(f"{path}: {name} = {decl!r}: expected a [{name}] table")
        if "inherit" in decl:
            base = decl["inherit"]
            if base not in decls:
                raise TaskError(f"{path}: task {name}: inherit = {base!r}: no such task above (or built in)")
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


def with_langs(spec: TaskSpec, langs: Sequence[str]) -> TaskSpec:
    """The same task declaration evaluated on other languages (e.g. every row of a multi-parallel test).

    Args:
        spec: a task.
        langs: its new ``langs`` (test languages).

    Returns:
        a new :class:`TaskSpec` (``spec`` is unchanged).

    Raises:
        ValueError: as for a declaration in a tasks file.
    """
    return _build(spec.name, {**spec.declaration, "langs": list(langs)}, spec.origin)


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

    Raises:
        ValueError: ``max_positions`` too small to hold one piece per text (with ``<s>``/``</s>``).
        TaskError: a split with no examples (an empty file is found by the loader, naming it; this
            also catches ``max_train``/``max_eval`` of 0), so that nothing is trained for a test that
            fairseq cannot load.
    """
    least = 6 if spec.pair else 3
    if max_positions < least:
        raise ValueError(f"max_positions {max_positions} cannot hold <s>, one piece and </s>"
                         f"{' for both texts' if spec.pair else ''} (at least {least})")
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
    empty = [f"{lg}.{split}" for (lg, split), items in parts.items() if not items]
    if empty:
        raise TaskError(f"task {spec.name}: no examples in {', '.join(empty)} (max_train={max_train}, "
                        f"max_eval={max_eval})")
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


def _input_pieces(raw_dir: PathLike):
    """``(<lang>.<split>, lines)`` for each split of a :func:`write_task_data` ``raw/`` directory, where
    ``lines`` iterates over the pieces of every line of its ``input0`` and (if present) ``input1`` files."""

    def lines(base):
        for field_name in ("input0", "input1"):
            path = os.path.join(raw_dir, f"{base}.{field_name}")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    for line in fh:
                        yield line.split()

    for name in sorted(os.listdir(raw_dir)):
        if name.endswith(".input0"):
            base = name[: -len(".input0")]
            yield base, lines(base)


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
    for base, lines in _input_pieces(raw_dir):
        total = unk = 0
        for pieces in lines:
            for piece in pieces:
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
    for base, lines in _input_pieces(raw_dir):
        total = unk = 0
        for pieces in lines:
            word = None  # [has an unknown piece, every piece unknown or a bare boundary]
            for j, piece in enumerate(pieces):
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
