"""Loading of parallel pretraining data (WEAM, TLM): ``DATA/{src,tgt}/<split>`` and ``DATA/align/<split>.align``."""
import os

from fairseq.data import data_utils


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
