"""Static word embeddings for the meta-embedding taggers (Winata et al., 2021).

* :func:`train_fasttext`: skip-gram fastText vectors (Bojanowski et al., 2017) per language, trained
  with the ``fasttext`` package on ``$CSFAIR_DATA/mono/derived`` text (the pretrained vectors of the
  paper cannot be downloaded here: training them is part of the recipe);
* :func:`procrustes`: the orthogonal map ``W = U V^T`` (``U Σ V^T = svd(X^T Y)``) minimising
  ``||X W - Y||_F`` over dictionary pairs (Smith et al., 2017; Conneau et al., 2017), to put another
  language's vectors in the English space;
* :func:`word_matrix`: the vectors of a vocabulary, one row per word (fastText builds vectors of
  unseen words from their character n-grams).
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csfair.io import LineIssues, PathLike, atomic_write, iter_lines


FASTTEXT_BUCKET = 2_000_000  # fastText's default number of hashed character n-gram rows


def train_fasttext(corpus: PathLike, out_bin: PathLike, dim: int = 100, epoch: int = 5, min_count: int = 2,
                   threads: int = 2, seed: int = 1, bucket: int = FASTTEXT_BUCKET) -> str:
    """Train skip-gram vectors on a (tokenised, lower-cased) corpus; writes ``out_bin`` atomically.

    ``bucket``: hashed character n-gram rows (fastText's default 2,000,000; the ``.bin`` file holds
    ``bucket x dim`` float32, 800 MB at the defaults, so small runs may pass fewer).

    Note: fastText 0.9.3 takes no seed; with several threads its SGD is not bit-reproducible.
    """
    import fasttext

    tmp = f"{out_bin}.tmp"
    model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=dim, epoch=epoch, minCount=min_count,
                                        thread=threads, bucket=bucket, verbose=0)
    model.save_model(tmp)
    os.replace(tmp, out_bin)
    return str(out_bin)


def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Orthogonal ``W`` (d x d) minimising ``||x W - y||`` (rows are dictionary pairs).

    Raises:
        ValueError: shapes differ.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"procrustes needs equal shapes, got {x.shape} and {y.shape}")
    u, _, vt = np.linalg.svd(x.T @ y)
    return u @ vt


def dictionary_pairs(path: PathLike, first: int = 0, last: int = 5000, swap: bool = False) -> List[Tuple[str, str]]:
    """MUSE pairs whose source word is among the ``first..last`` distinct source words (train range 0-5000)."""
    seen: Dict[str, int] = {}
    out = []
    for _, text in iter_lines(path, LineIssues(str(path))):
        parts = text.split()
        if len(parts) != 2:
            continue
        s, t = parts
        if s not in seen:
            seen[s] = len(seen)
        if first <= seen[s] < last:
            out.append((t, s) if swap else (s, t))
    return out


def align_to(model_src, model_tgt, pairs: Sequence[Tuple[str, str]]) -> Tuple[np.ndarray, int]:
    """Procrustes map from ``model_src``'s space to ``model_tgt``'s, fitted on pairs both models know."""
    vs, vt = set(model_src.words), set(model_tgt.words)
    use = [(a, b) for a, b in pairs if a in vs and b in vt]
    if len(use) < 10:
        raise ValueError(f"only {len(use)} dictionary pairs known to both models: cannot align")
    x = np.stack([model_src.get_word_vector(a) for a, _ in use])
    y = np.stack([model_tgt.get_word_vector(b) for _, b in use])
    return procrustes(x, y), len(use)


def word_matrix(model, words: Sequence[str], w: Optional[np.ndarray] = None, lowercase: bool = True) -> np.ndarray:
    """float32 ``(len(words), dim)`` vectors (optionally mapped by ``w``)."""
    m = np.stack([model.get_word_vector(x.lower() if lowercase else x) for x in words]).astype(np.float64)
    if w is not None:
        m = m @ w
    return m.astype(np.float32)


def write_lines(path: PathLike, lines) -> int:
    """Write lines atomically; returns their number."""
    n = 0
    with atomic_write(path) as fh:
        for line in lines:
            fh.write(line + "\n")
            n += 1
    return n


def fasttext_model(lang: str, ft_dir: PathLike, workers: int = 2, dim: int = 100, max_lines: Optional[int] = None,
                   bucket: int = FASTTEXT_BUCKET):
    """The cached fastText model of a language (trained on ``mono/derived/<lang>.txt`` if missing).

    Training text: Moses-tokenised, lower-cased (the first ``max_lines`` lines; None: all).
    Returns a loaded ``fasttext`` model.

    Raises:
        FileNotFoundError: no monolingual text for ``lang`` in ``$CSFAIR_DATA``.
    """
    import fasttext

    from csfair.paths import data_file
    from csfair.text import moses_tokenize_lines

    os.makedirs(ft_dir, exist_ok=True)
    model_path = os.path.join(ft_dir, f"{lang}.bin")
    if not os.path.exists(model_path):
        raw = data_file(f"mono/derived/{lang}.txt")
        text = os.path.join(ft_dir, f"{lang}.txt")
        lines = [t for _, t in iter_lines(raw, LineIssues(str(raw)))][:max_lines]
        write_lines(text, moses_tokenize_lines(lines, lang, lowercase=True, workers=workers))
        train_fasttext(text, model_path, dim=dim, threads=workers, bucket=bucket)
    return fasttext.load_model(model_path)


def subword_model(langs: Sequence[str], spm_model: PathLike, ft_dir: PathLike, lines_per_lang: int = 30000,
                  workers: int = 2, dim: int = 100, max_lines: Optional[int] = None, bucket: int = FASTTEXT_BUCKET):
    """fastText vectors of sentencepiece pieces (HME's subword embeddings), trained on piece-segmented text."""
    import fasttext
    import sentencepiece as spm

    model_path = os.path.join(ft_dir, f"subword.{'-'.join(sorted(langs))}.bin")
    if not os.path.exists(model_path):
        sp = spm.SentencePieceProcessor(model_file=str(spm_model))
        out = []
        for lang in sorted(langs):
            fasttext_model(lang, ft_dir, workers, dim, max_lines, bucket)  # ensures the tokenised text exists
            with open(os.path.join(ft_dir, f"{lang}.txt"), encoding="utf-8") as fh:
                for k, line in enumerate(fh):
                    if k >= lines_per_lang:
                        break
                    out.append(" ".join(sp.encode(line.strip(), out_type=str)))
        text = model_path[:-4] + ".txt"
        write_lines(text, out)
        train_fasttext(text, model_path, dim=dim, min_count=1, threads=workers, bucket=bucket)
    return fasttext.load_model(model_path)


def build_meta_tables(words: Sequence[str], nspecial: int, langs: Sequence[str], meta_dir: PathLike, ft_dir: PathLike,
                      spm_model: Optional[PathLike] = None, pivot: str = "en", workers: int = 2,
                      max_lines: Optional[int] = None, bucket: int = FASTTEXT_BUCKET) -> dict:
    """Frozen tables of the meta-embedding taggers, one row per word of a dictionary.

    ``max_lines`` caps the monolingual lines fastText trains on (None: all); ``bucket`` is fastText's
    number of hashed n-gram rows (see ``train_fasttext``).
    ``emb.<lang>.npy``: the word's fastText vector in ``lang``, mapped into the ``pivot`` space by an
    orthogonal Procrustes map fitted on the MUSE train range (``dict/muse/<pivot>-<lang>.txt``, the
    first 5000 source words); ``emb.subword.npy`` (if ``spm_model``): the mean fastText vector of the
    word's sentencepiece pieces. The first ``nspecial`` rows (fairseq's specials) are zero.

    Returns:
        stats: dictionary pairs used per language.
    """
    from csfair.paths import data_file

    os.makedirs(meta_dir, exist_ok=True)
    stats = {}
    pivot_model = fasttext_model(pivot, ft_dir, workers, max_lines=max_lines, bucket=bucket)
    for lang in langs:
        model = pivot_model if lang == pivot else fasttext_model(lang, ft_dir, workers, max_lines=max_lines, bucket=bucket)
        w = None
        if lang != pivot:
            pairs = dictionary_pairs(data_file(f"dict/muse/{pivot}-{lang}.txt"), 0, 5000, swap=True)
            w, used = align_to(model, pivot_model, pairs)
            stats[lang] = used
        m = word_matrix(model, words, w)
        m[:nspecial] = 0
        np.save(os.path.join(meta_dir, f"emb.{lang}.npy"), m)
    if spm_model is not None:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(spm_model))
        sub = subword_model(langs, spm_model, ft_dir, workers=workers, max_lines=max_lines, bucket=bucket)
        rows = []
        for k, word in enumerate(words):
            pieces = sp.encode(word.lower(), out_type=str) if k >= nspecial else []
            rows.append(np.mean([sub.get_word_vector(p) for p in pieces], 0) if pieces else np.zeros(sub.get_dimension()))
        np.save(os.path.join(meta_dir, "emb.subword.npy"), np.asarray(rows, dtype=np.float32))
    return stats
