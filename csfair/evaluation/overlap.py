"""Held-out data: evaluation sentences (and their translations) out of every training input, and its audit.

A system has "seen" an evaluation sentence when the sentence, a near-copy of it, or its translation
is in any text it was trained on: the monolingual MLM text (and so the sentencepiece vocabulary),
or the parallel text of the IBM-1 lexicon and of word alignments.

What is compared (the audit's unit):

* every *line* of a training/lexicon input file (monolingual text or one side of a line-aligned
  parallel file);
* every *evaluation item text*: a tagged sentence (POS, NER, LID) is its gold tokens joined with
  single spaces; a classification example (XNLI, SICK, SentiMix sentiment) contributes its first
  text and, for sentence pairs, its second text as two separate items; a line of an MLM test file
  is one item;
* for a task whose test rows are translations of each other across languages (``aligned_test =
  true`` in the tasks file: XNLI, PAWS-X), every language's row of each evaluated test item
  (``<task>/<lang>.test~aligned``): the English original of a French XNLI test item is test data;
* with a parallel corpus, also the *translations* of evaluation items: the other side of every
  pair with a copy (``exact`` or ``copy`` below) of an item on one side (:func:`translation_splits`).

A line *holds* an item (:mod:`csfair.evaluation.nearcopy`) as an ``exact`` copy (equal
:func:`normalize` keys: NFKC, lower-case, whitespace collapsed), a ``copy`` (equal words:
tokenisation, punctuation and case ignored, ``l' homme`` = ``l'homme``), ``contained`` (the item's
words inside a longer line; items of at least ``n`` words) or ``ngram`` (the line holds at least
``threshold`` of the item's distinct word ``n``-grams; default 8 and 0.7, PaLM's contamination
ratio). Every test is a hash look-up or a sorted-array search per line (no pairwise comparison).

The evaluation splits are those of the zero-shot runner (``scripts/zeroshot.py``), read through the
task loaders of :data:`csfair.evaluation.tasks.TASKS` (and so through the readers of
:mod:`csfair.evaluation.corpora`) with the runner's data seed: each task's ``valid`` split (model selection in
the training language) and its ``test`` split per language. Training splits of the fine-tuning
tasks are not evaluation data and are not compared.
"""
import json
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from csfair.evaluation.nearcopy import KINDS, NGRAM, THRESHOLD, NearCopyIndex, TextTable, normalize, word_lists
from csfair.io import LineIssues, PathLike, atomic_write, iter_lines, iter_parallel


@dataclass
class EvalSplit:
    """One evaluation split as a bag of normalised item texts.

    Attributes:
        name: ``task/lang.split`` (e.g. ``ner-wikiann/de.test``, ``mlm/fr.test``, ``xnli/en.test~aligned``).
        kind: ``test`` (a hit in a training input fails the audit) or ``valid`` (reported).
        lang: language code of the split (``es-en`` for code-switched data).
        keys: one normalised key per item text (repeats kept: counts are per item).
        source: where it was read from (file or task loader).
        sources: where each item was read from (``path:line``, same length as ``keys``; may be empty).
    """

    name: str
    kind: str
    lang: str
    keys: List[str]
    source: str = ""
    sources: List[str] = field(default_factory=list)
    _set: Optional[Set[str]] = field(default=None, repr=False)

    @property
    def key_set(self) -> Set[str]:
        """The distinct keys (cached)."""
        if self._set is None:
            self._set = set(self.keys)
        return self._set

    def item_source(self, i: int) -> str:
        """Where item ``i`` (0-based) was read from (``path:line``), or ``name#i+1`` when unknown."""
        return self.sources[i] if i < len(self.sources) else f"{self.name}#{i + 1}"


def _item_texts(item) -> List[Tuple[str, str]]:
    """(text, source) of one evaluation item: a TaggedSentence's joined tokens; a TextExample's text(s)."""
    if hasattr(item, "words"):
        return [(" ".join(item.words), item.source)]
    out = [(item.text_a, item.source)]
    if item.text_b is not None:
        out.append((item.text_b, f"{item.source} (second text)"))
    return out


def _lang_parts(code: str) -> Set[str]:
    return set(code.split("-"))


def _split_of(name: str, kind: str, lang: str, items, source: str) -> EvalSplit:
    keys, sources = [], []
    for it in items:
        for text, src in _item_texts(it):
            k = normalize(text)
            if k:
                keys.append(k)
                sources.append(src)
    return EvalSplit(name, kind, lang, keys, source=source, sources=sources)


