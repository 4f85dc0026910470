"""The published-table command end to end on tiny checkpoints (csfair issue 19, sections 1, 2 and 4):
``scripts/recipes/zeroshot.sh`` with two columns of two pretrained checkpoints each (the smallest grid
with a seed-level variance per column: 4 fine-tuning runs; columns of fine-tuning seeds go through the
same tables in tests/test_zeroshot_hf.py), writing tables whose cells show runs and items, the
hierarchical test named in the legend, a forest plot and a manifest (commit, commands, checkpoint
SHA-256s, predictions); run twice, the same tables."""
import json
import os
import shutil
import subprocess
import sys

import torch

from conftest import ROOT, VENV_BIN


def _copy_perturbed(src, dst, seed):
    """Another "pretraining seed" of the tiny checkpoint: every weight matrix moved by noise (sd 0.05), so that
    its fine-tuned predictions differ (other bytes, other SHA-256)."""
    state = torch.load(src, map_location="cpu", weights_only=False)
    g = torch.Generator().manual_seed(seed)
    for k, v in state["model"].items():
        if torch.is_tensor(v) and v.is_floating_point() and v.dim() == 2:
            state["model"][k] = v + 0.05 * torch.randn(v.shape, generator=g, dtype=v.dtype)
    torch.save(state, dst)
    return dst


def _recipe(args, tiny_pair):
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    p = subprocess.run(["bash", str(ROOT / "scripts" / "recipes" / "zeroshot.sh"), *map(str, args), "--",
                        "--max-train", "64", "--max-eval", "24", "--epochs", "1", "--lr", "1e-3", "--n-boot", "200",
                        "--spm", str(tiny_pair["spm"]), "--dict", str(tiny_pair["dict"])],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout


def test_recipe_tables_forest_plot_and_manifest(tiny_pair, tiny_mlm, tmp_path):
    from csfair.io import sha256_file

    a1 = shutil.copyfile(tiny_mlm, tmp_path / "a1.pt")
    a2, b1, b2 = (_copy_perturbed(tiny_mlm, tmp_path / f"{n}.pt", k) for k, n in enumerate(("a2", "b1", "b2"), 1))
    out = tmp_path / "out"
    args = ["--tasks", "pos", "--langs", "fr,hi", "--seeds", "1", "--reference", "a", "--out", out,
            f"a={a1}", f"a={a2}", f"b={b1}", f"b={b2}"]
    first = _recipe(args, tiny_pair)
    tables = out / "tables"
    md = (tables / "pos.md").read_text()
    # the title names the metric and what the "test" sets are; cells show seeds and items
    assert "word-level accuracy" in md and "the target languages' UD dev sets" in md
    assert "(n=2 in 2 ckpts, 24 items)" in md
    assert "hierarchical bootstrap (runs and test items" in md  # the legend names the test
    cells = json.loads((tables / "pos.json").read_text())
    name = {k.split(" (")[0]: k for k in cells["fr"]}  # headers carry the parameter count: "a (0.4M)"
    assert sorted(name) == ["a", "b"]
    # Hindi under the en-fr vocabulary: nearly every word is nothing but <unk>, a note; the value stays in
    assert f"hi / {name['a']}: " in md and "% of the words are entirely <unk>" in md
    assert cells["hi"][name["a"]]["n"] == 2 and cells["hi"][name["a"]]["unk_word_rate"] > 0.9
    assert cells["fr"][name["b"]]["checkpoints"] == 2 and cells["fr"][name["b"]]["groups"] == [0, 1]
    sig = cells["fr"][name["b"]]["sig"]
    assert sig["level_a"] == sig["level_b"] == "pretraining checkpoints" and sig["units_b"] == 2 and sig["runs_a"] == 2
    assert sig["lo"] < sig["diff"] < sig["hi"] and sig["n_items"] == 24 and sig["se"] > 0  # the runs differ
    png = (tables / "pos.forest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    man = json.loads((tables / "pos.manifest.json").read_text())
    sys.path.insert(0, str(ROOT / "scripts"))
    import zeroshot

    assert man["commit"] == zeroshot.code_version() and man["command"].startswith("python scripts/zeroshot.py ")
    assert man["recipe_command"].startswith("bash scripts/recipes/zeroshot.sh --tasks pos")
    cols = {(c["column"], c["checkpoint_number"]): c for c in man["columns"]}
    keys = [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert sorted(cols) == keys and [cols[k]["sha256"] for k in keys] == [sha256_file(p) for p in (a1, a2, b1, b2)]
    assert man["significance"]["function"] == "csfair.evaluation.stats.hierarchical_bootstrap"
    assert man["significance"]["n_boot"] == 200 and man["seeds"] == [1]
    assert len(man["runs"]) == 4 and all((out / r["predictions"]).exists() for r in man["runs"])  # 4 checkpoints x 1 seed
    assert man["files"]["forest_plot"] == "tables/pos.forest.png" and (out / man["files"]["items"]).exists()
    # the same command again: every run served from the results, the same tables
    again = _recipe(args, tiny_pair)
    assert again.count("done before") == 4 and (tables / "pos.md").read_text() == md
    assert "| fr |" in first and "| fr |" in again
