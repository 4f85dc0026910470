"""Multi-seed results: JSON lines per run, protocol keys, failure flags, tables with significance.

One record per (model, task, seed, language, split)::

    {"model": "ibm1", "task": "pos", "lang": "fr", "split": "test", "seed": 2, "protocol": "3f2a...",
     "metrics": {"accuracy": 0.61, ...}, "n": 1000, "lr": 5e-05, "epochs": 3, "best_epoch": 2,
     "flags": [], "eval_flags": [], "unk_rate": 0.01, "unk_word_rate": 0.0, "items": "3f2a...|2|fr|test", ...}

* :func:`protocol_key`: a digest of everything that defines a run but the seed (fine-tuning
  hyperparameters, data sizes, code version, the pretrained checkpoint's SHA-256). Finished runs are
  looked up by it, so a changed hyperparameter or a retrained checkpoint under the same name is
  never served old results, and a table cell holds one protocol only.
* :func:`failure_flags`: a run whose dev score does not beat the majority-class baseline, or whose
  dev predictions are (nearly) all one label, is not a result: it is flagged (``flags``, the same on
  every record of the run), marked in the table and left out of the mean. Exclusion uses the
  training language's dev set only, known before any test set is read; the same checks on a test
  set give ``eval_flags``, a note next to a value that stays in the mean.
* :func:`aggregate` turns records into the shape of Visser et al. (2025), Tables 4 and 5: rows are
  languages, columns are models, cells ``mean ± std (n=runs, K items)`` over the kept runs;
  :func:`add_significance` compares every column with a reference column by
  :func:`csfair.evaluation.stats.hierarchical_bootstrap` (fine-tuning seeds, pretrained checkpoints
  and test items), from per-item scores (:func:`item_scores`) stored next to the results by
  :func:`append_items`.
"""
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from csfair.io import PathLike, atomic_write
from csfair.evaluation.metrics import mean_std

BELOW_MAJORITY = "below_majority"  # dev score <= the majority-class baseline's
COLLAPSED = "collapsed"  # more than COLLAPSE_SHARE of the predictions are one label
COLLAPSE_SHARE = 0.95
MOSTLY_UNK = 0.5  # a language whose inputs are more than this share <unk> gets a note in the table


class ResultsFileWarning(UserWarning):
    """A results (JSON-lines) file holds a line that is not a complete record: it is skipped or
    repaired, and this warning names the file and the line."""


