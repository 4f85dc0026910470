"""Per-item generators, bit-identical to ``np.random.default_rng(entropy)``, at a third of the cost.

Masks and code-switching draws are keyed on (seed, epoch, index) (csfair issue 2; fairseq's
``MaskTokensDataset`` seeds ``np.random.default_rng(int(hash((seed, epoch, index)) % 1e6))``), so
every item builds fresh generators. ``np.random.default_rng`` spends most of its ~12 µs in
``SeedSequence.generate_state`` (NumPy arrays for eight 32-bit words). :class:`KeyedGenerator`
computes the same ``SeedSequence`` pool and PCG64 seeding with Python integers and loads the state
into one reused ``PCG64``: the draws are identical (tests compare them with NumPy's for random keys),
for about 4 µs (csfair issue 13, part 4).

Algorithms reproduced (NumPy >= 1.17, ``numpy/random/bit_generator.pyx`` and ``_pcg64.pyx``):
``SeedSequence`` (entropy pool of 4 uint32 words, ``hashmix``/``mix``, ``generate_state``) and
``pcg64_set_seed`` (PCG's ``pcg_setseq_128_srandom_r``).
"""
import logging
from typing import Sequence, Union

import numpy as np

try:  # numba is a dependency of umap-learn, pinned in requirements/runtime.txt
    import numba

    logging.getLogger("numba").setLevel(logging.WARNING)
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None

_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_M128 = (1 << 128) - 1
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645  # PCG_DEFAULT_MULTIPLIER_128


def _words(entropy: Union[int, Sequence[int]]) -> list:
    """NumPy's ``_coerce_to_uint32_array`` for a non-negative int or a sequence of them."""
    if isinstance(entropy, (int, np.integer)):
        entropy = (int(entropy),)
    out = []
    for v in entropy:
        v = int(v)
        if v < 0:
            raise ValueError(f"generator keys must be non-negative, got {v}")
        if v == 0:
            out.append(0)
        while v:
            out.append(v & _M32)
            v >>= 32
    return out


def _hash_constants(init: int, mult: int, n: int) -> list:
    """The hash constants NumPy's ``hashmix`` (or ``generate_state``) uses at its k-th call: they do
    not depend on the data (``hash_const`` starts at ``init`` and is multiplied by ``mult`` per call)."""
    out, h = [], init
    for _ in range(n):
        out.append((h, (h * mult) & _M32))
        h = (h * mult) & _M32
    return out


_MAX_WORDS = 16
_HA = _hash_constants(_INIT_A, _MULT_A, 4 + 12 + 4 * (_MAX_WORDS - 4))
_HB = _hash_constants(_INIT_B, _MULT_B, 8)


def seed_sequence_state(entropy: Union[int, Sequence[int]]) -> list:
    """``SeedSequence(entropy).generate_state(8, np.uint32)`` as Python ints (pool size 4).

    Raises:
        ValueError: a negative key.
    """
    ent = _words(entropy)
    ha = _HA if len(ent) <= _MAX_WORDS else _hash_constants(_INIT_A, _MULT_A, 4 + 12 + 4 * (len(ent) - 4))
    pool = []
    for i in range(4):  # hashmix(entropy[i] or 0)
        x, m = ha[i]
        v = (((ent[i] if i < len(ent) else 0) ^ x) * m) & _M32
        pool.append(v ^ (v >> 16))
    k = 4
    for s in range(4):
        for d in range(4):
            if s != d:
                x, m = ha[k]
                k += 1
                v = ((pool[s] ^ x) * m) & _M32
                r = (_MIX_L * pool[d] - _MIX_R * (v ^ (v >> 16))) & _M32
                pool[d] = r ^ (r >> 16)
    for s in range(4, len(ent)):
        for d in range(4):
            x, m = ha[k]
            k += 1
            v = ((ent[s] ^ x) * m) & _M32
            r = (_MIX_L * pool[d] - _MIX_R * (v ^ (v >> 16))) & _M32
            pool[d] = r ^ (r >> 16)
    state = []
    for i in range(8):
        x, m = _HB[i]
        v = ((pool[i & 3] ^ x) * m) & _M32
        state.append(v ^ (v >> 16))
    return state


if numba is not None:
    _HA_ARR = np.array(_HA, dtype=np.uint64)
    _HB_ARR = np.array(_HB, dtype=np.uint64)

    @numba.njit(cache=True, nogil=True)
    def _seed_words_nb(ent, ha, hb):  # pragma: no cover - compiled; the same steps as seed_sequence_state
        m32 = np.uint64(0xFFFFFFFF)
        s16 = np.uint64(16)
        ml, mr = np.uint64(_MIX_L), np.uint64(_MIX_R)
        pool = np.zeros(4, np.uint64)
        n = ent.shape[0]
        for i in range(4):
            e = ent[i] if i < n else np.uint64(0)
            v = ((e ^ ha[i, 0]) * ha[i, 1]) & m32
            pool[i] = v ^ (v >> s16)
        k = 4
        for src in range(4):
            for d in range(4):
                if src != d:
                    v = ((pool[src] ^ ha[k, 0]) * ha[k, 1]) & m32
                    r = (ml * pool[d] - mr * (v ^ (v >> s16))) & m32
                    pool[d] = r ^ (r >> s16)
                    k += 1
        for src in range(4, n):
            for d in range(4):
                v = ((ent[src] ^ ha[k, 0]) * ha[k, 1]) & m32
                r = (ml * pool[d] - mr * (v ^ (v >> s16))) & m32
                pool[d] = r ^ (r >> s16)
                k += 1
        out = np.empty(8, np.uint64)
        for i in range(8):
            v = ((pool[i & 3] ^ hb[i, 0]) * hb[i, 1]) & m32
            out[i] = v ^ (v >> s16)
        return out


