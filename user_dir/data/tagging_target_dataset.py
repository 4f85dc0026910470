"""Per-token targets for tagging: label ids -> class indices, -1 where nothing is predicted."""
import torch
from fairseq.data import BaseWrapperDataset


class TaggingTargetDataset(BaseWrapperDataset):
    """Turns a binarised label line into class indices aligned with ``<s> pieces </s>``.

    The label file has one symbol per piece: the word's label on its first piece and ``<pad>``
    on the others (see ``csfair.evaluation.tagging``). Each item becomes ``[-1] + classes + [-1]``: -1 for
    ``<s>``, for the ``</s>`` fairseq appended, and for every special symbol (padding), so the
    loss and the metric see first pieces only.

    Args:
        dataset: the binarised label lines (ending with ``</s>``).
        label_dictionary: their dictionary; class index = symbol id - ``nspecial``.
    """

    def __init__(self, dataset, label_dictionary):
        super().__init__(dataset)
        self.nspecial = label_dictionary.nspecial

    def __getitem__(self, index):
        ids = self.dataset[index].long()
        classes = torch.where(ids >= self.nspecial, ids - self.nspecial, torch.full_like(ids, -1))
        classes[-1] = -1  # the appended </s>
        return torch.cat([classes.new_full((1,), -1), classes])

    @property
    def sizes(self):
        return self.dataset.sizes + 1

    def num_tokens(self, index):
        return self.dataset.sizes[index] + 1

    def size(self, index):
        return self.dataset.sizes[index] + 1
