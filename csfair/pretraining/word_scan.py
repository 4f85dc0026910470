"""The per-item work of code-switching around its random draws, compiled: word scan and replacement.

:func:`csfair.pretraining.sampler.code_switch` needs, for every code-switched item, its words
(spans from one word start to the next), which of them are keys of the substitution table (word
hash, binary search, exact token comparison) and which are blocked (a prediction target or a
special symbol inside, cut by the block boundary, too long). In NumPy that is ~60 small array calls
per item (~40 µs); :func:`scan_words` does it in one pass compiled with numba (~2 µs) when numba is
installed, and falls back to the NumPy version otherwise. :func:`replace_words` likewise picks the
candidates of the chosen words from the draws it is given and builds the code-switched arrays in one
compiled pass (Python + NumPy fallback). Compiled and fallback versions give identical arrays
(tested), and none of them draws random numbers, so the draws and the method are the same whichever
runs (csfair issue 13, part 4).
"""
import logging
import warnings
from typing import Optional, Tuple

import numpy as np

from csfair.pretraining.substitution_table import _LEN_MULT, _POS_MULT, MAX_WORD_PIECES, SubstitutionTable, word_hashes

try:  # numba is a dependency of umap-learn, pinned in requirements/runtime.txt
    import numba

    # its compiler logs every pass at DEBUG, which fairseq's root logger would print
    logging.getLogger("numba").setLevel(logging.WARNING)
except ImportError as e:  # pragma: no cover - exercised where numba is missing
    numba = None
    # Said once, when this module is first imported (DataLoader workers forked later inherit the module and
    # do not repeat it); the fallback gives the same arrays, only slower.
    warnings.warn(
        f"numba cannot be imported ({type(e).__name__}: {e}): code-switching's word scan and replacement run their "
        "NumPy versions (same results, ~30% fewer tokens/s per DataLoader worker with --cs-mode multiview; "
        "bench/data_path.py measures it). Install the pinned numba (requirements/runtime.txt) to compile them.",
        RuntimeWarning, stacklevel=2)