def append_result(path: PathLike, record: dict) -> None:
    """Append one record as one JSON line, written by one ``write`` of the complete line (flushed and
    fsynced).

    A file that does not end in a newline holds the fragment of an earlier append that was cut
    short (a full disk, a killed process): it first gets a newline, so that the fragment stays a
    line of its own (skipped with a warning by :func:`load_results`) and is never glued to this
    record; a :class:`ResultsFileWarning` names the file. An append that fails part-way (ENOSPC
    after a short write) is undone: the file is cut back to its size before it, so it ends with a
    complete line again.

    Args:
        path: the JSON-lines file (created with its folder if missing).
        record: a JSON-serialisable dict.

    Raises:
        OSError: the write failed; the message names the file and says that no part of the
            record was kept (errno as the original error's).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.fstat(fd).st_size
        if start > 0:
            with open(path, "rb") as fh:
                fh.seek(start - 1)
                if fh.read(1) != b"\n":
                    warnings.warn(f"{path}: ends with an incomplete line (an earlier append was cut short); "
                                  "it is closed with a newline and will be skipped when read", ResultsFileWarning,
                                  stacklevel=2)
                    data = b"\n" + data
        written = 0
        try:
            while written < len(data):  # one write unless the kernel takes only part of the line
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                # undo our part-line (shrinking a file works on a full disk), unless someone appended after it
                if written and os.fstat(fd).st_size == start + written:
                    os.ftruncate(fd, start)
            raise OSError(e.errno, f"{path}: appending a result failed ({e.strerror}); "
                                   "no part of the record was kept") from e
    finally:
        os.close(fd)


def load_results(path: PathLike) -> List[dict]:
    """All complete records of a JSON-lines file.

    A line that is not a JSON object is skipped with a :class:`ResultsFileWarning` naming
    ``path:line`` (an incomplete line: an append cut short). A line where the fragment of a
    cut-short append was glued in front of a complete record (files written before
    :func:`append_result` closed fragments) gives back that record (one that has every key the
    file's intact records share), with a warning saying how much was dropped.
    """
    if not os.path.exists(path):
        return []
    out: List[Tuple[int, dict]] = []
    bad: List[Tuple[int, str]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if isinstance(rec, dict):
                out.append((lineno, rec))
            else:
                bad.append((lineno, line))
    if bad:
        common = set.intersection(*(set(r) for _, r in out)) if out else None
        for lineno, line in bad:
            glued = _glued_record(line)
            if glued is not None and common and common <= set(glued[1]):
                warnings.warn(f"{path}:{lineno}: the {glued[0]}-character fragment of a cut-short append was glued in "
                              "front of a record: the record is kept, the fragment skipped", ResultsFileWarning,
                              stacklevel=2)
                out.append((lineno, glued[1]))
            else:
                warnings.warn(f"{path}:{lineno}: not a complete JSON record (an append cut short?), skipped",
                              ResultsFileWarning, stacklevel=2)
        out.sort(key=lambda x: x[0])
    return [r for _, r in out]


def _glued_record(line: str) -> Optional[Tuple[int, dict]]:
    """``(characters cut, record)`` when ``line`` is a fragment followed by a complete JSON object."""
    i = line.find("{", 1)
    while i > 0:
        try:
            rec = json.loads(line[i:])
            if isinstance(rec, dict):
                return i, rec
        except json.JSONDecodeError:
            pass
        i = line.find("{", i + 1)
    return None


def protocol_key(protocol: dict) -> str:
    """16 hex digits of the SHA-256 of the protocol's canonical JSON (sorted keys).

    Args:
        protocol: JSON-serialisable description of a run without its seed (hyperparameters, data
            sizes, code version, checkpoint digest, ...). Any change of a value changes the key.
    """
    blob = json.dumps(protocol, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _flat(labels: Sequence) -> List:
    """Sentence labels as they are; tagging label lists flattened to one list of word labels."""
    return [t for x in labels for t in x] if labels and isinstance(labels[0], (list, tuple)) else list(labels)


def top_share(labels: Sequence) -> Tuple[Optional[str], float]:
    """The most frequent label and its share (``(None, 0.0)`` for no labels); tagging lists are flattened."""
    flat = _flat(labels)
    if not flat:
        return None, 0.0
    label, count = Counter(flat).most_common(1)[0]
    return label, count / len(flat)


def majority_predictions(train_labels: Sequence, gold: Sequence) -> List:
    """Predictions of the majority-class baseline for ``gold``: the most frequent training label everywhere.

    Args:
        train_labels: training labels (strings, or per-sentence lists for tagging).
        gold: the evaluated items' gold labels, same shape convention.
    Returns:
        one label per sentence (classification) or a list per sentence of its length (tagging).
    """
    label, _ = top_share(train_labels)
    if gold and isinstance(gold[0], (list, tuple)):
        return [[label] * len(g) for g in gold]
    return [label] * len(gold)


def failure_flags(score: Optional[float], majority_score: Optional[float], gold: Sequence, pred: Sequence,
                  share: float = COLLAPSE_SHARE) -> List[str]:
    """Why a run (or one of its evaluations) is not a result; ``[]`` when it is one.

    Args:
        score: the evaluation's score (dev: model selection); None skips the baseline check.
        majority_score: the same metric for the majority-class baseline on the same items.
        gold, pred: labels of the items (strings, or per-sentence lists for tagging).
        share: collapse threshold.

    Returns:
        :data:`BELOW_MAJORITY` when ``score <= majority_score``; :data:`COLLAPSED` when more than
        ``share`` of the predictions are one label and the gold labels are not themselves that
        one-sided (a test set that is 97% ``O`` does not make a model that predicts 97% ``O``
        a failure).
    """
    flags = []
    if score is not None and majority_score is not None and not (score > majority_score):
        flags.append(BELOW_MAJORITY)
    label, s = top_share(pred)
    if label is not None and s > share:
        flat = _flat(gold)
        gold_share = flat.count(label) / max(len(flat), 1)
        if gold_share <= share:
            flags.append(COLLAPSED)
    return flags


class SpanItems(NamedTuple):
    """Per-sentence span counts of one evaluation (the items of a span-F1 metric).

    Attributes:
        types: entity types, the columns of ``counts``.
        counts: per sentence and type (tp, fp, fn), nested lists ``[n][len(types)][3]`` of ints
            (:func:`csfair.evaluation.metrics.span_counts`).
    """

    types: List[str]
    counts: List[List[List[int]]]


def item_scores(metric_fn: str, gold: Sequence, pred: Sequence):
    """Per-item scores of one evaluation, for the paired bootstrap.

    Args:
        metric_fn: ``token_accuracy`` (items are sentences: correct words, words),
            ``sentence_metrics`` (items are examples: 1 if correct, 1) or ``span_f1`` (items are
            sentences: per entity type tp/fp/fn counts, from which any of the span metrics is
            recomputed per resample).
        gold, pred: per item.

    Returns:
        ``(num, den)`` lists for an accuracy, a :class:`SpanItems` for span F1, None for another metric.
    """
    if metric_fn == "token_accuracy":
        return [sum(a == b for a, b in zip(g, p)) for g, p in zip(gold, pred)], [len(g) for g in gold]
    if metric_fn == "sentence_metrics":
        return [int(g == p) for g, p in zip(gold, pred)], [1] * len(gold)
    if metric_fn == "span_f1":
        from csfair.evaluation.metrics import span_counts

        types, counts = span_counts(gold, pred)
        return SpanItems(types, counts.tolist())
    return None


def items_key(protocol: str, seed: int, lang: str, split: str) -> str:
    """The key of one evaluation's per-item scores in the items file."""
    return f"{protocol}|{seed}|{lang}|{split}"


def append_items(path: PathLike, key: str, num, den: Optional[Sequence[int]] = None) -> None:
    """One JSON line of per-item scores: ``{"key", "num", "den"}`` for an accuracy (``den`` left out
    when every item weighs 1), ``{"key", "types", "counts"}`` when ``num`` is a :class:`SpanItems`
    (``item_scores``' result can be passed as it is: ``append_items(path, key, item_scores(...))``)."""
    if isinstance(num, SpanItems):
        append_result(path, {"key": key, "types": list(num.types), "counts": [list(map(list, c)) for c in num.counts]})
        return
    if den is None and isinstance(num, tuple) and len(num) == 2 and all(isinstance(x, (list, tuple)) for x in num):
        num, den = num
    rec = {"key": key, "num": list(num)}
    if den is not None and any(d != 1 for d in den):
        rec["den"] = list(den)
    append_result(path, rec)


def load_items(path: PathLike) -> Dict[str, object]:
    """``{key: (num, den)}`` for accuracy lines, ``{key: SpanItems}`` for span-count lines, of an items
    file (the last line of a key wins; files written before span items existed load unchanged)."""
    out = {}
    for r in load_results(path):
        if "counts" in r:
            out[r["key"]] = SpanItems(list(r["types"]), r["counts"])
        else:
            out[r["key"]] = (r["num"], r.get("den", [1] * len(r["num"])))
    return out


@dataclass
class Cell:
    """One table cell: mean ± std over the runs of one column and language that were not excluded.

    A column is one system: a model under one protocol, or (pretraining seeds) several pretrained
    checkpoints of one method, each with its fine-tuning seeds. A run is excluded only on dev
    evidence (its ``flags``: the training language's dev set, before any test set is read); what
    goes wrong on a test set (``eval_flags``, e.g. predictions collapsed to one label on Hindi) is a
    note, and the value stays in the mean.

    Attributes:
        mean, std: over ``values`` (NaN when none); std is the sample std (0.0 for one value).
        n: runs in the mean (fine-tuning seeds; several checkpoints: all their runs).
        failed: runs excluded on dev, left out of the mean.
        values: the kept runs' scores, in (checkpoint, seed) order.
        flags: the excluded runs' dev reasons, ``{run: [flag, ...]}`` (run: the seed; ``"ckptK/seedS"``
            for the K-th checkpoint of a column with several).
        notes: test-time flags of kept runs, ``{run: [flag, ...]}`` (shown, never excluding).
        protocol: the protocol key of the column's records (the first checkpoint's).
        unk_rate: share of ``<unk>`` input pieces of the language (max over the records), if known.
        unk_word_rate: share of its words that are entirely ``<unk>`` (max over the records), if known.
        n_items: test items per run (sentences or sentence pairs), or ``(min, max)`` when runs differ.
        items: items-file keys of the kept runs (for :func:`add_significance`), parallel to ``groups``.
        groups: the checkpoint (0, 1, ...) of each kept run.
        checkpoints: pretrained checkpoints of the column (1 unless it pools several).
        sig: :func:`csfair.evaluation.stats.hierarchical_bootstrap`'s dict against the reference
            column, or ``{"error": why}`` when it cannot be computed; None: not asked for.
    """

    mean: float
    std: float
    n: int
    failed: int = 0
    values: List[float] = field(default_factory=list)
    flags: Dict = field(default_factory=dict)
    notes: Dict = field(default_factory=dict)
    protocol: Optional[str] = None
    unk_rate: Optional[float] = None
    unk_word_rate: Optional[float] = None
    n_items: Optional[object] = None
    items: List[str] = field(default_factory=list)
    groups: List[int] = field(default_factory=list)
    checkpoints: int = 1
    sig: Optional[dict] = None

    @property
    def empty(self) -> bool:
        return self.n == 0 and self.failed == 0


def aggregate(
    records: Iterable[dict],
    task: str,
    metric: str,
    split: str = "test",
    models: Optional[Sequence[str]] = None,
    langs: Optional[Sequence[str]] = None,
    protocols: Optional[Iterable[str]] = None,
    seeds: Optional[Iterable[int]] = None,
    columns: Optional[Dict[Tuple[str, str], str]] = None,
) -> Dict[str, Dict[str, Cell]]:
    """``{lang: {column: Cell}}`` of ``metric`` for one task and split.

    Args:
        records: result records (see the module docstring).
        task, metric, split: what to tabulate.
        models: column order (default: order of appearance).
        langs: row order (default: order of appearance).
        protocols: keep only records of these protocol keys (the runner passes the current
            command's, so results of another protocol are never shown).
        seeds: keep only these fine-tuning seeds (the runner passes the command's: the same
            protocol run with more seeds elsewhere does not enter a table titled with these).
        columns: ``{(model, protocol): column name}``: only these records, several protocols may
            form one column (the pretrained checkpoints of one method: pretraining seeds). None: a
            column is one (model, protocol); a model with records of several protocols gets one
            column per protocol, named ``model@<first 8 digits>``, so a cell never mixes protocols.

    If a (model, protocol, lang, seed) appears more than once the last record wins (a re-run
    replaces). Records with ``flags`` (dev evidence, the same for every language of a run) count as
    failed: out of the mean, counted in ``Cell.failed``; ``eval_flags`` become ``Cell.notes``.
    """
    keep = set(protocols) if protocols is not None else None
    seed_ok = set(seeds) if seeds is not None else None
    latest: Dict[tuple, dict] = {}
    for r in records:
        if r.get("task") != task or r.get("split") != split or metric not in r.get("metrics", {}):
            continue
        proto = r.get("protocol")
        if keep is not None and proto not in keep:
            continue
        if columns is not None and (r["model"], proto) not in columns:
            continue
        if seed_ok is not None and r["seed"] not in seed_ok:
            continue
        latest[(r["model"], proto, r["lang"], r["seed"])] = r
    members: Dict[str, List[tuple]] = {}  # column name -> [(model, protocol)], in order of appearance
    if columns is not None:
        for m, proto, _, _ in latest:
            members.setdefault(columns[(m, proto)], [])
            if (m, proto) not in members[columns[(m, proto)]]:
                members[columns[(m, proto)]].append((m, proto))
    else:
        protos_of: Dict[str, List] = {}
        for m, proto, _, _ in latest:
            protos_of.setdefault(m, [])
            if proto not in protos_of[m]:
                protos_of[m].append(proto)
        for m, protos in protos_of.items():
            for proto in protos:
                members[m if len(protos) == 1 else f"{m}@{str(proto)[:8]}"] = [(m, proto)]
    order = list(members)
    if models:  # only these, in this order (a model without records: an empty column)
        order = [c for m in models for c in ([c for c in members if c == m or c.startswith(f"{m}@")] or [m])]
    langs = list(langs) if langs else list(dict.fromkeys(lg for _, _, lg, _ in latest))
    table: Dict[str, Dict[str, Cell]] = {}
    for lang in langs:
        row = {}
        for name in order:
            mem = members.get(name, [])
            multi = len(mem) > 1
            runs = []  # (checkpoint index, record)
            for k, (m, proto) in enumerate(mem):
                runs += [(k, r) for (m2, p2, lg, _), r in sorted(latest.items(), key=lambda x: x[0][3])
                         if m2 == m and p2 == proto and lg == lang]
            run_id = (lambda k, r: f"ckpt{k + 1}/seed{r['seed']}") if multi else (lambda k, r: r["seed"])
            good = [(k, r) for k, r in runs if not r.get("flags")]
            values = [float(r["metrics"][metric]) for _, r in good]
            mean, std, n = mean_std(values)
            unk = [r["unk_rate"] for _, r in runs if r.get("unk_rate") is not None]
            unk_w = [r["unk_word_rate"] for _, r in runs if r.get("unk_word_rate") is not None]
            sizes = sorted({r["n"] for _, r in good if r.get("n") is not None})
            row[name] = Cell(
                mean, std, n, failed=len(runs) - len(good), values=values,
                flags={run_id(k, r): list(r["flags"]) for k, r in runs if r.get("flags")},
                notes={run_id(k, r): list(r["eval_flags"]) for k, r in good if r.get("eval_flags")},
                protocol=mem[0][1] if mem else None, unk_rate=max(unk) if unk else None,
                unk_word_rate=max(unk_w) if unk_w else None,
                n_items=(sizes[0] if len(sizes) == 1 else (sizes[0], sizes[-1])) if sizes else None,
                items=[r["items"] for _, r in good if r.get("items")],
                groups=[k for k, r in good if r.get("items")], checkpoints=max(1, len(mem)))
        table[lang] = row
    return table


def _align(types: List[str], counts, union: List[str]):
    """``counts`` ``[n, len(types), 3]`` with the columns of ``union`` (absent types count 0)."""
    import numpy as np

    out = np.zeros((counts.shape[0], len(union), 3), dtype=np.int64)
    if types:
        out[:, [union.index(t) for t in types], :] = counts
    return out


def _runs_of(keys: Sequence[str], items: Dict[str, object], what: str):
    """The per-item scores of ``keys``: ``("acc", num [m, n], den [n])`` or ``("span", [(types, counts)])``.

    Raises:
        ValueError: a key without per-item scores, or runs of one column on different items.
    """
    import numpy as np

    got = [items.get(k) for k in keys]
    if not got or any(g is None for g in got):
        raise ValueError(f"{what}: no per-item scores (failed seeds only, or records written before per-item "
                         "scores of this metric were stored)")
    if all(isinstance(g, SpanItems) for g in got):
        counts = [np.asarray(g.counts, dtype=np.int64).reshape(len(g.counts), len(g.types), 3) for g in got]
        if len({c.shape[0] for c in counts}) != 1:
            raise ValueError(f"{what}: its seeds were scored on different test items")
        return "span", [(list(g.types), c) for g, c in zip(got, counts)]
    if any(isinstance(g, SpanItems) for g in got):
        raise ValueError(f"{what}: its seeds mix span counts and accuracy items")
    den = list(got[0][1])
    if any(list(d) != den for _, d in got):
        raise ValueError(f"{what}: its seeds were scored on different test items")
    return "acc", np.asarray([g[0] for g in got], dtype=np.float64), np.asarray(den, dtype=np.float64)


def compare_runs(keys_a: Sequence[str], keys_b: Sequence[str], items: Dict[str, object], metric: Optional[str],
                 groups_a: Optional[Sequence[int]] = None, groups_b: Optional[Sequence[int]] = None,
                 n_boot: int = 1000, seed: int = 12345) -> dict:
    """:func:`csfair.evaluation.stats.hierarchical_bootstrap` of the runs ``keys_b`` against ``keys_a``.

    Accuracy items (``(num, den)``: correct words and words per sentence, or 0/1 per example) give
    each run's score as ``sum(num) / sum(den)``; span items (:class:`SpanItems`) are put on the
    union of both columns' entity types and each run's score is ``metric``
    (:func:`csfair.evaluation.metrics.span_score_from_counts`, as seqeval computes it) of its summed
    counts. Difference ``b - a``.

    Args:
        keys_a, keys_b: items-file keys of the two columns' runs (:func:`items_key`).
        items: :func:`load_items`' dict.
        metric: the table's metric: a span metric for span items; ``accuracy`` (or None) for accuracy items.
        groups_a, groups_b: the pretrained checkpoint of each run (None: one checkpoint).
        n_boot, seed: item resamples and their seed.

    Returns:
        the bootstrap's dict, or ``{"error": why}`` (missing items, different test items, a column
        with fewer than 2 runs, a metric the items cannot give).
    """
    from csfair.evaluation.metrics import SPAN_METRICS, span_score_from_counts
    from csfair.evaluation.stats import hierarchical_bootstrap

    try:
        a = _runs_of(keys_a, items, "the reference")
        b = _runs_of(keys_b, items, "this column")
    except ValueError as e:
        return {"error": str(e)}
    if a[0] != b[0]:
        return {"error": "span counts on one side, accuracy items on the other"}
    multi = lambda g: None if g is None or len(set(g)) < 2 else list(g)  # noqa: E731
    try:
        if a[0] == "acc":
            if metric not in (None, "accuracy"):
                return {"error": f"per-item scores are accuracies; the table's metric is {metric}"}
            if a[1].shape[1] != b[1].shape[1] or not _np_equal(a[2], b[2]):
                return {"error": "different test items than the reference"}
            return hierarchical_bootstrap(a[1], b[1], n_boot=n_boot, seed=seed, den=a[2],
                                          groups_a=multi(groups_a), groups_b=multi(groups_b))
        if metric not in SPAN_METRICS:
            return {"error": f"span counts need a span metric ({', '.join(SPAN_METRICS)}), got {metric!r}"}
        if a[1][0][1].shape[0] != b[1][0][1].shape[0]:
            return {"error": "different test items than the reference"}
        import numpy as np

        union = sorted({t for side in (a, b) for types, _ in side[1] for t in types})
        ca = np.stack([_align(t, c, union) for t, c in a[1]])
        cb = np.stack([_align(t, c, union) for t, c in b[1]])
        return hierarchical_bootstrap(ca, cb, n_boot=n_boot, seed=seed,
                                      statistic=lambda s: span_score_from_counts(s, metric),
                                      groups_a=multi(groups_a), groups_b=multi(groups_b))
    except ValueError as e:
        return {"error": str(e)}


def _np_equal(x, y) -> bool:
    """Whether two 1-d arrays are of one length and equal."""
    import numpy as np

    return x.shape == y.shape and bool(np.array_equal(x, y))


def add_significance(table: Dict[str, Dict[str, Cell]], items: Dict[str, object],
                     reference: str, n_boot: int = 1000, seed: int = 12345,
                     metric: Optional[str] = None) -> None:
    """Fill ``Cell.sig`` of every column against column ``reference``, per language (in place).

    Each comparison is :func:`compare_runs` of the two cells' kept runs: the hierarchical bootstrap
    of :func:`csfair.evaluation.stats.hierarchical_bootstrap` (fine-tuning seeds, pretrained
    checkpoints where a column has several, and test items, paired across columns), whose
    difference is that of the two cells' means. A cell gets ``{"error": why}`` when it cannot be
    computed: a side without per-item scores, different test items, fewer than 2 kept runs (the
    seed variance of a column is unknown from one run), or span items without a span ``metric``.

    Args:
        table: :func:`aggregate`'s table.
        items: :func:`load_items`' dict.
        reference: the column every other column is compared with.
        n_boot, seed: item resamples and their seed.
        metric: the table's metric (span items need one of
            :data:`csfair.evaluation.metrics.SPAN_METRICS`; accuracy items need ``accuracy``).

    Raises:
        KeyError: ``reference`` is not a column of the table.
    """
    for lang, row in table.items():
        if reference not in row:
            raise KeyError(f"--reference {reference!r} is not a column ({', '.join(row)})")
        ref = row[reference]
        for name, cell in row.items():
            if name == reference or cell.empty:
                continue
            if len(cell.items) != cell.n or len(ref.items) != ref.n:
                cell.sig = {"error": "no per-item scores (failed seeds only, or records written before per-item "
                                     "scores of this metric were stored)"}
                continue
            cell.sig = compare_runs(ref.items, cell.items, items, metric, ref.groups, cell.groups,
                                    n_boot=n_boot, seed=seed)


def _runs_text(cell: Cell) -> str:
    n = f"n={cell.n}" + (f" in {cell.checkpoints} ckpts" if cell.checkpoints > 1 else "")
    if cell.n_items is None:
        return n
    k = cell.n_items
    return n + (f", {k} items" if isinstance(k, int) else f", {k[0]}-{k[1]} items")


def format_cell(cell: Cell, digits: int = 4) -> str:
    """``mean ± std (n=N, K items)``; `` *`` when the interval excludes 0, `` †`` for a test-time note,
    ``; K failed`` for runs excluded on dev."""
    if cell.empty:
        return "-"
    if cell.n == 0:
        return f"failed ({cell.failed} of {cell.failed})"
    text = f"{cell.mean:.{digits}f} ± {cell.std:.{digits}f} ({_runs_text(cell)})"
    if cell.sig and cell.sig.get("significant"):
        text += " *"
    if cell.notes:
        text += " †"
    if cell.failed:
        text += f"; {cell.failed} failed"
    return text


def _runs_list(keys) -> str:
    return ", ".join(map(str, sorted(keys, key=str)))


def to_markdown(table: Dict[str, Dict[str, Cell]], title: str = "", digits: int = 4,
                reference: Optional[str] = None, n_boot: int = 1000, train_lang: str = "training-language") -> str:
    """A Markdown table: languages down, models across, :func:`format_cell` cells, then notes.

    Notes under the table: the test behind ``*`` (named), what ``†`` and ``failed`` mean, which
    cells have no significance and why (``Cell.sig["error"]``), which dev flags excluded runs, which
    test-time flags kept runs have, and languages whose words are mostly ``<unk>`` for a column's
    vocabulary.

    Args:
        table: :func:`aggregate`'s table (with :func:`add_significance`'s ``sig`` when ``reference``).
        title: printed in bold above the table.
        digits: decimals of means and stds.
        reference: the column compared with (names the test in the legend).
        n_boot: item resamples of the test (named in the legend).
        train_lang: the language whose dev set decides exclusions (named in the legend).
    """
    from csfair.evaluation.stats import HIERARCHICAL_TEST

    models = list(next(iter(table.values())).keys()) if table else []
    lines = ([f"**{title}**", ""] if title else []) + [
        "| Language | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    notes, failed_any, noted_any = [], False, False
    for lang, row in table.items():
        lines.append(f"| {lang} | " + " | ".join(format_cell(row[m], digits) for m in models) + " |")
        for m in models:
            c = row[m]
            if c.failed:
                failed_any = True
                why = sorted({f for fl in c.flags.values() for f in fl})
                notes.append(f"{lang} / {m}: run(s) {_runs_list(c.flags)} excluded on the {train_lang} dev set ({', '.join(why)})")
            if c.notes:
                noted_any = True
                why = sorted({f for fl in c.notes.values() for f in fl})
                notes.append(f"{lang} / {m}: run(s) {_runs_list(c.notes)} {', '.join(why)} on this test set; kept in the mean")
            if c.unk_word_rate is not None and c.unk_word_rate > MOSTLY_UNK:
                pieces = f" ({100 * c.unk_rate:.0f}% of the pieces)" if c.unk_rate is not None else ""
                notes.append(f"{lang} / {m}: {100 * c.unk_word_rate:.0f}% of the words are entirely <unk> for this "
                             f"vocabulary{pieces}: the score measures the label prior, not transfer")
    legend = []
    if reference is not None:
        legend.append(f"`*`: the 95% interval of the difference to `{reference}` excludes 0; {HIERARCHICAL_TEST}, "
                      f"{n_boot} item resamples (csfair.evaluation.stats.hierarchical_bootstrap; interval and p in "
                      "the CSV/JSON and the forest plot)")
    legend.append("n: runs (fine-tuning seeds) in the mean; items: test items per run (sentences, or sentence pairs)")
    no_sig = sorted({c.sig["error"] for row in table.values() for c in row.values() if c.sig and "error" in c.sig})
    for why in no_sig:
        cells = ", ".join(f"{lang} / {m}" for lang, row in table.items() for m, c in row.items()
                          if c.sig and c.sig.get("error") == why)
        legend.append(f"significance not computed for {cells}: {why}")
    if failed_any:
        legend.append(f"failed: excluded on the {train_lang} dev set only (dev score not above the majority-class "
                      f"baseline, {BELOW_MAJORITY}, or more than {100 * COLLAPSE_SHARE:.0f}% of the dev predictions one "
                      f"label, {COLLAPSED}); left out of the mean in every language")
    if noted_any:
        legend.append(f"†: a test-time flag (e.g. {COLLAPSED}: more than {100 * COLLAPSE_SHARE:.0f}% of the test "
                      "predictions one label); a note, not an exclusion: the value stays in the mean")
    if legend or notes:
        lines += [""] + [f"- {x}" for x in legend + notes]
    return "\n".join(lines)


def _num(x, fmt="{:.6f}"):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def to_csv(table: Dict[str, Dict[str, Cell]]) -> str:
    """CSV: ``lang`` then per model ``mean, std, n, failed, items, notes, unk_rate, unk_word_rate, diff, lo,
    hi, p, welch_p`` (the hierarchical test against the reference column; empty where not computed)."""
    models = list(next(iter(table.values())).keys()) if table else []
    keys = ("mean", "std", "n", "failed", "items", "notes", "unk_rate", "unk_word_rate", "diff", "lo", "hi", "p",
            "welch_p")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["lang"] + [f"{m}_{k}" for m in models for k in keys])
    for lang, row in table.items():
        out = [lang]
        for m in models:
            c, sig = row[m], row[m].sig or {}
            k = c.n_items
            out += [_num(c.mean), _num(c.std), c.n, c.failed, "" if k is None else (k if isinstance(k, int) else f"{k[0]}-{k[1]}"),
                    len(c.notes), _num(c.unk_rate, "{:.4f}"), _num(c.unk_word_rate, "{:.4f}"),
                    _num(sig.get("diff")), _num(sig.get("lo")), _num(sig.get("hi")), _num(sig.get("p"), "{:.4f}"),
                    _num(sig.get("welch_p"), "{:.4f}")]
        w.writerow(out)
    return buf.getvalue()


def to_json(table: Dict[str, Dict[str, Cell]]) -> dict:
    """``{lang: {model: Cell fields}}`` (JSON-serialisable; NaN and infinite numbers as None)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return {lang: {m: clean(asdict(c)) for m, c in row.items()} for lang, row in table.items()}


def write_tables(base_path: PathLike, table: Dict[str, Dict[str, Cell]], markdown: str) -> None:
    """``base_path`` + ``.md``, ``.csv``, ``.json`` (atomic writes)."""
    with atomic_write(str(base_path) + ".md") as fh:
        fh.write(markdown + "\n")
    with atomic_write(str(base_path) + ".csv") as fh:
        fh.write(to_csv(table))
    with atomic_write(str(base_path) + ".json") as fh:
        json.dump(to_json(table), fh, indent=1)
