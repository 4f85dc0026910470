"""Cross-lingual alignment and transfer measures with per-item scores, their controls, and tables.

Every measure returns one score per test item (a query word, a query sentence, a POS sentence), so
that systems can be compared with the hierarchical test of csfair issue 19 (pretraining seeds, then
items). The vectors come from any encoder (``user_dir/features.py`` for fairseq checkpoints); nothing
here imports a framework.

* **Word translation** (bilingual lexicon induction; Conneau et al. 2018, "Word translation without
  parallel data", Sec. 3.2 and 4): for each source word, the target candidate with the highest
  cosine similarity (nearest neighbour) or cross-domain similarity local scaling,
  ``CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y)`` with ``r`` the mean cosine of the ``k = 10``
  nearest neighbours in the other language (their Eq. 6), which corrects for hubs. P@1: a hit when
  the top candidate is a gold translation.
* **Sentence retrieval** (Artetxe & Schwenk 2019; XTREME's Tatoeba/BUCC; Cao et al. 2020 per layer):
  for each source sentence, whether its translation is the nearest of all target sentences.
* **Mean-centring** (``centre=True``): each language's mean vector is removed from its own vectors
  first. Libovický et al. (2020, "On the language neutrality of pre-trained multilingual
  representations", Sec. 3) show that the language-specific mean carries much of the language
  identity; centring tests whether the remaining directions align.
* **Controls.** :func:`bag_of_pieces` (piece counts, cosine: what shared subwords alone give, no
  model) and, in the tables, a random-initialised encoder of the same shape.
* **Zero-shot POS** as a frozen-encoder probe: :func:`pos_probe` (multinomial logistic regression,
  scikit-learn, on each word's vector; trained on the source language, scored on the target) and
  the no-model control :func:`majority_tagger` (each word form's most frequent tag).
* :func:`compare` runs the hierarchical test of every system against a reference on one measure;
  :func:`holm` adjusts a family of p-values (Holm 1979, "A simple sequentially rejective multiple
  test procedure", Scand. J. Statist. 6(2)); :func:`format_table` prints a Markdown table.
"""
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centre(x: np.ndarray) -> np.ndarray:
    """``x`` minus its mean row (float64 ``[n, d]``)."""
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(0, keepdims=True)


def similarity(src: np.ndarray, tgt: np.ndarray, method: str = "nn", k: int = 10, centred: bool = False) -> np.ndarray:
    """Similarities ``[n, m]`` of source rows to target rows.

    Args:
        src: float ``[n, d]`` source vectors (one language).
        tgt: float ``[m, d]`` target vectors (the other language); a sparse matrix is accepted for
            ``method="nn"`` without centring (bag of pieces).
        method: ``"nn"`` (cosine) or ``"csls"`` (Conneau et al. 2018, Eq. 6, ``k`` neighbours).
        k: CSLS neighbourhood size (capped at the number of rows of the other side).
        centred: remove each side's mean vector first.

    Raises:
        ValueError: an unknown method, or vectors of different widths.
    """
    if hasattr(src, "tocsr") or hasattr(tgt, "tocsr"):
        if method != "nn" or centred:
            raise ValueError("sparse vectors (bag of pieces) support method='nn' without centring only")
        from sklearn.preprocessing import normalize

        return np.asarray((normalize(src) @ normalize(tgt).T).todense())
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(f"vectors of different widths: {src.shape} vs {tgt.shape}")
    if centred:
        src, tgt = centre(src), centre(tgt)
    sims = _unit(src) @ _unit(tgt).T
    if method == "nn":
        return sims
    if method != "csls":
        raise ValueError(f"unknown similarity {method!r} (nn, csls)")
    kt = min(k, sims.shape[0])
    ks = min(k, sims.shape[1])
    r_src = np.sort(sims, axis=1)[:, -ks:].mean(1)  # each source word's mean similarity to its target neighbours
    r_tgt = np.sort(sims, axis=0)[-kt:, :].mean(0)  # each target word's mean similarity to its source neighbours
    return 2 * sims - r_src[:, None] - r_tgt[None, :]


def top1_hits(sims: np.ndarray, gold: Sequence[Sequence[int]]) -> np.ndarray:
    """float ``[n]``: 1.0 where the best-scoring column of row ``i`` is in ``gold[i]`` (ties: lowest index)."""
    if len(gold) != sims.shape[0]:
        raise ValueError(f"{len(gold)} gold lists for {sims.shape[0]} queries")
    best = np.argmax(sims, axis=1)
    return np.array([float(b in set(g)) for b, g in zip(best.tolist(), gold)])


def word_translation(src: np.ndarray, tgt: np.ndarray, gold: Sequence[Sequence[int]], method: str = "csls",
                     centred: bool = True, k: int = 10) -> np.ndarray:
    """Per-query P@1 hits of word translation (float ``[n]``; the mean is P@1).

    Args:
        src: ``[n, d]`` query word vectors (source language).
        tgt: ``[m, d]`` candidate word vectors (target language: every test word's translation).
        gold: for each query, the indices of its correct candidates.
        method, centred, k: see :func:`similarity`.
    """
    return top1_hits(similarity(src, tgt, method, k, centred), gold)


def sentence_retrieval(a: np.ndarray, b: np.ndarray, centred: bool = True, method: str = "nn") -> np.ndarray:
    """Per-sentence hits of parallel sentence retrieval ``a -> b`` (float ``[n]``): row ``i`` of ``b``
    is the translation of row ``i`` of ``a``."""
    if len(a) != len(b):
        raise ValueError(f"sentence retrieval needs parallel rows: {len(a)} vs {len(b)}")
    return top1_hits(similarity(a, b, method, centred=centred), [[i] for i in range(len(a))])


def bag_of_pieces(seqs: Sequence[Sequence[int]], vocab_size: int):
    """Piece-count vectors (``scipy.sparse.csr_matrix`` ``[n, vocab_size]``, float64) of id sequences:
    the no-model control (cosine of bags of sentencepiece pieces: shared subwords and nothing else)."""
    from scipy.sparse import csr_matrix

    lens = np.array([len(s) for s in seqs], dtype=np.int64)
    cols = np.fromiter((int(t) for s in seqs for t in s), dtype=np.int64, count=int(lens.sum()))
    if cols.size and (cols.min() < 0 or cols.max() >= vocab_size):
        raise ValueError(f"piece id outside [0, {vocab_size})")
    rows = np.repeat(np.arange(len(seqs)), lens)
    return csr_matrix((np.ones(cols.size), (rows, cols)), shape=(len(seqs), vocab_size))


def pos_probe(train_x: np.ndarray, train_y: Sequence[str], tests: Mapping[str, Tuple[np.ndarray, Sequence[str], Sequence[int]]],
              seed: int = 1, max_iter: int = 300, c: float = 1.0) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Frozen-encoder POS probe: logistic regression on word vectors, scored per sentence.

    Args:
        train_x: float ``[N, d]`` source-language word vectors; ``train_y`` their ``N`` tags.
        tests: ``{name: (x [M, d], tags [M], sentence lengths)}``, lengths summing to ``M`` (the
            words of each sentence, in order).
        seed: the solver's random state (lbfgs is deterministic; kept for other solvers).
        max_iter: solver iterations.
        c: inverse regularisation strength (scikit-learn's ``C``), on standardised features.

    Returns:
        ``{name: (correct words per sentence, words per sentence)}`` (float ``[sentences]`` each).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=c, random_state=seed))
    clf.fit(np.asarray(train_x, dtype=np.float64), np.asarray(train_y))
    return {name: _per_sentence(clf.predict(np.asarray(x, dtype=np.float64)), y, lens)
            for name, (x, y, lens) in tests.items()}