def scan_words_numpy(original: np.ndarray, target: np.ndarray, pad_idx: int, word_start: np.ndarray,
                     special: np.ndarray, table: SubstitutionTable, pos_word_start: Optional[np.ndarray] = None,
                     pos_blocked: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NumPy reference of :func:`scan_words` (same arguments and results)."""
    L = len(original)
    ws = word_start[original] if pos_word_start is None else np.array(pos_word_start, dtype=bool)
    first_is_fragment = not ws[0]
    ws[0] = True
    starts = np.flatnonzero(ws)
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = L - starts[-1]
    entry = table.lookup(word_hashes(original, starts, lengths))
    blocked = target != pad_idx
    blocked |= special[original]
    if pos_blocked is not None:
        blocked |= pos_blocked
    word_blocked = np.logical_or.reduceat(blocked, starts)
    word_blocked[0] |= first_is_fragment
    word_blocked[-1] |= not special[original[-1]]
    eligible = entry >= 0
    eligible &= ~word_blocked
    eligible &= lengths <= MAX_WORD_PIECES
    cand = np.flatnonzero(eligible)
    if len(cand):
        ok = table.verify(entry[cand], original, starts[cand], lengths[cand])
        eligible[cand[~ok]] = False
    return starts, lengths, entry, eligible


if numba is not None:
    @numba.njit(cache=True, nogil=True)
    def _scan(original, target, pad_idx, word_start, special, key_hash, key_offsets, key_tokens, pos_mult, len_mult,
              max_pieces):  # pragma: no cover - compiled
        L = original.shape[0]
        starts = np.empty(L, np.int64)
        n = 0
        for i in range(L):
            if i == 0 or word_start[original[i]]:
                starts[n] = i
                n += 1
        starts = starts[:n]
        lengths = np.empty(n, np.int64)
        entry = np.full(n, -1, np.int64)
        eligible = np.zeros(n, np.bool_)
        nkeys = key_hash.shape[0]
        for w in range(n):
            s = starts[w]
            e = starts[w + 1] if w + 1 < n else L
            ln = e - s
            lengths[w] = ln
            # the hash of substitution_table.word_hashes (uint64 arithmetic wraps modulo 2**64)
            h = np.uint64(0)
            blocked = False
            for j in range(ln):
                t = original[s + j]
                h += (np.uint64(t) + np.uint64(1)) * pos_mult[min(j, max_pieces)]
                if target[s + j] != pad_idx or special[t]:
                    blocked = True
            h += np.uint64(ln) * len_mult
            # SubstitutionTable.lookup: searchsorted (left), clipped, equal hash
            lo, hi = 0, nkeys
            while lo < hi:
                mid = (lo + hi) >> 1
                if key_hash[mid] < h:
                    lo = mid + 1
                else:
                    hi = mid
            k = min(lo, nkeys - 1)
            if nkeys == 0 or key_hash[k] != h:
                continue
            entry[w] = k
            if w == 0 and not word_start[original[0]]:
                blocked = True  # a fragment cut by the block's start
            if w == n - 1 and not special[original[L - 1]]:
                blocked = True  # a fragment cut by the block's end
            if blocked or ln > max_pieces:
                continue
            # SubstitutionTable.verify: the exact tokens of the key
            a = key_offsets[k]
            if key_offsets[k + 1] - a != ln:
                continue
            same = True
            for j in range(ln):
                if key_tokens[a + j] != original[s + j]:
                    same = False
                    break
            eligible[w] = same
        return starts, lengths, entry, eligible


def scan_words(original: np.ndarray, target: np.ndarray, pad_idx: int, word_start: np.ndarray, special: np.ndarray,
               table: SubstitutionTable, pos_word_start: Optional[np.ndarray] = None,
               pos_blocked: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Words of one item and which of them may be code-switched.

    Args:
        original: int64 ``[L]`` unmasked tokens (``L >= 1``).
        target: int64 ``[L]`` prediction targets (``pad_idx`` where none).
        pad_idx: padding id.
        word_start: bool ``[V]`` token id starts a word.
        special: bool ``[V]`` token id is a special symbol.
        table: the substitution table.
        pos_word_start: optional bool ``[L]`` word starts per position (a transformers tokenizer's
            ``word_ids()``) instead of ``word_start[original]``; runs the NumPy version.
        pos_blocked: optional bool ``[L]`` positions whose word is never eligible (NumPy version).

    Returns:
        ``(starts, lengths, entry, eligible)``: int64 ``[W]`` word starts (the first word starts at 0),
        int64 ``[W]`` lengths, int64 ``[W]`` table entry of each word's hash or -1, bool ``[W]``
        eligible (an exact key, no target or special symbol inside, not cut by the block boundary, at
        most ``MAX_WORD_PIECES`` tokens; :mod:`csfair.pretraining.sampler` defines these).
    """
    if numba is None or pos_word_start is not None or pos_blocked is not None:
        return scan_words_numpy(original, target, pad_idx, word_start, special, table, pos_word_start, pos_blocked)
    return _scan(original, target, pad_idx, word_start, special, table.key_hash, table.key_offsets, table.key_tokens,
                 _POS_MULT, _LEN_MULT, MAX_WORD_PIECES)


def replace_words_numpy(source, target, original, pad_idx, starts, lengths, chosen, entry, u, multiview, table, budget,
                        truncate=False, keep_last=False):
    """Python/NumPy reference of :func:`replace_words` (same arguments and results)."""
    e = entry[chosen]
    cands = table.sample(e, u) if multiview else table.top(e)
    offs, toks = table.cand_tok_offsets, table.cand_tokens
    L = len(source)
    window = L + budget
    limit = window - 1 if keep_last else window
    used = changed = unchanged = 0
    reps = []  # (start, source word length, replacement tokens)
    for c, st, ln in zip(cands.tolist(), starts[chosen].tolist(), lengths[chosen].tolist()):
        rep = toks[offs[c]:offs[c + 1]]
        d = len(rep) - ln
        if (st + used >= limit) if truncate else (used + d > budget):
            continue
        reps.append((st, ln, rep))
        if d != 0 or not np.array_equal(rep, original[st:st + ln]):
            changed += min(len(rep), limit - (st + used)) if truncate else len(rep)
        else:
            unchanged += 1
        used += d
    if not reps:
        return source, target, 0, 0, 0, 0
    src_parts, tgt_parts, prev = [], [], 0
    for st, ln, rep in reps:
        src_parts += [source[prev:st], rep]
        tgt_parts += [target[prev:st], np.full(len(rep), pad_idx, dtype=target.dtype)]
        prev = st + ln
    src_parts.append(source[prev:])
    tgt_parts.append(target[prev:])
    new_src = np.concatenate(src_parts).astype(source.dtype, copy=False)
    new_tgt = np.concatenate(tgt_parts)
    cut = max(0, len(new_src) - window)
    if cut:
        keep = np.r_[0:limit, len(new_src) - 1] if keep_last else np.arange(window)
        new_src, new_tgt = new_src[keep], new_tgt[keep]
    return new_src, new_tgt, len(reps), changed, unchanged, cut


if numba is not None:
    @numba.njit(cache=True, nogil=True)
    def _replace(source, target, original, pad_idx, starts, lengths, chosen, entry, u, multiview, cand_cdf,
                 cand_offsets, cand_tok_offsets, cand_tokens, budget, truncate, keep_last):  # pragma: no cover - compiled
        k = chosen.shape[0]
        cands = np.empty(k, np.int64)
        fits = np.zeros(k, np.bool_)
        L = source.shape[0]
        window = L + budget
        limit = window - 1 if keep_last else window
        used = 0
        changed = 0
        unchanged = 0
        n = 0
        for j in range(k):
            e = entry[chosen[j]]
            if multiview:  # SubstitutionTable.sample: searchsorted(cand_cdf, e + u, "right"), kept in e's block
                v = e + u[j]
                lo, hi = 0, cand_cdf.shape[0]
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if cand_cdf[mid] <= v:
                        lo = mid + 1
                    else:
                        hi = mid
                c = min(max(lo, cand_offsets[e]), cand_offsets[e + 1] - 1)
            else:  # SubstitutionTable.top
                c = cand_offsets[e]
            cands[j] = c
            a = cand_tok_offsets[c]
            rl = cand_tok_offsets[c + 1] - a
            st = starts[chosen[j]]
            ln = lengths[chosen[j]]
            d = rl - ln
            if truncate:
                if st + used >= limit:
                    continue  # pushed past the window by earlier, longer replacements: cut with the tail
            elif used + d > budget:
                continue
            fits[j] = True
            n += 1
            same = d == 0
            if same:
                for t in range(rl):
                    if cand_tokens[a + t] != original[st + t]:
                        same = False
                        break
            if same:
                unchanged += 1
            elif truncate:
                changed += min(rl, limit - (st + used))  # the tokens left inside the window
            else:
                changed += rl
            used += d
        ns = np.empty(L + used, source.dtype)
        nt = np.empty(L + used, target.dtype)
        i = 0
        o = 0
        for j in range(k):
            if not fits[j]:
                continue
            st = starts[chosen[j]]
            while i < st:
                ns[o] = source[i]
                nt[o] = target[i]
                i += 1
                o += 1
            c = cands[j]
            for t in range(cand_tok_offsets[c], cand_tok_offsets[c + 1]):
                ns[o] = cand_tokens[t]
                nt[o] = pad_idx
                o += 1
            i = st + lengths[chosen[j]]
        while i < L:
            ns[o] = source[i]
            nt[o] = target[i]
            i += 1
            o += 1
        cut = L + used - window
        if cut <= 0:
            return ns, nt, n, changed, unchanged, 0
        if keep_last:  # the item's final special symbol stays last
            ns[limit] = ns[L + used - 1]
            nt[limit] = nt[L + used - 1]
        return ns[:window].copy(), nt[:window].copy(), n, changed, unchanged, cut


def replace_words(source: np.ndarray, target: np.ndarray, original: np.ndarray, pad_idx: int, starts: np.ndarray,
                  lengths: np.ndarray, chosen: np.ndarray, entry: np.ndarray, u: np.ndarray, multiview: bool,
                  table: SubstitutionTable, budget: int, truncate: bool = False, keep_last: bool = False):
    """Replace the chosen words, left to right, within a window of ``L + budget`` tokens.

    Two rules for a replacement that makes the item longer than the window (csfair issues 10, 20):

    * ``truncate`` (the sampler's default, :data:`csfair.pretraining.sampler.OVERFLOWS`): every replacement is
      applied, then the tokens past the window are cut from the end of the item (before its last token when
      ``keep_last``: a final ``</s>``/``[SEP]`` stays last). This is "code-switch, then cut to the model's length",
      as when code-switched text is tokenised into fixed windows (Visser et al. 2025, Sec. 3.1-3.3: 128-token
      sequences), so the drawn candidates keep the table's distribution in full blocks; the cost is the cut tail
      (prediction targets included). A replacement that straddles the window's end is cut with it, as any word at a
      block boundary; one pushed wholly past it by earlier, longer replacements is not counted;
    * otherwise (``drop``): a replacement that would make the item longer than the window is dropped and later,
      shorter ones are still applied. Nothing is cut, but in full blocks (``--sample-break-mode none``) only
      candidates no longer than their source word fit, so the applied candidates lean short.

    Args:
        source, target: int64 ``[L]`` masked input and prediction targets.
        original: int64 ``[L]`` unmasked tokens.
        pad_idx: padding id (the target of every substituted token).
        starts, lengths: int64 ``[W]`` word spans (:func:`scan_words`).
        chosen: int64 ``[k]`` ascending indices of the words to replace.
        entry: int64 ``[W]`` table entries of the words.
        u: float64 ``[k]`` uniforms for the candidate draws (``multiview``; ignored otherwise).
        multiview: sample candidates (``SubstitutionTable.sample``) or take the top one (``top``).
        table: the substitution table.
        budget: tokens the item may grow by (``>= 0``): the window is ``L + budget`` tokens.
        truncate: the ``truncate`` rule above (default False: ``drop``, for callers of the earlier signature).
        keep_last: with ``truncate``, keep the item's last token last when the tail is cut.

    Returns:
        ``(source, target, replaced, changed, unchanged, cut)``: the new int64 arrays (the inputs when nothing is
        replaced), the number of replaced words, of input tokens now holding a translation (the tokens of replaced
        words whose pieces changed), of replaced words whose pieces did not change (an identical candidate: a
        no-op draw), and of tokens cut from the end (``truncate`` only; the changed tokens count those left).
    """
    if numba is None:
        return replace_words_numpy(source, target, original, pad_idx, starts, lengths, chosen, entry, u, multiview,
                                   table, budget, truncate, keep_last)
    ns, nt, n, changed, unchanged, cut = _replace(
        source, target, original, pad_idx, starts, lengths, chosen, entry, u, multiview, table.cand_cdf,
        table.cand_offsets, table.cand_tok_offsets, table.cand_tokens, budget, truncate, keep_last)
    if n == 0:
        return source, target, 0, 0, 0, 0
    return ns, nt, n, changed, unchanged, cut
