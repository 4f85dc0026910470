#!/usr/bin/env python
"""Held-out masked-LM accuracy of one or more checkpoints (Visser et al., 2025, Table 3).

What is scored. The held-out text of one language is cut into the checkpoint's blocks and masked
exactly as training masks it (fairseq's ``MaskTokensDataset`` draws, through the task's dataset,
with code-switching off). A prediction position counts only when its original token is a *real*
token: ``<s>``, ``</s>``, ``<pad>``, ``<unk>``, ``<mask>`` and ``madeupword*`` are never targets
(before, ~4.8% of the scored positions were near-free ``<s>``/``</s>``). The special positions are
*dropped from the targets* rather than excluded from the mask draw, so that (1) the inputs the
models see are masked by the very procedure they were trained with (a ``<mask>`` may stand where a
``</s>`` was, for every model alike), and (2) the masks are the dataset's own, keyed on
(seed, draw, index) and checked against fairseq's by the dataset tests, with no second masking
implementation in the evaluation. Accuracy = correct argmax predictions / scored real tokens.

Same masks for every checkpoint. The masking seed belongs to the evaluation (``--seed``, default
1), never to the checkpoint's training run. Draw k (k = 1..``--draws``) uses the dataset's epoch k,
so its masks are keyed on (seed, k, block index): they depend neither on the model nor on the
batch size. Every run reports a SHA-256 digest of its scored positions and targets
(``mask_digest``); ``--compare`` refuses to compare runs whose digests differ.

Uncertainty. The accuracy is pooled over the draws (correct / scored over every draw). Its headline
standard error is over *test sentences* (``accuracy_se``: the linearised standard error of a ratio
of per-sentence sums, :func:`csfair.evaluation.stats.ratio_standard_error`): another test set of the
same kind would move the accuracy by about that much. The spread over mask draws
(``accuracy_se_draws``: the standard error of the per-draw accuracies) is the second figure; it is
several times smaller (csfair issue 19: 0.00084 against 0.0044 on the checkpoints it was tried on)
and says only how much more drawing would settle. The loss has the same two figures. ``--json PATH``
also saves the per-sentence arrays next to it (``PATH`` with ``.sentences.npz``): ``--recompare NPZ``
recomputes a comparison (or a single result) from them without the checkpoints.

``--compare NAME=PATH NAME=PATH ...`` scores every checkpoint on these identical masks and gives,
for each checkpoint against the reference (the first, or ``--reference NAME``), the difference of
accuracy pooled over the draws and its paired bootstrap confidence interval over *sentences*
(:func:`csfair.evaluation.stats.paired_bootstrap`; per sentence, the correct predictions are the numerator and
the scored tokens the denominator, both summed over the draws). A sentence is the stretch of a
block up to and including its ``</s>`` (with ``--sample-break-mode complete``, as the recipes train,
exactly a line of the test file; with ``none`` a line cut by a block boundary counts as two items).
The bootstrap is over sentences only: each column is one fixed checkpoint and the masks belong to
the evaluation; checkpoints of several pretraining seeds per method are compared by fine-tuning
tables (scripts/zeroshot.py, where a column may hold several checkpoints).

Usage:
    python scripts/eval_mlm.py --checkpoint checkpoints/en-fr/ibm1/checkpoint_last.pt \\
        --data data-bin/en-fr --lang fr --split test [--draws 5] [--seed 1] [--json results.json]
    python scripts/eval_mlm.py --compare none=checkpoints/en-fr/none/checkpoint_last.pt \\
        ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt muse=checkpoints/en-fr/muse/checkpoint_last.pt \\
        --data data-bin/en-fr --lang fr --split test [--reference none] [--json compare.json]
    python scripts/eval_mlm.py --recompare compare.sentences.npz [--reference none]   # from the saved arrays
"""
import argparse
import hashlib
import json
import logging
import math
import os
import sys
import time
from argparse import Namespace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

#: masking options of the checkpoint's task that decide the masks (with the seed and the blocks)
MASK_OPTIONS = ("tokens_per_sample", "sample_break_mode", "mask_prob", "leave_unmasked_prob", "random_token_prob",
                "mask_multiple_length", "mask_stdev", "mask_whole_words", "freq_weighted_replacement")


