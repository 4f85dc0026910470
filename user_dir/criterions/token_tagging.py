"""Criterion ``token_tagging``: loss over the words' first pieces for the ``token_tagging`` task.

Options for label imbalance (the Spanglish-mBERT study's NER collapsed to near-zero F1 because
"O" dominates):

* ``--class-weighting balanced``: cross-entropy weighted by ``w_c = N / (C * n_c)`` from the
  training label counts (scikit-learn's "balanced" heuristic);
* ``--focal-gamma g``: focal loss ``-(1 - p_t)^g log p_t`` (Lin et al., 2017, Eq. 4), optionally
  combined with the class weights as ``alpha_t``;
* with ``--use-crf`` (task option) the loss is the CRF negative log-likelihood of the word tag
  sequences (weights and focal term do not apply).

Logged: ``loss`` (per word, base 2) and ``accuracy`` (word level).
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics

from ..models.token_tagging_head import gather_words


@dataclass
class TokenTaggingCriterionConfig(FairseqDataclass):
    class_weighting: ChoiceEnum(["none", "balanced"]) = field(
        default="none", metadata={"help": "weight the cross-entropy by inverse training label frequency"}
    )
    focal_gamma: float = field(default=0.0, metadata={"help": "focal-loss gamma (0: plain cross-entropy)"})
    classification_head_name: str = field(
        default="token_tagging_head", metadata={"help": "name of the tagging head in the model"}
    )


def balanced_weights(label_dictionary) -> torch.Tensor:
    """``N / (C * n_c)`` from the label dictionary's training counts (labels never seen: weight 1)."""
    counts = torch.tensor(label_dictionary.count[label_dictionary.nspecial:], dtype=torch.float)
    seen = counts > 0
    w = torch.ones_like(counts)
    w[seen] = counts[seen].sum() / (seen.sum() * counts[seen])
    return w


@register_criterion("token_tagging", dataclass=TokenTaggingCriterionConfig)
class TokenTaggingCriterion(FairseqCriterion):
    """Word-level cross-entropy (optionally weighted / focal) or CRF likelihood."""

    def __init__(self, cfg: TokenTaggingCriterionConfig, task):
        super().__init__(task)
        self.head = cfg.classification_head_name
        self.gamma = cfg.focal_gamma
        self.weights = balanced_weights(task.label_dictionary) if cfg.class_weighting == "balanced" else None

    def emissions(self, model, sample):
        """``(B, T, C)`` scores of every piece."""
        return model(**sample["net_input"], features_only=True, classification_head_name=self.head)[0]

    def forward(self, model, sample, reduce=True):
        logits = self.emissions(model, sample)
        target = sample["target"]
        words = target >= 0
        head = model.classification_heads[self.head]
        n_words = int(words.sum())
        if getattr(head, "crf", None) is not None:
            em, mask = gather_words(logits, words)
            tags, _ = gather_words(target, words)
            keep = mask[:, 0]  # the CRF needs at least one word per row
            loss = -head.crf(em[keep].float(), tags[keep], mask=mask[keep], reduction="sum")
            with torch.no_grad():
                pred = head.crf.decode(em[keep].float(), mask=mask[keep])
                gold = tags[keep]
                n_correct = sum(int((gold[i, : len(p)] == torch.tensor(p, device=gold.device)).sum())
                                for i, p in enumerate(pred))
        else:
            lp = F.log_softmax(logits[words].float(), dim=-1)
            t = target[words]
            nll = -lp.gather(1, t[:, None]).squeeze(1)
            if self.gamma > 0:
                nll = (1 - torch.exp(-nll)).pow(self.gamma) * nll
            if self.weights is not None:
                nll = nll * self.weights.to(nll.device)[t]
            loss = nll.sum()
            n_correct = int((lp.argmax(-1) == t).sum())
        logging_output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": n_words,
            "n_correct": n_correct,
        }
        return loss, n_words, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        n = sum(log.get("sample_size", 0) for log in logging_outputs)
        correct = sum(log.get("n_correct", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / max(n, 1) / math.log(2), n, round=3)
        if n > 0:
            metrics.log_scalar("accuracy", correct / n, n, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
