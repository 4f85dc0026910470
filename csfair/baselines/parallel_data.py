"""Parallel pretraining data (WEAM, TLM): sentence pairs as sentencepiece pieces plus word alignments.

For each pair of a line-aligned corpus: Moses tokenisation (case kept; the alignment model sees the
lower-cased tokens), grow-diag-final-and word alignments (:mod:`csfair.lexicons.alignment`), and sentencepiece
pieces of every word. Written as fairseq-preprocess inputs and an alignment file::

    <out>/raw/<split>.src    source pieces (space-separated), one pair per line
    <out>/raw/<split>.tgt    target pieces
    <out>/raw/<split>.align  "p-q p-q ...": p = index of the first piece of an aligned source word,
                             q = index of the first piece of its aligned target word (0-based, no <s>)

Several target words aligned to one source word keep one link per word (both in the file); a word's
span is from its first piece to the next word start.
"""
import json
import os
import random
from typing import Optional, Sequence, Set, Tuple

import numpy as np

from csfair.lexicons.alignment import align_corpus
from csfair.io import LineIssues, PathLike, atomic_write, iter_parallel
from csfair.text import moses_tokenize_lines


def piece_links(src_words: Sequence[str], tgt_words: Sequence[str], links: Set[Tuple[int, int]], encode):
    """Pieces of both sides and the word links as first-piece index pairs (sorted)."""
    def pieces(words):
        out, firsts = [], []
        for w in words:
            firsts.append(len(out))
            out.extend(encode(w) or ["<unk>"])
        return out, firsts

    sp, sf = pieces(src_words)
    tp, tf = pieces(tgt_words)
    return sp, tp, sorted((sf[i], tf[j]) for i, j in links)


def write_parallel_data(src_path: PathLike, tgt_path: PathLike, src_lang: str, tgt_lang: str, spm_model: PathLike,
                        out_dir: PathLike, valid: int = 500, max_pairs: Optional[int] = None, max_pieces: int = 126,
                        seed: int = 1, workers: int = 2) -> dict:
    """Write the raw WEAM/TLM data (see module docstring); returns and saves counts.

    Pairs with a side longer than ``max_pieces`` pieces are left out (counted), so that every
    alignment link stays inside the model's positions.
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    issues = LineIssues(f"{src_path} ||| {tgt_path}")
    src, tgt = [], []
    for _, s, t in iter_parallel(src_path, tgt_path, issues, max_chars=10000):
        src.append(s)
        tgt.append(t)
        if max_pairs and len(src) >= max_pairs:
            break
    s_tok = list(moses_tokenize_lines(src, src_lang, workers=workers))
    t_tok = list(moses_tokenize_lines(tgt, tgt_lang, workers=workers))
    pairs = [(a.split(), b.split()) for a, b in zip(s_tok, t_tok) if a and b]
    alignments, astats = align_corpus([([w.lower() for w in a], [w.lower() for w in b]) for a, b in pairs])
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    parts = {"valid": sorted(order[:valid]), "train": sorted(order[valid:])}
    enc = lambda w: sp.encode(w, out_type=str)  # noqa: E731
    stats = dict(pairs_read=len(src), pairs_aligned=len(pairs), skipped=issues.total, alignment=astats)
    for split, idx in parts.items():
        kept = too_long = links = 0
        raw = os.path.join(out_dir, "raw", split)
        with atomic_write(raw + ".src") as fs, atomic_write(raw + ".tgt") as ft, atomic_write(raw + ".align") as fa:
            for k in idx:
                a, b = pairs[k]
                ps, pt, lk = piece_links(a, b, alignments[k], enc)
                if len(ps) > max_pieces or len(pt) > max_pieces:
                    too_long += 1
                    continue
                fs.write(" ".join(ps) + "\n")
                ft.write(" ".join(pt) + "\n")
                fa.write(" ".join(f"{p}-{q}" for p, q in lk) + "\n")
                kept += 1
                links += len(lk)
        stats[split] = dict(pairs=kept, too_long=too_long, links=links)
    with atomic_write(os.path.join(out_dir, "raw", "stats.json")) as fh:
        json.dump(stats, fh, indent=2)
    return stats


def read_links(path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """An ``.align`` file as CSR arrays: ``offsets`` int64 ``[N + 1]``, ``links`` int32 ``[K, 2]``."""
    offsets, links = [0], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            for tok in line.split():
                p, q = tok.split("-")
                links.append((int(p), int(q)))
            offsets.append(len(links))
    return np.asarray(offsets, dtype=np.int64), np.asarray(links, dtype=np.int32).reshape(-1, 2)
