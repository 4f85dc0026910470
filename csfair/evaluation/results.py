"""Multi-seed results: JSON lines per run, protocol keys, failure flags, tables with significance.

One record per (model, task, seed, language, split)::

    {"model": "ibm1", "task": "pos", "lang": "fr", "split": "test", "seed": 2, "protocol": "3f2a...",
     "metrics": {"accuracy": 0.61, ...}, "n": 1000, "lr": 5e-05, "epochs": 3, "best_epoch": 2,
     "flags": [], "unk_rate": 0.01, "items": "3f2a...|2|fr|test", ...}

* :func:`protocol_key`: a digest of everything that defines a run but the seed (fine-tuning
  hyperparameters, data sizes, code version, the pretrained checkpoint's SHA-256). Finished runs are
  looked up by it, so a changed hyperparameter or a retrained checkpoint under the same name is
  never served old results, and a table cell holds one protocol only.
* :func:`failure_flags`: a run whose dev score does not beat the majority-class baseline, or whose
  predictions are (nearly) all one label, is not a result: it is flagged, marked in the table and
  left out of the mean.
* :func:`aggregate` turns records into the shape of Visser et al. (2025), Tables 4 and 5: rows are
  languages, columns are models, cells ``mean ± std (n=seeds)`` over the unflagged seeds;
  :func:`add_significance` adds a paired bootstrap over test items against a reference column
  (:func:`csfair.evaluation.stats.paired_bootstrap`; per-item scores from :func:`item_scores`, stored next to
  the results by :func:`append_items`).
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
    """One table cell: mean ± std over the unflagged seeds of one (model, protocol, language).

    Attributes:
        mean, std: over ``values`` (NaN when none); std is the sample std (0.0 for one value).
        n: seeds in the mean.
        failed: flagged seeds, left out of the mean.
        values: the unflagged seeds' scores, in seed order.
        flags: the flagged seeds' reasons, ``{seed: [flag, ...]}``.
        protocol: the protocol key of every record in the cell.
        unk_rate: share of ``<unk>`` input pieces of the language (max over the records), if known.
        items: items-file keys of the unflagged seeds (for :func:`add_significance`).
        sig: paired bootstrap against the reference column (``csfair.evaluation.stats.paired_bootstrap``'s
            dict; ``paired_bootstrap_counts``' for span F1), or ``{"error": why}`` when it cannot be
            computed; None: not asked for.
    """

    mean: float
    std: float
    n: int
    failed: int = 0
    values: List[float] = field(default_factory=list)
    flags: Dict[int, List[str]] = field(default_factory=dict)
    protocol: Optional[str] = None
    unk_rate: Optional[float] = None
    items: List[str] = field(default_factory=list)
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
) -> Dict[str, Dict[str, Cell]]:
    """``{lang: {column: Cell}}`` of ``metric`` for one task and split.

    Args:
        records: result records (see the module docstring).
        task, metric, split: what to tabulate.
        models: column order (default: order of appearance).
        langs: row order (default: order of appearance).
        protocols: keep only records of these protocol keys (the runner passes the current
            command's, so results of another protocol are never shown).

    A column is one (model, protocol): a model with records of several protocols gets one column
    per protocol, named ``model@<first 8 digits>``, so a cell never mixes protocols. If a
    (model, protocol, lang, seed) appears more than once the last record wins (a re-run replaces).
    Records with ``flags`` count as failed: out of the mean, counted in ``Cell.failed``.
    """
    keep = set(protocols) if protocols is not None else None
    latest: Dict[tuple, dict] = {}
    for r in records:
        if r.get("task") != task or r.get("split") != split or metric not in r.get("metrics", {}):
            continue
        proto = r.get("protocol")
        if keep is not None and proto not in keep:
            continue
        latest[(r["model"], proto, r["lang"], r["seed"])] = r
    protos_of: Dict[str, List] = {}
    for m, proto, _, _ in latest:
        protos_of.setdefault(m, [])
        if proto not in protos_of[m]:
            protos_of[m].append(proto)
    order = list(models) if models else list(protos_of)
    columns = []  # (name, model, protocol)
    for m in order:
        protos = protos_of.get(m, [None])
        for proto in protos:
            columns.append((m if len(protos) == 1 else f"{m}@{str(proto)[:8]}", m, proto))
    langs = list(langs) if langs else list(dict.fromkeys(lg for _, _, lg, _ in latest))
    table: Dict[str, Dict[str, Cell]] = {}
    for lang in langs:
        row = {}
        for name, model, proto in columns:
            recs = sorted((r for (m, p, lg, _), r in latest.items() if m == model and p == proto and lg == lang),
                          key=lambda r: r["seed"])
            good = [r for r in recs if not r.get("flags")]
            values = [float(r["metrics"][metric]) for r in good]
            mean, std, n = mean_std(values)
            unk = [r["unk_rate"] for r in recs if r.get("unk_rate") is not None]
            row[name] = Cell(mean, std, n, failed=len(recs) - len(good), values=values,
                             flags={r["seed"]: list(r["flags"]) for r in recs if r.get("flags")},
                             protocol=proto, unk_rate=max(unk) if unk else None,
                             items=[r["items"] for r in good if r.get("items")])
        table[lang] = row
    return table


def _span_pooled(got: List[SpanItems]):
    """Counts ``[n, len(types), 3]`` summed over seeds and their type list, or None (different sentence counts)."""
    import numpy as np

    n = len(got[0].counts)
    if any(len(g.counts) != n for g in got):
        return None
    types = sorted({t for g in got for t in g.types})
    total = np.zeros((n, len(types), 3), dtype=np.int64)
    for g in got:
        if g.types and n:
            total[:, [types.index(t) for t in g.types], :] += np.asarray(g.counts, dtype=np.int64).reshape(n, len(g.types), 3)
    return types, total


def _align(types: List[str], counts, union: List[str]):
    """``counts`` ``[n, len(types), 3]`` with the columns of ``union`` (absent types count 0)."""
    import numpy as np

    out = np.zeros((counts.shape[0], len(union), 3), dtype=np.int64)
    if types:
        out[:, [union.index(t) for t in types], :] = counts
    return out


def add_significance(table: Dict[str, Dict[str, Cell]], items: Dict[str, object],
                     reference: str, n_boot: int = 1000, seed: int = 12345,
                     metric: Optional[str] = None) -> None:
    """Fill ``Cell.sig`` of every column against column ``reference``, per language (in place).

    Accuracy items (``(num, den)``): per test item, the score of a column is the mean over its
    unflagged seeds (pooled over seeds: the pooled accuracy equals the mean of the per-seed
    accuracies, the test items being the same), and :func:`csfair.evaluation.stats.paired_bootstrap`
    resamples items for the difference ``column - reference``.

    Span items (:class:`SpanItems`, span F1): per test sentence, a column's tp/fp/fn counts per
    entity type are summed over its unflagged seeds (the pooled score is the F1 of the seeds'
    predictions taken together as one corpus), both sides are put on the union of their types, and
    :func:`csfair.evaluation.stats.paired_bootstrap_counts` resamples sentences, recomputing
    ``metric`` (:func:`csfair.evaluation.metrics.span_score_from_counts`: macro F1 over the types with
    a gold or predicted span in the resample, as seqeval does) for both sides.

    A cell gets ``{"error": why}`` when a side has no per-item scores (failed seeds only, old
    records), the two sides' items differ (count or per-item denominators, e.g. a different
    truncation under another vocabulary), or span items come without a span ``metric``.

    Args:
        metric: the table's metric; needed for span items (one of
            :data:`csfair.evaluation.metrics.SPAN_METRICS`), ignored for accuracy items.

    Raises:
        KeyError: ``reference`` is not a column of the table.
    """
    from csfair.evaluation.metrics import SPAN_METRICS, span_score_from_counts
    from csfair.evaluation.stats import paired_bootstrap, paired_bootstrap_counts

    def pooled(cell):
        got = [items[k] for k in cell.items if k in items]
        if not got or len(got) != cell.n:
            return None
        if all(isinstance(g, SpanItems) for g in got):
            return _span_pooled(got)
        if any(isinstance(g, SpanItems) for g in got):
            return None
        den = got[0][1]
        if any(d != den for _, d in got):
            return None
        return [sum(x) / len(got) for x in zip(*(g[0] for g in got))], den

    for lang, row in table.items():
        if reference not in row:
            raise KeyError(f"--reference {reference!r} is not a column ({', '.join(row)})")
        ref = pooled(row[reference])
        for name, cell in row.items():
            if name == reference or cell.empty:
                continue
            mine = pooled(cell)
            if ref is None or mine is None:
                cell.sig = {"error": "no per-item scores (failed seeds only, or records written before per-item "
                                     "scores of this metric were stored)"}
            elif not _same_items(ref, mine):
                cell.sig = {"error": "different test items than the reference"}
            elif _is_span(ref):
                if metric not in SPAN_METRICS:
                    cell.sig = {"error": f"span counts need a span metric ({', '.join(SPAN_METRICS)}), got {metric!r}"}
                    continue
                union = sorted(set(ref[0]) | set(mine[0]))
                try:
                    cell.sig = paired_bootstrap_counts(
                        _align(ref[0], ref[1], union), _align(mine[0], mine[1], union),
                        lambda c: span_score_from_counts(c, metric), n_boot=n_boot, seed=seed)
                except ValueError as e:
                    cell.sig = {"error": str(e)}
            else:
                cell.sig = paired_bootstrap(ref[0], mine[0], mine[1], n_boot=n_boot, seed=seed)


def _is_span(pooled) -> bool:
    """Whether a pooled side holds span counts (types, array) rather than (num, den) lists."""
    return hasattr(pooled[1], "shape")


def _same_items(ref, mine) -> bool:
    """Both sides are of one kind on the same items (count, and per-item denominators for accuracies)."""
    if _is_span(ref) or _is_span(mine):
        return _is_span(ref) and _is_span(mine) and ref[1].shape[0] == mine[1].shape[0]
    return len(ref[0]) == len(mine[0]) and ref[1] == mine[1]


def format_cell(cell: Cell, digits: int = 4) -> str:
    """``mean ± std (n=N)``, `` *`` when the paired CI excludes 0, ``; K failed`` for flagged seeds."""
    if cell.empty:
        return "-"
    if cell.n == 0:
        return f"failed ({cell.failed} of {cell.failed})"
    text = f"{cell.mean:.{digits}f} ± {cell.std:.{digits}f} (n={cell.n})"
    if cell.sig and cell.sig.get("significant"):
        text += " *"
    if cell.failed:
        text += f"; {cell.failed} failed"
    return text


def to_markdown(table: Dict[str, Dict[str, Cell]], title: str = "", digits: int = 4,
                reference: Optional[str] = None) -> str:
    """A Markdown table: languages down, models across, :func:`format_cell` cells, then notes.

    Notes under the table: what ``*`` and ``failed`` mean, which cells have no significance and why
    (``Cell.sig["error"]``), which flags the failed seeds had, and languages whose inputs are mostly
    ``<unk>`` for a column's vocabulary.
    """
    models = list(next(iter(table.values())).keys()) if table else []
    lines = ([f"**{title}**", ""] if title else []) + [
        "| Language | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    notes, failed_any = [], False
    for lang, row in table.items():
        lines.append(f"| {lang} | " + " | ".join(format_cell(row[m], digits) for m in models) + " |")
        for m in models:
            c = row[m]
            if c.failed:
                failed_any = True
                why = sorted({f for fl in c.flags.values() for f in fl})
                notes.append(f"{lang} / {m}: seed(s) {', '.join(map(str, sorted(c.flags)))} failed ({', '.join(why)})")
            if c.unk_rate is not None and c.unk_rate > MOSTLY_UNK:
                notes.append(f"{lang} / {m}: {100 * c.unk_rate:.0f}% of the input pieces are <unk> for this vocabulary")
    legend = []
    if reference is not None:
        legend.append(f"`*`: the paired bootstrap 95% interval (test items, pooled over seeds) of the difference to "
                      f"`{reference}` excludes 0")
    no_sig = sorted({c.sig["error"] for row in table.values() for c in row.values() if c.sig and "error" in c.sig})
    for why in no_sig:
        cells = ", ".join(f"{lang} / {m}" for lang, row in table.items() for m, c in row.items()
                          if c.sig and c.sig.get("error") == why)
        legend.append(f"significance not computed for {cells}: {why}")
    if failed_any:
        legend.append(f"failed: dev score not above the majority-class baseline ({BELOW_MAJORITY}) or more than "
                      f"{100 * COLLAPSE_SHARE:.0f}% of the predictions one label ({COLLAPSED}); left out of the mean")
    if legend or notes:
        lines += [""] + [f"- {x}" for x in legend + notes]
    return "\n".join(lines)


def _num(x, fmt="{:.6f}"):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def to_csv(table: Dict[str, Dict[str, Cell]]) -> str:
    """CSV: ``lang`` then per model ``mean, std, n, failed, unk_rate, diff, lo, hi, p`` (paired bootstrap
    against the reference column; empty where not computed)."""
    models = list(next(iter(table.values())).keys()) if table else []
    keys = ("mean", "std", "n", "failed", "unk_rate", "diff", "lo", "hi", "p")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["lang"] + [f"{m}_{k}" for m in models for k in keys])
    for lang, row in table.items():
        out = [lang]
        for m in models:
            c, sig = row[m], row[m].sig or {}
            out += [_num(c.mean), _num(c.std), c.n, c.failed, _num(c.unk_rate, "{:.4f}"),
                    _num(sig.get("diff")), _num(sig.get("lo")), _num(sig.get("hi")), _num(sig.get("p_value"), "{:.4f}")]
        w.writerow(out)
    return buf.getvalue()


def to_json(table: Dict[str, Dict[str, Cell]]) -> dict:
    """``{lang: {model: Cell fields}}`` (JSON-serialisable; NaN means as None)."""
    out = {}
    for lang, row in table.items():
        out[lang] = {}
        for m, c in row.items():
            d = asdict(c)
            for k in ("mean", "std"):
                if isinstance(d[k], float) and math.isnan(d[k]):
                    d[k] = None
            d["flags"] = {str(k): v for k, v in d["flags"].items()}
            out[lang][m] = d
    return out


def write_tables(base_path: PathLike, table: Dict[str, Dict[str, Cell]], markdown: str) -> None:
    """``base_path`` + ``.md``, ``.csv``, ``.json`` (atomic writes)."""
    with atomic_write(str(base_path) + ".md") as fh:
        fh.write(markdown + "\n")
    with atomic_write(str(base_path) + ".csv") as fh:
        fh.write(to_csv(table))
    with atomic_write(str(base_path) + ".json") as fh:
        json.dump(to_json(table), fh, indent=1)