def task_eval_splits(langs: Sequence[str], seed: int = 1, tasks: Optional[Sequence[str]] = None) -> List[EvalSplit]:
    """The zero-shot runner's evaluation splits in any of ``langs``, with the aligned rows of multi-parallel tests.

    A split belongs to a language when that language is one of the split language's ``-``-separated
    parts (``es-en`` belongs to ``en``); a task trained on code-switched data (``source_lang ==
    "cs"``) has its ``valid`` split in the languages of its test sets. For a task declared
    ``aligned_test = true`` (test rows of all its languages are translations of each other, row by
    row: XNLI), when one of its test splits is picked, every other language's rows of the same test
    items (the training language's included) are test splits too, named ``<task>/<lang>.test~aligned``.

    Args:
        langs: language codes (e.g. ``["en", "fr"]``).
        seed: the data seed of the task loaders (``scripts/zeroshot.py`` uses 1; it decides the
            XNLI premise split and the 90/10 splits of the code-switched tasks).
        tasks: task names of :data:`csfair.evaluation.tasks.TASKS` (default: every task whose
            data is under the data root; the others are named on stderr).

    Returns:
        the splits, in task order, ``valid`` first, then the tests, then the aligned tests.

    Raises:
        KeyError: an unknown task name.
        csfair.io.InputFormatError: a malformed evaluation file (from the readers).
        ValueError: the rows of an ``aligned_test`` task are not aligned (from its loader).
    """
    from csfair.evaluation.tasks import TASKS, with_langs

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
        src = f"csfair.evaluation.tasks.TASKS[{name!r}].load({seed})"
        data = spec.load(seed)
        for kind, lg, key in picked:
            items = data["valid"] if kind == "valid" else data["test"][key]
            out.append(_split_of(f"{name}/{lg}.{kind}", kind, lg, items, src))
        tested = [lg for kind, lg, _ in picked if kind == "test"]
        if spec.declaration.get("aligned_test") and tested:
            others = [lg for lg in dict.fromkeys([spec.source_lang, *spec.test_langs]) if lg not in tested]
            full = with_langs(spec, [*spec.test_langs, *others]).load(seed)
            for lg in others:
                out.append(_split_of(f"{name}/{lg}.test~aligned", "test", lg, full["test"][lg],
                                     f"{src}, rows aligned with the {'/'.join(tested)} test items"))
    return out


def file_eval_split(name: str, path: PathLike, kind: str = "test", lang: str = "") -> EvalSplit:
    """An evaluation split read from a one-sentence-per-line file (e.g. the MLM test text).

    Raises:
        FileNotFoundError: no such file.
    """
    keys, sources = [], []
    for lineno, t in iter_lines(path, LineIssues(str(path))):
        k = normalize(t)
        if k:
            keys.append(k)
            sources.append(f"{path}:{lineno}")
    return EvalSplit(name, kind, lang, keys, source=str(path), sources=sources)


def file_keys(path: PathLike) -> Set[str]:
    """Distinct normalised keys of the usable lines of a text file (``.gz`` allowed).

    Raises:
        FileNotFoundError: no such file.
    """
    return {normalize(t) for _, t in iter_lines(path, LineIssues(str(path)))}


def translation_splits(splits: Sequence[EvalSplit], src_file: PathLike, tgt_file: PathLike) -> List[EvalSplit]:
    """The translations of evaluation items found in a line-aligned parallel corpus, as splits.

    A pair translates an item when one of its sides is a copy of the item: the same words
    (:func:`csfair.evaluation.nearcopy.words`: tokenisation, punctuation and case ignored). For
    each split with at least one such pair, a split named ``"<name>~translations"`` (same kind)
    whose items are the other sides of those pairs: a translation of a test sentence in a training
    input is a leak as much as the sentence itself.

    Raises:
        FileNotFoundError: a parallel file is missing.
        csfair.io.InputFormatError: the files differ in length.
    """
    rows = list(iter_parallel(src_file, tgt_file, LineIssues(f"{src_file} ||| {tgt_file}")))
    src_keys = [normalize(s) for _, s, _ in rows]
    tgt_keys = [normalize(t) for _, _, t in rows]
    partners: Dict[str, List[Tuple[str, str]]] = {}
    for (lineno, _, _), ks, kt, ws, wt in zip(rows, src_keys, tgt_keys, word_lists(src_keys), word_lists(tgt_keys)):
        if ws:
            partners.setdefault(" ".join(ws), []).append((kt, f"{tgt_file}:{lineno}"))
        if wt:
            partners.setdefault(" ".join(wt), []).append((ks, f"{src_file}:{lineno}"))
    keys = list(dict.fromkeys(k for sp in splits for k in sp.keys))
    loose = dict(zip(keys, (" ".join(w) for w in word_lists(keys))))
    out = []
    for sp in splits:
        found = [p for k in sp.keys for p in partners.get(loose[k], ())]
        if found:
            out.append(EvalSplit(f"{sp.name}~translations", sp.kind, "", [k for k, _ in found],
                                 source=f"other side of {src_file} ||| {tgt_file}", sources=[s for _, s in found]))
    return out


