"""Near-copies of evaluation items in training lines: tokenisation-insensitive copies, containment, n-gram overlap.

The exact check of :mod:`csfair.evaluation.overlap` compares one normalised key per sentence, so a
test sentence that reaches the training text tokenised differently (``l' homme`` / ``l'homme``,
``Paris , France`` / ``Paris, France``, ``&apos;`` escapes), inside a longer line, or with a word
changed is not found. This module finds those, in the manner of the n-gram contamination checks of
large-model evaluations:

* **words** (:func:`words`): GPT-3's unit (Brown et al., 2020, Appendix C: words "ignoring all
  punctuation, whitespace, and casing"): HTML entities decoded (Moses escapes), Unicode NFKC,
  case-folded, every run of punctuation, symbols, separators and control characters
  (``\\p{P}``, ``\\p{S}``, ``\\p{Z}``, ``\\p{C}``) is a word boundary and is dropped. One rule more:
  the Penn-Treebank split of the English negation clitic (``don't`` -> ``do n't``) is applied to
  both sides, so that UD's ``do n't`` and detokenised ``don't`` give the same words.
* kinds of hit of an item in a training line, strongest first (:data:`KINDS`):

  ``exact``      the normalised keys are equal (:func:`csfair.evaluation.overlap.normalize`);
  ``copy``       the word sequences are equal (tokenisation, punctuation or case differ);
  ``contained``  the item's word sequence occurs inside the line, and the item has at least ``n``
                 words;
  ``ngram``      the line holds at least ``threshold`` of the item's distinct word ``n``-grams
                 (PaLM's contamination ratio, Chowdhery et al., 2022, Section 8: a test example with
                 >= 70% of its 8-grams in the training data), without containing the item.

  Items shorter than ``n`` words are found as ``exact`` or ``copy`` only: shorter phrases collide by
  chance (GPT-3 Appendix C sets N >= 8 "due to spurious collisions at lower values").
* the ratio is per training *line* (one line is one document here: sentences, captions), so a hit
  names the line that holds the item; PaLM counts n-grams anywhere in the training data, which on
  formulaic sentence corpora (Multi30k captions) counts phrases shared by unrelated sentences.

Cost: every line's n-grams are hashed in flat NumPy arrays (``n`` vectorised passes) and looked up
in the sorted hashes of the items (``searchsorted``), so a scan is O((lines + items) log items),
not a comparison of every line with every item; candidates are then checked exactly on their words
(a 64-bit hash collision cannot create a hit; it could hide one only by merging two n-grams of one
item, probability about 2^-64 per pair of n-grams).
"""
import html
import re
import unicodedata
from dataclasses import dataclass
from itertools import chain
from typing import Dict, List, Optional, Sequence

import numpy as np
import regex

#: Word n-gram length: PaLM's 8 (also GPT-3's minimum N, below which collisions are spurious).
NGRAM = 8
#: Share of an item's distinct n-grams that one training line must hold: PaLM's 70%.
THRESHOLD = 0.7
#: Hit kinds, strongest first (their index is the ``kind`` code of :class:`Hits`).
KINDS = ("exact", "copy", "contained", "ngram")