#: tasks whose checkpoints are masked LMs over monolingual DATA/<lang> (what eval_mlm scores)
MLM_TASKS = ("codeswitch_masked_lm", "masked_lm")


class EvalError(Exception):
    """A checkpoint, the data or a comparison cannot be evaluated as asked (message says why)."""


def scored_vocab(dictionary) -> np.ndarray:
    """bool ``[V]``: the symbol is a real token that may be a target.

    False for fairseq's leading specials (``<s>``, ``<pad>``, ``</s>``, ``<unk>``), ``<mask>`` and
    the ``madeupword*`` padding symbols; True for every other dictionary entry: the complement of
    the symbols the code-switching dataset never substitutes.
    """
    from user_dir.data.codeswitch_mask_tokens_dataset import special_mask

    return ~special_mask(dictionary)


def load_checkpoint(checkpoint: str, data: str, lang: str, seed: int, tokens_per_sample: Optional[int] = None,
                    cpu: bool = False):
    """Load a checkpoint and its task on DATA, code-switching off, masking seed ``seed``.

    Returns:
        ``(model, task, cfg, info)``; ``info`` holds the masking options and the dictionary
        checksum the checkpoint records (``dict_sha256``, None for a checkpoint without a record).

    Raises:
        EvalError: checkpoint missing, unreadable (empty, truncated, not a checkpoint) or of another
            task than a masked LM, several data paths, or a checkpoint trained with another
            dictionary than DATA's.
    """
    from fairseq import utils

    utils.import_user_module(Namespace(user_dir=os.path.join(ROOT, "user_dir")))
    from user_dir.checkpoint_loading import CheckpointError, load_model_and_task
    from user_dir.models.checkpoint_provenance import CodeSwitchProvenanceError

    if not os.path.exists(checkpoint):
        raise EvalError(f"{checkpoint}: no such checkpoint")
    if len(utils.split_paths(data)) != 1:
        # load_dataset(epoch=k) would read shard (k-1) % n: each draw would score other text
        raise EvalError(f"--data {data}: give one data directory (draws are keyed on the dataset's epoch)")
    overrides = {"data": data, "langs": lang or "", "cs_mode": "none", "cs_tables": "", "cs_table_name": "",
                 "seed": seed}
    if tokens_per_sample is not None:
        overrides["tokens_per_sample"] = tokens_per_sample
    try:
        models, cfg, task, _ = load_model_and_task(checkpoint, overrides, tasks=MLM_TASKS,
                                                   purpose="eval_mlm (masked-LM accuracy on DATA/<lang>)")
    except CheckpointError as e:
        raise EvalError(str(e)) from e
    except CodeSwitchProvenanceError as e:
        raise EvalError(f"{checkpoint}: {e}") from e
    except RuntimeError as e:
        if "size mismatch" not in str(e):
            raise
        raise EvalError(f"{checkpoint}: its embeddings do not fit the dictionary of {data} "
                        "(not the dictionary it was trained with)") from e
    model = models[0]
    provenance = getattr(model, "csfair_provenance", None)
    saved = getattr(provenance, "loaded", None) or {}
    info = {k: _plain(getattr(task.cfg, k, None)) for k in MASK_OPTIONS}
    info["dict_sha256"] = saved.get("dict_sha256")
    info["data_dict_sha256"] = (provenance.record.get("dict_sha256") if provenance is not None else None)
    model.eval()
    if torch.cuda.is_available() and not cpu:
        model.cuda()
    return model, task, cfg, info


def _plain(v):
    """A JSON-friendly value (fairseq enum choices are str subclasses)."""
    return v if isinstance(v, (int, float, bool)) or v is None else str(v)


