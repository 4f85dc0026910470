"""BERT/RoBERTa masking, drawn exactly as fairseq 0.12's ``MaskTokensDataset``.

The code-switching wrapper must give *exactly* the batches of fairseq's stock ``masked_lm`` task
when code-switching is off, so the masks are drawn with the same generator, seed and sequence of
calls as ``fairseq/data/mask_tokens_dataset.py`` (``__getitem_cached__``):

* generator ``np.random.default_rng(int(hash((seed, epoch, index)) % 1e6))`` (Python's hash of a
  tuple of ints is deterministic: it does not depend on ``PYTHONHASHSEED``);
* ``num_mask = int(mask_prob * sz / mask_multiple_length + rng.random())`` (probabilistic
  rounding), ``rng.choice(sz, num_mask, replace=False)``, optional span lengths
  ``rng.normal(...)``;
* of the masked positions, ``random_token_prob + leave_unmasked_prob`` are drawn with
  ``rng.random(sz)`` and split by a second ``rng.random(sz)``: 80% ``<mask>``, 10% unchanged,
  10% a random token drawn by ``rng.choice(V, k, p=weights)``.

fairseq computes source and target in two dataset objects that repeat the same draws; here one
call returns both (the target needs only the draws before the split, so they coincide). The
tests compare both against fairseq item by item.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np


def fairseq_item_seed(seed: int, epoch: int, index: int) -> int:
    """The per-item seed of fairseq's ``MaskTokensDataset``: ``int(hash((seed, epoch, index)) % 1e6)``."""
    return int(hash((seed, epoch, index)) % 1e6)


@dataclass
class MaskConfig:
    """fairseq's masking options (defaults of ``--task masked_lm``).

    Attributes:
        mask_prob: fraction of positions selected for prediction (BERT: 0.15).
        leave_unmasked_prob: of those, fraction left unchanged (0.1).
        random_token_prob: of those, fraction replaced by a random token (0.1).
        mask_multiple_length: repeat each mask index over this many positions.
        mask_stdev: standard deviation of the span length (0: fixed).
    """

    mask_prob: float = 0.15
    leave_unmasked_prob: float = 0.1
    random_token_prob: float = 0.1
    mask_multiple_length: int = 1
    mask_stdev: float = 0.0

    def __post_init__(self):
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if not (0.0 <= self.random_token_prob <= 1.0 and 0.0 <= self.leave_unmasked_prob <= 1.0):
            raise ValueError("random_token_prob and leave_unmasked_prob must be in [0, 1]")
        if self.random_token_prob + self.leave_unmasked_prob > 1.0:
            raise ValueError("random_token_prob + leave_unmasked_prob must be <= 1")
        if self.mask_multiple_length < 1 or self.mask_stdev < 0.0:
            raise ValueError("mask_multiple_length must be >= 1 and mask_stdev >= 0")


def random_token_weights(vocab_size: int, nspecial: int, counts: Optional[Sequence[int]] = None) -> np.ndarray:
    """Sampling weights of random replacement tokens, as fairseq computes them.

    Args:
        vocab_size: dictionary size (including ``<mask>``).
        nspecial: number of leading special symbols (weight 0).
        counts: per-symbol counts for ``--freq-weighted-replacement`` (None: uniform).

    Returns:
        float64 ``[vocab_size]`` summing to 1.
    """
    weights = np.array(counts, dtype=np.float64) if counts is not None else np.ones(vocab_size)
    weights[:nspecial] = 0
    return weights / weights.sum()