def _read_lines(path: PathLike) -> Tuple[List[int], List[str]]:
    linenos, texts = [], []
    for lineno, t in iter_lines(path, LineIssues(str(path))):
        linenos.append(lineno)
        texts.append(t)
    return linenos, texts


def audit(inputs: Dict[str, PathLike], splits: Sequence[EvalSplit], n: int = NGRAM,
          threshold: float = THRESHOLD) -> dict:
    """Copies and near-copies of every evaluation item in every training input.

    One :class:`csfair.evaluation.nearcopy.NearCopyIndex` over the distinct item texts of all splits;
    each input file is read and scanned once. An item counts once per input, with its strongest
    hit (``exact`` > ``copy`` > ``contained`` > ``ngram``, then the larger n-gram share, then the
    first line).

    Args:
        inputs: ``{name: path}`` of the training/lexicon input files (one sentence per line).
        splits: the evaluation splits.
        n: word n-gram length of the near-copy test.
        threshold: share of an item's distinct n-grams one line must hold.

    Returns:
        ``{"compared", "near_copy": {"n", "threshold"}, "inputs": {name: {"path", "lines"}},
        "splits": {name: {"kind", "lang", "items", "source"}}, "overlaps": {split: {input: {"count",
        "kinds": {kind: count}, "hits": [{"item", "source", "text", "kind", "share", "line"}]}}},
        "test_overlaps": int, "test_kinds": {kind: count}, "ok": bool}``; ``item`` is 1-based in
        its split, ``line`` is the input file's line number; ``ok`` is False when any ``test``
        split has an item in any input.

    Raises:
        FileNotFoundError: an input file is missing.
        ValueError: a bad ``n`` or ``threshold``.
    """
    uniq: Dict[str, int] = {}
    split_u = [np.array([uniq.setdefault(k, len(uniq)) for k in s.keys], dtype=np.int64) for s in splits]
    index = NearCopyIndex(list(uniq), n, threshold)
    report = {
        "compared": "every item text (tagged sentences as tokens joined by spaces; each text of a pair) against "
                    "every line: exact (NFKC, lower-case, whitespace collapsed), copy (same words: punctuation, "
                    "case, tokenisation ignored), contained (the item's words inside the line, items of >= n "
                    "words), ngram (the line holds >= threshold of the item's distinct word n-grams); counts "
                    "are items (repeats included), each with its strongest hit",
        "near_copy": {"n": n, "threshold": threshold},
        "inputs": {},
        "splits": {s.name: {"kind": s.kind, "lang": s.lang, "items": len(s.keys), "source": s.source} for s in splits},
        "overlaps": {s.name: {} for s in splits},
    }
    for name, path in inputs.items():
        linenos, texts = _read_lines(path)
        report["inputs"][name] = {"path": str(path), "lines": len(texts)}
        hits = index.match(TextTable.build(texts, n))
        # strongest hit per item: kind, then larger share, then first line
        order = np.lexsort((hits.line, -hits.share, hits.kind, hits.item))
        first = np.ones(len(order), dtype=bool)
        first[1:] = hits.item[order][1:] != hits.item[order][:-1]
        best = {int(hits.item[o]): o for o in order[first]}
        for s, us in zip(splits, split_u):
            cell = {"count": 0, "kinds": {k: 0 for k in KINDS}, "hits": []}
            for i, u in enumerate(us.tolist()):
                o = best.get(u)
                if o is None:
                    continue
                kind = KINDS[hits.kind[o]]
                cell["count"] += 1
                cell["kinds"][kind] += 1
                cell["hits"].append({"item": i + 1, "source": s.item_source(i), "text": s.keys[i], "kind": kind,
                                     "share": round(float(hits.share[o]), 4), "line": linenos[hits.line[o]]})
            report["overlaps"][s.name][name] = cell
    test_cells = [c for s in splits if s.kind == "test" for c in report["overlaps"][s.name].values()]
    report["test_overlaps"] = sum(c["count"] for c in test_cells)
    report["test_kinds"] = {k: sum(c["kinds"][k] for c in test_cells) for k in KINDS}
    report["ok"] = report["test_overlaps"] == 0
    return report


