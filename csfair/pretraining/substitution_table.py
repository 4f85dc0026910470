"""Token-level substitution tables for code-switched MLM pretraining: the sampling-time side.

A :class:`SubstitutionTable` maps a *source word*, as the token-id sequence it has in the
binarised corpus (its sentencepiece pieces looked up in the fairseq dictionary), to candidate
translations, each a token-id sequence with a raw probability and a sampling probability
``p**(1/T) / sum p**(1/T)`` (Visser et al. 2025, Sec. 3.1). This module holds the lookups the
code-switching sampler runs for every item (word hashes, binary search, exact verification,
candidate draws); :mod:`csfair.pretraining.table_build` builds tables from a lexicon with the
paper's filters, and :mod:`csfair.pretraining.table_format` stores them (flat CSR arrays,
memory-mapped so that DataLoader workers share one copy of the pages).

``cand_cdf`` lets one ``np.searchsorted(cand_cdf, entries + u, side="right")`` draw a candidate
for any number of words at once (``u ~ U[0, 1)``).
"""
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from csfair.io import PathLike, atomic_write
from csfair.pretraining.table_format import ARRAYS, array_checksum, load_arrays, pack_words, save_arrays, unpack_words

#: Words longer than this many pieces never match (their hash is not defined).
MAX_WORD_PIECES = 32


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# Position multipliers of the word hash (odd, fixed forever: stored tables depend on them).
with np.errstate(over="ignore"):
    _POS_MULT = _splitmix64(np.arange(MAX_WORD_PIECES + 2, dtype=np.uint64)) | np.uint64(1)
_LEN_MULT = _POS_MULT[-1]


