"""Word-level translation lexicons: ``source word -> [(target word, p(target | source))]``.

Two sources (Visser et al., 2025, Section 3.1):

* **IBM Model 1** translation tables estimated by EM on a parallel corpus (``csfair.lexicons.ibm1``):
  many candidates per word with probabilities ("multiview").
* **MUSE** bilingual dictionaries (Conneau et al., 2017): discrete translations; every listed
  translation of a word becomes a candidate with uniform probability ``1 / n``.

A :class:`Lexicon` holds the pairs in flat arrays (CSR: ``offsets`` into candidate arrays) and
reads/writes a TSV format meant for people and for diffing::

    # csfair-lexicon<TAB>kind=ibm1<TAB>src=en<TAB>tgt=fr<TAB>probabilistic=1
    work<TAB>travail<TAB>0.3689
    work<TAB>travailler<TAB>0.2252

Rows are grouped by source word, candidates sorted by decreasing probability (ties keep input
order, so a MUSE dictionary's first translation stays first).
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from csfair.io import InputFormatError, LineIssues, PathLike, atomic_write, iter_lines
from csfair.text import lower, title, upper

HEADER_TAG = "# csfair-lexicon"


@dataclass
class Lexicon:
    """A word-level translation lexicon in flat arrays.

    Attributes:
        src_lang: ISO code of the source words.
        tgt_lang: ISO code of the candidate (target) words.
        kind: ``"ibm1"``, ``"muse"`` or another label.
        probabilistic: True when ``probs`` are estimated probabilities (IBM-1); False when the
            candidates are discrete translations with uniform probabilities (MUSE). The table
            builder applies the ``p > min_prob`` filter only to probabilistic lexicons.
        src_words: ``n`` distinct source words.
        offsets: int64 ``[n + 1]``: candidates of ``src_words[i]`` are ``offsets[i]:offsets[i+1]``.
        tgt_words: ``m`` candidate words.
        probs: float64 ``[m]``: ``p(target | source)``, each source's block sorted descending.
    """

    src_lang: str
    tgt_lang: str
    kind: str
    probabilistic: bool
    src_words: List[str]
    offsets: np.ndarray
    tgt_words: List[str]
    probs: np.ndarray
    _index: Optional[Dict[str, int]] = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.probs = np.asarray(self.probs, dtype=np.float64)
        if len(self.offsets) != len(self.src_words) + 1 or self.offsets[-1] != len(self.tgt_words):
            raise ValueError("Lexicon arrays are inconsistent (offsets vs words)")
        if len(self.probs) != len(self.tgt_words):
            raise ValueError("Lexicon arrays are inconsistent (probs vs candidates)")

    def __len__(self) -> int:
        return len(self.src_words)

    @property
    def num_pairs(self) -> int:
        """Total number of (source, candidate) pairs."""
        return len(self.tgt_words)

    def index(self, word: str) -> int:
        """Row of ``word`` or -1."""
        if self._index is None:
            self._index = {w: i for i, w in enumerate(self.src_words)}
        return self._index.get(word, -1)

    def candidates(self, word: str) -> List[Tuple[str, float]]:
        """``[(target, p), ...]`` for ``word`` (empty if absent), most probable first."""
        i = self.index(word)
        if i < 0:
            return []
        a, b = self.offsets[i], self.offsets[i + 1]
        return list(zip(self.tgt_words[a:b], self.probs[a:b].tolist()))

    @classmethod
    def from_mapping(
        cls,
        mapping: "OrderedDict[str, List[Tuple[str, float]]]",
        src_lang: str,
        tgt_lang: str,
        kind: str,
        probabilistic: bool,
    ) -> "Lexicon":
        """Build from ``{source: [(target, p), ...]}`` (insertion order kept for sources).

        Candidates are stably sorted by decreasing ``p``.
        """
        src_words, offsets, tgt_words, probs = [], [0], [], []
        for src, cands in mapping.items():
            if not cands:
                continue
            order = sorted(range(len(cands)), key=lambda k: -cands[k][1])
            src_words.append(src)
            tgt_words.extend(cands[k][0] for k in order)
            probs.extend(cands[k][1] for k in order)
            offsets.append(len(tgt_words))
        return cls(src_lang, tgt_lang, kind, probabilistic, src_words, np.array(offsets), tgt_words, np.array(probs))

    # ------------------------------------------------------------------ TSV I/O
    def save_tsv(self, path: PathLike) -> None:
        """Write the TSV format (atomically: a temporary file renamed on success)."""
        with atomic_write(path) as fh:
            fh.write(
                f"{HEADER_TAG}\tkind={self.kind}\tsrc={self.src_lang}\ttgt={self.tgt_lang}"
                f"\tprobabilistic={int(self.probabilistic)}\n"
            )
            for i, src in enumerate(self.src_words):
                a, b = self.offsets[i], self.offsets[i + 1]
                fh.writelines(f"{src}\t{t}\t{p:.6g}\n" for t, p in zip(self.tgt_words[a:b], self.probs[a:b]))

    @classmethod
    def load_tsv(cls, path: PathLike, issues: Optional[LineIssues] = None) -> "Lexicon":
        """Read a lexicon written by :meth:`save_tsv`.

        Raises:
            InputFormatError: missing header, a row without 3 tab-separated fields, a
                probability that is not a number in (0, 1], or a bad line in strict mode.
                Lines with invalid UTF-8 are skipped and recorded in ``issues``.
        """
        issues = issues if issues is not None else LineIssues(str(path), strict=True)
        meta = None
        mapping: "OrderedDict[str, List[Tuple[str, float]]]" = OrderedDict()
        for lineno, text in iter_lines(path, issues):
            if meta is None:
                if not text.startswith(HEADER_TAG):
                    raise InputFormatError(path, lineno, f"not a csfair lexicon: expected a '{HEADER_TAG}' header")
                meta = dict(kv.split("=", 1) for kv in text.split("\t")[1:] if "=" in kv)
                continue
            parts = text.split("\t")
            if len(parts) != 3:
                issues.skip(path, lineno, f"expected 3 tab-separated fields (source, target, p), got {len(parts)}")
                continue
            try:
                p = float(parts[2])
            except ValueError:
                issues.skip(path, lineno, f"probability {parts[2]!r} is not a number")
                continue
            if not (0.0 < p <= 1.0 + 1e-6):
                issues.skip(path, lineno, f"probability {p} outside (0, 1]")
                continue
            mapping.setdefault(parts[0], []).append((parts[1], p))
        if meta is None:
            raise InputFormatError(path, 0, "empty file: not a csfair lexicon")
        return cls.from_mapping(
            mapping, meta.get("src", "?"), meta.get("tgt", "?"), meta.get("kind", "tsv"),
            meta.get("probabilistic", "1") == "1",
        )

    # ------------------------------------------------------------------ MUSE
    @classmethod
    def read_muse(
        cls,
        path: PathLike,
        src_lang: str,
        tgt_lang: str,
        lowercase: bool = True,
        issues: Optional[LineIssues] = None,
    ) -> "Lexicon":
        """Read a MUSE dictionary: one ``source target`` pair per line, whitespace-separated.

        Every distinct translation of a word is a candidate with uniform probability
        ``1 / n_translations`` (Visser et al., 2025, Section 3.1: "we map each token with all
        its possible MUSE translations").

        Args:
            path: the dictionary (``$CSFAIR_DATA/dict/muse/en-fr.txt``).
            src_lang, tgt_lang: ISO codes.
            lowercase: lower-case both sides (the IBM-1 lexicon is lower-cased too), with each
                language's rules (:func:`csfair.text.lower`: Turkish ``I -> ı``, ``İ -> i``).
            issues: collector for skipped lines. Default: non-strict (skip and report).

        Skipped and counted: lines without exactly two fields, duplicate pairs, invalid UTF-8,
        empty lines. In strict mode the first of these raises :class:`InputFormatError`.
        """
        issues = issues if issues is not None else LineIssues(str(path))
        mapping: "OrderedDict[str, List[Tuple[str, float]]]" = OrderedDict()
        seen = set()
        for lineno, text in iter_lines(path, issues):
            parts = text.split()
            if len(parts) != 2:
                issues.skip(path, lineno, f"expected 2 fields 'source target', got {len(parts)}")
                continue
            src, tgt = (lower(parts[0], src_lang), lower(parts[1], tgt_lang)) if lowercase else parts
            if (src, tgt) in seen:
                issues.skip(path, lineno, f"duplicate pair ({src}, {tgt})")
                continue
            seen.add((src, tgt))
            mapping.setdefault(src, []).append((tgt, 1.0))
        for src, cands in mapping.items():
            mapping[src] = [(t, 1.0 / len(cands)) for t, _ in cands]
        return cls.from_mapping(mapping, src_lang, tgt_lang, "muse", probabilistic=False)

    @classmethod
    def from_arrays(
        cls,
        src_lang: str,
        tgt_lang: str,
        kind: str,
        probabilistic: bool,
        src_words: Sequence[str],
        row_offsets: np.ndarray,
        tgt_words: Sequence[str],
        probs: np.ndarray,
        min_prob: float = 0.0,
    ) -> "Lexicon":
        """Build from CSR arrays, dropping candidates with ``p < min_prob`` and sorting rows.

        Args:
            row_offsets: int64 ``[n + 1]`` offsets of each source's candidates.
            probs: float ``[m]``.
            min_prob: candidates below it are not kept (rows left empty are dropped).
        """
        probs = np.asarray(probs, dtype=np.float64)
        row_offsets = np.asarray(row_offsets, dtype=np.int64)
        n = len(src_words)
        row_of = np.repeat(np.arange(n), np.diff(row_offsets))
        keep = probs >= min_prob
        row_of, idx = row_of[keep], np.flatnonzero(keep)
        # sort by row, then by decreasing probability (stable for ties)
        order = np.lexsort((-probs[idx], row_of))
        idx, row_of = idx[order], row_of[order]
        counts = np.bincount(row_of, minlength=n)
        rows = np.flatnonzero(counts)
        offsets = np.concatenate([[0], np.cumsum(counts[rows])])
        return cls(
            src_lang, tgt_lang, kind, probabilistic,
            [src_words[r] for r in rows], offsets, [tgt_words[i] for i in idx], probs[idx],
        )


def word_forms(word: str, lang: Optional[str]) -> Set[str]:
    """The lower-cased forms of a word and of its case variants (a table also keys ``Title`` and
    ``UPPER`` forms: ``groß`` -> ``GROSS``, which is also ``gross`` upper-cased)."""
    return {lower(word, lang), lower(upper(word, lang), lang), lower(title(word, lang), lang)}


def filter_lexicon(lex: Lexicon, drop_src: Set[str], drop_tgt: Set[str]) -> Tuple[Lexicon, dict]:
    """``lex`` without the source words in ``drop_src`` and the candidates in ``drop_tgt`` (compared
    lower-cased with each side's language rules, also through their case variants: see
    :func:`word_forms`); rows left without a candidate are dropped.

    Returns:
        (lexicon, counts of the removed rows and candidates)
    """
    mapping: "OrderedDict[str, List[Tuple[str, float]]]" = OrderedDict()
    removed_rows = removed_cands = 0
    for i, s in enumerate(lex.src_words):
        a, b = lex.offsets[i], lex.offsets[i + 1]
        if word_forms(s, lex.src_lang) & drop_src:
            removed_rows += 1
            continue
        cands = [(t, float(p)) for t, p in zip(lex.tgt_words[a:b], lex.probs[a:b])
                 if not word_forms(t, lex.tgt_lang) & drop_tgt]
        removed_cands += int(b - a) - len(cands)
        if cands:
            mapping[s] = cands
        else:
            removed_rows += 1
    out = Lexicon.from_mapping(mapping, lex.src_lang, lex.tgt_lang, lex.kind, lex.probabilistic)
    return out, dict(rows_removed=removed_rows, candidates_removed=removed_cands, rows_kept=len(out))


def read_word_list(path: PathLike) -> Dict[str, Set[str]]:
    """Words per language from ``LANG<TAB>word`` lines (``#`` comment lines and blank lines ignored),
    lower-cased with each language's rules: the words held out of every substitution table
    (``csfair-lexicon table --exclude-words``).

    Raises:
        InputFormatError: a line without exactly two tab-separated fields (file and line named).
    """
    out: Dict[str, Set[str]] = {}
    for lineno, text in iter_lines(path, LineIssues(str(path), strict=True)):
        if text.startswith("#"):
            continue
        f = text.split("\t")
        if len(f) != 2 or not f[0] or not f[1].strip():
            raise InputFormatError(path, lineno, "expected LANG<TAB>word")
        out.setdefault(f[0], set()).add(lower(f[1].strip(), f[0]))
    return out
