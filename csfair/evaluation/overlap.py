"""Held-out data: de-duplication of pretraining/lexicon inputs against evaluation data, and its audit.

A system has "seen" an evaluation sentence when the sentence, or its translation, is in any text
it was trained on: the monolingual MLM text (and so the sentencepiece vocabulary), or the parallel
text of the IBM-1 lexicon and of word alignments. Everything here compares sentences by one
normalised key (:func:`normalize`), held in Python sets, so a check of every training line against
every evaluation sentence costs one hash look-up per line (no pairwise comparison).

What is compared (the audit's unit):

* one key per *line* of a training/lexicon input file (monolingual text or one side of a
  line-aligned parallel file);
* one key per *evaluation item text*: a tagged sentence (POS, NER, LID) is its gold tokens joined
  with single spaces; a classification example (XNLI, SICK, SentiMix sentiment) contributes its
  first text and, for sentence pairs, its second text as two separate items; a line of an MLM test
  file is one item.
* with a parallel corpus, also the *translations* of evaluation items: the other side of every
  pair with an item on one side (:func:`translation_splits`);
* the key is :func:`normalize` of that text: Unicode NFKC, lower-cased (``str.lower``), every run
  of whitespace collapsed to one space, leading/trailing whitespace removed. Punctuation and
  tokenisation are kept, so ``"Paris , France"`` and ``"Paris, France"`` are different keys.

The evaluation splits are those of the zero-shot runner (``scripts/zeroshot.py``), read through the
task loaders of :data:`csfair.evaluation.tasks.TASKS` (and so through the readers of
:mod:`csfair.evaluation.corpora`) with the runner's data seed: each task's ``valid`` split (model selection in
the training language) and its ``test`` split per language. Training splits of the fine-tuning
tasks are not evaluation data and are not compared.
"""
import json
import os
import random
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from csfair.io import LineIssues, PathLike, atomic_write, iter_lines, iter_parallel

