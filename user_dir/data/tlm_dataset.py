"""TLM items (XLM's translation language modelling): a sentence pair, concatenated and masked."""
from functools import lru_cache

import numpy as np
import torch
from fairseq.data import data_utils

from csfair.pretraining.masking import MaskConfig, fairseq_item_seed, mask_tokens

from .parallel_pretraining import PairItemsDataset


class TlmDataset(PairItemsDataset):
    """``<s> source </s> </s> target </s>`` masked on both sides; positions restart at the second part.

    Lample & Conneau (2019), Section 3.3: "we also reset the positions of target sentences". RoBERTa
    has no language embeddings here; the model receives explicit ``positions`` (``tlm_roberta``).
    Position ids follow fairseq's learned positions: ``padding_idx + 1 + offset`` in each part.

    Args:
        src, tgt: binarised sides (items end with ``</s>``).
        vocab: dictionary (with ``<mask>``); pad_idx, mask_idx: its ids.
        seed, mask_cfg, weights: masking (as fairseq's MaskTokensDataset).
        max_len: pairs longer than this are dropped by fairseq's size filter (``sizes``).
    """

    def __init__(self, src, tgt, vocab, pad_idx, mask_idx, seed, mask_cfg: MaskConfig, weights):
        super().__init__()
        if len(src) != len(tgt):
            raise ValueError(f"TLM sides differ: {len(src)} vs {len(tgt)} sentences")
        self.src, self.tgt, self.vocab = src, tgt, vocab
        self.pad, self.mask_idx, self.bos, self.eos = pad_idx, mask_idx, vocab.bos(), vocab.eos()
        self.seed, self.mask_cfg, self.weights = seed, mask_cfg, weights
        self._sizes = (src.sizes + tgt.sizes + 2).astype(np.int64)

    def __len__(self):
        return len(self.src)

    def positions(self, len_first: int, len_second: int) -> np.ndarray:
        """Position ids: ``pad+1 ...`` for ``<s> a </s>``, again ``pad+1 ...`` for ``</s> b </s>``."""
        return np.concatenate([np.arange(len_first), np.arange(len_second)]) + self.pad + 1

    def __getitem__(self, index):
        return self._item(self.seed, self.epoch, index)

    @lru_cache(maxsize=16)
    def _item(self, seed, epoch, index):
        a = self.src[index].numpy().astype(np.int64)
        b = self.tgt[index].numpy().astype(np.int64)
        item = np.concatenate([[self.bos], a, [self.eos], b])
        rng = np.random.default_rng(fairseq_item_seed(seed, epoch, index))
        source, target = mask_tokens(item, rng, self.mask_cfg, self.mask_idx, self.pad, self.weights)
        return {"id": index, "source": torch.from_numpy(source), "target": torch.from_numpy(target),
                "positions": torch.from_numpy(self.positions(len(a) + 1, len(b) + 1))}

    def collater(self, samples):
        if not samples:
            return {}
        pad = self.pad
        return {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": sum(len(s["source"]) for s in samples),
            "net_input": {
                "src_tokens": data_utils.collate_tokens([s["source"] for s in samples], pad),
                "src_lengths": torch.LongTensor([len(s["source"]) for s in samples]),
                "positions": data_utils.collate_tokens([s["positions"] for s in samples], pad),
            },
            "target": data_utils.collate_tokens([s["target"] for s in samples], pad),
        }