def _per_sentence(pred: Sequence[str], gold: Sequence[str], lens: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    lens = np.asarray(lens, dtype=np.int64)
    if lens.sum() != len(gold) or len(pred) != len(gold):
        raise ValueError(f"sentence lengths sum to {lens.sum()} for {len(gold)} tags ({len(pred)} predictions)")
    ok = (np.asarray(pred) == np.asarray(gold)).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    return np.add.reduceat(ok, starts) if len(ok) else np.zeros(0), lens.astype(np.float64)


def majority_tagger(train_words: Sequence[str], train_tags: Sequence[str]) -> Callable[[Sequence[str]], List[str]]:
    """The no-model POS control: each (lower-cased) word form's most frequent training tag; the most
    frequent tag overall for unseen forms."""
    from collections import Counter, defaultdict

    by_form: Dict[str, Counter] = defaultdict(Counter)
    for w, t in zip(train_words, train_tags):
        by_form[w.lower()][t] += 1
    best = {w: c.most_common(1)[0][0] for w, c in by_form.items()}
    default = Counter(train_tags).most_common(1)[0][0]
    return lambda words: [best.get(w.lower(), default) for w in words]


def majority_scores(train_words, train_tags, words, tags, lens) -> Tuple[np.ndarray, np.ndarray]:
    """Per-sentence (correct, words) of :func:`majority_tagger` on a test set."""
    return _per_sentence(majority_tagger(train_words, train_tags)(words), tags, lens)


# ---------------------------------------------------------------------------------------------- tables
def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as the input; capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def compare(scores: Mapping[str, np.ndarray], reference: str, den: Optional[np.ndarray] = None,
            n_boot: int = 1000, seed: int = 12345, test: Optional[Callable] = None) -> Dict[str, dict]:
    """Each system's score and its difference to ``reference`` with the hierarchical test.

    Args:
        scores: ``{system: float [runs, items]}`` per-item scores (numerators with ``den``); every
            system on the same items in the same order; run counts may differ.
        reference: the system the others are compared with.
        den: float ``[items]`` per-item denominators shared by all systems (POS: words per sentence);
            None: each item weighs 1.
        n_boot, seed: the test's resamples and seed.
        test: ``f(scores_a, scores_b, n_boot=, seed=, den=) -> {"diff", "lo", "hi", "p", ...}``;
            default :func:`csfair.evaluation.stats.hierarchical_bootstrap` (csfair issue 19). When both
            systems have a single run, the seed level cannot be estimated: the paired bootstrap over
            items (:func:`csfair.evaluation.stats.paired_bootstrap`) is used instead, and the row says
            ``test: "items only (one run each)"``.

    Returns:
        ``{system: {"mean", "sd_runs", "runs", "items", and for the others "diff", "lo", "hi", "p",
        "test"}}``; ``mean`` is the mean over runs of each run's score, ``sd_runs`` their standard deviation.
    """
    if test is None and any(np.atleast_2d(np.asarray(v)).shape[0] > 1 for v in scores.values()):
        from csfair.evaluation.stats import hierarchical_bootstrap as test
    if reference not in scores:
        raise ValueError(f"reference {reference!r} is not among the systems {sorted(scores)}")
    items = {np.asarray(s).shape[-1] for s in scores.values()}
    if len(items) != 1:
        raise ValueError(f"systems scored on different numbers of items: {sorted(items)}")
    out = {}
    for name, s in scores.items():
        s = np.atleast_2d(np.asarray(s, dtype=np.float64))
        per_run = s.sum(1) / (den.sum() if den is not None else s.shape[1])
        row = dict(mean=float(per_run.mean()), sd_runs=float(per_run.std(ddof=1)) if len(per_run) > 1 else 0.0,
                   runs=int(s.shape[0]), items=int(s.shape[1]))
        if name != reference:
            ref = np.atleast_2d(np.asarray(scores[reference], dtype=np.float64))
            if ref.shape[0] == 1 and s.shape[0] == 1:
                from csfair.evaluation.stats import paired_bootstrap

                r = paired_bootstrap(ref[0], s[0], den=den, n_boot=n_boot, seed=seed)
                row.update(diff=float(r["diff"]), lo=float(r["lo"]), hi=float(r["hi"]), p=float(r["p_value"]),
                           test="items only (one run each)")
            else:
                kw = dict(n_boot=n_boot, seed=seed)
                if den is not None:
                    kw["den"] = den
                r = test(ref, s, **kw)
                row.update(diff=float(r["diff"]), lo=float(r["lo"]), hi=float(r["hi"]), p=float(r["p"]),
                           test="hierarchical")
        out[name] = row
    return out


def format_table(title: str, rows: Mapping[str, Mapping[str, dict]], reference: str, controls: Sequence[str] = (),
                 digits: int = 4) -> str:
    """A Markdown table: one row per system, one column group per measure.

    Args:
        title: printed above the table.
        rows: ``{measure: compare()-result}``; control systems (no test) may appear with ``mean`` only.
        reference: name of the reference system (its cells say "ref.").
        controls: systems printed first, marked as controls.
    """
    measures = list(rows)
    systems: List[str] = []
    for m in measures:
        for s in rows[m]:
            if s not in systems:
                systems.append(s)
    systems = [s for s in controls if s in systems] + [s for s in systems if s not in controls]
    f = f"{{:.{digits}f}}"
    head = "| system | " + " | ".join(measures) + " |"
    lines = [f"**{title}**", "", head, "|---|" + "---|" * len(measures)]
    for s in systems:
        cells = []
        for m in measures:
            r = rows[m].get(s)
            if r is None:
                cells.append("")
                continue
            cell = f.format(r["mean"])
            if r.get("runs", 1) > 1:
                cell += f" ±{f.format(r['sd_runs'])}"
            if "diff" in r:
                star = "*" if r.get("p_holm", r["p"]) < 0.05 and "p_holm" in r else ""
                cell += f"; Δ {r['diff']:+.{digits}f} [{r['lo']:+.{digits}f}, {r['hi']:+.{digits}f}] p={r['p']:.3g}{star}"
                if r.get("test", "hierarchical") != "hierarchical":
                    cell += f" ({r['test']})"
                if "p_holm" in r:
                    cell += f" (Holm {r['p_holm']:.3g})"
            elif s == reference:
                cell += " (ref.)"
            cells.append(cell)
        name = f"{s} (control)" if s in controls else s
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
