"""A per-token classification head for RoBERTa, with an optional CRF output layer.

fairseq's RoBERTa heads read only the ``<s>`` position; tagging (POS, NER, word-level language
ID) needs a label for every token. The head has the same layout as fairseq's
``RobertaClassificationHead`` (``dense`` -> activation -> ``out_proj``), applied at every position,
so that fairseq's checkpoint code (``RobertaModel.upgrade_state_dict_named``, which inspects
``dense`` and ``out_proj`` of every head) loads and resets it like any other head.

The CRF (Lafferty et al., 2001; via pytorch-crf) scores tag transitions over the words' first
pieces, as in the meta-embedding taggers of Winata et al. (2021).
"""
import torch
import torch.nn as nn
from fairseq import utils


class TokenTaggingHead(nn.Module):
    """Token-level classification head.

    Args:
        input_dim: encoder output size.
        inner_dim: hidden size of the head.
        num_classes: number of labels.
        activation_fn: name of the activation (fairseq's ``utils.get_activation_fn``).
        pooler_dropout: dropout before each projection.
        use_crf: add a CRF layer (``self.crf``) over the emissions.

    Shapes:
        ``forward(features)``: ``(B, T, input_dim)`` -> emissions ``(B, T, num_classes)``.
    """

    def __init__(self, input_dim, inner_dim, num_classes, activation_fn="tanh", pooler_dropout=0.1, use_crf=False):
        super().__init__()
        self.dense = nn.Linear(input_dim, inner_dim)
        self.activation_fn = utils.get_activation_fn(activation_fn)
        self.dropout = nn.Dropout(p=pooler_dropout)
        self.out_proj = nn.Linear(inner_dim, num_classes)
        self.crf = None
        if use_crf:
            from torchcrf import CRF

            self.crf = CRF(num_classes, batch_first=True)

    def forward(self, features, **kwargs):
        x = self.dropout(features)
        x = self.activation_fn(self.dense(x))
        x = self.dropout(x)
        return self.out_proj(x)


def gather_words(values: torch.Tensor, word_mask: torch.Tensor, fill=0):
    """Pack the word (first-piece) positions of each row to the left.

    Args:
        values: ``(B, T, ...)`` per-piece values (emissions or tags).
        word_mask: bool ``(B, T)``, True at the first piece of each word.
        fill: value of the padding positions.

    Returns:
        (packed ``(B, W, ...)``, mask bool ``(B, W)``) with ``W`` the most words in a row.
    """
    counts = word_mask.sum(1)
    width = int(counts.max().item()) if counts.numel() else 0
    out = values.new_full((values.size(0), max(width, 1)) + tuple(values.shape[2:]), fill)
    rows, cols = word_mask.nonzero(as_tuple=True)
    slot = torch.cumsum(word_mask.long(), dim=1)[rows, cols] - 1
    out[rows, slot] = values[rows, cols]
    mask = torch.arange(out.size(1), device=values.device)[None, :] < counts[:, None]
    return out, mask


def crf_decode(crf, emissions: torch.Tensor, word_mask: torch.Tensor):
    """Viterbi paths of the words of each row, ``[]`` for a row with no word.

    pytorch-crf requires the first time step of every row to be on; a sentence whose words were
    all cut (or an empty line) has none, so it is left out of the decoding and gets an empty path
    (the same guard as the CRF loss in the ``token_tagging`` criterion).

    Args:
        crf: a ``torchcrf.CRF``.
        emissions: float ``(B, T, C)`` per-piece scores.
        word_mask: bool ``(B, T)``, True at the first piece of each word.

    Returns:
        ``B`` lists of class indices (one per word, in order).
    """
    packed, mask = gather_words(emissions.float(), word_mask)
    keep = mask[:, 0]
    paths = [[] for _ in range(packed.size(0))]
    if bool(keep.any()):
        rows = keep.nonzero(as_tuple=True)[0].tolist()
        for r, path in zip(rows, crf.decode(packed[keep], mask=mask[keep])):
            paths[r] = path
    return paths
