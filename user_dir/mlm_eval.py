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

This module is the fairseq front end (checkpoint loading, the task's masks, the command line of
scripts/eval_mlm.py); the counts, the metric and the comparisons are csfair.evaluation.mlm's, shared
with the transformers front end (csfair_hf/mlm_eval.py).

Usage:
    python scripts/eval_mlm.py --checkpoint checkpoints/en-fr/ibm1/checkpoint_last.pt \\
        --data data-bin/en-fr --lang fr --split test [--draws 5] [--seed 1] [--json results.json]
    python scripts/eval_mlm.py --compare none=checkpoints/en-fr/none/checkpoint_last.pt \\
        ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt muse=checkpoints/en-fr/muse/checkpoint_last.pt \\
        --data data-bin/en-fr --lang fr --split test [--reference none] [--json compare.json]
    python scripts/eval_mlm.py --recompare compare.sentences.npz [--reference none]   # from the saved arrays
"""
import argparse
import logging
import os
import sys
import time
from argparse import Namespace
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from csfair.evaluation.mlm import (
    EvalError,
    MaskedLMTally,
    compare_runs,
    format_compare,
    format_single,
    parse_named,
    recompare,
    save_sentences,
    sentences_path,
    summarize,
    write_json,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: masking options of the checkpoint's task that decide the masks (with the seed and the blocks)
MASK_OPTIONS = ("tokens_per_sample", "sample_break_mode", "mask_prob", "leave_unmasked_prob", "random_token_prob",
                "mask_multiple_length", "mask_stdev", "mask_whole_words", "freq_weighted_replacement")


#: tasks whose checkpoints are masked LMs over monolingual DATA/<lang> (what eval_mlm scores)
MLM_TASKS = ("codeswitch_masked_lm", "masked_lm")

def scored_vocab(dictionary) -> np.ndarray:
    """bool ``[V]``: the symbol is a real token that may be a target.

    False for fairseq's leading specials (``<s>``, ``<pad>``, ``</s>``, ``<unk>``), ``<mask>`` and
    the ``madeupword*`` padding symbols; True for every other dictionary entry: the complement of
    the symbols the code-switching dataset never substitutes.
    """
    from .data.codeswitch_mask_tokens_dataset import special_mask

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
    from .checkpoint_loading import CheckpointError, load_model_and_task
    from .models.checkpoint_provenance import CodeSwitchProvenanceError

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
        :meth:`csfair.evaluation.mlm.MaskedLMTally.raw`'s dict: ``per_draw`` (``{correct, scored, loss_sum,
        blocks}``), ``blocks_total``, ``sentences`` (block index and sentence number in the block: the stretch
        of a block up to and including its ``</s>``), ``sent_correct`` / ``sent_scored`` / ``sent_loss``,
        ``mask_digest`` and, with ``keep_positions``, ``positions`` per ``(draw, block)``.
    """
    from fairseq import utils

    d = task.source_dictionary
    pad, eos = d.pad(), d.eos()
    real = torch.from_numpy(scored_vocab(d))
    device = next(model.parameters()).device
    real = real.to(device)
    max_positions = utils.resolve_max_positions(task.max_positions(), model.max_positions())
    tally = MaskedLMTally(keep_positions)
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
        tally.start_draw(draw)
        with torch.no_grad():
            for sample in itr:
                if device.type == "cuda":
                    sample = utils.move_to_cuda(sample)
                src, tgt = sample["net_input"]["src_tokens"], sample["target"]
                selected = tgt.ne(pad)
                scored = selected & real[tgt]
                original = torch.where(selected, tgt, src)  # unselected positions are unchanged in the input
                is_eos = original.eq(eos).long()
                sent_no = is_eos.cumsum(1) - is_eos  # </s> closes its own sentence
                rows, cols = scored.nonzero(as_tuple=True)  # row-major, the order of tgt[scored]
                targets = tgt[scored]
                if rows.numel():
                    logits = model(**sample["net_input"], masked_tokens=scored)[0]
                    pos_loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
                    hit = logits.argmax(-1).eq(targets)
                else:
                    hit = torch.zeros(0, dtype=torch.bool, device=tgt.device)
                    pos_loss = torch.zeros(0, device=tgt.device)
                tally.add(sample["id"].cpu().tolist(), rows.cpu().numpy(), cols.cpu().numpy(), targets.cpu().numpy(),
                          hit.cpu().numpy(), pos_loss.double().cpu().numpy(), sent_no[rows, cols].cpu().numpy())
        tally.end_draw()
    return tally.raw(blocks_total)


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


def main(argv=None):
    p = argparse.ArgumentParser(prog="eval_mlm.py", description=__doc__.split("\n\n")[0],
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
        write_json(args.json, res)
        if raws is not None:
            save_sentences(sentences_path(args.json), raws, meta)
            print(f"per-sentence arrays: {sentences_path(args.json)}")
    return res