def score_draws(model, task, split: str, draws: int, batch_size: int = 64, keep_positions: bool = False) -> dict:
    """Score ``draws`` mask draws of ``split`` (draw k = dataset epoch k, k = 1..draws).

    Returns:
        dict with ``per_draw`` (list of ``{correct, scored, loss_sum, blocks}``), ``blocks_total``,
        ``sentences`` (int64 ``[n, 2]``: block index and sentence number in the block of every
        sentence with a scored token in some draw, sorted), ``sent_correct`` / ``sent_scored``
        (int64 ``[n]``, summed over the draws), ``sent_loss`` (float64 ``[n]``, cross-entropy in nats
        summed over the sentence's scored positions and the draws), ``mask_digest`` (hex SHA-256 of every draw's
        scored positions and targets, by block index) and, with ``keep_positions``,
        ``positions``: ``{(draw, block): (positions int64 [m], targets int64 [m], correct bool [m])}``.
    """
    from fairseq import utils

    d = task.source_dictionary
    pad, eos = d.pad(), d.eos()
    real = torch.from_numpy(scored_vocab(d))
    device = next(model.parameters()).device
    real = real.to(device)
    max_positions = utils.resolve_max_positions(task.max_positions(), model.max_positions())
    per_draw: List[dict] = []
    sent_stats: Dict[Tuple[int, int], List[float]] = {}  # (block, sentence) -> [correct, scored, loss]
    digest = hashlib.sha256()
    positions = {}
    blocks_total = 0
    for draw in range(1, draws + 1):
        task.load_dataset(split, combine=False, epoch=draw)
        dataset = task.dataset(split)
        blocks_total = len(dataset)
        itr = task.get_batch_iterator(
            dataset=dataset, max_sentences=batch_size, max_positions=max_positions,
            ignore_invalid_inputs=True,  # blocks longer than the model's positions are skipped, counted
            seed=task.cfg.seed, num_workers=0, epoch=draw, disable_iterator_cache=True,
        ).next_epoch_itr(shuffle=False)
        correct = scored_n = blocks = 0
        loss_sum = 0.0
        by_block = {}
        with torch.no_grad():
            for sample in itr:
                if device.type == "cuda":
                    sample = utils.move_to_cuda(sample)
                src, tgt = sample["net_input"]["src_tokens"], sample["target"]
                blocks += int(sample["nsentences"])
                selected = tgt.ne(pad)
                scored = selected & real[tgt]
                original = torch.where(selected, tgt, src)  # unselected positions are unchanged in the input
                is_eos = original.eq(eos).long()
                sent_no = is_eos.cumsum(1) - is_eos  # </s> closes its own sentence
                rows, cols = scored.nonzero(as_tuple=True)  # row-major, the order of tgt[scored]
                if rows.numel():
                    logits = model(**sample["net_input"], masked_tokens=scored)[0]
                    targets = tgt[scored]
                    pos_loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
                    loss_sum += pos_loss.sum().item()
                    hit = logits.argmax(-1).eq(targets)
                    correct += int(hit.sum())
                    scored_n += int(targets.numel())
                else:
                    targets = tgt[scored]
                    hit = torch.zeros(0, dtype=torch.bool, device=tgt.device)
                    pos_loss = torch.zeros(0, device=tgt.device)
                ids = sample["id"].cpu().numpy()
                rows_np, cols_np = rows.cpu().numpy(), cols.cpu().numpy()
                targets_np, hit_np = targets.cpu().numpy(), hit.cpu().numpy()
                loss_np = pos_loss.double().cpu().numpy()
                sent_np = sent_no[rows, cols].cpu().numpy()
                for r, block in enumerate(ids.tolist()):
                    sel = rows_np == r
                    by_block[block] = (cols_np[sel].astype(np.int64), targets_np[sel].astype(np.int64), hit_np[sel])
                    for s, h, lo in zip(sent_np[sel].tolist(), hit_np[sel].tolist(), loss_np[sel].tolist()):
                        st = sent_stats.setdefault((block, s), [0, 0, 0.0])
                        st[0] += int(h)
                        st[1] += 1
                        st[2] += lo
        for block in sorted(by_block):
            pos, tg, hit_b = by_block[block]
            digest.update(np.asarray([draw, block, pos.size], dtype=np.int64).tobytes())
            digest.update(pos.tobytes())
            digest.update(tg.tobytes())
            if keep_positions:
                positions[(draw, block)] = (pos, tg, hit_b)
        per_draw.append(dict(correct=correct, scored=scored_n, loss_sum=loss_sum, blocks=blocks))
    keys = sorted(sent_stats)
    out = dict(
        per_draw=per_draw, blocks_total=blocks_total,
        sentences=np.asarray(keys, dtype=np.int64).reshape(-1, 2),
        sent_correct=np.asarray([sent_stats[k][0] for k in keys], dtype=np.int64),
        sent_scored=np.asarray([sent_stats[k][1] for k in keys], dtype=np.int64),
        sent_loss=np.asarray([sent_stats[k][2] for k in keys], dtype=np.float64),
        mask_digest=digest.hexdigest(),
    )
    if keep_positions:
        out["positions"] = positions
    return out