_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The comparison key of a sentence: NFKC, lower-case, whitespace runs collapsed, stripped.

    Args:
        text: one sentence (str).

    Returns:
        the key (str; empty for whitespace-only text).
    """
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


@dataclass
class EvalSplit:
    """One evaluation split as a bag of normalised item texts.

    Attributes:
        name: ``task/lang.split`` (e.g. ``ner-wikiann/de.test``, ``mlm/fr.test``).
        kind: ``test`` (an overlap with training data fails the audit) or ``valid`` (reported).
        lang: language code of the split (``es-en`` for code-switched data).
        keys: one normalised key per item text (repeats kept: counts are per item).
        source: where it was read from (file or task loader).
    """

    name: str
    kind: str
    lang: str
    keys: List[str]
    source: str = ""
    _set: Optional[Set[str]] = field(default=None, repr=False)

    @property
    def key_set(self) -> Set[str]:
        """The distinct keys (cached)."""
        if self._set is None:
            self._set = set(self.keys)
        return self._set


def _item_texts(item) -> List[str]:
    """Texts of one evaluation item: a TaggedSentence's joined tokens; a TextExample's text(s)."""
    if hasattr(item, "words"):
        return [" ".join(item.words)]
    return [t for t in (item.text_a, item.text_b) if t is not None]


def _lang_parts(code: str) -> Set[str]:
    return set(code.split("-"))


def task_eval_splits(langs: Sequence[str], seed: int = 1, tasks: Optional[Sequence[str]] = None) -> List[EvalSplit]:
    """The zero-shot runner's evaluation splits in any of ``langs``.

    A split belongs to a language when that language is one of the split language's ``-``-separated
    parts (``es-en`` belongs to ``en``); a task trained on code-switched data (``source_lang ==
    "cs"``) has its ``valid`` split in the languages of its test sets.

    Args:
        langs: language codes (e.g. ``["en", "fr"]``).
        seed: the data seed of the task loaders (``scripts/zeroshot.py`` uses 1; it decides the
            XNLI premise split and the 90/10 splits of the code-switched tasks).
        tasks: task names of :data:`csfair.evaluation.tasks.TASKS` (default: every task whose
            data is under the data root; the others are named on stderr).

    Returns:
        the splits, in task order, ``valid`` first then the tests.

    Raises:
        KeyError: an unknown task name.
        csfair.io.InputFormatError: a malformed evaluation file (from the readers).
    """
    from csfair.evaluation.tasks import TASKS

    want = set(langs)
    out: List[EvalSplit] = []
    for name in (tasks if tasks is not None else list(TASKS)):
        if name not in TASKS:
            raise KeyError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
        spec = TASKS[name]
        if tasks is None and spec.missing():
            # a task without data on this machine can be neither evaluated nor leaked into
            print(f"overlap: task {name} skipped, its data is not here ({spec.missing()[0][2][0]}, ...)",
                  file=sys.stderr)
            continue
        valid_lang = "-".join(spec.test_langs) if spec.source_lang == "cs" else spec.source_lang
        picked = [("valid", valid_lang, None)] if _lang_parts(valid_lang) & want else []
        picked += [("test", lg, lg) for lg in spec.test_langs if _lang_parts(lg) & want]
        if not picked:
            continue
        data = spec.load(seed)
        for kind, lg, key in picked:
            items = data["valid"] if kind == "valid" else data["test"][key]
            keys = [normalize(t) for it in items for t in _item_texts(it)]
            out.append(EvalSplit(f"{name}/{lg}.{kind}", kind, lg, [k for k in keys if k],
                                 source=f"csfair.evaluation.tasks.TASKS[{name!r}].load({seed})"))
    return out


def file_eval_split(name: str, path: PathLike, kind: str = "test", lang: str = "") -> EvalSplit:
    """An evaluation split read from a one-sentence-per-line file (e.g. the MLM test text).

    Raises:
        FileNotFoundError: no such file.
    """
    issues = LineIssues(str(path))
    keys = [normalize(t) for _, t in iter_lines(path, issues)]
    return EvalSplit(name, kind, lang, [k for k in keys if k], source=str(path))


def file_keys(path: PathLike) -> Set[str]:
    """Distinct normalised keys of the usable lines of a text file (``.gz`` allowed).

    Raises:
        FileNotFoundError: no such file.
    """
    return {normalize(t) for _, t in iter_lines(path, LineIssues(str(path)))}


def translation_splits(splits: Sequence[EvalSplit], src_file: PathLike, tgt_file: PathLike) -> List[EvalSplit]:
    """The translations of evaluation items found in a line-aligned parallel corpus, as splits.

    For each split with at least one item on either side of the parallel text, a split named
    ``"<name>~translations"`` (same kind) whose items are the other sides of those pairs: a
    translation of a test sentence in a training input is a leak as much as the sentence itself.

    Raises:
        FileNotFoundError: a parallel file is missing.
        csfair.io.InputFormatError: the files differ in length.
    """
    partners: Dict[str, List[str]] = {}
    for _, s, t in iter_parallel(src_file, tgt_file, LineIssues(f"{src_file} ||| {tgt_file}")):
        ks, kt = normalize(s), normalize(t)
        partners.setdefault(ks, []).append(kt)
        partners.setdefault(kt, []).append(ks)
    out = []
    for sp in splits:
        keys = [p for k in sp.keys for p in partners.get(k, ())]
        if keys:
            out.append(EvalSplit(f"{sp.name}~translations", sp.kind, "", keys,
                                 source=f"other side of {src_file} ||| {tgt_file}"))
    return out


def count_overlaps(train_keys: Set[str], split: EvalSplit, examples: int = 0) -> Tuple[int, List[str]]:
    """Items of ``split`` whose key is in ``train_keys``: (count with repeats, first ``examples`` keys)."""
    hits = [k for k in split.keys if k in train_keys]
    return len(hits), list(dict.fromkeys(hits))[:examples]


def audit(inputs: Dict[str, PathLike], splits: Sequence[EvalSplit], examples: int = 3) -> dict:
    """Normalised exact-match overlaps of every training input with every evaluation split.

    Args:
        inputs: ``{name: path}`` of the training/lexicon input files (one sentence per line).
        splits: the evaluation splits.
        examples: overlapping keys kept per cell (for the report).

    Returns:
        ``{"inputs": {name: {"path", "lines"}}, "splits": {name: {"kind", "lang", "items"}},
        "overlaps": {split: {input: {"count", "examples"}}}, "test_overlaps": int, "ok": bool}``;
        ``ok`` is False when any ``test`` split has an item in any input.

    Raises:
        FileNotFoundError: an input file is missing.
    """
    keys = {name: file_keys(path) for name, path in inputs.items()}
    report = {
        "compared": "normalised exact match: NFKC, lower-case, whitespace collapsed; tagged sentences as "
                    "tokens joined by spaces; one item per sentence or per text of a pair; counts are items",
        "inputs": {n: {"path": str(p), "distinct_lines": len(keys[n])} for n, p in inputs.items()},
        "splits": {s.name: {"kind": s.kind, "lang": s.lang, "items": len(s.keys), "source": s.source} for s in splits},
        "overlaps": {},
    }
    total_test = 0
    for s in splits:
        row = {}
        for n in inputs:
            c, ex = count_overlaps(keys[n], s, examples)
            row[n] = {"count": c, "examples": ex}
            if s.kind == "test":
                total_test += c
        report["overlaps"][s.name] = row
    report["test_overlaps"] = total_test
    report["ok"] = total_test == 0
    return report


def format_audit(report: dict) -> str:
    """The audit as a Markdown table: one row per evaluation split, one column per input."""
    names = list(report["inputs"])
    head = ["split", "kind", "items"] + names
    rows = [head, ["---"] * len(head)]
    for split, row in report["overlaps"].items():
        info = report["splits"][split]
        rows.append([split, info["kind"], str(info["items"])] + [str(row[n]["count"]) for n in names])
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    status = "OK: no test split overlaps a training input" if report["ok"] else \
        f"FAIL: {report['test_overlaps']} test item(s) occur in training inputs"
    return "\n".join(lines + [status])


def write_audit(report: dict, path: PathLike) -> None:
    """Write the audit report as JSON (atomically)."""
    with atomic_write(path) as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)


def split_pair(
    mono: Dict[str, PathLike],
    tgt_lang: str,
    parallel: Optional[Tuple[PathLike, PathLike]],
    out_dir: PathLike,
    eval_splits: Sequence[EvalSplit],
    n_test: int,
    n_valid: int,
    max_train: Optional[int] = None,
    seed: int = 1,
    max_chars: int = 10000,
    src_lang: Optional[str] = None,
) -> dict:
    """Hold the target test set and every evaluation sentence out of all training text of a pair.

    Order (held-out data is fixed before anything is trained):

    1. the target-language MLM test set: a seeded shuffle of the usable lines of
       ``mono[tgt_lang]``, its first ``n_test`` lines (the same lines as ``csfair-prep split``
       with the same seed);
    2. held-out keys ``H`` = test keys and the keys of ``eval_splits`` (valid and test);
    3. parallel text: a pair is dropped when either side's key is in the exclusion set ``X``
       (initially ``H``); the keys of both sides of every dropped pair (the held-out sentences
       *and their translations*) join ``X``, repeated until no pair is dropped (so a translation
       of a held-out sentence that also occurs in another pair takes that pair out too); the
       kept pairs are written;
    4. per language, the remaining monolingual lines (seeded shuffle order) whose key is in ``X``
       are dropped; the first ``n_valid`` of the rest are the validation split, the others the
       training split (at most ``max_train``). Every file keeps corpus order.

    Args:
        mono: ``{lang: path}`` of the monolingual text (one sentence per line, ``.gz`` allowed).
        tgt_lang: the language that gets the test split (a key of ``mono``).
        parallel: ``(src_file, tgt_file)`` line-aligned parallel text, or None.
        out_dir: writes ``text/<lang>.{train,valid}.txt``, ``text/<tgt>.test.txt``,
            ``parallel/train.{src,tgt}`` (with ``src_lang``/``tgt_lang`` suffixes) and
            ``heldout.json`` (the counts returned).
        eval_splits: evaluation splits to hold out (:func:`task_eval_splits`).
        n_test, n_valid: held-out test lines (target language) and validation lines (each language).
        max_train: cap on training lines per language (None: all).
        seed: shuffling seed (the monolingual order of each language).
        max_chars: lines longer than this are skipped (counted), as in ``csfair-prep split``.
        src_lang: the other language of ``parallel`` (required with ``parallel``).

    Returns:
        counts (also written to ``heldout.json``): ``{"<lang>": {"input", "usable", "skipped",
        "dropped_heldout", "valid", "train"[, "test"]}, "parallel": {"src", "tgt", "pairs", "kept",
        "dropped", "skipped"}, "heldout_keys": |H|, "excluded_keys": |X|, "eval_splits": [names]}``.

    Raises:
        ValueError: too few lines left for the requested splits; ``parallel`` without ``src_lang``.
        FileNotFoundError: an input is missing.
        csfair.io.InputFormatError: parallel files of different lengths.
    """
    if parallel is not None and src_lang is None:
        raise ValueError("split_pair: parallel text needs src_lang")
    lines: Dict[str, List[str]] = {}
    skipped: Dict[str, int] = {}
    for lang, path in mono.items():
        issues = LineIssues(str(path))
        lines[lang] = [t for _, t in iter_lines(path, issues, max_chars=max_chars)]
        issues.report()
        skipped[lang] = issues.total
    orders = {}
    for lang in mono:
        order = list(range(len(lines[lang])))
        random.Random(seed).shuffle(order)
        orders[lang] = order
    tgt_order = orders[tgt_lang]
    if n_test >= len(tgt_order):
        raise ValueError(f"{mono[tgt_lang]}: {len(tgt_order)} usable lines, cannot hold out {n_test} test lines")
    test_idx = tgt_order[:n_test]
    orders[tgt_lang] = tgt_order[n_test:]
    held: Set[str] = {normalize(lines[tgt_lang][i]) for i in test_idx}
    for s in eval_splits:
        held |= s.key_set
    exclude = set(held)
    stats: Dict[str, dict] = {}
    text_dir = os.path.join(out_dir, "text")
    if parallel is not None:
        src_file, tgt_file = parallel
        issues = LineIssues(f"{src_file} ||| {tgt_file}")
        pairs = [(s, t, normalize(s), normalize(t))
                 for _, s, t in iter_parallel(src_file, tgt_file, issues, max_chars=max_chars)]
        # Fixed point: a dropped pair's sides join the exclusion set, which can drop further pairs
        # sharing a side (a duplicated caption with another translation), until nothing changes.
        dropped = [False] * len(pairs)
        changed = True
        while changed:
            changed = False
            for i, (_, _, ks, kt) in enumerate(pairs):
                if not dropped[i] and (ks in exclude or kt in exclude):
                    dropped[i] = changed = True
                    exclude.add(ks)
                    exclude.add(kt)
        with atomic_write(os.path.join(out_dir, "parallel", f"train.{src_lang}")) as fs, \
                atomic_write(os.path.join(out_dir, "parallel", f"train.{tgt_lang}")) as ft:
            for (s, t, _, _), drop in zip(pairs, dropped):
                if not drop:
                    fs.write(s + "\n")
                    ft.write(t + "\n")
        n_pairs, n_drop = len(pairs), sum(dropped)
        issues.report()
        stats["parallel"] = {"src": str(src_file), "tgt": str(tgt_file), "pairs": n_pairs,
                             "kept": n_pairs - n_drop, "dropped": n_drop, "skipped": issues.total}
    for lang in mono:
        rest = [i for i in orders[lang] if normalize(lines[lang][i]) not in exclude]
        n_dropped = len(orders[lang]) - len(rest)
        if n_valid >= len(rest):
            raise ValueError(f"{mono[lang]}: {len(rest)} lines left after holding out, cannot hold out {n_valid} "
                             "validation lines")
        parts = {"valid": rest[:n_valid], "train": rest[n_valid:]}
        if max_train is not None:
            parts["train"] = parts["train"][:max_train]
        if lang == tgt_lang and n_test:
            parts["test"] = test_idx
        for name, idx in parts.items():
            if not idx and name != "train":
                continue
            with atomic_write(os.path.join(text_dir, f"{lang}.{name}.txt")) as fh:
                for i in sorted(idx):  # keep corpus order inside a split
                    fh.write(lines[lang][i] + "\n")
        stats[lang] = {"input": str(mono[lang]), "usable": len(lines[lang]), "skipped": skipped[lang],
                       "dropped_heldout": n_dropped, **{k: len(v) for k, v in parts.items()}}
    stats["heldout_keys"] = len(held)
    stats["excluded_keys"] = len(exclude)
    stats["eval_splits"] = [s.name for s in eval_splits]
    with atomic_write(os.path.join(out_dir, "heldout.json")) as fh:
        json.dump(stats, fh, indent=2)
    return stats
