"""Uncertainty of evaluation scores: standard error and the paired bootstrap.

Comparisons of pretrained systems (Visser et al. 2025, Tables 3-5) involve differences of a few
tenths of a point, so every difference is reported with a paired bootstrap confidence interval
(Efron & Tibshirani 1993, ch. 13; Koehn 2004, "Statistical significance tests for machine
translation evaluation", Sec. 4: resample *test items* with replacement, score both systems on the
same resample). Items are the unit of resampling: sentences for masked-LM accuracy, sentences or
sentence pairs for tagging and classification.

A score that is a ratio of sums (accuracy = correct tokens / scored tokens, pooled over sentences)
is resampled as such: each item contributes its numerator and denominator, and the statistic of
a resample is ``sum(num) / sum(den)``. A corpus-level span F1 is not a ratio of per-item sums but a
function of summed per-item count vectors (per entity type: true positives, false positives, false
negatives, summed over sentences): :func:`paired_bootstrap_counts` resamples sentences and
recomputes the statistic from the resample's summed counts.
"""
from typing import Callable, Dict, Optional, Sequence

import numpy as np


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean, ``std(values, ddof=1) / sqrt(n)``; 0.0 for fewer than 2 values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return 0.0
    return float(v.std(ddof=1) / np.sqrt(v.size))


def paired_bootstrap(
    num_a: Sequence[float],
    num_b: Sequence[float],
    den: Optional[Sequence[float]] = None,
    n_boot: int = 1000,
    seed: int = 12345,
    alpha: float = 0.05,
) -> Dict[str, float]:
    """Paired bootstrap of the difference ``score(b) - score(a)`` over the same items.

    Args:
        num_a: float ``[n]`` per-item numerators of system a (e.g. correct tokens of a sentence,
            or 0/1 correctness of a sentence-level prediction).
        num_b: float ``[n]`` the same for system b, on the same items in the same order.
        den: float ``[n]`` per-item denominators shared by both systems (scored tokens per
            sentence); None: every item weighs 1 (the score is the mean of ``num``).
        n_boot: number of bootstrap resamples.
        seed: seed of the resampling generator (the interval is reproducible).
        alpha: two-sided level; the interval is the ``alpha/2`` and ``1-alpha/2`` percentiles.

    Returns:
        dict ``diff`` (b - a on all items), ``lo``, ``hi`` (percentile interval), ``p_value``
        (two-sided: twice the smaller fraction of resampled differences on either side of 0,
        capped at 1), ``n_items``, ``n_boot``, ``significant`` (1.0 when the interval excludes 0).

    Raises:
        ValueError: inputs of different lengths, no items, or a zero total denominator.
    """
    a = np.asarray(num_a, dtype=np.float64)
    b = np.asarray(num_b, dtype=np.float64)
    d = np.ones_like(a) if den is None else np.asarray(den, dtype=np.float64)
    if not (a.shape == b.shape == d.shape) or a.ndim != 1:
        raise ValueError(f"paired bootstrap needs 1-d inputs of one length, got {a.shape}, {b.shape}, {d.shape}")
    n = a.size
    if n == 0 or d.sum() <= 0:
        raise ValueError("paired bootstrap needs at least one item with a positive denominator")
    diff = float(b.sum() / d.sum() - a.sum() / d.sum())
    rng = np.random.default_rng(seed)
    # counts[r, i]: how often item i is drawn in resample r (multinomial == sampling with replacement)
    # in chunks so that memory stays ~40 MB whatever the number of items
    chunk = max(1, min(n_boot, 5_000_000 // n))
    boot = []
    for start in range(0, n_boot, chunk):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - start)).astype(np.float64)
        dens = counts @ d
        ok = dens > 0
        boot.append((counts[ok] @ (b - a)) / dens[ok])
    boot = np.concatenate(boot)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2.0 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
    return dict(diff=diff, lo=float(lo), hi=float(hi), p_value=p, n_items=int(n), n_boot=int(boot.size),
                significant=float(lo > 0 or hi < 0))


def paired_bootstrap_counts(
    counts_a,
    counts_b,
    statistic: Callable,
    n_boot: int = 1000,
    seed: int = 12345,
    alpha: float = 0.05,
) -> Dict[str, float]:
    """Paired bootstrap of ``statistic(sum b) - statistic(sum a)`` for statistics of summed count vectors.

    The resampling is :func:`paired_bootstrap`'s (same generator, seed, multinomial draws of item
    multiplicities, percentile interval and two-sided p-value): a resample draws ``n`` items with
    replacement, the same items for both systems, sums each system's count vectors with the draw's
    multiplicities (one matrix product per chunk of resamples) and recomputes the statistic.

    Args:
        counts_a: array ``[n, ...]`` per-item count vectors of system a (e.g. span F1: per sentence
            ``[n_types, 3]`` tp/fp/fn, :func:`csfair.evaluation.metrics.span_counts`).
        counts_b: the same for system b, on the same items in the same order, same shape.
        statistic: maps summed counts ``[R, ...]`` to ``[R]`` scores (vectorised over resamples;
            e.g. :func:`csfair.evaluation.metrics.span_score_from_counts`).
        n_boot, seed, alpha: as in :func:`paired_bootstrap`.

    Returns:
        :func:`paired_bootstrap`'s dict; resamples where the statistic is NaN (nothing to score)
        are dropped and ``n_boot`` counts the rest.

    Raises:
        ValueError: inputs of different shapes, no items, or a NaN statistic on all items.
    """
    a = np.asarray(counts_a, dtype=np.float64)
    b = np.asarray(counts_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 1 or a.shape[0] == 0:
        raise ValueError(f"paired bootstrap needs count arrays of one shape with at least one item, got {a.shape}, {b.shape}")
    n, rest = a.shape[0], a.shape[1:]
    full = statistic(np.stack([a.sum(0), b.sum(0)]))
    if np.isnan(full).any():
        raise ValueError("paired bootstrap: the statistic is undefined on all items (nothing to score)")
    diff = float(full[1] - full[0])
    fa, fb = a.reshape(n, -1), b.reshape(n, -1)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 5_000_000 // n))
    boot = []
    for start in range(0, n_boot, chunk):
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - start)).astype(np.float64)
        r = w.shape[0]
        d = statistic((w @ fb).reshape((r,) + rest)) - statistic((w @ fa).reshape((r,) + rest))
        boot.append(d[~np.isnan(d)])
    boot = np.concatenate(boot)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2.0 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
    return dict(diff=diff, lo=float(lo), hi=float(hi), p_value=p, n_items=int(n), n_boot=int(boot.size),
                significant=float(lo > 0 or hi < 0))
