"""scripts/eval_mlm.py: real tokens only, the evaluation's masks for every checkpoint, --compare.

Two tiny real checkpoints: ``tiny_mlm`` (IBM-1 multiview, 60 updates, seed 1) and one trained here
without code-switching (15 updates, seed 7), both on the ``tiny_pair`` data.
"""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, VENV_BIN, run

spec = importlib.util.spec_from_file_location("eval_mlm", ROOT / "scripts" / "eval_mlm.py")
eval_mlm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eval_mlm)


@pytest.fixture(scope="module")
def other_mlm(tiny_pair, tmp_path_factory):
    """A second tiny checkpoint: no code-switching, another training seed (7), 15 updates."""
    d = tmp_path_factory.mktemp("pre_none")
    run([VENV_BIN / "fairseq-train", tiny_pair["bin"], "--user-dir", ROOT / "user_dir", "--task", "codeswitch_masked_lm",
         "--langs", "en,fr", "--cs-mode", "none", "--arch", "cs_roberta_tiny", "--encoder-layers", "2",
         "--encoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256", "--encoder-attention-heads", "2",
         "--criterion", "cs_masked_lm", "--tokens-per-sample", "128", "--sample-break-mode", "complete",
         "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16", "--max-update", "15", "--seed", "7",
         "--save-dir", d, "--no-epoch-checkpoints", "--disable-validation", "--cpu", "--log-format", "simple"])
    return d / "checkpoint_last.pt"


def test_two_checkpoints_are_scored_on_the_same_real_token_positions(tiny_pair, tiny_mlm, other_mlm):
    data = str(tiny_pair["bin"])
    a = eval_mlm.evaluate(str(tiny_mlm), data, "fr", draws=2, batch_size=64, cpu=True, keep_raw=True)
    b = eval_mlm.evaluate(str(other_mlm), data, "fr", draws=2, batch_size=5, cpu=True, keep_raw=True)
    pa, pb = a["raw"]["positions"], b["raw"]["positions"]
    # same blocks, same positions, same targets: other model, other training seed, other batch size
    assert pa.keys() == pb.keys() and len(pa) > 0
    for key in pa:
        assert np.array_equal(pa[key][0], pb[key][0]) and np.array_equal(pa[key][1], pb[key][1]), key
    assert a["mask_digest"] == b["mask_digest"] and a["masked_tokens"] == b["masked_tokens"]
    # the draws differ from each other
    blocks = sorted({blk for _, blk in pa})
    assert any(not np.array_equal(pa[(1, blk)][0], pa[(2, blk)][0]) for blk in blocks)

    # no special symbol is ever a target ...
    model, task, _, _ = eval_mlm.load_checkpoint(str(tiny_mlm), data, "fr", seed=1, cpu=True)
    d = task.source_dictionary
    real = eval_mlm.scored_vocab(d)
    assert not real[[d.bos(), d.eos(), d.pad(), d.unk(), d.index("<mask>")]].any()
    targets = np.concatenate([t for _, t, _ in pa.values()])
    assert real[targets].all()
    # ... while the dataset's masks (keyed on (seed, draw, index)) do select some: exactly those are dropped
    n_special = 0
    for draw in (1, 2):
        task.load_dataset("test", epoch=draw)
        ds = task.dataset("test")
        ds.set_epoch(draw)
        n_real = 0
        for i in range(len(ds)):
            tgt = ds[i]["target"].numpy()
            sel = np.flatnonzero(tgt != d.pad())
            keep = sel[real[tgt[sel]]]
            n_special += len(sel) - len(keep)
            n_real += len(keep)
            assert np.array_equal(keep, pa[(draw, i)][0] if (draw, i) in pa else keep[:0]), (draw, i)
        assert n_real == a["masked_tokens_per_draw"][draw - 1]
    assert n_special > 0

    # per-sentence counts add up to the totals; accuracy per draw = hits / scored positions
    raw = a["raw"]
    assert raw["sent_scored"].sum() == a["masked_tokens"]
    assert raw["sent_correct"].sum() == sum(h.sum() for _, _, h in pa.values())
    for draw in (1, 2):
        hits = np.concatenate([pa[k][2] for k in pa if k[0] == draw])
        assert a["accuracy_per_draw"][draw - 1] == pytest.approx(hits.mean())
    # the headline: accuracy pooled over the draws, its standard error over sentences; the mask-draw SE second
    from csfair.evaluation.stats import ratio_standard_error, standard_error

    assert a["accuracy"] == raw["sent_correct"].sum() / raw["sent_scored"].sum()
    assert a["accuracy_se"] == ratio_standard_error(raw["sent_correct"], raw["sent_scored"]) > 0
    assert a["accuracy_se_draws"] == standard_error(a["accuracy_per_draw"])
    assert raw["sent_loss"].sum() == pytest.approx(sum(d["loss_sum"] for d in raw["per_draw"]))

    # the masking seed is the evaluation's: another --seed, other masks
    c = eval_mlm.evaluate(str(tiny_mlm), data, "fr", draws=1, seed=2, cpu=True)
    assert c["mask_digest"] != a["mask_digest"]


