"""Criterion ``cs_masked_lm``: fairseq's masked-LM loss plus MLM accuracy.

The loss is computed exactly as fairseq's ``masked_lm`` criterion (cross-entropy over the
prediction positions, summed, normalised by their number); the criterion also counts correct
argmax predictions, giving the metric ``accuracy`` (Visser et al., 2025, Table 3: "accuracy of
predicting masked tokens").
"""
from dataclasses import dataclass

import torch
from fairseq import modules
from fairseq.criterions import register_criterion
from fairseq.criterions.masked_lm import MaskedLmConfig, MaskedLmLoss
from fairseq.logging import metrics


@dataclass
class CodeSwitchMaskedLmConfig(MaskedLmConfig):
    """Same options as fairseq's masked_lm criterion."""


@register_criterion("cs_masked_lm", dataclass=CodeSwitchMaskedLmConfig)
class CodeSwitchMaskedLmLoss(MaskedLmLoss):
    """Masked-LM cross-entropy (as fairseq's ``masked_lm``) with accuracy logging."""

    def forward(self, model, sample, reduce=True):
        masked_tokens = sample["target"].ne(self.padding_idx)
        sample_size = masked_tokens.int().sum()
        # as fairseq: project only the prediction positions (all of them if there are none)
        if self.tpu:
            masked_tokens = None
        elif masked_tokens.device == torch.device("cpu"):
            if not masked_tokens.any():
                masked_tokens = None
        else:
            masked_tokens = torch.where(masked_tokens.any(), masked_tokens, masked_tokens.new([True]))

        logits = model(**sample["net_input"], masked_tokens=masked_tokens)[0]
        targets = model.get_targets(sample, [logits])
        if masked_tokens is not None:
            targets = targets[masked_tokens]
        loss = modules.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.view(-1), reduction="sum", ignore_index=self.padding_idx
        )
        with torch.no_grad():
            valid = targets.view(-1).ne(self.padding_idx)
            n_correct = (logits.view(-1, logits.size(-1)).argmax(-1).eq(targets.view(-1)) & valid).sum()
        logging_output = {
            "loss": loss if self.tpu else loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample_size,
            "n_correct": n_correct,
        }
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        MaskedLmLoss.reduce_metrics(logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        n_correct = sum(log.get("n_correct", 0) for log in logging_outputs)
        if sample_size > 0:
            metrics.log_scalar("accuracy", float(n_correct) / float(sample_size), sample_size, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
