"""Evaluation metrics (library implementations: seqeval, scikit-learn) and seed aggregation.

* span-level F1 for BIO tagging with seqeval (CoNLL evaluation: a span counts when its type and
  both boundaries are right), micro- and macro-averaged over entity types; Visser et al. (2025)
  report macro-F1 for NER (Table 5);
* token accuracy for UPOS and word-level language ID;
* accuracy and macro-F1 for sentence classification (NLI, sentiment);
* mean and sample standard deviation over seeds (Tables 4 and 5 report mean ± std).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple


def span_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], report: bool = False) -> Dict:
    """Span precision/recall/F1 of BIO sequences (seqeval, conlleval-compatible).

    Args:
        gold, pred: per sentence, one tag per word (same lengths).
        report: also return per-type precision/recall/F1/support.

    Returns:
        dict with ``micro_f1``, ``macro_f1``, ``precision``, ``recall`` (micro), ``n_sentences``
        and optionally ``per_class``.

    Raises:
        ValueError: a sentence whose gold and predicted lengths differ.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    out = dict(
        micro_f1=float(f1_score(gold, pred, average="micro", zero_division=0)),
        macro_f1=float(f1_score(gold, pred, average="macro", zero_division=0)),
        precision=float(precision_score(gold, pred, average="micro", zero_division=0)),
        recall=float(recall_score(gold, pred, average="micro", zero_division=0)),
        n_sentences=len(gold),
    )
    if report:
        rep = classification_report(gold, pred, output_dict=True, zero_division=0)
        out["per_class"] = {k: {m: float(v) for m, v in d.items()} for k, d in rep.items()}
    return out


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], report: bool = False) -> Dict:
    """Word-level accuracy (UPOS, language ID) over all words of all sentences.

    Returns:
        dict with ``accuracy``, ``n_words`` and optionally ``per_class`` (scikit-learn report).
    """
    flat_g = [t for s in gold for t in s]
    flat_p = [t for s in pred for t in s]
    if len(flat_g) != len(flat_p):
        raise ValueError(f"{len(flat_g)} gold tags but {len(flat_p)} predicted")
    out = dict(accuracy=sum(a == b for a, b in zip(flat_g, flat_p)) / max(len(flat_g), 1), n_words=len(flat_g))
    if report:
        out["per_class"] = classification_report(flat_g, flat_p)
    return out


def classification_report(gold: Sequence[str], pred: Sequence[str], labels: Optional[List[str]] = None) -> Dict:
    """Per-class precision/recall/F1/support (scikit-learn)."""
    from sklearn.metrics import classification_report as skl

    rep = skl(gold, pred, labels=labels, output_dict=True, zero_division=0)
    return {k: ({m: float(v) for m, v in d.items()} if isinstance(d, dict) else float(d)) for k, d in rep.items()}


def sentence_metrics(gold: Sequence[str], pred: Sequence[str], report: bool = False) -> Dict:
    """Accuracy and macro-F1 of sentence labels (scikit-learn)."""
    from sklearn.metrics import accuracy_score, f1_score

    out = dict(accuracy=float(accuracy_score(gold, pred)),
               macro_f1=float(f1_score(gold, pred, average="macro", zero_division=0)), n_examples=len(gold))
    if report:
        out["per_class"] = classification_report(gold, pred)
    return out