def format_audit(report: dict, max_hits: int = 20) -> str:
    """The audit as a Markdown table (one row per evaluation split, one column per input), then the test hits.

    Args:
        report: :func:`audit`'s result.
        max_hits: test hits listed (file and line, split and item); the rest are counted (all are in
            the JSON report).
    """
    names = list(report["inputs"])
    head = ["split", "kind", "items"] + names
    rows = [head, ["---"] * len(head)]
    for split, row in report["overlaps"].items():
        info = report["splits"][split]
        rows.append([split, info["kind"], str(info["items"])] + [str(row[n]["count"]) for n in names])
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    nc = report["near_copy"]
    lines.append(f"(cells: items held by the input as an exact copy, a copy up to tokenisation/punctuation/case, "
                 f"contained in a longer line, or >= {nc['threshold']:g} of their word {nc['n']}-grams in one line)")
    listed = 0
    hits = [(split, name, h) for split, row in report["overlaps"].items() if report["splits"][split]["kind"] == "test"
            for name, cell in row.items() for h in cell["hits"]]
    for split, name, h in hits[:max_hits]:
        share = f", {h['share']:.0%} of its {nc['n']}-grams" if h["kind"] == "ngram" else ""
        lines.append(f"  {report['inputs'][name]['path']}:{h['line']} ({name}) holds {split} item {h['item']} "
                     f"({h['source']}) as {h['kind']}{share}: {h['text'][:80]}")
        listed += 1
    if len(hits) > listed:
        lines.append(f"  ... and {len(hits) - listed} more test hit(s) (all in the JSON report)")
    if report["ok"]:
        status = "OK: no test item is held by a training input (exact, copy, contained or n-gram)"
    else:
        kinds = ", ".join(f"{v} {k}" for k, v in report["test_kinds"].items() if v)
        status = f"FAIL: {report['test_overlaps']} test item(s) held by training inputs ({kinds})"
    return "\n".join(lines + [status])


def write_audit(report: dict, path: PathLike) -> None:
    """Write the audit report as JSON (atomically)."""
    with atomic_write(path) as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)


def _kind_counts(kinds: np.ndarray) -> Dict[str, int]:
    return {k: int((kinds == c).sum()) for c, k in enumerate(KINDS)}


