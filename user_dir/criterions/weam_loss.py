"""Criterion ``weam_loss``: multilingual (MLM) + λ · cross-lingual prediction loss of ``weam_masked_lm``.

Both terms use the model's LM head at the masked positions: the MLM term predicts the original token
at every masked position; the cross-lingual term predicts, at the masked first piece of an aligned
word, the first piece of its aligned translation. ``loss = mlm + λ xl`` (λ = 1 by default). Logged
separately: ``mlm_loss``, ``xl_loss`` (bits per predicted token), ``accuracy``, ``xl_accuracy``.
"""
import math
from dataclasses import dataclass, field

import torch
from fairseq import modules
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics


@dataclass
class WeamLossConfig(FairseqDataclass):
    weam_lambda: float = field(default=1.0, metadata={"help": "weight λ of the cross-lingual prediction term"})


@register_criterion("weam_loss", dataclass=WeamLossConfig)
class WeamLoss(FairseqCriterion):
    def __init__(self, cfg: WeamLossConfig, task):
        super().__init__(task)
        self.lam = cfg.weam_lambda

    def forward(self, model, sample, reduce=True):
        target = sample["target"]
        masked = target.ne(self.padding_idx)
        n_mlm = int(masked.sum())
        if n_mlm == 0:
            masked = None
        logits = model(**sample["net_input"], masked_tokens=masked)[0]
        if masked is None:
            logits = logits.view(-1, logits.size(-1))
            t = target.view(-1)
            xl_t = sample["xl_target"].view(-1)
        else:
            t = target[masked]
            xl_t = sample["xl_target"][masked]
        mlm = modules.cross_entropy(logits, t, reduction="sum", ignore_index=self.padding_idx)
        xl_sel = xl_t.ne(self.padding_idx)
        n_xl = int(xl_sel.sum())
        xl = modules.cross_entropy(logits[xl_sel], xl_t[xl_sel], reduction="sum") if n_xl else logits.sum() * 0
        loss = mlm + self.lam * xl
        with torch.no_grad():
            pred = logits.argmax(-1)
            mlm_correct = int(((pred == t) & t.ne(self.padding_idx)).sum())
            xl_correct = int((pred[xl_sel] == xl_t[xl_sel]).sum())
        out = {"loss": loss.data, "mlm_loss": mlm.data, "xl_loss": xl.data, "n_mlm": n_mlm, "n_xl": n_xl,
               "mlm_correct": mlm_correct, "xl_correct": xl_correct, "ntokens": sample["ntokens"],
               "nsentences": sample["nsentences"], "sample_size": max(n_mlm, 1)}
        return loss, max(n_mlm, 1), out

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        s = lambda k: sum(log.get(k, 0) for log in logging_outputs)  # noqa: E731
        n, nx = s("sample_size"), s("n_xl")
        metrics.log_scalar("loss", s("loss") / max(n, 1) / math.log(2), n, round=3)
        metrics.log_scalar("mlm_loss", s("mlm_loss") / max(s("n_mlm"), 1) / math.log(2), s("n_mlm"), round=3)
        if nx:
            metrics.log_scalar("xl_loss", s("xl_loss") / nx / math.log(2), nx, round=3)
            metrics.log_scalar("xl_accuracy", s("xl_correct") / nx, nx, round=4)
        if s("n_mlm"):
            metrics.log_scalar("accuracy", s("mlm_correct") / s("n_mlm"), s("n_mlm"), round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
