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
