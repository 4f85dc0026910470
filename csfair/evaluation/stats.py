"""Uncertainty of evaluation scores: standard errors, the paired bootstrap and the hierarchical test.

Comparisons of pretrained systems (Visser et al. 2025, Tables 3-5) involve differences of a few
tenths of a point. Two sources of chance move such a difference:

* **which test items** happen to be in the test set: the paired bootstrap over items (Efron &
  Tibshirani 1993, ch. 13; Koehn 2004, "Statistical significance tests for machine translation
  evaluation", Sec. 4) resamples them, the same items for both systems. :func:`paired_bootstrap`
  is this test; it is right where each side is one fixed model (the masked-LM comparison of
  ``scripts/eval_mlm.py``, whose masks belong to the evaluation);
* **which runs** a system is represented by: fine-tuning seeds, and pretraining seeds when a column
  has several pretrained checkpoints. Seed-to-seed differences of one checkpoint are several times
  the item-level standard error (csfair issue 19: 33 of 45 same-checkpoint seed pairs on POS were
  "significant" under the item bootstrap), so a comparison of fine-tuned systems that ignores
  them is anti-conservative (Clark et al. 2011, "Better hypothesis testing for statistical machine
  translation: controlling for optimizer instability", ACL). :func:`hierarchical_bootstrap` is the
  test of the zero-shot tables: it covers runs and items.

Items are the unit of item resampling: sentences for masked-LM and token accuracy, sentences or
sentence pairs for tagging and classification. A score that is a ratio of sums (accuracy =
correct tokens / scored tokens, pooled over sentences) is resampled as such: each item contributes
its numerator and denominator, and the statistic of a resample is ``sum(num) / sum(den)``. A
corpus-level span F1 is a function of summed per-sentence count vectors (per entity type: true
positives, false positives, false negatives), recomputed from each resample's summed counts.
"""
import math
from typing import Callable, Dict, Optional, Sequence

import numpy as np


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean, ``std(values, ddof=1) / sqrt(n)``; 0.0 for fewer than 2 values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return 0.0
    return float(v.std(ddof=1) / np.sqrt(v.size))


def ratio_standard_error(num: Sequence[float], den: Sequence[float]) -> float:
    """Standard error over items of a ratio of sums ``R = sum(num) / sum(den)`` (e.g. accuracy pooled over
    sentences: correct tokens / scored tokens).

    The linearised (delta-method) variance of the ratio estimator, the items being a sample (Cochran
    1977, *Sampling Techniques*, 3rd ed., ch. 6): ``se**2 = n / (n - 1) * sum((num_i - R den_i)**2) /
    sum(den)**2``. For ``den = 1`` it is the standard error of the mean (with ``ddof=1``).

    Args:
        num, den: float ``[n]`` per-item numerators and denominators (items with ``den = 0`` count
            through their numerator only).

    Returns:
        the standard error (0.0 for fewer than 2 items or a zero total denominator).

    Raises:
        ValueError: inputs of different shapes.
    """
    y = np.asarray(num, dtype=np.float64)
    x = np.asarray(den, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"ratio standard error needs 1-d inputs of one length, got {y.shape} and {x.shape}")
    n, total = y.size, x.sum()
    if n < 2 or total <= 0:
        return 0.0
    r = y.sum() / total
    return float(math.sqrt(n / (n - 1) * np.sum((y - r * x) ** 2)) / total)


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


#: how :func:`hierarchical_bootstrap`'s interval is made, as the tables' legends name it
HIERARCHICAL_TEST = ("hierarchical bootstrap (runs and test items; variance-corrected levels, t interval with "
                     "Satterthwaite df)")


def item_weights(rng: np.random.Generator, n_items: int, n_boot: int) -> np.ndarray:
    """float64 ``[n_boot, n_items]``: how often each item is drawn in each bootstrap resample.

    One row is ``n_items`` draws with replacement (a multinomial count vector), made from
    ``rng.integers`` and one ``bincount`` (much faster than ``rng.multinomial`` row by row).
    """
    idx = rng.integers(0, n_items, size=(n_boot, n_items))
    idx += np.arange(n_boot)[:, None] * n_items
    return np.bincount(idx.ravel(), minlength=n_boot * n_items).reshape(n_boot, n_items).astype(np.float64)


