"""fairseq task ``tlm_masked_lm``: XLM's translation language modelling baseline.

A sentence pair is one input ``<s> source </s> </s> target </s>``, masked on both sides, with the
positions of the second sentence restarted (Lample & Conneau, 2019, Section 3.3); use an
``--arch tlm_roberta_*`` model, which takes the ``positions`` input. Data as ``weam_masked_lm``
(``DATA/src``, ``DATA/tgt``; alignments unused).
"""
import logging
import os

import numpy as np
from fairseq.data import Dictionary, SortDataset, data_utils
from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask

from csfair.io import sha256_file
from csfair.masking import MaskConfig, random_token_weights

from ..data.parallel_pretraining import dict_path, load_sides
from ..data.tlm_dataset import TlmDataset
from ..models.checkpoint_provenance import CheckpointProvenance

logger = logging.getLogger(__name__)


@register_task("tlm_masked_lm", dataclass=MaskedLMConfig)
class TlmMaskedLMTask(MaskedLMTask):
    """Masked LM over concatenated translation pairs with restarted positions."""

    @classmethod
    def load_dict(cls, cfg):
        path = dict_path(cfg.data)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: missing (expected DATA/src/dict.txt)")
        return Dictionary.load(path)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        src, tgt = load_sides(self.cfg.data, split, self.source_dictionary, combine)
        d = self.source_dictionary
        weights = random_token_weights(len(d), d.nspecial) if self.cfg.random_token_prob > 0 else None
        mcfg = MaskConfig(self.cfg.mask_prob, self.cfg.leave_unmasked_prob, self.cfg.random_token_prob,
                          self.cfg.mask_multiple_length, self.cfg.mask_stdev)
        ds = TlmDataset(src, tgt, d, d.pad(), self.mask_idx, self.cfg.seed, mcfg, weights)
        with data_utils.numpy_seed(self.cfg.seed):
            shuffle = np.random.permutation(len(ds))
        logger.info(f"loaded {len(ds)} TLM pairs from {self.cfg.data} {split}")
        self.datasets[split] = SortDataset(ds, sort_order=[shuffle, ds.sizes])

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not hasattr(model.encoder.sentence_encoder.embed_positions, "override"):
            raise ValueError("tlm_masked_lm needs a model that takes positions: use --arch tlm_roberta_tiny/base")
        model.add_module("csfair_provenance", CheckpointProvenance(
            {"dict_sha256": sha256_file(dict_path(self.cfg.data)), "cs_mode": "none"}))
        return model
