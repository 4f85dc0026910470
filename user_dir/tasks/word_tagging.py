"""fairseq task ``word_tagging``: tagging over whole words, for the meta-embedding taggers (MME/HME).

The same data layout and criterion as ``token_tagging`` (``input0/`` holds words instead of
pieces: every "piece" is a word, so every position has a label), and ``--meta-dir`` with the frozen
embedding tables of ``meta_embedding_tagger`` models (``emb.<source>.npy``, one row per word of
``input0/dict.txt``). Train from scratch: ``fairseq-train DATA --user-dir user_dir --task word_tagging
--arch mme_tagger --me-sources en,es --meta-dir META --criterion token_tagging --use-crf ...``.
"""
import os
from dataclasses import dataclass, field

from fairseq.data import Dictionary
from fairseq.tasks import register_task

from .token_tagging import TokenTaggingConfig, TokenTaggingTask


@dataclass
class WordTaggingConfig(TokenTaggingConfig):
    meta_dir: str = field(default="", metadata={"help": "directory with the frozen emb.<source>.npy tables"})


@register_task("word_tagging", dataclass=WordTaggingConfig)
class WordTaggingTask(TokenTaggingTask):
    """Word-level tagging task for models that embed words themselves (no pretrained encoder)."""

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        for sub in ("input0", "label"):
            if not os.path.exists(os.path.join(cfg.data, sub, "dict.txt")):
                raise FileNotFoundError(f"{os.path.join(cfg.data, sub, 'dict.txt')}: missing")
        if not cfg.meta_dir or not os.path.isdir(cfg.meta_dir):
            raise FileNotFoundError(f"--meta-dir {cfg.meta_dir!r}: not a directory of embedding tables")
        return cls(cfg, Dictionary.load(os.path.join(cfg.data, "input0", "dict.txt")),
                   Dictionary.load(os.path.join(cfg.data, "label", "dict.txt")))

    def build_model(self, cfg, from_checkpoint=False):
        from fairseq import models

        return models.build_model(cfg, self, from_checkpoint)