def word_hashes(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Hash each word (a run of token ids) to a uint64, vectorised over all words of a sequence.

    ``h = len * M_len + sum_j (tok_j + 1) * M_j  (mod 2**64)`` with fixed odd multipliers; words
    are compared exactly after a hash hit (:meth:`SubstitutionTable.verify`), so a collision can
    never cause a wrong substitution.

    Args:
        tokens: int ``[L]`` token ids.
        starts: int64 ``[W]`` ascending word starts with ``starts[0] == 0``.
        lengths: int64 ``[W]`` word lengths; ``starts + lengths`` tiles ``[0, L)``.

    Returns:
        uint64 ``[W]``. Words longer than ``MAX_WORD_PIECES`` get an arbitrary value; callers
        exclude them.
    """
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint64)
    pos = np.arange(len(tokens)) - np.repeat(starts, lengths)
    np.minimum(pos, MAX_WORD_PIECES, out=pos)
    # uint64 array arithmetic wraps modulo 2**64 without a warning (only NumPy scalars warn), so no
    # np.errstate context is needed here: it cost ~5 µs per call on the per-item path
    contrib = (tokens.astype(np.uint64) + np.uint64(1)) * _POS_MULT[pos]
    h = np.add.reduceat(contrib, starts)
    h += lengths.astype(np.uint64) * _LEN_MULT
    return h


def sampling_probs(probs: np.ndarray, groups: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature renormalisation within groups: ``p**(1/T) / sum_group p**(1/T)``.

    Visser et al. (2025), Section 3.1, equation for ``P(xw_i)``.

    Args:
        probs: float ``[m]`` raw probabilities (> 0).
        groups: int64 ``[m]`` group (entry) id of each probability, non-decreasing.
        temperature: ``T > 0``.

    Returns:
        float64 ``[m]``, summing to 1 within each group.

    Raises:
        ValueError: ``temperature <= 0``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = np.power(np.asarray(probs, dtype=np.float64), 1.0 / temperature)
    if len(q) == 0:
        return q
    n_groups = int(groups[-1]) + 1
    totals = np.bincount(groups, weights=q, minlength=n_groups)
    return q / totals[groups]


class SubstitutionTable:
    """Token-level substitution table (see the module docstring for the layout).

    Build with :func:`csfair.pretraining.table_build.build_table`, persist with :meth:`save`,
    open with :meth:`load` (memory-mapped).
    """

    ARRAYS = ARRAYS

    def __init__(self, arrays: Dict[str, np.ndarray], meta: dict):
        missing = [a for a in self.ARRAYS if a not in arrays]
        if missing:
            raise ValueError(f"substitution table lacks arrays: {missing}")
        self.arrays = arrays
        self.meta = meta
        for name in self.ARRAYS:
            # plain ndarray views of the (memory-mapped) arrays: same pages, but indexing an np.memmap
            # builds memmap objects (~4 µs per lookup on the per-item path)
            setattr(self, name, np.asarray(arrays[name]))

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return len(self.key_hash)

    @property
    def num_candidates(self) -> int:
        return len(self.cand_prob)

    @property
    def max_token_id(self) -> int:
        """Largest token id used (-1 for an empty table)."""
        m = -1
        if len(self.key_tokens):
            m = max(m, int(self.key_tokens.max()))
        if len(self.cand_tokens):
            m = max(m, int(self.cand_tokens.max()))
        return m

    def nbytes(self) -> int:
        """Bytes of all arrays (the size on disk, less ``meta.json`` and .npy headers)."""
        return int(sum(self.arrays[a].nbytes for a in self.ARRAYS))

    # ------------------------------------------------------------------ persistence
    def checksum(self) -> str:
        """SHA-256 over all arrays (content, dtype and shape), independent of the directory."""
        return array_checksum(self.arrays)

    def save(self, path: PathLike) -> Path:
        """Write the table directory atomically (complete or not at all) and return its path."""
        self.meta = save_arrays(self.arrays, self.meta, path)
        return Path(path)

    @classmethod
    def load(cls, path: PathLike, mmap: bool = True) -> "SubstitutionTable":
        """Open a table directory; arrays are memory-mapped read-only when ``mmap``. The arrays are
        checked against the checksum ``meta.json`` recorded when the table was built (once per
        process for unchanged files: :func:`csfair.pretraining.table_format.verify_checksum`).

        Raises:
            FileNotFoundError: the directory or one of its files is missing (named).
            ValueError: unsupported format version.
            csfair.pretraining.table_format.CorruptTableError: the arrays do not match the
                checksum (a ValueError naming the table).
        """
        table = cls(*load_arrays(path, mmap))
        table.path = str(Path(path))
        return table

    # ------------------------------------------------------------------ resampling
    def with_sampling(self, temperature: float, min_prob: float) -> "SubstitutionTable":
        """The same table with another temperature and/or a stricter ``min_prob``.

        Returns ``self`` (sharing the memory-mapped arrays) when nothing changes. Token arrays are
        shared; only candidate-level arrays are rebuilt.

        Raises:
            ValueError: ``min_prob`` lower than the table's build threshold (pruned candidates
                cannot be restored: rebuild the table).
        """
        same_t = math.isclose(temperature, self.meta["temperature"])
        same_p = math.isclose(min_prob, self.meta["min_prob"])
        if same_t and (same_p or not self.meta["probabilistic"]):
            return self
        if self.meta["probabilistic"] and min_prob < self.meta["min_prob"] - 1e-12:
            raise ValueError(
                f"{getattr(self, 'path', 'table')}: min_prob {min_prob} is below the table's build "
                f"threshold {self.meta['min_prob']}; rebuild the table with --min-prob {min_prob}"
            )
        n = len(self)
        groups = np.repeat(np.arange(n), np.diff(self.cand_offsets))
        keep = np.ones(self.num_candidates, dtype=bool)
        if self.meta["probabilistic"]:
            keep = np.asarray(self.cand_prob) > min_prob
        counts = np.bincount(groups[keep], minlength=n)
        live = counts > 0
        cidx = np.flatnonzero(keep)
        # entries that lost every candidate are removed (keys stay sorted)
        ent = np.flatnonzero(live)
        key_len = np.diff(self.key_offsets)[ent]
        key_sel = _ranges(self.key_offsets[ent], key_len)
        cand_len = np.diff(self.cand_tok_offsets)[cidx]
        tok_sel = _ranges(self.cand_tok_offsets[cidx], cand_len)
        new_groups = np.cumsum(live)[groups[cidx]] - 1
        arrays = dict(
            key_hash=np.asarray(self.key_hash)[ent],
            key_offsets=np.concatenate([[0], np.cumsum(key_len)]).astype(np.int64),
            key_tokens=np.asarray(self.key_tokens)[key_sel],
            cand_offsets=np.concatenate([[0], np.cumsum(counts[live])]).astype(np.int64),
            cand_prob=np.asarray(self.cand_prob)[cidx],
            cand_tok_offsets=np.concatenate([[0], np.cumsum(cand_len)]).astype(np.int64),
            cand_tokens=np.asarray(self.cand_tokens)[tok_sel],
            source_words_utf8=pack_words([self.source_words()[i] for i in ent]),
            cand_words_utf8=pack_words([self.cand_words()[i] for i in cidx]),
        )
        arrays["cand_sampling"] = sampling_probs(arrays["cand_prob"], new_groups, temperature)
        arrays["cand_cdf"] = candidate_cdf(arrays["cand_sampling"], arrays["cand_offsets"])
        meta = dict(self.meta, temperature=temperature, min_prob=max(min_prob, self.meta["min_prob"]))
        meta.pop("checksum", None)
        meta["derived_from"] = self.meta.get("checksum")
        out = SubstitutionTable(arrays, meta)
        out.path = getattr(self, "path", None)
        return out

    # ------------------------------------------------------------------ hot path
    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Entry index of each hash, or -1 (vectorised binary search).

        Args:
            hashes: uint64 ``[W]`` from :func:`word_hashes`.

        Returns:
            int64 ``[W]``.
        """
        n = len(self.key_hash)
        if n == 0 or len(hashes) == 0:
            return np.full(len(hashes), -1, dtype=np.int64)
        idx = np.searchsorted(self.key_hash, hashes)
        np.minimum(idx, n - 1, out=idx)
        return np.where(self.key_hash[idx] == hashes, idx, -1)

    def verify(self, entries: np.ndarray, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Exact check that ``tokens[starts[i]:starts[i]+lengths[i]]`` equals entry ``entries[i]``'s key.

        Compares the words and keys side by side in a ``[k, max(lengths)]`` window (a few NumPy
        calls whatever ``k``: this runs for every code-switched item).

        Returns:
            bool ``[len(entries)]``.
        """
        if len(entries) == 0:
            return np.zeros(0, dtype=bool)
        k0 = self.key_offsets[entries]
        ok = (self.key_offsets[entries + 1] - k0) == lengths
        if not ok.any():
            return ok
        j = np.arange(int(lengths.max()))
        outside = j >= lengths[:, None]
        # positions past a word's end are clipped into range and ignored (outside)
        a = tokens[np.minimum(starts[:, None] + j, len(tokens) - 1)]
        b = self.key_tokens[np.minimum(k0[:, None] + j, len(self.key_tokens) - 1)]
        return ok & ((a == b) | outside).all(axis=1)

    def sample(self, entries: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Draw one candidate per entry from the sampling distribution ("multiview").

        Args:
            entries: int64 ``[k]`` entry indices.
            u: float64 ``[k]`` uniforms in ``[0, 1)``.

        Returns:
            int64 ``[k]`` candidate indices (into ``cand_*`` arrays).
        """
        c = np.searchsorted(self.cand_cdf, entries + u, side="right")
        # guard the float edge u -> 1: stay inside the entry's block (np.clip's own overhead is ~3 µs)
        return np.minimum(np.maximum(c, self.cand_offsets[entries]), self.cand_offsets[entries + 1] - 1)

    def top(self, entries: np.ndarray) -> np.ndarray:
        """The most probable candidate of each entry ("static"); ties keep lexicon order."""
        return np.asarray(self.cand_offsets[entries], dtype=np.int64)

    def candidate_tokens(self, cands: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Token ids of candidates, concatenated, and their lengths (int64 arrays)."""
        starts = self.cand_tok_offsets[cands]
        lens = self.cand_tok_offsets[cands + 1] - starts
        return self.cand_tokens[_ranges(starts, lens)].astype(np.int64), lens.astype(np.int64)

    # ------------------------------------------------------------------ people
    def source_words(self) -> List[str]:
        """The ``n`` source words (entry order)."""
        if getattr(self, "_source_words", None) is None:
            self._source_words = unpack_words(self.source_words_utf8)
        return self._source_words

    def cand_words(self) -> List[str]:
        """The ``m`` candidate words."""
        if getattr(self, "_cand_words", None) is None:
            self._cand_words = unpack_words(self.cand_words_utf8)
        return self._cand_words

    def entries_for(self, word: str) -> List[int]:
        """Entry indices whose source word is ``word`` (exact, else case-insensitive)."""
        words = self.source_words()
        hits = [i for i, w in enumerate(words) if w == word]
        if not hits:
            hits = [i for i, w in enumerate(words) if w.lower() == word.lower()]
        return hits

    def rows(self, entry: int) -> List[Tuple[str, float, float]]:
        """``[(target, prob, sampling_prob), ...]`` of an entry, most probable first."""
        a, b = int(self.cand_offsets[entry]), int(self.cand_offsets[entry + 1])
        words = self.cand_words()
        return [(words[c], float(self.cand_prob[c]), float(self.cand_sampling[c])) for c in range(a, b)]

    def to_tsv(self, path: PathLike, decode: Optional[Callable[[Sequence[int]], str]] = None) -> None:
        """Export ``source, target, prob, sampling_prob[, source pieces, target pieces]`` rows."""
        with atomic_write(path) as fh:
            cols = ["source", "target", "prob", "sampling_prob"] + (["source_pieces", "target_pieces"] if decode else [])
            fh.write("\t".join(cols) + "\n")
            src_words, cand_words = self.source_words(), self.cand_words()
            for e in range(len(self)):
                src = src_words[e]
                kt = self.key_tokens[self.key_offsets[e]:self.key_offsets[e + 1]]
                for c in range(int(self.cand_offsets[e]), int(self.cand_offsets[e + 1])):
                    row = [src, cand_words[c], f"{self.cand_prob[c]:.6g}", f"{self.cand_sampling[c]:.6g}"]
                    if decode:
                        ct = self.cand_tokens[self.cand_tok_offsets[c]:self.cand_tok_offsets[c + 1]]
                        row += [decode(kt.tolist()), decode(ct.tolist())]
                    fh.write("\t".join(row) + "\n")


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each pair (vectorised)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(np.asarray(starts, dtype=np.int64) - firsts, lengths) + np.arange(total)


def candidate_cdf(sampling: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``e + cumulative sampling probability`` within each entry ``e``; each block ends at ``e + 1``."""
    n = len(offsets) - 1
    if len(sampling) == 0:
        return np.zeros(0, dtype=np.float64)
    groups = np.repeat(np.arange(n), np.diff(offsets))
    cum = np.cumsum(sampling)
    base = np.concatenate([[0.0], cum])[offsets[:-1]]
    local = cum - base[groups]
    last = offsets[1:][np.diff(offsets) > 0] - 1
    local[last] = 1.0  # exact block ends, whatever the float error
    return groups + local
