"""fairseq dataset wrapper: mask, then code-switch, each item; source and target together.

The method lives in :mod:`csfair.pretraining.masking` and :mod:`csfair.pretraining.sampler`; this file only adapts
it to fairseq's dataset protocol (``set_epoch``, sizes, collaters).
"""
import dataclasses
from bisect import bisect_right
from functools import lru_cache
from typing import List, Optional, Sequence

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, ConcatDataset, Dictionary, PrependTokenDataset, TokenBlockDataset
from fairseq.data.indexed_dataset import MMapIndexedDataset

from csfair.pretraining.keyed_rng import KeyedGenerator
from csfair.pretraining.sampler import NUM_STATS, STAT_TOKENS, CodeSwitchConfig, code_switch
from csfair.pretraining.masking import (
    MaskConfig,
    fairseq_item_seed,
    mask_tokens,
    random_token_cdf,
    random_token_weights,
)
from csfair.pretraining.substitution_table import SubstitutionTable

#: Extra entropy word that separates the code-switching random stream from everything else.
CS_STREAM = 0xC0DE5


def word_start_mask(dictionary: Dictionary) -> np.ndarray:
    """bool ``[V]``: the symbol begins a word, as fairseq's whole-word masking decides for
    sentencepiece (``get_whole_word_mask`` + ``SentencepieceBPE.is_beginning_of_word``):
    special symbols, ``madeupword*`` and pieces starting with ``▁``."""
    out = np.zeros(len(dictionary), dtype=bool)
    for i, sym in enumerate(dictionary.symbols):
        out[i] = (
            i < dictionary.nspecial
            or sym.startswith("madeupword")
            or sym in ("<unk>", "<s>", "</s>", "<pad>")
            or sym.startswith("\u2581")
        )
    return out


def special_mask(dictionary: Dictionary) -> np.ndarray:
    """bool ``[V]``: symbols never substituted (fairseq specials, ``<mask>``, ``madeupword*``)."""
    out = np.zeros(len(dictionary), dtype=bool)
    out[: dictionary.nspecial] = True
    for i, sym in enumerate(dictionary.symbols):
        if sym == "<mask>" or sym.startswith("madeupword"):
            out[i] = True
    return out


class BlockReader:
    """Reads ``<s>`` + token block straight from fairseq's memory-mapped ``.bin`` file.

    The stock chain ``PrependTokenDataset(TokenBlockDataset(MMapIndexedDataset))`` builds each block
    with a ``torch.cat`` of its sentences, then another ``torch.cat`` for ``<s>`` (~30 µs per item).
    ``fairseq-preprocess`` writes the sentences of a split back to back, so a block is one contiguous
    run of the file: this reader returns the same int64 tokens with one ``np.frombuffer``, from the
    offsets fairseq's ``TokenBlockDataset`` already holds (no extra per-block memory). It is used only
    when the chain has exactly that shape and the file is contiguous (:meth:`of` returns None
    otherwise, and the wrapper keeps fairseq's own ``__getitem__``).
    """

    def __init__(self, segments, bos: int):
        # [((block_to_dataset_index, slice_indices, pointers, MMapIndexedDataset), global offset)]
        self.segments = segments
        self.starts = [off for _, off in segments]
        self.bos = bos

    @staticmethod
    def _segment(ds):
        if not isinstance(ds, PrependTokenDataset) or ds.token is None:
            return None
        tb = ds.dataset
        if type(tb) is not TokenBlockDataset or tb.include_targets or type(tb.dataset) is not MMapIndexedDataset:
            return None
        mm = tb.dataset
        ptr, sizes = np.asarray(mm._index._pointers), np.asarray(mm._index.sizes)
        itemsize = np.dtype(mm._index.dtype).itemsize
        if len(ptr) > 1 and not np.array_equal(ptr[1:], ptr[:-1] + sizes[:-1].astype(np.int64) * itemsize):
            return None
        # plain ndarray views: indexing fairseq's np.memmap-backed arrays costs ~4 µs per lookup
        return (np.asarray(tb.block_to_dataset_index), np.asarray(tb.slice_indices), ptr, mm), mm, int(ds.token)

    @classmethod
    def of(cls, dataset) -> Optional["BlockReader"]:
        """A reader for ``dataset`` (one such chain, or a plain ``ConcatDataset`` of them), else None."""
        parts = [dataset]
        if type(dataset) is ConcatDataset:
            if any(r != 1 for r in dataset.sample_ratios):
                return None
            parts = list(dataset.datasets)
        segs, bos, off = [], None, 0
        for d in parts:
            got = cls._segment(d)
            if got is None or (bos is not None and got[2] != bos):
                return None
            bos = got[2]
            segs.append((got[0], off))
            off += len(d)
        return cls(segs, bos) if segs else None

    def __getitem__(self, index: int) -> np.ndarray:
        """int64 ``[1 + n]``: ``<s>`` then the block's tokens (equal to the stock chain's item)."""
        k = bisect_right(self.starts, index) - 1 if len(self.starts) > 1 else 0
        (b2d, slices, ptr, mm), start = self.segments[k]
        i = index - start
        ds_idx, offset, _ = b2d[i].tolist()
        s, e = slices[i].tolist()
        dtype = mm._index.dtype
        toks = np.frombuffer(mm._bin_buffer, dtype=dtype, count=e - s,
                             offset=int(ptr[ds_idx]) + offset * np.dtype(dtype).itemsize)
        out = np.empty(e - s + 1, dtype=np.int64)
        out[0] = self.bos
        out[1:] = toks
        return out


