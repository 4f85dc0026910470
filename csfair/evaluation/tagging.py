"""Word labels on sentencepiece pieces: the first piece of each word carries the label.

The usual convention for subword models (Devlin et al., 2019, Section 5.3; XTREME): a word's
label is predicted from its first piece; the other pieces get no label and are ignored by the
loss and the metric. Predictions are mapped back to words by the same positions.
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

IGNORE = "<pad>"  # label of non-first pieces: fairseq's dictionary maps it to the padding index


@dataclass
class AlignedSentence:
    """Pieces of a sentence and their labels.

    Attributes:
        pieces: sentencepiece pieces of the kept words, in order.
        piece_labels: the word's label on its first piece, :data:`IGNORE` on the others.
        words: the kept words (a prefix of the sentence).
        labels: their labels.
        dropped: words cut because the sentence exceeded ``max_pieces``.
    """

    pieces: List[str]
    piece_labels: List[str]
    words: List[str]
    labels: List[str]
    dropped: int


def align_first_piece(
    words: Sequence[str],
    labels: Sequence[str],
    encode: Callable[[str], List[str]],
    max_pieces: Optional[int] = None,
    unk_piece: str = "<unk>",
) -> AlignedSentence:
    """Encode each word separately and put its label on its first piece.

    Args:
        words: gold tokens.
        labels: one per word.
        encode: a word to its pieces (e.g. sentencepiece ``encode(word, out_type=str)``, which
            gives the word its ``▁`` word-start piece).
        max_pieces: keep the longest prefix of whole words within this many pieces (the model's
            positions minus ``<s>`` and ``</s>``); None: keep all.
        unk_piece: used for a word that encodes to no piece at all.

    Returns:
        AlignedSentence

    Raises:
        ValueError: ``words`` and ``labels`` differ in length.
    """
    if len(words) != len(labels):
        raise ValueError(f"{len(words)} words but {len(labels)} labels")
    pieces: List[str] = []
    plabels: List[str] = []
    kept = 0
    for word, label in zip(words, labels):
        wp = encode(word) or [unk_piece]
        if max_pieces is not None and len(pieces) + len(wp) > max_pieces:
            break
        pieces.extend(wp)
        plabels.extend([label] + [IGNORE] * (len(wp) - 1))
        kept += 1
    return AlignedSentence(pieces, plabels, list(words[:kept]), list(labels[:kept]), len(words) - kept)


def first_piece_positions(piece_labels: Sequence[str]) -> List[int]:
    """Indices of the pieces that carry a word's label."""
    return [i for i, lab in enumerate(piece_labels) if lab != IGNORE]