def summarize(raw: dict) -> dict:
    """Accuracy and loss pooled over the draws with their standard errors over sentences (the headline) and
    over draws (the mask-draw spread), per-draw values and token counts.

    Args:
        raw: :func:`score_draws`' dict (or ``csfair_hf.mlm_eval.score_mlm``'s, the same layout).

    Returns:
        dict: ``accuracy`` (correct / scored over every draw), ``accuracy_se`` (standard error over
        sentences, :func:`csfair.evaluation.stats.ratio_standard_error`), ``accuracy_se_draws``
        (standard error of the per-draw accuracies), ``accuracy_per_draw``, ``loss_bits`` (bits per
        scored token, pooled), ``loss_bits_se`` (over sentences), ``loss_bits_se_draws``,
        ``masked_tokens``, ``masked_tokens_per_draw``, ``sentences``, ``blocks``,
        ``blocks_skipped_too_long``, ``mask_digest``.
    """
    from csfair.evaluation.stats import ratio_standard_error, standard_error

    acc = [d["correct"] / d["scored"] if d["scored"] else float("nan") for d in raw["per_draw"]]
    loss = [d["loss_sum"] / d["scored"] / math.log(2) if d["scored"] else float("nan") for d in raw["per_draw"]]
    scored = [d["scored"] for d in raw["per_draw"]]
    blocks = raw["per_draw"][0]["blocks"] if raw["per_draw"] else 0
    total = max(sum(scored), 1)
    sent_loss = raw.get("sent_loss")
    return dict(
        accuracy=sum(d["correct"] for d in raw["per_draw"]) / total,
        accuracy_se=ratio_standard_error(raw["sent_correct"], raw["sent_scored"]),
        accuracy_se_draws=standard_error(acc), accuracy_per_draw=acc,
        loss_bits=sum(d["loss_sum"] for d in raw["per_draw"]) / total / math.log(2),
        loss_bits_se=(ratio_standard_error(sent_loss, raw["sent_scored"]) / math.log(2)
                      if sent_loss is not None else float("nan")),
        loss_bits_se_draws=standard_error(loss),
        masked_tokens=int(sum(scored)), masked_tokens_per_draw=scored,
        sentences=int(len(raw["sent_scored"])), blocks=blocks, blocks_skipped_too_long=raw["blocks_total"] - blocks,
        mask_digest=raw["mask_digest"],
    )


#: the per-sentence arrays of a run, as saved next to its JSON (``save_sentences``)
RAW_ARRAYS = ("sentences", "sent_correct", "sent_scored", "sent_loss")


def save_sentences(path: str, raws: Dict[str, dict], meta: dict) -> None:
    """Save runs' per-sentence arrays and per-draw totals as one ``.npz`` (atomic write).

    Args:
        path: the ``.npz`` to write.
        raws: ``{name: score_draws' dict}`` (one entry for a single evaluation).
        meta: JSON-serialisable settings of the evaluation (data, lang, split, seed, draws, reference).
    """
    from csfair.io import atomic_write

    arrays = {"meta": np.asarray(json.dumps(dict(meta, names=list(raws))))}
    for name, raw in raws.items():
        for k in RAW_ARRAYS:
            arrays[f"{name}/{k}"] = np.asarray(raw[k])
        arrays[f"{name}/per_draw"] = np.asarray([[d["correct"], d["scored"], d["loss_sum"], d["blocks"]]
                                                 for d in raw["per_draw"]], dtype=np.float64)
        arrays[f"{name}/info"] = np.asarray(json.dumps(dict(mask_digest=raw["mask_digest"],
                                                            blocks_total=raw["blocks_total"])))
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_sentences(path: str) -> Tuple[Dict[str, dict], dict]:
    """``({name: raw}, meta)`` of a :func:`save_sentences` file (``raw`` as :func:`score_draws` returns it,
    without positions).

    Raises:
        EvalError: the file is missing or not such a file.
    """
    try:
        z = np.load(path)
        meta = json.loads(str(z["meta"]))
        raws = {}
        for name in meta["names"]:
            info = json.loads(str(z[f"{name}/info"]))
            raw = {k: z[f"{name}/{k}"] for k in RAW_ARRAYS}
            raw["per_draw"] = [dict(correct=int(c), scored=int(n), loss_sum=float(lo), blocks=int(b))
                               for c, n, lo, b in z[f"{name}/per_draw"]]
            raws[name] = dict(raw, **info)
    except (OSError, KeyError, ValueError) as e:
        raise EvalError(f"{path}: not a per-sentence file of scripts/eval_mlm.py ({e})") from e
    return raws, meta