def _strongest(n_rows: int, *hit_sets) -> np.ndarray:
    """Strongest hit kind per row over several Hits (len(KINDS) where none), int8 [n_rows]."""
    out = np.full(n_rows, len(KINDS), dtype=np.int8)
    for h in hit_sets:
        np.minimum.at(out, h.line, h.kind)
    return out


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
    n: int = NGRAM,
    threshold: float = THRESHOLD,
) -> dict:
    """Hold the target test set and every evaluation sentence, with their near-copies, out of all training text.

    Order (held-out data is fixed before anything is trained):

    1. the target-language MLM test set: a seeded shuffle of the usable lines of
       ``mono[tgt_lang]``, its first ``n_test`` lines (the same lines as ``csfair-prep split``
       with the same seed);
    2. held-out sentences ``H`` = the test lines and the items of ``eval_splits`` (valid and test,
       aligned rows of multi-parallel tests included);
    3. parallel text: a pair is dropped when either side holds a sentence of the exclusion set
       ``X`` (initially ``H``) as an exact copy, a copy, contained, or by n-gram share
       (:mod:`csfair.evaluation.nearcopy`); both sides of every dropped pair (near-copies of
       held-out sentences *and their translations*) join ``X``, repeated until no pair is dropped;
       the kept pairs are written;
    4. per language, the remaining monolingual lines (seeded shuffle order) that hold a sentence of
       ``X`` the same way are dropped; the first ``n_valid`` of the rest are the validation split, the
       others the training split (at most ``max_train``). Every file keeps corpus order.

    ``csfair-prep audit`` with the same ``n`` and ``threshold`` then finds no test item in any
    output (its translations are pairs with a copy of an item on one side, a subset of step 3).

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
        n, threshold: the near-copy test (word n-gram length; share of an item's n-grams in one line).

    Returns:
        counts (also written to ``heldout.json``): ``{"<lang>": {"input", "usable", "skipped",
        "dropped_heldout", "dropped_by_kind", "valid", "train"[, "test"]}, "parallel": {"src", "tgt",
        "pairs", "kept", "dropped", "dropped_by_kind", "skipped", "rounds"}, "heldout_keys": |H|,
        "excluded_keys": |X|, "near_copy": {"n", "threshold"}, "eval_splits": [names]}``;
        ``dropped_by_kind`` counts lines (pairs) by their strongest hit.

    Raises:
        ValueError: too few lines left for the requested splits; ``parallel`` without ``src_lang``;
            a bad ``n`` or ``threshold``.
        FileNotFoundError: an input is missing.
        csfair.io.InputFormatError: parallel files of different lengths.
    """
    if parallel is not None and src_lang is None:
        raise ValueError("split_pair: parallel text needs src_lang")
    NearCopyIndex([], n, threshold)  # checks n and threshold before any work
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
    held: Dict[str, None] = dict.fromkeys(normalize(lines[tgt_lang][i]) for i in test_idx)
    for s in eval_splits:
        held.update(dict.fromkeys(s.keys))
    held.pop("", None)
    exclude: Dict[str, None] = dict(held)
    # X is indexed in parts: H, then the sentences each round of the parallel fixed point adds
    indexes = [NearCopyIndex(list(held), n, threshold)]
    stats: Dict[str, dict] = {}
    text_dir = os.path.join(out_dir, "text")
    if parallel is not None:
        src_file, tgt_file = parallel
        issues = LineIssues(f"{src_file} ||| {tgt_file}")
        pairs = [(s, t) for _, s, t in iter_parallel(src_file, tgt_file, issues, max_chars=max_chars)]
        sides = [TextTable.build([p[k] for p in pairs], n) for k in (0, 1)]
        # Fixed point: the sides of a dropped pair join the exclusion set, which can drop further pairs
        # holding them (a duplicated caption with another translation), until nothing changes. Each round
        # scans the pairs still kept for the sentences added in the round before.
        kind = np.full(len(pairs), len(KINDS), dtype=np.int8)
        rounds = 0
        while True:
            rounds += 1
            alive = kind == len(KINDS)
            strongest = _strongest(len(pairs), *(indexes[-1].match(t, alive) for t in sides))
            newly = np.flatnonzero(alive & (strongest < len(KINDS)))
            kind[newly] = strongest[newly]
            new = []
            for i in newly.tolist():
                for k in (sides[0].exact[i], sides[1].exact[i]):
                    if k and k not in exclude:
                        exclude[k] = None
                        new.append(k)
            if not new:
                break
            indexes.append(NearCopyIndex(new, n, threshold))
        dropped = kind < len(KINDS)
        with atomic_write(os.path.join(out_dir, "parallel", f"train.{src_lang}")) as fs, \
                atomic_write(os.path.join(out_dir, "parallel", f"train.{tgt_lang}")) as ft:
            for (s, t), drop in zip(pairs, dropped):
                if not drop:
                    fs.write(s + "\n")
                    ft.write(t + "\n")
        n_pairs, n_drop = len(pairs), int(dropped.sum())
        issues.report()
        stats["parallel"] = {"src": str(src_file), "tgt": str(tgt_file), "pairs": n_pairs, "kept": n_pairs - n_drop,
                             "dropped": n_drop, "dropped_by_kind": _kind_counts(kind[dropped]),
                             "skipped": issues.total, "rounds": rounds}
    for lang in mono:
        order = orders[lang]
        table = TextTable.build([lines[lang][i] for i in order], n)
        strongest = _strongest(len(order), *(index.match(table) for index in indexes))
        held_out = strongest < len(KINDS)
        rest = [i for i, h in zip(order, held_out.tolist()) if not h]
        n_dropped = len(order) - len(rest)
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
                       "dropped_heldout": n_dropped, "dropped_by_kind": _kind_counts(strongest[held_out]),
                       **{k: len(v) for k, v in parts.items()}}
    stats["heldout_keys"] = len(held)
    stats["excluded_keys"] = len(exclude)
    stats["near_copy"] = {"n": n, "threshold": threshold}
    stats["eval_splits"] = [s.name for s in eval_splits]
    with atomic_write(os.path.join(out_dir, "heldout.json")) as fh:
        json.dump(stats, fh, indent=2)
    return stats