def mean_std(values: Sequence[float]) -> Tuple[float, float, int]:
    """Mean, sample standard deviation (ddof = 1; 0.0 for a single value) and count."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    m = sum(values) / n
    if n == 1:
        return m, 0.0, 1
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)), n


SPAN_METRICS = ("micro_f1", "macro_f1", "precision", "recall")  # what span_score_from_counts computes


def span_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                types: Optional[Sequence[str]] = None):
    """Per-sentence, per-entity-type span counts, the sufficient statistics of :func:`span_f1`.

    Spans are seqeval's ``get_entities`` (the default, conlleval-compatible mode that
    :func:`span_f1` uses); a predicted span is a true positive when a gold span of the same type has
    the same boundaries. seqeval extracts the spans of a corpus from its sentences joined with an
    ``O`` between them, so no span crosses a sentence and the corpus counts are the sums of the
    per-sentence counts: summed over sentences, :func:`span_score_from_counts` gives exactly
    :func:`span_f1`'s numbers (tested), and a paired bootstrap can resample sentences.

    Args:
        gold, pred: per sentence, one BIO tag per word (same lengths).
        types: entity types (columns of the result); default the sorted union of the gold and
            predicted types (seqeval's ``target_names``). Types given but absent count 0 everywhere.

    Returns:
        ``(types, counts)``: the type list and an int64 array ``[n_sentences, n_types, 3]`` of
        (tp, fp, fn) per sentence and type.

    Raises:
        ValueError: a sentence whose gold and predicted lengths differ, or a span type not in ``types``.
    """
    import numpy as np
    from seqeval.metrics.sequence_labeling import get_entities

    per = []
    for i, (g, p) in enumerate(zip(gold, pred)):
        g, p = list(g), list(p)
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        per.append((set(get_entities(g)), set(get_entities(p))))
    if len(per) != len(gold) or len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    if types is None:
        types = sorted({t for g, p in per for t, _, _ in g | p})
    col = {t: j for j, t in enumerate(types)}
    counts = np.zeros((len(per), len(types), 3), dtype=np.int64)
    for i, (g, p) in enumerate(per):
        for kind, spans in ((0, g & p), (1, p - g), (2, g - p)):
            for t, _, _ in spans:
                if t not in col:
                    raise ValueError(f"sentence {i}: span type {t!r} is not one of {list(types)}")
                counts[i, col[t], kind] += 1
    return list(types), counts


def span_score_from_counts(counts, metric: str = "macro_f1"):
    """Span precision/recall/F1 from summed (tp, fp, fn) counts, computed as seqeval computes them.

    Args:
        counts: array ``[..., n_types, 3]`` of (tp, fp, fn) totals (e.g. one row per bootstrap
            resample); leading axes are kept.
        metric: ``macro_f1`` (mean of the per-type F1 over the types with a gold or a predicted
            span: seqeval's ``target_names``, the union of gold and predicted types), ``micro_f1``,
            ``precision`` or ``recall`` (micro). A 0/0 ratio is 0 (seqeval's ``zero_division=0``).

    Returns:
        float64 array of the leading shape (a 0-d array for a single ``[n_types, 3]`` input);
        NaN where no type has a span (seqeval averages an empty list then).

    Raises:
        ValueError: an unknown metric or a last axis other than 3.
    """
    import numpy as np

    c = np.asarray(counts, dtype=np.float64)
    if c.ndim < 2 or c.shape[-1] != 3:
        raise ValueError(f"span counts must have shape [..., n_types, 3], got {c.shape}")
    if metric not in SPAN_METRICS:
        raise ValueError(f"unknown span metric {metric!r} (one of {', '.join(SPAN_METRICS)})")
    tp, fp, fn = c[..., 0], c[..., 1], c[..., 2]
    present = (tp + fp + fn) > 0  # the type is in seqeval's target_names
    if metric != "macro_f1":
        tp, fp, fn = tp.sum(-1, keepdims=True), fp.sum(-1, keepdims=True), fn.sum(-1, keepdims=True)
    pred_sum, true_sum = tp + fp, tp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_sum > 0, tp / np.where(pred_sum > 0, pred_sum, 1), 0.0)
        recall = np.where(true_sum > 0, tp / np.where(true_sum > 0, true_sum, 1), 0.0)
    if metric == "precision":
        return precision[..., 0]
    if metric == "recall":
        return recall[..., 0]
    denom = precision + recall
    f = 2.0 * precision * recall / np.where(denom == 0, 1.0, denom)  # seqeval: denom[denom == 0] = 1
    if metric == "micro_f1":
        return f[..., 0]
    n = present.sum(-1)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, (f * present).sum(-1) / np.where(n > 0, n, 1), np.nan)
