"""Shared parts of the parallel-data pretraining tasks (``weam_masked_lm``, ``tlm_masked_lm``)."""
import os

import numpy as np
from fairseq.data import Dictionary, SortDataset, data_utils
from fairseq.tasks.masked_lm import MaskedLMTask

from csfair.io import sha256_file
from csfair.pretraining.masking import MaskConfig, random_token_weights

from ..bf16_support import Bf16AutocastMixin
from ..data.parallel_pretraining import dict_path
from ..models.checkpoint_provenance import CheckpointProvenance
from .fresh_epoch_draws import FreshEpochDrawsMixin


class ParallelPretrainingTask(FreshEpochDrawsMixin, Bf16AutocastMixin, MaskedLMTask):
    """Masked-LM options of fairseq, ``DATA/src/dict.txt``, fairseq-style masking and batching;
    new draws every epoch with DataLoader workers (:class:`FreshEpochDrawsMixin`), ``--bf16`` as
    bf16 autocast (:class:`Bf16AutocastMixin`)."""

    @classmethod
    def load_dict(cls, cfg):
        path = dict_path(cfg.data)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: missing (expected DATA/src/dict.txt)")
        return Dictionary.load(path)

    def mask_config(self) -> MaskConfig:
        return MaskConfig(self.cfg.mask_prob, self.cfg.leave_unmasked_prob, self.cfg.random_token_prob,
                          self.cfg.mask_multiple_length, self.cfg.mask_stdev)

    def random_weights(self):
        if self.cfg.random_token_prob <= 0:
            return None
        d = self.source_dictionary
        return random_token_weights(len(d), d.nspecial, d.count if self.cfg.freq_weighted_replacement else None)

    def register_split(self, split, dataset):
        """Shuffle (seeded, as stock masked_lm) and sort by size, like fairseq's masked LM tasks."""
        with data_utils.numpy_seed(self.cfg.seed):
            shuffle = np.random.permutation(len(dataset))
        self.datasets[split] = SortDataset(dataset, sort_order=[shuffle, dataset.sizes])

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        model.add_module("csfair_provenance", CheckpointProvenance(
            {"dict_sha256": sha256_file(dict_path(self.cfg.data)), "cs_mode": "none"}))
        return model