_WS = re.compile(r"\s+")
# every character that is not a letter, mark or number (punctuation, symbol, separator, control) except
# the newline: a batch of lines is folded as one string, then split at its newlines
_SEP = regex.compile(r"[^\p{L}\p{M}\p{N}\n]+")
# Penn Treebank (and UD English): "don't" -> "do n't", "can't" -> "ca n't", "won't" -> "wo n't"
_NT = regex.compile(r"(?<=\w)n['\u2019]t\b")
# odd 64-bit multipliers of the n-gram hash, fixed (a seeded draw) so hashes are the same in every run
_MULT = np.random.default_rng(0x63736661).integers(1, 2 ** 63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def normalize(text: str) -> str:
    """The exact comparison key: NFKC, lower-case, whitespace runs collapsed, stripped (as before this module)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def words(text: str) -> List[str]:
    """The words of a text, ignoring punctuation, whitespace, case and Moses/PTB tokenisation.

    Args:
        text: one sentence (str).

    Returns:
        its words (list of str; empty when the text is only punctuation).
    """
    return word_lists([text])[0]


def word_lists(texts: Sequence[str]) -> List[List[str]]:
    """:func:`words` of many texts (one string pass: the texts are folded joined by newlines).

    Raises:
        ValueError: a text contains a newline.
    """
    texts = list(texts)
    if any("\n" in t for t in texts):
        raise ValueError("word_lists: a text contains a newline")
    # entities are decoded per text, so that a decoded newline (&#10;) cannot split a text in two
    joined = "\n".join(html.unescape(t).replace("\n", " ") if "&" in t else t for t in texts)
    folded = _NT.sub(" n't", unicodedata.normalize("NFKC", joined).casefold())
    out = [x.split() for x in _SEP.sub(" ", folded).split("\n")]
    return out if texts else []


@dataclass
class TextTable:
    """Texts prepared for matching: exact keys, word keys and word n-gram hashes in flat arrays.

    Attributes:
        exact: :func:`normalize` key per text (list of str).
        loose: the words joined by single spaces per text (list of str; ``""`` for no words).
        n_words: words per text (int64 [texts]).
        hashes: hash of every word n-gram that lies inside one text (uint64 [windows]).
        rows: the text of each window (int64 [windows]).
        n: the n-gram length.
    """

    exact: List[str]
    loose: List[str]
    n_words: np.ndarray
    hashes: np.ndarray
    rows: np.ndarray
    n: int

    @classmethod
    def build(cls, texts: Sequence[str], n: int = NGRAM, batch: int = 50000) -> "TextTable":
        """Prepare ``texts`` (any sentences; normalised here).

        Args:
            texts: the sentences (str).
            n: word n-gram length (1..64).
            batch: texts folded per string pass (memory bound).

        Raises:
            ValueError: ``n`` out of range; a text with a newline.
        """
        if not 1 <= n <= len(_MULT):
            raise ValueError(f"n-gram length must be 1..{len(_MULT)}, got {n}")
        texts = list(texts)
        exact = [normalize(t) for t in texts]
        toks: List[List[str]] = []
        for i in range(0, len(exact), batch):
            toks += word_lists(exact[i:i + batch])
        loose = [" ".join(w) for w in toks]
        n_words = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        total = int(n_words.sum())
        # token hashes: Python's string hash (salted per process, which is enough: items and lines are
        # hashed in the same process, and every candidate is verified on its words)
        tok = np.fromiter(map(hash, chain.from_iterable(toks)), dtype=np.int64, count=total).view(np.uint64)
        row_of = np.repeat(np.arange(len(toks), dtype=np.int64), n_words)
        n_win = max(total - n + 1, 0)
        h = np.zeros(n_win, dtype=np.uint64)
        for j in range(n):
            h += tok[j:j + n_win] * _MULT[j]
        start = np.arange(n_win, dtype=np.int64)
        inside = row_of[start] == row_of[start + n - 1] if n_win else np.zeros(0, dtype=bool)
        return cls(exact, loose, n_words, h[inside], row_of[start[inside]], n)

    def __len__(self) -> int:
        return len(self.exact)


@dataclass
class Hits:
    """Hits of indexed items in training lines, one per (line, item) with its strongest kind.

    Attributes:
        line: index of the line in the scanned table (int64 [hits]).
        item: index of the item in the index's texts (int64 [hits]).
        kind: index into :data:`KINDS` (int8 [hits]).
        share: share of the item's distinct n-grams in the line (float64 [hits]; 1.0 for exact and copy).
    """

    line: np.ndarray
    item: np.ndarray
    kind: np.ndarray
    share: np.ndarray

    def __len__(self) -> int:
        return len(self.line)


def _distinct_pairs(hashes: np.ndarray, rows: np.ndarray):
    """The distinct (hash, row) pairs, sorted by hash then row: (uint64 [k], int64 [k])."""
    order = np.lexsort((rows, hashes))
    h, r = hashes[order], rows[order]
    keep = np.ones(len(h), dtype=bool)
    keep[1:] = (h[1:] != h[:-1]) | (r[1:] != r[:-1])
    return h[keep], r[keep]


def _ngrams(ws: List[str], n: int) -> set:
    return set(zip(*(ws[j:] for j in range(n))))


class NearCopyIndex:
    """Evaluation items (held-out sentences), indexed to find their near-copies in training lines.

    Args:
        texts: the items (str; repeats allowed, each keeps its index).
        n: word n-gram length (default :data:`NGRAM`).
        threshold: share of an item's distinct n-grams one line must hold (default :data:`THRESHOLD`),
            in (0, 1].

    Raises:
        ValueError: ``threshold`` outside (0, 1]; ``n`` out of range.
    """

    def __init__(self, texts: Sequence[str], n: int = NGRAM, threshold: float = THRESHOLD):
        if not 0 < threshold <= 1:
            raise ValueError(f"near-copy threshold must be in (0, 1], got {threshold}")
        self.n, self.threshold = n, float(threshold)
        self.items = TextTable.build(texts, n)
        self._exact: Dict[str, List[int]] = {}
        self._loose: Dict[str, List[int]] = {}
        for i, (e, lo) in enumerate(zip(self.items.exact, self.items.loose)):
            if e:
                self._exact.setdefault(e, []).append(i)
            if lo:
                self._loose.setdefault(lo, []).append(i)
        # distinct (item, n-gram) pairs, sorted by hash, and each item's number of distinct n-grams
        self._hash, self._item = _distinct_pairs(self.items.hashes, self.items.rows)
        self._n_distinct = np.bincount(self._item, minlength=len(self.items))
        self._ngram_cache: Dict[int, set] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _item_ngrams(self, i: int) -> set:
        if i not in self._ngram_cache:
            self._ngram_cache[i] = _ngrams(self.items.loose[i].split(" "), self.n)
        return self._ngram_cache[i]

    def match(self, lines: TextTable, rows: Optional[np.ndarray] = None) -> Hits:
        """Every (line, item) pair where the line is a near-copy of the item.

        Args:
            lines: the training lines (:meth:`TextTable.build` with this index's ``n``).
            rows: bool [len(lines)]: scan only these lines (default: all).

        Returns:
            the hits (:class:`Hits`), sorted by line then item.

        Raises:
            ValueError: ``lines`` built with another n-gram length.
        """
        if lines.n != self.n:
            raise ValueError(f"lines hashed with n={lines.n}, the index with n={self.n}")
        take = np.ones(len(lines), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
        best: Dict[tuple, tuple] = {}  # (line, item) -> (kind, share)
        for j in np.flatnonzero(take):
            for i in self._exact.get(lines.exact[j], ()):
                best[(j, i)] = (0, 1.0)
            for i in self._loose.get(lines.loose[j], ()):
                best.setdefault((j, i), (1, 1.0))
        # n-gram candidates: windows whose hash is an item n-gram's, expanded to every item that has it
        if len(self._hash) and len(lines.hashes):
            w = take[lines.rows]
            h, r = lines.hashes[w], lines.rows[w]
            lo = np.searchsorted(self._hash, h, "left")
            hi = np.searchsorted(self._hash, h, "right")
            hit = hi > lo
            if hit.any():
                # one (line, hash) per line even when the n-gram repeats in it
                uh, ur = _distinct_pairs(h[hit], r[hit])
                lo = np.searchsorted(self._hash, uh, "left")
                cnt = np.searchsorted(self._hash, uh, "right") - lo
                tot = int(cnt.sum())
                first = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot)
                line_rep = np.repeat(ur, cnt)
                item_rep = self._item[first]
                key, shared = np.unique(line_rep * len(self.items) + item_rep, return_counts=True)
                li, it = np.divmod(key, len(self.items))
                share = shared / self._n_distinct[it]
                for j, i in zip(*(a[share >= self.threshold].tolist() for a in (li, it))):
                    if (j, i) in best:
                        continue
                    # exact check on the words (hashes only select candidates)
                    mine = self._item_ngrams(i)
                    line_words = lines.loose[j].split(" ")
                    s = len(mine & _ngrams(line_words, self.n)) / len(mine)
                    if s >= self.threshold:
                        inside = f" {self.items.loose[i]} " in f" {lines.loose[j]} "
                        best[(j, i)] = (2 if inside else 3, s)
        order = sorted(best)
        return Hits(
            np.array([k[0] for k in order], dtype=np.int64),
            np.array([k[1] for k in order], dtype=np.int64),
            np.array([best[k][0] for k in order], dtype=np.int8),
            np.array([best[k][1] for k in order], dtype=np.float64),
        )
