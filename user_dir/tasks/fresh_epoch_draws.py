"""New random draws every epoch, also inside DataLoader worker processes.

csfair's pretraining datasets draw masks and code-switching per (seed, epoch, index) and learn
the epoch through ``set_epoch``, which fairseq calls on the dataset of the *main* process. With
``--num-workers > 0`` fairseq 0.12's ``get_batch_iterator`` builds its ``EpochBatchIterator`` with
``reuse_dataloader=True, persistent_workers=True``: one ``DataLoader`` whose worker processes were
forked once, in epoch 1, and keep that copy of the dataset for the whole run. ``set_epoch`` never
reaches them, so every epoch replays epoch 1's masks and translations (dynamic masking and
multiview sampling silently become static; stock ``masked_lm`` behaves the same way), and a run
resumed in a later epoch draws differently from the uninterrupted one.

:class:`FreshEpochDrawsMixin` turns the reuse off for the iterators of its task: fairseq then
creates a new ``DataLoader`` per epoch, after ``set_epoch``, whose workers are forked with the
right epoch (they stay persistent within the epoch, so per-batch throughput is unchanged; the cost
is one worker start per epoch). Each item also carries the epoch it was drawn for
(``draw_epoch``), and the codeswitch task checks it in every training step, so a replayed epoch is
an error, not a silent change of method.
"""
import logging

from fairseq.data import iterators

logger = logging.getLogger(__name__)


class StaleEpochError(RuntimeError):
    """A batch was drawn for another epoch than the one being trained (a stale worker copy)."""


class FreshEpochDrawsMixin:
    """Task mixin: never reuse a DataLoader (and its workers) across epochs."""

    def get_batch_iterator(self, dataset, *args, **kwargs):
        epoch_iter = super().get_batch_iterator(dataset, *args, **kwargs)
        if isinstance(epoch_iter, iterators.EpochBatchIterator) and epoch_iter.reuse_dataloader:
            # read in _get_iterator_for_epoch, which has not run yet for a new iterator; a cached
            # iterator's stored DataLoader (from a previous epoch) is dropped as well
            epoch_iter.reuse_dataloader = False
            epoch_iter.dataloader = None
            if epoch_iter.num_workers > 0:
                logger.info("data loader: new worker processes every epoch (fresh masks and code-switching draws)")
        return epoch_iter

    @staticmethod
    def check_draw_epoch(sample, epoch: int) -> None:
        """Raise :class:`StaleEpochError` when ``sample["draw_epoch"]`` differs from ``epoch``.

        Args:
            sample: a collated batch; without a ``draw_epoch`` entry nothing is checked.
            epoch: the epoch being trained (fairseq's 1-based ``epoch_itr.epoch``).
        """
        drawn = sample.get("draw_epoch") if isinstance(sample, dict) else None
        if drawn is None or drawn.numel() == 0 or epoch <= 0:
            return
        if bool((drawn != epoch).any()):
            raise StaleEpochError(
                f"training epoch {epoch} received items drawn for epoch(s) {sorted(set(drawn.tolist()))}: "
                "a DataLoader worker kept a stale copy of the dataset, so masks and code-switching would "
                "replay another epoch's draws"
            )