def evaluate(checkpoint, data, lang, split="test", batch_size=64, seed=1, cpu=False, tokens_per_sample=None,
             draws=5, keep_raw=False):
    """Held-out MLM accuracy of one checkpoint over ``draws`` mask draws, with its standard errors.

    Args:
        checkpoint: path of a ``codeswitch_masked_lm`` (or stock ``masked_lm``) checkpoint.
        data: the data-bin directory (one subdirectory per language).
        lang: language subdirectory to score.
        split: split name (``test``).
        batch_size: blocks per forward pass (does not change the masks).
        seed: the evaluation's masking seed (not the checkpoint's).
        cpu: stay on the CPU even when CUDA is available.
        tokens_per_sample: block size; None: the checkpoint's.
        draws: number of mask draws (>= 1).
        keep_raw: also return the per-sentence counts and positions (``raw``; for ``--compare``, tests).

    Returns:
        dict: :func:`summarize`'s fields (``accuracy`` pooled over the draws, ``accuracy_se`` over
        sentences, ``accuracy_se_draws`` over draws, ``loss_bits``, ...), ``mask_options``,
        ``dict_sha256``, ``seed``, ``draws``, ``seconds``.

    Raises:
        EvalError: see :func:`load_checkpoint`; ``draws < 1``; no token scored.
    """
    if draws < 1:
        raise EvalError(f"--draws must be >= 1, got {draws}")
    t0 = time.time()
    model, task, cfg, info = load_checkpoint(checkpoint, data, lang, seed, tokens_per_sample, cpu)
    raw = score_draws(model, task, split, draws, batch_size, keep_positions=keep_raw)
    res = summarize(raw)
    if res["masked_tokens"] == 0:
        raise EvalError(f"{data} {lang}/{split}: no real token was scored (empty split, or every block too long)")
    out = dict(checkpoint=checkpoint, data=data, lang=lang, split=split, seed=seed, draws=draws, **res,
               mask_options={k: info[k] for k in MASK_OPTIONS}, dict_sha256=info["dict_sha256"] or info["data_dict_sha256"],
               dict_recorded=info["dict_sha256"] is not None, seconds=round(time.time() - t0, 2))
    if keep_raw:
        out["raw"] = raw
    return out


def parse_named(specs: Sequence[str]) -> List[Tuple[str, str]]:
    """``NAME=PATH`` strings -> ``[(name, path)]``; raises EvalError on a malformed or repeated name."""
    out, seen = [], set()
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise EvalError(f"--compare takes NAME=PATH, got {s!r}")
        if name in seen:
            raise EvalError(f"--compare: name {name!r} given twice")
        seen.add(name)
        out.append((name, path))
    if len(out) < 2:
        raise EvalError("--compare needs at least two NAME=PATH checkpoints")
    return out


