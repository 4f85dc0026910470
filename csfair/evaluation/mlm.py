"""Held-out masked-LM accuracy (Visser et al., 2025, Table 3): the metric, its uncertainty and comparisons,
framework-free; the fairseq front end is ``user_dir/mlm_eval.py`` (``scripts/eval_mlm.py``), the
transformers one ``csfair_hf/mlm_eval.py`` (``scripts/run_mlm_cs.py``).

What is scored. A front end masks held-out text by the procedure its models are trained with (fairseq's
``MaskTokensDataset`` through the task's dataset, or ``transformers.DataCollatorForLanguageModeling``),
code-switching off, with the evaluation's own seed (draw ``k`` of ``draws``), so that the masks depend
neither on the model nor on the batch size. A position counts only when its original token is a real
token (never ``<s>``, ``</s>``, ``<pad>``, ``<unk>``, ``<mask>`` or padding symbols). The front end hands
each batch's scored positions, targets, hits and per-position losses to a :class:`MaskedLMTally`,
which keeps the counts per draw and per sentence and a SHA-256 digest of every draw's scored positions
and targets (``mask_digest``: two runs are compared only on identical masks).

Uncertainty. :func:`summarize`: accuracy = correct / scored pooled over the draws; its headline
standard error is over test sentences (``accuracy_se``, :func:`csfair.evaluation.stats.ratio_standard_error`),
the spread over mask draws (``accuracy_se_draws``) the second figure; the loss likewise.
:func:`compare_runs`: each run against a reference by :func:`csfair.evaluation.stats.paired_bootstrap`
over sentences. :func:`save_sentences`/:func:`recompare`: the per-sentence arrays, and a comparison
recomputed from them without the checkpoints.
"""
import hashlib
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


class EvalError(Exception):
    """A checkpoint, the data or a comparison cannot be evaluated as asked (message says why)."""


class MaskedLMTally:
    """The counts of one masked-LM evaluation over its mask draws (what both front ends accumulate).

    Call :meth:`start_draw`, then :meth:`add` for every batch of the draw (every item, also those with
    no scored position: the digest covers them), then :meth:`end_draw`; :meth:`raw` at the end.

    Args:
        keep_positions: also keep every draw's scored positions, targets and hits per item (``raw()["positions"]``).
    """

    def __init__(self, keep_positions: bool = False):
        self.per_draw: List[dict] = []
        self._digest = hashlib.sha256()
        self._sent: Dict[Tuple[int, int], List[float]] = {}  # (item, sentence) -> [correct, scored, loss]
        self._positions = {} if keep_positions else None
        self._draw, self._items = None, {}

    def start_draw(self, draw: int) -> None:
        """Begin mask draw ``draw`` (1-based)."""
        self._draw, self._items = draw, {}

    def add(self, items: Sequence[int], rows, cols, targets, hit, loss, sentence=None) -> None:
        """One batch's scored positions.

        Args:
            items: ``[B]`` the item (block or example) index of each batch row; an item once per draw.
            rows, cols: int ``[m]``: the scored positions (row in the batch, position in the row), row-major.
            targets: int ``[m]``: the original token ids at those positions.
            hit: bool ``[m]``: the argmax prediction is the target.
            loss: float ``[m]``: the cross-entropy in nats at each position.
            sentence: int ``[m]``: the sentence number inside its item (None: every item is one sentence).
        """
        rows = np.asarray(rows)
        sentence = np.zeros(len(rows), dtype=np.int64) if sentence is None else np.asarray(sentence)
        cols, targets, hit, loss = (np.asarray(x) for x in (cols, targets, hit, loss))
        for r, item in enumerate(items):
            sel = rows == r
            self._items[int(item)] = (cols[sel].astype(np.int64), targets[sel].astype(np.int64), hit[sel],
                                      loss[sel].astype(np.float64), sentence[sel])

    def end_draw(self) -> None:
        """Close the draw: its totals (``correct``, ``scored``, ``loss_sum`` in nats, ``blocks``: items seen),
        the digest of its positions and targets (by item index), and the per-sentence counts."""
        draw, correct, scored, losses = self._draw, 0, 0, []
        for item in sorted(self._items):
            pos, tg, hit, loss, sent = self._items[item]
            self._digest.update(np.asarray([draw, item, pos.size], dtype=np.int64).tobytes())
            self._digest.update(pos.tobytes())
            self._digest.update(tg.tobytes())
            if self._positions is not None:
                self._positions[(draw, item)] = (pos, tg, hit)
            for s, h, lo in zip(sent.tolist(), hit.tolist(), loss.tolist()):
                st = self._sent.setdefault((item, s), [0, 0, 0.0])
                st[0] += int(h)
                st[1] += 1
                st[2] += lo
            correct += int(hit.sum())
            scored += int(pos.size)
            losses += loss.tolist()
        self.per_draw.append(dict(correct=correct, scored=scored, loss_sum=math.fsum(losses), blocks=len(self._items)))
        self._draw, self._items = None, {}

    def raw(self, blocks_total: int) -> dict:
        """The evaluation's counts.

        Args:
            blocks_total: items of the split (scored or not: blocks too long for the model are skipped).

        Returns:
            dict with ``per_draw`` (list of ``{correct, scored, loss_sum, blocks}``), ``blocks_total``,
            ``sentences`` (int64 ``[n, 2]``: item and sentence number in the item of every sentence with a
            scored token in some draw, sorted), ``sent_correct`` / ``sent_scored`` (int64 ``[n]``, summed
            over the draws), ``sent_loss`` (float64 ``[n]``, nats summed over the sentence's scored positions
            and the draws), ``mask_digest`` (hex SHA-256 of every draw's scored positions and targets, by
            item) and, with ``keep_positions``, ``positions``: ``{(draw, item): (positions int64 [m],
            targets int64 [m], correct bool [m])}``.
        """
        keys = sorted(self._sent)
        out = dict(
            per_draw=self.per_draw, blocks_total=blocks_total,
            sentences=np.asarray(keys, dtype=np.int64).reshape(-1, 2),
            sent_correct=np.asarray([self._sent[k][0] for k in keys], dtype=np.int64),
            sent_scored=np.asarray([self._sent[k][1] for k in keys], dtype=np.int64),
            sent_loss=np.asarray([self._sent[k][2] for k in keys], dtype=np.float64),
            mask_digest=self._digest.hexdigest(),
        )
        if self._positions is not None:
            out["positions"] = self._positions
        return out


def summarize(raw: dict) -> dict:
    """Accuracy and loss pooled over the draws with their standard errors over sentences (the headline) and
    over draws (the mask-draw spread), per-draw values and token counts.

    Args:
        raw: :meth:`MaskedLMTally.raw`'s dict (a front end's ``score_draws``/``score_mlm``).

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
        raws: ``{name: MaskedLMTally.raw()'s dict}`` (one entry for a single evaluation).
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
    """``({name: raw}, meta)`` of a :func:`save_sentences` file (``raw`` as :meth:`MaskedLMTally.raw` returns it,
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


def compare_runs(runs: Dict[str, dict], meta: dict, n_boot: int = 1000, boot_seed: int = 12345) -> dict:
    """The comparison table of runs scored on identical masks (from a front end's ``evaluate`` or saved arrays).

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


def write_json(path, obj):
    """``obj`` as indented JSON (atomic write)."""
    from csfair.io import atomic_write

    with atomic_write(path) as fh:
        fh.write(json.dumps(obj, indent=2) + "\n")
