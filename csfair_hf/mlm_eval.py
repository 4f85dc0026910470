"""Held-out masked-LM accuracy of a transformers MLM: the transformers front end of :mod:`csfair.evaluation.mlm`.

The same metric as the fairseq front end (``user_dir/mlm_eval.py``, ``scripts/eval_mlm.py``; Visser et al.,
2025, Table 3): the held-out text is masked by the procedure the model is trained with (here
``transformers.DataCollatorForLanguageModeling``, code-switching off), a position is scored only
when its original token is a real token (the tokenizer's special tokens, ``<unk>`` included, are
never targets), and the counts go to :class:`csfair.evaluation.mlm.MaskedLMTally`, so that
:func:`csfair.evaluation.mlm.summarize` (accuracy pooled over ``draws`` mask draws, its standard error
over sentences as the headline and over draws second), ``save_sentences`` and the paired bootstrap
apply unchanged. The masks belong to the evaluation: draw ``k`` uses the collator seeded with
``seed * 1000 + k`` over the examples in file order and a fixed batch size, so they depend neither on
the model nor on its training seed (only on the tokenizer, the text, ``max_seq_length`` and
``batch_size``); ``mask_digest`` covers every draw's scored positions and targets.
"""

from typing import Sequence

import torch

from csfair.evaluation.mlm import MaskedLMTally, summarize  # noqa: F401  (summarize: the metric of score_mlm's counts)
from csfair_hf.tokenization import special_ids


@torch.no_grad()
def score_mlm(model, tokenizer, examples: Sequence[dict], draws: int = 5, seed: int = 1, batch_size: int = 64,
              mlm_probability: float = 0.15) -> dict:
    """Score ``draws`` mask draws of ``examples`` (from :func:`csfair_hf.tokenization.tokenize_lines`).

    Returns:
        :meth:`csfair.evaluation.mlm.MaskedLMTally.raw`'s dict: ``per_draw`` (``{correct, scored, loss_sum,
        blocks}``), ``blocks_total``, ``sentences`` (``[example, 0]``: one sentence per example),
        ``sent_correct`` / ``sent_scored`` (int64 ``[n]``, per example with a scored token in some draw,
        summed over draws), ``sent_loss`` (float64 ``[n]``, nats summed likewise) and ``mask_digest``.
    """
    from transformers import DataCollatorForLanguageModeling

    model.eval()
    device = next(model.parameters()).device
    real = torch.ones(len(tokenizer), dtype=torch.bool)
    real[special_ids(tokenizer)] = False
    real = real.to(device)
    stock = [{k: v for k, v in ex.items() if k in ("input_ids", "attention_mask", "special_tokens_mask")} for ex in examples]
    tally = MaskedLMTally()
    for draw in range(1, draws + 1):
        col = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed * 1000 + draw)
        tally.start_draw(draw)
        for a in range(0, len(stock), batch_size):
            batch = col(stock[a:a + batch_size])
            labels = batch.pop("labels").to(device)
            batch = {k: v.to(device) for k, v in batch.items()}
            scored = labels.ne(-100) & real[labels.clamp(min=0)]
            rows, cols = scored.nonzero(as_tuple=True)
            targets = labels[scored]
            if rows.numel():
                logits = model(**batch).logits[scored]
                pos_loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
                hit = logits.argmax(-1).eq(targets)
            else:
                hit = torch.zeros(0, dtype=torch.bool, device=device)
                pos_loss = torch.zeros(0, device=device)
            tally.add(range(a, a + labels.shape[0]), rows.cpu().numpy(), cols.cpu().numpy(), targets.cpu().numpy(),
                      hit.cpu().numpy(), pos_loss.double().cpu().numpy())
        tally.end_draw()
    return tally.raw(len(stock))