def random_token_cdf(weights: np.ndarray) -> np.ndarray:
    """The cumulative distribution ``Generator.choice(V, k, p=weights)`` builds on every call.

    NumPy's ``choice`` (replace=True, with ``p``) validates ``p`` (several passes over all ``V``
    weights), then draws ``idx = cdf.searchsorted(self.random(k), side="right")`` with
    ``cdf = p.cumsum(); cdf /= cdf[-1]``. Computing ``cdf`` once per dataset and drawing with
    :func:`draw_random_tokens` gives identical tokens and random streams at ~1 µs instead of ~90 µs
    (an 8k vocabulary) per item (csfair issue 13, part 4).

    Args:
        weights: float64 ``[V]`` from :func:`random_token_weights`.

    Returns:
        float64 ``[V]``, non-decreasing, last value exactly 1.
    """
    cdf = np.asarray(weights, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf


def draw_random_tokens(rng: np.random.Generator, cdf: np.ndarray, k: int) -> np.ndarray:
    """``rng.choice(len(cdf), k, p=weights)``, bit for bit, from :func:`random_token_cdf` (int64 ``[k]``)."""
    return np.asarray(cdf.searchsorted(rng.random(k), side="right"), dtype=np.int64)


def mask_tokens(
    item: np.ndarray,
    rng: np.random.Generator,
    cfg: MaskConfig,
    mask_idx: int,
    pad_idx: int,
    weights: Optional[np.ndarray],
    word_begins: Optional[np.ndarray] = None,
    weights_cdf: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Mask one item; returns ``(source, target)`` as fairseq's two datasets would.

    Args:
        item: int64 ``[L]`` token ids (must not contain ``mask_idx``).
        rng: generator seeded with :func:`fairseq_item_seed`.
        cfg: masking options.
        mask_idx: id of ``<mask>``.
        pad_idx: id of ``<pad>`` (the target's filler).
        weights: random-token distribution (:func:`random_token_weights`); None when
            ``random_token_prob == 0``.
        word_begins: bool ``[V]`` "token begins a word" for whole-word masking (None: off).
        weights_cdf: ``random_token_cdf(weights)``, precomputed (None: computed by ``rng.choice``);
            the draws are the same either way.

    Returns:
        source int64 ``[L]`` (masked input), target int64 ``[L]`` (original token at selected
        positions, ``pad_idx`` elsewhere).

    Raises:
        ValueError: the item already contains ``mask_idx``, or random tokens are asked for without weights.
    """
    if mask_idx in item:
        raise ValueError(f"Dataset contains mask_idx (={mask_idx}), this is not expected!")
    if cfg.random_token_prob > 0 and weights is None:
        raise ValueError("random_token_prob > 0 needs the random-token weights (random_token_weights())")
    sz = len(item)
    if word_begins is not None:
        wb = word_begins[item]
        word_begins_idx = np.flatnonzero(wb)
        sz = len(word_begins_idx)
        word_lens = np.diff(np.append(word_begins_idx, len(item)))

    mask = np.zeros(sz, dtype=bool)
    num_mask = int(cfg.mask_prob * sz / float(cfg.mask_multiple_length) + rng.random())
    mask_idc = rng.choice(sz, num_mask, replace=False)
    if cfg.mask_stdev > 0.0:
        lengths = rng.normal(cfg.mask_multiple_length, cfg.mask_stdev, size=num_mask)
        lengths = [max(0, int(round(x))) for x in lengths]
        mask_idc = np.asarray(
            [mask_idc[j] + offset for j in range(len(mask_idc)) for offset in range(lengths[j])], dtype=np.int64
        )
    elif cfg.mask_multiple_length > 1:
        mask_idc = np.concatenate([mask_idc + i for i in range(cfg.mask_multiple_length)])
    if cfg.mask_multiple_length > 1 or cfg.mask_stdev > 0.0:  # (single positions are all < sz)
        mask_idc = mask_idc[mask_idc < len(mask)]
    mask[mask_idc] = True

    target_mask = np.repeat(mask, word_lens) if word_begins is not None else mask
    target = np.empty(len(target_mask), dtype=item.dtype)
    target.fill(pad_idx)
    target[target_mask] = item[target_mask]

    rand_or_unmask_prob = cfg.random_token_prob + cfg.leave_unmasked_prob
    unmask = rand_mask = None
    if rand_or_unmask_prob > 0.0:
        rand_or_unmask = mask & (rng.random(sz) < rand_or_unmask_prob)
        if cfg.random_token_prob == 0.0:
            unmask = rand_or_unmask
        elif cfg.leave_unmasked_prob == 0.0:
            rand_mask = rand_or_unmask
        else:
            unmask_prob = cfg.leave_unmasked_prob / rand_or_unmask_prob
            decision = rng.random(sz) < unmask_prob
            unmask = rand_or_unmask & decision
            rand_mask = rand_or_unmask & (~decision)
    if unmask is not None:
        mask = mask ^ unmask
    if word_begins is not None:
        mask = np.repeat(mask, word_lens)

    source = np.copy(item)
    source[mask] = mask_idx
    if rand_mask is not None:
        num_rand = int(np.count_nonzero(rand_mask))
        if num_rand > 0:
            if word_begins is not None:
                rand_mask = np.repeat(rand_mask, word_lens)
                num_rand = int(np.count_nonzero(rand_mask))
            if weights_cdf is not None:
                source[rand_mask] = draw_random_tokens(rng, weights_cdf, num_rand)
            else:
                source[rand_mask] = rng.choice(len(weights), num_rand, p=weights)
    return source, target
