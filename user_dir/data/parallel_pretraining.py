"""Loading of parallel pretraining data (WEAM, TLM): ``DATA/{src,tgt}/<split>`` and ``DATA/align/<split>.align``."""
import os

import numpy as np
from fairseq.data import FairseqDataset, data_utils


def load_sides(data: str, split: str, dictionary, combine: bool = False):
    """The binarised source and target sides of a split.

    Raises:
        FileNotFoundError: a side is missing (names the path).
    """
    out = []
    for side in ("src", "tgt"):
        path = os.path.join(data, side, split)
        ds = data_utils.load_indexed_dataset(path, dictionary, combine=combine)
        if ds is None:
            raise FileNotFoundError(f"Dataset not found: {split} ({path})")
        out.append(ds)
    return out


def dict_path(data: str) -> str:
    """``DATA/src/dict.txt`` (both sides share the pretraining dictionary)."""
    return os.path.join(data, "src", "dict.txt")


class PairItemsDataset(FairseqDataset):
    """Size bookkeeping and epoch handling shared by the WEAM and TLM datasets (``self._sizes``)."""

    epoch = 0

    @property
    def sizes(self):
        return self._sizes

    def num_tokens(self, index):
        return self._sizes[index]

    def size(self, index):
        return self._sizes[index]

    def ordered_indices(self):
        return np.arange(len(self))

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True  # only the noise changes with the epoch

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch
