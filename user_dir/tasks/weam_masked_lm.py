"""fairseq task ``weam_masked_lm``: WEAM-style alignment-guided cross-lingual word prediction.

Word-Exchange Aligning Model ("Bilingual Alignment Pre-Training for Zero-Shot Cross-Lingual
Transfer"): fast_align word pairs of parallel sentences guide prediction. Each side of each pair is
an item; a masked word with an aligned word in the other sentence is predicted as itself
(multilingual prediction, ``target``) and as its aligned translation's first piece from the same
position (cross-lingual prediction, ``xl_target``); the criterion ``weam_loss`` adds the two
(``λ = 1``). ``--weam-exchange-prob`` swaps aligned words between the sides before masking. The
mask probability is fairseq's ``--mask-prob`` (0.15; the WEAM report's 0.3 is marked unverified).

Data (``scripts/recipes/weam_tlm.sh``): ``DATA/src/``, ``DATA/tgt/`` (fairseq-preprocess with the
pretraining dictionary) and ``DATA/align/<split>.align``.
"""
import logging
import os
from dataclasses import dataclass, field

from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig

from csfair.baselines.parallel_data import read_links

from ..data.codeswitch_mask_tokens_dataset import word_start_mask
from ..data.parallel_pretraining import load_sides
from ..data.weam_dataset import WeamDataset
from .parallel_base import ParallelPretrainingTask

logger = logging.getLogger(__name__)


@dataclass
class WeamMaskedLMConfig(MaskedLMConfig):
    weam_exchange_prob: float = field(
        default=0.0, metadata={"help": "probability of swapping a one-to-one aligned word for its translation before masking"}
    )


@register_task("weam_masked_lm", dataclass=WeamMaskedLMConfig)
class WeamMaskedLMTask(ParallelPretrainingTask):
    """Masked LM on aligned parallel sentences with a cross-lingual prediction target."""

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        src, tgt = load_sides(self.cfg.data, split, self.source_dictionary, combine)
        offsets, links = read_links(os.path.join(self.cfg.data, "align", f"{split}.align"))
        d = self.source_dictionary
        ds = WeamDataset(src, tgt, offsets, links, d, d.pad(), self.mask_idx, self.cfg.seed, self.mask_config(),
                         self.random_weights(), word_start_mask(d), self.cfg.weam_exchange_prob)
        logger.info(f"loaded {len(ds)} WEAM items ({len(src)} pairs, {len(links)} links) from {self.cfg.data} {split}")
        self.register_split(split, ds)