def compare(named: Sequence[Tuple[str, str]], data, lang, split="test", reference=None, batch_size=64, seed=1,
            cpu=False, tokens_per_sample=None, draws=5, n_boot=1000, boot_seed=12345):
    """Score several checkpoints on identical masks; paired bootstrap of each difference to the reference.

    Returns:
        :func:`compare_runs`' dict; with ``raws`` (``{name: score_draws' dict}``) for
        :func:`save_sentences`.

    Raises:
        EvalError: unknown reference, checkpoints with different dictionaries, or runs scored on
            different masks (different block size or masking options).
    """
    names = [n for n, _ in named]
    reference = reference or names[0]
    if reference not in names:
        raise EvalError(f"--reference {reference!r} is not one of the --compare names {names}")
    runs = {}
    for name, path in named:
        runs[name] = evaluate(path, data, lang, split, batch_size, seed, cpu, tokens_per_sample, draws, keep_raw=True)
    ref = runs[reference]
    recorded = {n: r["dict_sha256"] for n, r in runs.items() if r["dict_recorded"]}
    if len(set(recorded.values())) > 1:
        raise EvalError("the checkpoints were trained with different dictionaries: "
                        + ", ".join(f"{n} (sha256 {s[:12]})" for n, s in recorded.items())
                        + "; accuracies over different vocabularies are not comparable")
    for name, r in runs.items():
        if r["mask_digest"] != ref["mask_digest"]:
            diff = {k: (ref["mask_options"][k], r["mask_options"][k]) for k in MASK_OPTIONS
                    if ref["mask_options"][k] != r["mask_options"][k]}
            raise EvalError(
                f"{name} and {reference} were scored on different masks ({r['mask_digest'][:12]} vs "
                f"{ref['mask_digest'][:12]}); their masking options differ: {diff or 'none (blocks skipped?)'}; "
                "give --tokens-per-sample to score them on the same blocks"
            )
    meta = dict(data=data, lang=lang, split=split, seed=seed, draws=draws, reference=reference,
                mask_options=ref["mask_options"], checkpoints={n: runs[n]["checkpoint"] for n in names},
                dict_recorded={n: runs[n]["dict_recorded"] for n in names})
    out = compare_runs({n: runs[n] for n in names}, meta, n_boot, boot_seed)
    out["raws"] = {n: runs[n]["raw"] for n in names}
    return out


def compare_runs(runs: Dict[str, dict], meta: dict, n_boot: int = 1000, boot_seed: int = 12345) -> dict:
    """The comparison table of runs scored on identical masks (from :func:`evaluate` or saved arrays).

    Args:
        runs: ``{name: result}`` in table order; each result holds :func:`summarize`'s fields and ``raw``.
        meta: ``data``, ``lang``, ``split``, ``seed``, ``draws``, ``reference``, ``mask_options``,
            ``checkpoints`` and ``dict_recorded`` (per name).
        n_boot, boot_seed: bootstrap resamples over sentences and their seed.

    Returns:
        dict with the evaluation's settings, ``reference``, ``rows`` (one per checkpoint: name,
        checkpoint, accuracy and its standard errors over sentences (``accuracy_se``) and over mask
        draws (``accuracy_se_draws``), accuracy_per_draw, loss_bits and its two standard errors,
        masked_tokens, and for non-reference rows ``diff``, ``lo``, ``hi``, ``p_value``,
        ``significant``: accuracy minus the reference's, paired bootstrap 95% interval over sentences).
    """
    from csfair.evaluation.stats import paired_bootstrap

    reference = meta["reference"]
    ref = runs[reference]
    rows = []
    for name, r in runs.items():
        row = {k: r[k] for k in ("accuracy", "accuracy_se", "accuracy_se_draws", "accuracy_per_draw", "loss_bits",
                                 "loss_bits_se", "loss_bits_se_draws", "masked_tokens")}
        row.update(name=name, checkpoint=meta["checkpoints"][name], dict_recorded=meta["dict_recorded"][name])
        if name != reference:
            if not np.array_equal(r["raw"]["sentences"], ref["raw"]["sentences"]):
                raise EvalError(f"{name} and {reference} have different sentences (not scored on the same masks)")
            bs = paired_bootstrap(ref["raw"]["sent_correct"], r["raw"]["sent_correct"], ref["raw"]["sent_scored"],
                                  n_boot=n_boot, seed=boot_seed)
            row.update(diff=bs["diff"], lo=bs["lo"], hi=bs["hi"], p_value=bs["p_value"],
                       significant=bool(bs["significant"]))
        rows.append(row)
    return dict({k: meta[k] for k in ("data", "lang", "split", "seed", "draws", "mask_options")}, reference=reference,
                masked_tokens_per_draw=ref["masked_tokens_per_draw"], sentences=ref["sentences"],
                blocks=ref["blocks"], mask_digest=ref["mask_digest"], n_boot=n_boot, boot_seed=boot_seed, rows=rows)


