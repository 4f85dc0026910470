"""fairseq task ``token_tagging``: per-token classification (UPOS, NER, word-level language ID).

Data layout (what ``scripts/zeroshot.py`` writes, like fairseq's ``sentence_prediction``)::

    DATA/input0/dict.txt, DATA/input0/<split>.{bin,idx}   sentencepiece pieces (pretrained dictionary)
    DATA/label/dict.txt,  DATA/label/<split>.{bin,idx}    one label per piece: the word's label on its
                                                          first piece, <pad> on the others

Fine-tune a pretrained checkpoint with ``fairseq-train DATA --user-dir user_dir --task token_tagging
--criterion token_tagging --arch <its arch> --finetune-from-model checkpoint.pt ...``.
"""
import contextlib
import logging
import os
from dataclasses import dataclass, field

import numpy as np
from fairseq.data import (
    Dictionary,
    IdDataset,
    NestedDictionaryDataset,
    NumelDataset,
    NumSamplesDataset,
    PrependTokenDataset,
    RightPadDataset,
    SortDataset,
    data_utils,
)
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING, OmegaConf, open_dict

from ..data.tagging_target_dataset import TaggingTargetDataset
from ..finetune import finish_finetune_model
from ..models.token_tagging_head import TokenTaggingHead

logger = logging.getLogger(__name__)


@dataclass
class TokenTaggingConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "directory with input0/ and label/ (see module docstring)"})
    max_positions: int = field(
        default=512,
        metadata={"help": "the model's max positions (must match the pretrained checkpoint; inputs are cut "
                          "to fit when the data is written)"},
    )
    classification_head_name: str = field(
        default="token_tagging_head", metadata={"help": "name of the tagging head in the model"}
    )
    freeze_encoder: bool = field(
        default=False,
        metadata={"help": "train the head only (frozen-encoder probe, as in the Spanglish-mBERT study)"},
    )
    use_crf: bool = field(default=False, metadata={"help": "a CRF output layer over the words' first pieces"})
    no_shuffle: bool = field(default=False, metadata={"help": "keep the data order"})
    seed: int = II("common.seed")


@register_task("token_tagging", dataclass=TokenTaggingConfig)
class TokenTaggingTask(FairseqTask):
    """Per-token classification on a (pretrained) RoBERTa encoder; labels on first pieces."""

    cfg: TokenTaggingConfig

    def __init__(self, cfg, data_dictionary, label_dictionary):
        super().__init__(cfg)
        self.dictionary = data_dictionary
        self.label_dictionary = label_dictionary

    @property
    def num_classes(self) -> int:
        """Classes the head predicts: the labels seen in training (a positive count in ``label/dict.txt``).

        Labels that occur only in evaluation sets follow them with count 0 (``binarize_task`` with
        ``unseen_labels="never-predicted"``): they decode as gold labels but have no output, so they
        are never predicted and always count as errors.
        """
        counts = self.label_dictionary.count[self.label_dictionary.nspecial:]
        n = sum(1 for c in counts if c > 0)
        if any(c > 0 for c in counts[n:]):
            raise ValueError(f"{self.cfg.data}/label/dict.txt: labels with a training count must come first")
        return n

    def label_names(self):
        """Class index -> label string."""
        return self.label_dictionary.symbols[self.label_dictionary.nspecial:]

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        for sub in ("input0", "label"):
            if not os.path.exists(os.path.join(cfg.data, sub, "dict.txt")):
                raise FileNotFoundError(f"{os.path.join(cfg.data, sub, 'dict.txt')}: missing (see token_tagging docs)")
        data_dict = Dictionary.load(os.path.join(cfg.data, "input0", "dict.txt"))
        data_dict.add_symbol("<mask>")  # as in pretraining, so the embedding sizes match
        label_dict = Dictionary.load(os.path.join(cfg.data, "label", "dict.txt"))
        logger.info(f"[input] dictionary: {len(data_dict)} types; [label] {len(label_dict) - label_dict.nspecial} labels")
        return cls(cfg, data_dict, label_dict)

    def load_dataset(self, split, combine=False, **kwargs):
        def load(sub, dictionary):
            path = os.path.join(self.cfg.data, sub, split)
            ds = data_utils.load_indexed_dataset(path, dictionary, combine=combine)
            if ds is None:
                raise FileNotFoundError(f"Dataset not found: {split} ({path})")
            return ds

        src = PrependTokenDataset(load("input0", self.dictionary), self.dictionary.bos())
        tgt = TaggingTargetDataset(load("label", self.label_dictionary), self.label_dictionary)
        if len(src) != len(tgt) or (src.sizes != tgt.sizes).any():
            bad = int(np.flatnonzero(src.sizes != tgt.sizes)[0]) if len(src) == len(tgt) else -1
            raise ValueError(f"{self.cfg.data} {split}: input0 and label are not aligned (first mismatch: item {bad})")
        dataset = NestedDictionaryDataset(
            {
                "id": IdDataset(),
                "net_input": {
                    "src_tokens": RightPadDataset(src, pad_idx=self.dictionary.pad()),
                    "src_lengths": NumelDataset(src, reduce=False),
                },
                "target": RightPadDataset(tgt, pad_idx=-1),
                "nsentences": NumSamplesDataset(),
                "ntokens": NumelDataset(src, reduce=True),
            },
            sizes=[src.sizes],
        )
        if not self.cfg.no_shuffle:
            with data_utils.numpy_seed(self.cfg.seed):
                shuffle = np.random.permutation(len(src))
            dataset = SortDataset(dataset, sort_order=[shuffle])
        logger.info(f"loaded {len(dataset)} sentences from {self.cfg.data} {split}")
        self.datasets[split] = dataset
        return dataset

    def build_model(self, cfg, from_checkpoint=False):
        from fairseq import models

        with open_dict(cfg) if OmegaConf.is_config(cfg) else contextlib.ExitStack():
            cfg.max_positions = self.cfg.max_positions
        model = models.build_model(cfg, self, from_checkpoint)
        dim = model.encoder.sentence_encoder.embed_tokens.embedding_dim
        model.classification_heads[self.cfg.classification_head_name] = TokenTaggingHead(
            dim, dim, self.num_classes, getattr(cfg, "pooler_activation_fn", "tanh"),
            getattr(cfg, "pooler_dropout", 0.1), use_crf=self.cfg.use_crf,
        )
        return finish_finetune_model(model, self.cfg.data, self.cfg.freeze_encoder)

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
