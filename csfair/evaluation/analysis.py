"""Cross-lingual alignment analysis of encoder representations (numbers and pictures).

A UMAP picture alone proves nothing, so every figure comes with numbers:

* bilingual word retrieval precision@k (cosine nearest neighbours among the target words; a hit
  when any gold translation is in the top k), the bilingual lexicon induction measure of
  Conneau et al. (2017);
* parallel sentence retrieval accuracy (mean-pooled states, cosine, per layer), as in Cao et al.
  (2020) and the XTREME Tatoeba task;
* a language-identity probe: cross-validated accuracy of a linear classifier predicting the
  language from a sentence vector — the lower, the more language-neutral the space;
* UMAP projections (McInnes et al., 2018) coloured by language, one panel per checkpoint, as in
  the Spanglish study's latent-space figure.
"""
from typing import Dict, List, Sequence

import numpy as np


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval_precision(src: np.ndarray, tgt: np.ndarray, gold: Sequence[Sequence[int]], ks=(1, 5)) -> Dict[str, float]:
    """Precision@k of cosine nearest-neighbour retrieval.

    Args:
        src: ``(n, d)`` query vectors.
        tgt: ``(m, d)`` candidate vectors.
        gold: for each query, the indices of its correct candidates.
        ks: cut-offs.

    Returns:
        ``{"p@1": ..., "p@5": ..., "n": n}``.
    """
    sims = _normalise(src) @ _normalise(tgt).T
    order = np.argsort(-sims, axis=1)
    out = {}
    for k in ks:
        top = order[:, :k]
        out[f"p@{k}"] = float(np.mean([len(set(top[i]) & set(g)) > 0 for i, g in enumerate(gold)]))
    out["n"] = int(len(gold))
    return out


def parallel_retrieval_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows of ``a`` whose cosine nearest neighbour in ``b`` is the same row (translations)."""
    sims = _normalise(a) @ _normalise(b).T
    return float(np.mean(sims.argmax(1) == np.arange(len(a))))


def language_probe(x: np.ndarray, y: Sequence[str], seed: int = 0, folds: int = 5) -> float:
    """Mean cross-validated accuracy of a logistic-regression language classifier (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, np.asarray(x), np.asarray(y), cv=cv).mean())


def umap_figure(panels: List[dict], path: str, title: str = "", seed: int = 0, n_neighbors: int = 15) -> str:
    """Side-by-side UMAP scatter plots, points coloured by language.

    Args:
        panels: ``[{"title": str, "x": (n, d) array, "labels": n language codes}, ...]``.
        path: PNG file to write.
        title: figure title.
        seed: UMAP random state.

    Returns:
        ``path``.
    """
    import logging

    import matplotlib

    for noisy in ("matplotlib", "numba", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import umap

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), squeeze=False)
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for ax, panel in zip(axes[0], panels):
        xy = umap.UMAP(n_neighbors=n_neighbors, random_state=seed).fit_transform(np.asarray(panel["x"]))
        labels = np.asarray(panel["labels"])
        for c, lang in zip(palette, sorted(set(labels))):
            sel = labels == lang
            ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.6, c=c, label=lang)
        ax.set_title(panel["title"])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(markerscale=3, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
