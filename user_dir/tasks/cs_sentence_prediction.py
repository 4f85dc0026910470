"""fairseq task ``cs_sentence_prediction``: fairseq's ``sentence_prediction`` for csfair checkpoints.

Sentence and sentence-pair classification (NLI: premise, hypothesis; sentiment) with the ``<s>``
head of RoBERTa, exactly as fairseq's ``sentence_prediction`` (same data layout ``input0/``,
``input1/``, ``label/``, same criterion ``sentence_prediction``), plus what csfair checkpoints need:

* the provenance record of csfair checkpoints is checked (the fine-tuning data must use the
  pretraining dictionary) instead of failing as an unexpected key;
* ``--freeze-encoder`` trains the classification head only (frozen-encoder probe).
"""
from dataclasses import dataclass, field

from fairseq.tasks import register_task
from fairseq.tasks.sentence_prediction import SentencePredictionConfig, SentencePredictionTask

from ..finetune import finish_finetune_model


@dataclass
class CodeSwitchSentencePredictionConfig(SentencePredictionConfig):
    freeze_encoder: bool = field(default=False, metadata={"help": "train the classification head only"})


@register_task("cs_sentence_prediction", dataclass=CodeSwitchSentencePredictionConfig)
class CodeSwitchSentencePredictionTask(SentencePredictionTask):
    """fairseq's sentence_prediction with the csfair provenance check and an optional frozen encoder."""

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        return finish_finetune_model(model, self.cfg.data, self.cfg.freeze_encoder)