class _Arm:
    """One column of a comparison: its runs' per-item scores, run weights and top level."""

    def __init__(self, name, scores, den, statistic, groups):
        x = np.asarray(scores, dtype=np.float64)
        if x.ndim < 2 or (statistic is None and x.ndim != 2):
            want = "[runs, items, ...] counts" if statistic is not None else "[runs, items] scores"
            raise ValueError(f"{name}: expected {want}, got shape {x.shape}")
        self.m, self.n = x.shape[0], x.shape[1]
        self.rest = x.shape[2:]
        self.flat = x.reshape(self.m, self.n, -1)  # [m, n, K]; K = 1 for per-item scores
        g = np.zeros(self.m, dtype=np.int64) if groups is None else np.asarray(groups)
        if g.shape != (self.m,):
            raise ValueError(f"{name}: groups must have one entry per run ({self.m}), got shape {g.shape}")
        _, self.group = np.unique(g, return_inverse=True)
        self.n_groups = int(self.group.max()) + 1 if self.m else 0
        per_group = np.bincount(self.group, minlength=self.n_groups)
        # the column's score is the mean over pretraining checkpoints of the mean over their runs
        self.a = 1.0 / (self.n_groups * per_group[self.group])

    def run_stats(self, w: np.ndarray, den: Optional[np.ndarray], statistic) -> np.ndarray:
        """float64 ``[R, m]``: every run's statistic under item weights ``w`` ``[R, n]``."""
        r = w.shape[0]
        sums = (w @ self.flat.transpose(1, 0, 2).reshape(self.n, -1)).reshape((r, self.m) + self.rest)
        if statistic is not None:
            return np.asarray(statistic(sums), dtype=np.float64).reshape(r, self.m)
        d = w @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / np.where(d > 0, d, np.nan)[:, None]

    def top_level(self, full: np.ndarray):
        """(variance of the column's score over its top-level units, df, units, level name)."""
        if self.n_groups >= 2:
            means = np.bincount(self.group, weights=full) / np.bincount(self.group)
            return float(means.var(ddof=1) / means.size), means.size - 1, means.size, "pretraining checkpoints"
        return float(full.var(ddof=1) / self.m), self.m - 1, self.m, "fine-tuning seeds"


def hierarchical_bootstrap(
    scores_a,
    scores_b,
    n_boot: int = 1000,
    seed: int = 12345,
    alpha: float = 0.05,
    den: Optional[Sequence[float]] = None,
    statistic: Optional[Callable] = None,
    groups_a: Optional[Sequence] = None,
    groups_b: Optional[Sequence] = None,
) -> Dict[str, object]:
    """Difference of two systems' scores with an interval over runs *and* test items.

    The score of a system (a table column) is the mean over its runs of each run's score (the
    cell's mean); with ``groups`` (the pretraining checkpoint of each run) the mean over
    checkpoints of the mean over their runs. The difference ``score(b) - score(a)`` varies with the
    runs each column happens to have (fine-tuning seeds; pretraining seeds when a column has several
    checkpoints) and with the test items; both are resampled, as a two-level (hierarchical)
    bootstrap does (Davison & Hinkley 1997, *Bootstrap Methods and their Application*, Sec. 3.8:
    resample the top-level units of each sample, then the items), but the interval is not the
    percentile interval of the naive two-level resample, which is anti-conservative at the seed
    counts of fine-tuning studies:

    1. **Runs (top level).** With-replacement resampling of ``m`` runs gives their mean a variance
       of ``(m-1)/m`` times the unbiased estimate (the plug-in variance over ``m``; 2/3 of it at 3
       seeds; Davison & Hinkley 1997, Sec. 3.8, discuss this bias of two-stage resampling), and the
       studentised mean has about ``m - 1`` degrees of freedom, not a normal shape. The run level is therefore resampled exactly, in closed form:
       its bootstrap variance corrected by ``m/(m-1)``, i.e. ``var(run scores, ddof=1) / m`` per
       column (with groups: the variance of the checkpoint means over the number of checkpoints,
       which holds the fine-tuning variance within checkpoints; Field & Welsh 2007, "Bootstrapping
       clustered data", JRSS-B 69(3), show that resampling the top level is consistent under both
       random-effect and transformation models), with ``m - 1`` (checkpoints - 1) degrees of freedom.
    2. **Items.** ``n_boot`` resamples of the test items, the same items for both columns (paired),
       every run scored on each resample (ratio metrics and span F1 recomputed from resampled sums),
       give the item-level variance of the difference (times ``n/(n-1)``). Seeds and items are
       crossed, not nested: each run's item-by-run noise is in its run score already, and the item
       resample counts it a second time (Owen 2007, "The pigeonhole bootstrap", Ann. Appl. Stat.
       1(1), on resampling both factors of a crossed design). That share is estimated from the same
       resamples (the mean item-level variance of single runs minus that of the column's mean,
       scaled by ``sum(a_k**2) / (1 - sum(a_k**2))`` for run weights ``a_k``; the method-of-moments
       estimate of the interaction under a linear model) and removed; the item component is
       clipped at 0.
    3. **Interval.** ``diff ± t(df) * se`` with ``se**2`` the sum of the three components (run
       levels of both columns, items) and ``df`` by Satterthwaite (1946, Biometrics Bulletin 2(6))
       from the components' degrees of freedom (``m - 1``, ``m - 1``, ``n - 1``): Welch's (1947,
       Biometrika 34) test on per-seed scores when the item component is 0. The t reference with a
       bootstrap standard error is Efron & Tibshirani's (1993, *An Introduction to the Bootstrap*,
       ch. 12) small-sample interval. ``p`` is the two-sided t p-value.

    Calibration (tests/test_significance.py, ``python bench/significance_power.py``): on simulated
    A/A comparisons with per-seed offsets of sd 0.025, item effects and binary item scores (3 seeds x
    500 items), the 95% interval excludes 0 at about the nominal rate; the naive percentile
    bootstrap does not. ``welch_p`` is the seed-level test alone (Welch's t on the runs' scores,
    test items held fixed).

    Args:
        scores_a, scores_b: float ``[runs, items]`` per-item scores of the two columns on the same
            items in the same order (e.g. 0/1 correctness of a sentence-pair prediction; correct
            words of a sentence, with ``den``); the run counts may differ. With ``statistic``:
            per-item count vectors ``[runs, items, ...]`` (span F1: ``[runs, sentences, types, 3]``
            tp/fp/fn, :func:`csfair.evaluation.metrics.span_counts`, both on one type list).
        n_boot: item resamples (the item component's variance estimate).
        seed: seed of the resampling generator (the result is reproducible).
        alpha: two-sided level (0.05: a 95% interval).
        den: float ``[items]`` per-item denominators shared by all runs (words per sentence): a run's
            score is ``sum(num) / sum(den)`` (token accuracy). None: every item weighs 1.
        statistic: maps summed counts ``[R, runs, ...]`` to scores ``[R, runs]`` (vectorised; e.g.
            :func:`csfair.evaluation.metrics.span_score_from_counts`); resamples where it is NaN
            (nothing to score) are dropped.
        groups_a, groups_b: ``[runs]`` labels of the pretraining checkpoint of each run (the third
            level); None: one checkpoint, the runs are its fine-tuning seeds.

    Returns:
        dict: ``diff`` (b - a), ``lo``, ``hi`` (the ``1 - alpha`` interval), ``p``, ``significant``
        (bool: the interval excludes 0), ``se``, ``df``, ``mean_a``, ``mean_b``, ``n_items``,
        ``runs_a``, ``runs_b``, ``units_a``, ``units_b`` (top-level units: seeds, or checkpoints),
        ``level_a``, ``level_b`` (their name), ``var_a``, ``var_b``, ``var_items`` (the variance
        components), ``welch_p``, ``welch_df``, ``n_boot`` (item resamples used), ``method``.

    Raises:
        ValueError: shapes that do not fit (items, run labels, ``den``), fewer than 2 items, a
            column with fewer than 2 top-level units (one run: its seed variance is unknown), a
            zero total denominator, or a statistic undefined on the full test set.
    """
    from scipy import stats as sst

    a = _Arm("scores_a", scores_a, den, statistic, groups_a)
    b = _Arm("scores_b", scores_b, den, statistic, groups_b)
    if a.n != b.n or a.rest != b.rest:
        raise ValueError(f"the two columns must be scored on the same items: shapes {a.flat.shape[:2] + a.rest} "
                         f"and {b.flat.shape[:2] + b.rest}")
    n = a.n
    if n < 2:
        raise ValueError(f"hierarchical bootstrap needs at least 2 test items, got {n}")
    for arm, name in ((a, "scores_a"), (b, "scores_b")):
        if arm.m < 2:
            raise ValueError(f"{name}: {arm.m} run; the seed variance of a column needs at least 2 runs")
    d = None
    if statistic is None:
        d = np.ones(n) if den is None else np.asarray(den, dtype=np.float64)
        if d.shape != (n,):
            raise ValueError(f"den must have one entry per item ({n}), got shape {d.shape}")
        if d.sum() <= 0:
            raise ValueError("hierarchical bootstrap: the total denominator is 0 (nothing was scored)")
    ones = np.ones((1, n))
    full_a, full_b = a.run_stats(ones, d, statistic)[0], b.run_stats(ones, d, statistic)[0]
    if not (np.isfinite(full_a).all() and np.isfinite(full_b).all()):
        raise ValueError("hierarchical bootstrap: a run's statistic is undefined on the full test set")
    mean_a, mean_b = float(full_a @ a.a), float(full_b @ b.a)
    diff = mean_b - mean_a
    var_a, df_a, units_a, level_a = a.top_level(full_a)
    var_b, df_b, units_b, level_b = b.top_level(full_b)

    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 4_000_000 // n))
    ta, tb = [], []
    for start in range(0, n_boot, chunk):
        w = item_weights(rng, n, min(chunk, n_boot - start))
        ta.append(a.run_stats(w, d, statistic))
        tb.append(b.run_stats(w, d, statistic))
    ta, tb = np.concatenate(ta), np.concatenate(tb)
    ok = np.isfinite(ta).all(1) & np.isfinite(tb).all(1)
    ta, tb = ta[ok], tb[ok]
    var_items = 0.0
    if ta.shape[0] >= 2:
        scale = n / (n - 1)
        col_a, col_b = ta @ a.a, tb @ b.a
        var_items = float(np.var(col_b - col_a, ddof=1)) * scale
        for t, arm, col in ((ta, a, col_a), (tb, b, col_b)):
            s2 = float(arm.a @ arm.a)  # < 1: at least 2 runs
            within = max(0.0, float(t.var(0, ddof=1).mean() - np.var(col, ddof=1)))  # per-run noise share
            var_items -= within * s2 / (1.0 - s2) * scale
        var_items = max(0.0, var_items)
    parts = [(var_a, df_a), (var_b, df_b), (var_items, n - 1)]
    var = sum(v for v, _ in parts)
    se = math.sqrt(var)
    out = dict(diff=diff, mean_a=mean_a, mean_b=mean_b, n_items=int(n), runs_a=int(a.m), runs_b=int(b.m),
               units_a=int(units_a), units_b=int(units_b), level_a=level_a, level_b=level_b,
               var_a=var_a, var_b=var_b, var_items=var_items, n_boot=int(ta.shape[0]), alpha=alpha,
               method=HIERARCHICAL_TEST)
    if se == 0.0:  # every run of both columns scored alike on every resample: no uncertainty left
        out.update(se=0.0, df=float("inf"), lo=diff, hi=diff, p=1.0 if diff == 0 else 0.0,
                   significant=diff != 0, welch_p=1.0 if diff == 0 else 0.0, welch_df=float("inf"))
        return out
    df = var ** 2 / sum(v ** 2 / k for v, k in parts if v > 0)
    half = float(sst.t.ppf(1 - alpha / 2, df)) * se
    seed_var = var_a + var_b
    if seed_var > 0:
        welch_df = seed_var ** 2 / (var_a ** 2 / df_a + var_b ** 2 / df_b)
        welch_p = float(2 * sst.t.sf(abs(diff) / math.sqrt(seed_var), welch_df))
    else:
        welch_df, welch_p = float("inf"), 1.0 if diff == 0 else 0.0
    out.update(se=se, df=float(df), lo=diff - half, hi=diff + half, p=float(2 * sst.t.sf(abs(diff) / se, df)),
               significant=bool(diff - half > 0 or diff + half < 0), welch_p=welch_p, welch_df=float(welch_df))
    return out


def simulate_scores(rng: np.random.Generator, runs: int, items: int, shift: float = 0.0, seed_sd: float = 0.025,
                    item_sd: float = 1.5, base: float = 0.7, item_logits: Optional[np.ndarray] = None) -> np.ndarray:
    """Binary per-item scores of one simulated column, float64 ``[runs, items]`` (for calibration).

    Item ``i`` has a difficulty ``logit(base) + N(0, item_sd)`` (pass ``item_logits`` to share the
    items between columns: a paired design); run ``s`` an offset ``N(0, seed_sd)`` on the
    probability scale (the seed-to-seed spread of a fine-tuned model's score; about 0.025 between
    fine-tuning seeds of one checkpoint on POS, csfair issue 19); ``shift`` is the column's true
    advantage. A score is Bernoulli(``clip(p_i + offset_s + shift, 0, 1)``).
    """
    if item_logits is None:
        item_logits = math.log(base / (1 - base)) + item_sd * rng.standard_normal(items)
    p = 1.0 / (1.0 + np.exp(-item_logits))
    p = np.clip(p[None, :] + seed_sd * rng.standard_normal((runs, 1)) + shift, 0.0, 1.0)
    return (rng.random((runs, items)) < p).astype(np.float64)