class CodeSwitchMaskTokensDataset(BaseWrapperDataset):
    """Masks each item exactly as fairseq's ``MaskTokensDataset``, then code-switches it.

    Items are dicts ``{"source", "target", "cs_stats", "draw_epoch"}`` computed once per
    (seed, epoch, index) and cached; :meth:`field` gives the per-key views that fairseq's
    ``NestedDictionaryDataset`` expects. The masking draws use fairseq's generator
    (:func:`csfair.pretraining.masking.fairseq_item_seed`); the code-switching draws use a separate
    generator seeded with ``(seed, epoch, index, CS_STREAM)``, so they never disturb the masks
    and do not depend on the worker, the process or the number of GPUs.

    Args:
        dataset: token blocks with ``<s>`` prepended (fairseq's ``PrependTokenDataset``).
        vocab: the dictionary (with ``<mask>`` added).
        pad_idx: padding id.
        mask_idx: ``<mask>`` id.
        seed: the run's seed.
        mask_cfg: masking options.
        freq_weighted_replacement: random tokens drawn by frequency instead of uniformly.
        mask_whole_words: mask whole words (word starts from the dictionary, sentencepiece style).
        cs_cfg: code-switching options (``mode="none"``: masking only).
        tables: one substitution table (or None) per language segment of ``dataset``.
        segment_offsets: int ``[k + 1]`` index ranges of the language segments of ``dataset``.
    """

    def __init__(
        self,
        dataset,
        vocab: Dictionary,
        pad_idx: int,
        mask_idx: int,
        seed: int,
        mask_cfg: MaskConfig,
        freq_weighted_replacement: bool = False,
        mask_whole_words: bool = False,
        cs_cfg: Optional[CodeSwitchConfig] = None,
        tables: Optional[Sequence[Optional[SubstitutionTable]]] = None,
        segment_offsets: Optional[Sequence[int]] = None,
    ):
        super().__init__(dataset)
        self.vocab = vocab
        self.pad_idx = pad_idx
        self.mask_idx = mask_idx
        self.seed = seed
        self.mask_cfg = mask_cfg
        self.cs_cfg = cs_cfg or CodeSwitchConfig(mode="none")
        self.tables: List[Optional[SubstitutionTable]] = list(tables) if tables else [None]
        self.segment_offsets = np.asarray(segment_offsets if segment_offsets is not None else [0, len(dataset)])
        if len(self.segment_offsets) != len(self.tables) + 1:
            raise ValueError("one substitution table (or None) per dataset segment is required")
        self.weights = self.weights_cdf = None
        if mask_cfg.random_token_prob > 0.0:
            counts = vocab.count if freq_weighted_replacement else None
            self.weights = random_token_weights(len(vocab), vocab.nspecial, counts)
            self.weights_cdf = random_token_cdf(self.weights)
        # per-item generators, equal to np.random.default_rng(key) but reseeded in place (keyed_rng);
        # the mask keys are fairseq's int(hash(...) % 1e6), whose states are tabulated once per process
        self._mask_rng = KeyedGenerator(table_keys=1_000_000)
        self._cs_rng = KeyedGenerator()
        self._reader = BlockReader.of(dataset)
        self._segment_starts = self.segment_offsets.tolist()
        # read for every item; the mode and the tables never change after construction
        self._code_switching = self.cs_cfg.mode != "none" and any(t is not None for t in self.tables)
        self.word_begins = word_start_mask(vocab) if mask_whole_words else None
        self.word_start = word_start_mask(vocab)
        self.special = special_mask(vocab)
        self.epoch = 0

    @property
    def code_switching(self) -> bool:
        """True when this dataset substitutes words (mode not none and a table is present)."""
        return self._code_switching

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True  # only the noise changes; batches are built on the unsubstituted sizes

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch

    def set_max_len(self, max_len: int) -> None:
        """Bound on item length after substitution (min of tokens-per-sample and the model's)."""
        self.cs_cfg = dataclasses.replace(self.cs_cfg, max_len=max_len)

    def __getitem__(self, index: int):
        return self._item(self.seed, self.epoch, index)

    @lru_cache(maxsize=16)
    def _item(self, seed: int, epoch: int, index: int):
        if self._reader is not None:
            original = self._reader[index]
        else:
            item = self.dataset[index]
            original = item.numpy() if torch.is_tensor(item) else np.asarray(item)
            original = original.astype(np.int64, copy=False)
        rng = self._mask_rng(fairseq_item_seed(seed, epoch, index))
        source, target = mask_tokens(
            original, rng, self.mask_cfg, self.mask_idx, self.pad_idx, self.weights, self.word_begins,
            weights_cdf=self.weights_cdf,
        )
        stats = np.zeros(NUM_STATS + 1, dtype=np.int64)
        if self.code_switching:
            seg = bisect_right(self._segment_starts, index) - 1
            table = self.tables[seg]
            stats[STAT_TOKENS] = len(source)
            if table is not None:
                cs_rng = self._cs_rng([seed, epoch, index, CS_STREAM])
                source, target, stats[:NUM_STATS] = code_switch(
                    source, target, original, self.pad_idx, self.word_start, self.special, table, cs_rng, self.cs_cfg
                )
            stats[NUM_STATS] = seg  # which language segment (and so which table direction)
        return {
            "source": torch.from_numpy(source),
            "target": torch.from_numpy(target),
            "cs_stats": torch.from_numpy(stats),
            # checked by the task in every training step (user_dir/tasks/fresh_epoch_draws.py)
            "draw_epoch": epoch,
        }

    def field(self, key: str) -> "CodeSwitchField":
        """A dataset view of one key of the items (``source``, ``target``, ``cs_stats`` or ``draw_epoch``)."""
        return CodeSwitchField(self, key)


class CodeSwitchField(BaseWrapperDataset):
    """One key of :class:`CodeSwitchMaskTokensDataset` items, as its own dataset.

    ``sizes`` are the unsubstituted lengths (what fairseq batches on); the per-item stats are
    collated into an int64 ``[batch, NUM_STATS + 1]`` tensor (:mod:`csfair.pretraining.sampler`'s ``STAT_*``
    columns, then the item's language segment), the draw epochs into int64 ``[batch]``.
    """

    def __init__(self, parent: CodeSwitchMaskTokensDataset, key: str):
        super().__init__(parent)
        self.key = key

    def __getitem__(self, index):
        return self.dataset[index][self.key]

    def collater(self, samples):
        if self.key == "cs_stats":
            return torch.stack(samples) if samples else torch.zeros(0, NUM_STATS + 1, dtype=torch.long)
        if self.key == "draw_epoch":
            return torch.tensor(samples, dtype=torch.long)
        return super().collater(samples)