def recompare(path: str, reference: Optional[str] = None, n_boot: int = 1000, boot_seed: int = 12345) -> dict:
    """:func:`compare_runs` (or, for a file of one run, :func:`summarize`) from a :func:`save_sentences` file:
    the same table without the checkpoints.

    Raises:
        EvalError: not such a file, an unknown reference, or runs of different masks.
    """
    raws, meta = load_sentences(path)
    runs = {n: dict(summarize(raw), raw=raw) for n, raw in raws.items()}
    if len(runs) == 1 and not meta.get("reference"):
        (name, r), = runs.items()
        r.pop("raw")
        return dict(meta.get("result", {}), **r)
    meta = dict(meta, reference=reference or meta["reference"])
    if meta["reference"] not in runs:
        raise EvalError(f"--reference {meta['reference']!r} is not one of the saved runs {list(runs)}")
    digests = {r["mask_digest"] for r in runs.values()}
    if len(digests) > 1:
        raise EvalError(f"{path}: the saved runs were scored on different masks")
    return compare_runs(runs, meta, n_boot, boot_seed)


def format_compare(res: dict) -> str:
    """The comparison as a fixed-width text table (one row per checkpoint)."""
    per = res["masked_tokens_per_draw"]
    head = (f"MLM accuracy on held-out {res['lang']} ({res['split']}): {res['draws']} mask draws (seed {res['seed']}), "
            f"{per[0] if len(set(per)) == 1 else per} masked real tokens per draw, {res['sentences']} sentences, "
            f"{res['blocks']} blocks; identical masks (digest {res['mask_digest'][:12]})\n"
            f"accuracy pooled over the draws ± SE over sentences (the mask-draw SE in brackets); difference = "
            f"accuracy - {res['reference']}'s; 95% CI and p: paired bootstrap over sentences ({res['n_boot']} resamples)")
    w = max(len("checkpoint"), *(len(r["name"]) + 6 for r in res["rows"]))
    col = "accuracy ± SE (draws)"
    lines = [head, f"{'checkpoint':<{w}}  {col:<26}  {'diff':>8}  {'95% CI':<19}  {'p':>6}"]
    for r in res["rows"]:
        name = r["name"] + (" (ref)" if r["name"] == res["reference"] else "")
        acc = f"{r['accuracy']:.4f} ± {r['accuracy_se']:.4f} ({r['accuracy_se_draws']:.4f})"
        if "diff" in r:
            # a p of 0 means no resample crossed 0: say "below 1/n_boot" rather than "0"
            pv = f"<{1 / res['n_boot']:.0e}" if r["p_value"] == 0 else f"{r['p_value']:.3f}"
            lines.append(f"{name:<{w}}  {acc:<26}  {r['diff']:>+8.4f}  [{r['lo']:+.4f}, {r['hi']:+.4f}]  {pv:>6}")
        else:
            lines.append(f"{name:<{w}}  {acc:<26}  {'-':>8}  {'-':<19}  {'-':>6}")
    return "\n".join(lines)


def format_single(res: dict) -> str:
    """One checkpoint's result as a line: accuracy ± SE over sentences, then the mask-draw SE."""
    per = res["masked_tokens_per_draw"]
    return (f"MLM accuracy on held-out {res['lang']} ({res['split']}): {res['accuracy']:.4f} ± {res['accuracy_se']:.4f} "
            f"(pooled over {res['draws']} mask draw{'s' if res['draws'] != 1 else ''}, seed {res['seed']}; ± SE over "
            f"{res['sentences']} sentences; mask draws ± {res['accuracy_se_draws']:.4f}; {res['masked_tokens']} masked "
            f"real tokens, {round(sum(per) / len(per))} per draw, in {res['blocks']} blocks, "
            f"{res['blocks_skipped_too_long']} too long; loss {res['loss_bits']:.3f} ± {res['loss_bits_se']:.3f} bits)")


def sentences_path(json_path: str) -> str:
    """Where the per-sentence arrays of a ``--json`` result go: next to it, ``.sentences.npz``."""
    base = json_path[:-5] if json_path.endswith(".json") else json_path
    return base + ".sentences.npz"


