"""Held-out masked-LM accuracy of a transformers MLM, with the metric of ``scripts/eval_mlm.py``.

The same definition as the fairseq evaluation (Visser et al., 2025, Table 3; scripts/eval_mlm.py's
docstring): the held-out text is masked by the procedure the model is trained with (here
``transformers.DataCollatorForLanguageModeling``, code-switching off), a position is scored only
when its original token is a real token (the tokenizer's special tokens, ``<unk>`` included, are
never targets), accuracy = correct argmax predictions / scored tokens pooled over ``draws`` mask
draws, with its standard error over sentences (the headline) and over draws (the mask-draw
spread). The masks belong to the evaluation: draw ``k`` uses the
collator seeded with ``seed * 1000 + k`` over the examples in file order and a fixed batch size,
so they depend neither on the model nor on its training seed (only on the tokenizer, the text,
``max_seq_length`` and ``batch_size``), and every run reports a SHA-256 digest of its scored
positions and targets (``mask_digest``): two models are compared on identical masks only when
their digests agree. The returned ``raw`` dict has the layout of ``eval_mlm.score_draws`` so that
``eval_mlm.summarize``, ``eval_mlm.save_sentences`` (and :func:`csfair.evaluation.stats.paired_bootstrap`
over ``sent_correct``/``sent_scored``, one item per line) apply unchanged.
"""
import hashlib
from typing import Dict, List, Sequence

import numpy as np
import torch

from csfair_hf.tokenization import special_ids


@torch.no_grad()
def score_mlm(model, tokenizer, examples: Sequence[dict], draws: int = 5, seed: int = 1, batch_size: int = 64,
              mlm_probability: float = 0.15) -> dict:
    """Score ``draws`` mask draws of ``examples`` (from :func:`csfair_hf.tokenization.tokenize_lines`).

    Returns:
        dict with ``per_draw`` (list of ``{correct, scored, loss_sum, blocks}``), ``blocks_total``,
        ``sent_correct`` / ``sent_scored`` (int64 ``[n]``, per example with a scored token in some
        draw, summed over draws), ``sent_loss`` (float64 ``[n]``, nats summed likewise) and ``mask_digest``.
    """
    from transformers import DataCollatorForLanguageModeling

    model.eval()
    device = next(model.parameters()).device
    real = torch.ones(len(tokenizer), dtype=torch.bool)
    real[special_ids(tokenizer)] = False
    real = real.to(device)
    stock = [{k: v for k, v in ex.items() if k in ("input_ids", "attention_mask", "special_tokens_mask")} for ex in examples]
    digest = hashlib.sha256()
    per_draw: List[dict] = []
    sent: Dict[int, List[float]] = {}  # example -> [correct, scored, loss]
    for draw in range(1, draws + 1):
        col = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed * 1000 + draw)
        correct = scored_n = 0
        loss_sum = 0.0
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
                loss_sum += pos_loss.sum().item()
                hit = logits.argmax(-1).eq(targets)
                correct += int(hit.sum())
                scored_n += int(targets.numel())
            else:
                hit = torch.zeros(0, dtype=torch.bool, device=device)
                pos_loss = torch.zeros(0, device=device)
            rows_np, cols_np = rows.cpu().numpy(), cols.cpu().numpy()
            tg_np, hit_np, loss_np = targets.cpu().numpy(), hit.cpu().numpy(), pos_loss.double().cpu().numpy()
            for r in range(labels.shape[0]):
                sel = rows_np == r
                idx = a + r
                digest.update(np.asarray([draw, idx, int(sel.sum())], dtype=np.int64).tobytes())
                digest.update(cols_np[sel].astype(np.int64).tobytes())
                digest.update(tg_np[sel].astype(np.int64).tobytes())
                if sel.any():
                    st = sent.setdefault(idx, [0, 0, 0.0])
                    st[0] += int(hit_np[sel].sum())
                    st[1] += int(sel.sum())
                    st[2] += float(loss_np[sel].sum())
        per_draw.append(dict(correct=correct, scored=scored_n, loss_sum=loss_sum, blocks=len(stock)))
    keys = sorted(sent)
    return dict(
        per_draw=per_draw, blocks_total=len(stock),
        sentences=np.asarray([[k, 0] for k in keys], dtype=np.int64).reshape(-1, 2),
        sent_correct=np.asarray([sent[k][0] for k in keys], dtype=np.int64),
        sent_scored=np.asarray([sent[k][1] for k in keys], dtype=np.int64),
        sent_loss=np.asarray([sent[k][2] for k in keys], dtype=np.float64),
        mask_digest=digest.hexdigest(),
    )