def test_compare_prints_and_writes_a_reproducible_paired_table(tiny_pair, tiny_mlm, other_mlm, tmp_path):
    out = tmp_path / "cmp.json"
    p = run([sys.executable, ROOT / "scripts" / "eval_mlm.py", "--compare", f"cs={tiny_mlm}", f"none={other_mlm}",
             "--data", tiny_pair["bin"], "--lang", "fr", "--draws", "2", "--cpu", "--n-boot", "300", "--json", out])
    assert "cs (ref)" in p.stdout and "none" in p.stdout, p.stdout
    res = json.loads(out.read_text())
    assert res["reference"] == "cs" and [r["name"] for r in res["rows"]] == ["cs", "none"]
    ref, other = res["rows"]
    assert "diff" not in ref
    assert other["diff"] == pytest.approx(other["accuracy"] - ref["accuracy"])
    assert "accuracy ± SE (draws)" in p.stdout and other["accuracy_se"] > 0 and "accuracy_se_draws" in other
    # the per-sentence arrays saved next to the JSON recompute the comparison without the checkpoints
    npz = tmp_path / "cmp.sentences.npz"
    assert npz.exists() and f"per-sentence arrays: {npz}" in p.stdout
    redo = eval_mlm.recompare(str(npz), n_boot=300)
    assert json.loads(json.dumps(redo)) == {k: v for k, v in res.items()}
    assert other["lo"] <= other["diff"] <= other["hi"] and 0.0 <= other["p_value"] <= 1.0
    assert sum(res["masked_tokens_per_draw"]) == ref["masked_tokens"] == other["masked_tokens"]

    # in-process, the other reference: same accuracies (identical masks again), the difference negated
    again = eval_mlm.compare([("cs", str(tiny_mlm)), ("none", str(other_mlm))], str(tiny_pair["bin"]), "fr",
                             reference="none", cpu=True, draws=2, n_boot=300)
    assert again["mask_digest"] == res["mask_digest"]
    rows = {r["name"]: r for r in again["rows"]}
    assert rows["cs"]["accuracy_per_draw"] == ref["accuracy_per_draw"]
    assert rows["none"]["accuracy_per_draw"] == other["accuracy_per_draw"]
    assert rows["cs"]["diff"] == pytest.approx(-other["diff"])
    assert "diff" not in rows["none"]


def test_compare_refuses_checkpoints_of_another_dictionary_or_other_masks(tiny_pair, tiny_mlm, tmp_path):
    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    state["model"]["csfair_provenance._extra_state"]["dict_sha256"] = "0" * 64
    bad_dict = tmp_path / "other_dict.pt"
    torch.save(state, bad_dict)
    p = subprocess.run([sys.executable, ROOT / "scripts" / "eval_mlm.py", "--compare", f"a={tiny_mlm}",
                        f"b={bad_dict}", "--data", tiny_pair["bin"], "--lang", "fr", "--draws", "1", "--cpu"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "other_dict.pt" in p.stderr and "dictionary" in p.stderr, p.stderr[-2000:]

    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    state["cfg"]["task"]["mask_prob"] = 0.3
    other_masks = tmp_path / "other_masks.pt"
    torch.save(state, other_masks)
    with pytest.raises(eval_mlm.EvalError, match=r"different masks.*mask_prob"):
        eval_mlm.compare([("a", str(tiny_mlm)), ("b", str(other_masks))], str(tiny_pair["bin"]), "fr", draws=1,
                         cpu=True)
    with pytest.raises(eval_mlm.EvalError, match="NAME=PATH"):
        eval_mlm.parse_named([f"a={tiny_mlm}", str(tiny_mlm)])