def _write_json(path, obj):
    from csfair.io import atomic_write

    with atomic_write(path) as fh:
        fh.write(json.dumps(obj, indent=2) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="score one checkpoint")
    which.add_argument("--compare", nargs="+", metavar="NAME=PATH",
                       help="score two or more checkpoints on identical masks and compare them to the reference")
    which.add_argument("--recompare", metavar="NPZ",
                       help="recompute a result or comparison from the per-sentence arrays a --json run saved next to "
                            "it (PATH.sentences.npz); no checkpoint or data needed")
    p.add_argument("--reference", default=None, help="with --compare/--recompare: the reference NAME (default: the first)")
    p.add_argument("--data", help="data-bin/<pair> (with one subdirectory per language)")
    p.add_argument("--lang", help="language subdirectory to score (e.g. fr)")
    p.add_argument("--split", default="test", help="split to score (default: test)")
    p.add_argument("--batch-size", type=int, default=64, help="blocks per forward pass (does not change the masks)")
    p.add_argument("--seed", type=int, default=1,
                   help="the evaluation's masking seed, the same for every checkpoint (default: 1; never the "
                        "checkpoint's training seed)")
    p.add_argument("--draws", type=int, default=5,
                   help="number of mask draws; draw k uses the dataset's epoch k, i.e. masks keyed on "
                        "(seed, k, block index); accuracy pooled over them (default: 5)")
    p.add_argument("--tokens-per-sample", type=int, default=None,
                   help="block size in tokens (default: the checkpoint's; with --compare all must agree)")
    p.add_argument("--n-boot", type=int, default=1000, help="with --compare: bootstrap resamples (default: 1000)")
    p.add_argument("--boot-seed", type=int, default=12345, help="with --compare: bootstrap seed (default: 12345)")
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even when CUDA is available")
    p.add_argument("--json", default=None,
                   help="also write the result (or the comparison table) here as JSON, and the per-sentence arrays "
                        "next to it (PATH.sentences.npz, for --recompare)")
    p.add_argument("--verbose", action="store_true", help="show fairseq's INFO logging (data loading, per draw)")
    args = p.parse_args(argv)
    if not args.verbose:
        for name in ("fairseq", "user_dir"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.reference and not (args.compare or args.recompare):
        p.error("--reference needs --compare or --recompare")
    if not args.recompare and not (args.data and args.lang):
        p.error("--data and --lang are required (except with --recompare)")
    raws, meta = None, None
    try:
        if args.recompare:
            res = recompare(args.recompare, args.reference, args.n_boot, args.boot_seed)
            print(format_compare(res) if "rows" in res else format_single(res))
        elif args.compare:
            res = compare(parse_named(args.compare), args.data, args.lang, args.split, args.reference, args.batch_size,
                          args.seed, args.cpu, args.tokens_per_sample, args.draws, args.n_boot, args.boot_seed)
            raws = res.pop("raws")
            meta = dict({k: res[k] for k in ("data", "lang", "split", "seed", "draws", "reference", "mask_options")},
                        checkpoints={r["name"]: r["checkpoint"] for r in res["rows"]},
                        dict_recorded={r["name"]: r["dict_recorded"] for r in res["rows"]})
            print(format_compare(res))
        else:
            res = evaluate(args.checkpoint, args.data, args.lang, args.split, args.batch_size, args.seed, args.cpu,
                           args.tokens_per_sample, args.draws, keep_raw=bool(args.json))
            if "raw" in res:
                raw = res.pop("raw")
                raw.pop("positions", None)
                raws = {os.path.basename(args.checkpoint): raw}
                meta = dict(result={k: v for k, v in res.items() if k in ("checkpoint", "data", "lang", "split", "seed",
                                                                          "draws", "mask_options", "dict_sha256",
                                                                          "dict_recorded")})
            print(format_single(res))
    except (EvalError, FileNotFoundError) as e:
        print(f"eval_mlm: error: {e}", file=sys.stderr)
        sys.exit(2)
    if args.json:
        _write_json(args.json, res)
        if raws is not None:
            save_sentences(sentences_path(args.json), raws, meta)
            print(f"per-sentence arrays: {sentences_path(args.json)}")
    return res


if __name__ == "__main__":
    main()
