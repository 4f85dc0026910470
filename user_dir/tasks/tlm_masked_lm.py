"""fairseq task ``tlm_masked_lm``: XLM's translation language modelling baseline.

A sentence pair is one input ``<s> source </s> </s> target </s>``, masked on both sides, with the
positions of the second sentence restarted (Lample & Conneau, 2019, Section 3.3); use an
``--arch tlm_roberta_*`` model, which takes the ``positions`` input. Data as ``weam_masked_lm``
(``DATA/src``, ``DATA/tgt``; alignments unused).
"""
import logging

from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig

from ..data.parallel_pretraining import load_sides
from ..data.tlm_dataset import TlmDataset
from .parallel_base import ParallelPretrainingTask

logger = logging.getLogger(__name__)


@register_task("tlm_masked_lm", dataclass=MaskedLMConfig)
class TlmMaskedLMTask(ParallelPretrainingTask):
    """Masked LM over concatenated translation pairs with restarted positions."""

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        src, tgt = load_sides(self.cfg.data, split, self.source_dictionary, combine)
        d = self.source_dictionary
        ds = TlmDataset(src, tgt, d, d.pad(), self.mask_idx, self.cfg.seed, self.mask_config(), self.random_weights())
        logger.info(f"loaded {len(ds)} TLM pairs from {self.cfg.data} {split}")
        self.register_split(split, ds)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not hasattr(model.encoder.sentence_encoder.embed_positions, "override"):
            raise ValueError("tlm_masked_lm needs a model that takes positions: use --arch tlm_roberta_tiny/base")
        return model
