"""WEAM items: one side of an aligned sentence pair, masked, with multilingual and cross-lingual targets."""
from functools import lru_cache

import numpy as np
import torch

from csfair.pretraining.masking import MaskConfig, fairseq_item_seed, mask_tokens

from .parallel_pretraining import PairItemsDataset

EXCHANGE_STREAM = 0x3EA3


class WeamDataset(PairItemsDataset):
    """Word-Exchange Aligning Model data (Bilingual Alignment Pre-Training; csfair issue #6).

    Item ``k < N`` is the source side of pair ``k``, item ``N + k`` its target side. Per
    (seed, epoch, index):

    1. word exchange (optional): each one-to-one aligned word is swapped, with probability
       ``exchange_prob``, for its aligned word's pieces (drawn from a separate random stream);
    2. ``<s>`` is prepended and the item is masked exactly as fairseq's ``MaskTokensDataset``;
    3. targets: ``target`` = the original token at every masked position (multilingual
       prediction); ``xl_target`` = at the masked first piece of a word that has an aligned word in
       the other sentence, that word's first piece (cross-lingual prediction; for an exchanged word,
       the word it replaced); padding elsewhere.

    Args:
        src, tgt: binarised sides (items end with ``</s>``).
        offsets, links: CSR word links (first-piece indices, see ``csfair.baselines.parallel_data``).
        vocab: dictionary (with ``<mask>``); pad_idx, mask_idx: its ids.
        seed: run seed. mask_cfg: masking options. weights: random-token distribution.
        word_start: bool ``[V]`` word-start symbols. exchange_prob: word-exchange probability.
    """

    def __init__(self, src, tgt, offsets, links, vocab, pad_idx, mask_idx, seed, mask_cfg: MaskConfig, weights,
                 word_start: np.ndarray, exchange_prob: float = 0.0):
        super().__init__()
        if len(src) != len(tgt) or len(offsets) != len(src) + 1:
            raise ValueError(f"WEAM data not aligned: {len(src)} source, {len(tgt)} target, {len(offsets) - 1} link rows")
        self.src, self.tgt, self.offsets, self.links = src, tgt, offsets, links
        self.vocab, self.pad, self.mask_idx, self.bos = vocab, pad_idx, mask_idx, vocab.bos()
        self.seed, self.mask_cfg, self.weights = seed, mask_cfg, weights
        self.word_start, self.exchange_prob = word_start, exchange_prob
        self.n = len(src)
        self._sizes = np.concatenate([src.sizes, tgt.sizes]).astype(np.int64) + 1

    def __len__(self):
        return 2 * self.n

    def _span_end(self, tokens, start):
        end = start + 1
        while end < len(tokens) and not self.word_start[tokens[end]]:
            end += 1
        return end

    def links_of(self, index):
        """``(p_self, q_other)`` first-piece links of an item's side (int arrays)."""
        k = index % self.n
        lk = np.asarray(self.links[self.offsets[k]:self.offsets[k + 1]])
        return lk if index < self.n else lk[:, ::-1]

    def __getitem__(self, index):
        return self._item(self.seed, self.epoch, index)

    @lru_cache(maxsize=16)
    def _item(self, seed, epoch, index):
        k, other_side = index % self.n, index < self.n
        own = (self.src if index < self.n else self.tgt)[k].numpy().astype(np.int64)
        other = (self.tgt if other_side else self.src)[k].numpy().astype(np.int64)
        lk = self.links_of(index)
        p_count = np.bincount(lk[:, 0], minlength=len(own)) if len(lk) else np.zeros(len(own), int)
        q_count = np.bincount(lk[:, 1], minlength=len(other)) if len(lk) else np.zeros(len(other), int)
        xl_of = {}
        for p, q in lk:  # first link of each own word
            xl_of.setdefault(int(p), int(other[q]))
        pieces, new_xl = [], {}
        swap = set()
        if self.exchange_prob > 0 and len(lk):
            rng = np.random.default_rng([seed, epoch, index, EXCHANGE_STREAM])
            draws = rng.random(len(lk))
            swap = {(int(p), int(q)) for (p, q), u in zip(lk, draws)
                    if u < self.exchange_prob and p_count[p] == 1 and q_count[q] == 1}
        swap_at = {p: q for p, q in swap}
        i = 0
        while i < len(own):
            if i in swap_at:
                q = swap_at[i]
                end = self._span_end(own, i)
                new_xl[len(pieces) + 1] = int(own[i])  # the exchanged word predicts the word it replaced
                pieces.extend(other[q:self._span_end(other, q)].tolist())
                i = end
            else:
                if i in xl_of:
                    new_xl[len(pieces) + 1] = xl_of[i]
                pieces.append(int(own[i]))
                i += 1
        item = np.array([self.bos] + pieces, dtype=np.int64)
        rng = np.random.default_rng(fairseq_item_seed(seed, epoch, index))
        source, target = mask_tokens(item, rng, self.mask_cfg, self.mask_idx, self.pad, self.weights)
        xl = np.full(len(item), self.pad, dtype=np.int64)
        for pos, tok in new_xl.items():
            if pos < len(item) and target[pos] != self.pad:
                xl[pos] = tok
        return {"source": torch.from_numpy(source), "target": torch.from_numpy(target),
                "xl_target": torch.from_numpy(xl), "exchanged": len(swap), "id": index}

    def collater(self, samples):
        from fairseq.data import data_utils

        if not samples:
            return {}
        pad = self.pad
        src = data_utils.collate_tokens([s["source"] for s in samples], pad)
        return {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": sum(len(s["source"]) for s in samples),
            "net_input": {"src_tokens": src, "src_lengths": torch.LongTensor([len(s["source"]) for s in samples])},
            "target": data_utils.collate_tokens([s["target"] for s in samples], pad),
            "xl_target": data_utils.collate_tokens([s["xl_target"] for s in samples], pad),
            "exchanged": sum(s["exchanged"] for s in samples),
        }