def pcg64_state(entropy: Union[int, Sequence[int]]) -> tuple:
    """``(state, inc)`` of ``np.random.PCG64(entropy)`` as 128-bit Python ints.

    ``generate_state(4, uint64)`` views the 8 words little-endian (``u64[k] = w[2k] | w[2k+1] << 32``);
    PCG64 seeds with ``initstate = u64[0] << 64 | u64[1]``, ``initseq = u64[2] << 64 | u64[3]``:
    ``inc = initseq << 1 | 1``, ``state = ((0 * M + inc) + initstate) * M + inc`` (mod 2**128).
    """
    if numba is not None:
        ent = _words(entropy)
        if len(ent) <= _MAX_WORDS:
            return _pcg_from_words(_seed_words_nb(np.array(ent, dtype=np.uint64), _HA_ARR, _HB_ARR).tolist())
    return _pcg_from_words(seed_sequence_state(entropy))


def seed_sequence_states_1word(seeds: np.ndarray) -> np.ndarray:
    """:func:`seed_sequence_state` of many one-word keys at once (vectorised over keys).

    Args:
        seeds: int ``[n]`` keys in ``[0, 2**32)``.

    Returns:
        uint32 ``[n, 8]``: row ``i`` is ``SeedSequence(int(seeds[i])).generate_state(8, np.uint32)``.
    """
    e = np.asarray(seeds, dtype=np.uint32)
    ha = [(np.uint32(x), np.uint32(m)) for x, m in _HA]

    def hm(v, k):
        v = (v ^ ha[k][0]) * ha[k][1]
        return v ^ (v >> np.uint32(16))

    zero = np.zeros_like(e)
    pool = [hm(e, 0), hm(zero, 1), hm(zero, 2), hm(zero, 3)]
    k = 4
    for src in range(4):
        for d in range(4):
            if src != d:
                r = np.uint32(_MIX_L) * pool[d] - np.uint32(_MIX_R) * hm(pool[src], k)
                pool[d] = r ^ (r >> np.uint32(16))
                k += 1
    out = np.empty((len(e), 8), dtype=np.uint32)
    for i in range(8):
        v = (pool[i & 3] ^ np.uint32(_HB[i][0])) * np.uint32(_HB[i][1])
        out[:, i] = v ^ (v >> np.uint32(16))
    return out


def _pcg_from_words(w) -> tuple:
    u0, u1, u2, u3 = w[0] | (w[1] << 32), w[2] | (w[3] << 32), w[4] | (w[5] << 32), w[6] | (w[7] << 32)
    inc = ((((u2 << 64) | u3) << 1) | 1) & _M128
    state = (inc + ((u0 << 64) | u1)) & _M128
    return (state * _PCG_MULT + inc) & _M128, inc


_TABLES = {}


def one_word_table(n: int) -> np.ndarray:
    """uint32 ``[n, 8]`` seed-sequence states of the keys ``0 .. n-1``, built once per process
    (vectorised, ~0.3 s for fairseq's 10**6 mask seeds; 32 MB shared copy-on-write by forked workers)."""
    if n not in _TABLES:
        _TABLES[n] = seed_sequence_states_1word(np.arange(n, dtype=np.uint32))
        _TABLES[n].setflags(write=False)
    return _TABLES[n]


class KeyedGenerator:
    """A reusable ``np.random.Generator`` re-seeded per key, equal to ``np.random.default_rng(key)``.

    ``gen = KeyedGenerator(); rng = gen(key)`` returns the *same* Generator object each call, with its
    PCG64 state set as ``default_rng(key)`` would set it, so the draws of ``rng`` equal those of
    ``np.random.default_rng(key)``. The previous key's stream ends when the next key is set: keep one
    instance per concurrently used stream (e.g. one for masks, one for code-switching).

    Args:
        table_keys: precompute the states of the int keys ``0 .. table_keys-1`` (:func:`one_word_table`),
            so that such keys cost a table row instead of the seed-sequence hashing (0: no table).

    Keys: a non-negative int or a sequence of non-negative ints (as accepted by ``SeedSequence``).

    Raises:
        ValueError: a negative key.
    """

    def __init__(self, table_keys: int = 0):
        self.bit_generator = np.random.PCG64(0)
        self.generator = np.random.Generator(self.bit_generator)
        self.table = one_word_table(table_keys) if table_keys > 0 else None

    def __call__(self, key: Union[int, Sequence[int]]) -> np.random.Generator:
        t = self.table
        if t is not None and isinstance(key, int) and 0 <= key < len(t):
            state, inc = _pcg_from_words(t[key].tolist())
        else:
            state, inc = pcg64_state(key)
        self.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                                    "has_uint32": 0, "uinteger": 0}
        return self.generator
