"""The published-table command end to end on tiny checkpoints (csfair issue 19, sections 1, 2 and 4):
``scripts/recipes/zeroshot.sh`` with a reference column and a column of two pretrained checkpoints,
writing tables whose cells show seeds and items, the hierarchical test named in the legend, a
forest plot and a manifest (commit, commands, checkpoint SHA-256s, predictions), outside the
repository's tracked files; run twice, the same tables."""
import json
import os
import shutil
import subprocess
import sys

import torch

from conftest import ROOT, VENV_BIN


def _copy_perturbed(src, dst, eps):
    state = torch.load(src, map_location="cpu", weights_only=False)
    k = next(k for k, v in state["model"].items() if v.is_floating_point() and v.dim() == 2)
    state["model"][k] = state["model"][k] + eps
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

    a = shutil.copyfile(tiny_mlm, tmp_path / "a.pt")
    b1 = _copy_perturbed(tiny_mlm, tmp_path / "b1.pt", 0.01)
    b2 = _copy_perturbed(tiny_mlm, tmp_path / "b2.pt", -0.01)
    out = tmp_path / "out"
    args = ["--tasks", "pos", "--langs", "fr,hi", "--seeds", "1,2", "--reference", "a", "--out", out,
            f"a={a}", f"b={b1}", f"b={b2}"]
    first = _recipe(args, tiny_pair)
    tables = out / "tables"
    md = (tables / "pos.md").read_text()
    # the title names the metric and what the "test" sets are; cells show seeds and items
    assert "word-level accuracy" in md and "the target languages' UD dev sets" in md
    assert "(n=2, 24 items)" in md and "(n=4 in 2 ckpts, 24 items)" in md
    assert "hierarchical bootstrap (runs and test items" in md  # the legend names the test
    cells = json.loads((tables / "pos.json").read_text())
    name = {k.split(" (")[0]: k for k in cells["fr"]}  # headers carry the parameter count: "a (0.4M)"
    assert sorted(name) == ["a", "b"]
    # Hindi under the en-fr vocabulary: nearly every word is nothing but <unk>, a note; the value stays in
    assert f"hi / {name['a']}: " in md and "% of the words are entirely <unk>" in md
    assert cells["hi"][name["a"]]["n"] == 2 and cells["hi"][name["a"]]["unk_word_rate"] > 0.9
    assert cells["fr"][name["b"]]["checkpoints"] == 2 and cells["fr"][name["b"]]["n"] == 4
    sig = cells["fr"][name["b"]]["sig"]
    assert sig["level_b"] == "pretraining checkpoints" and sig["units_b"] == 2 and sig["runs_a"] == 2
    assert sig["lo"] <= sig["diff"] <= sig["hi"] and sig["n_items"] == 24
    png = (tables / "pos.forest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    man = json.loads((tables / "pos.manifest.json").read_text())
    sys.path.insert(0, str(ROOT / "scripts"))
    import zeroshot

    assert man["commit"] == zeroshot.code_version() and man["command"].startswith("python scripts/zeroshot.py ")
    assert man["recipe_command"].startswith("bash scripts/recipes/zeroshot.sh --tasks pos")
    cols = {(c["column"], c["checkpoint_number"]): c for c in man["columns"]}
    assert set(cols) == {("a", None), ("b", 1), ("b", 2)}
    assert [cols[k]["sha256"] for k in (("a", None), ("b", 1), ("b", 2))] == [sha256_file(p) for p in (a, b1, b2)]
    assert man["significance"]["function"] == "csfair.evaluation.stats.hierarchical_bootstrap"
    assert man["significance"]["n_boot"] == 200 and man["seeds"] == [1, 2]
    assert len(man["runs"]) == 12 and all((out / r["predictions"]).exists() for r in man["runs"])  # 3 x 2 seeds x 2
    assert man["files"]["forest_plot"] == "tables/pos.forest.png" and (out / man["files"]["items"]).exists()
    # the same command again: every run served from the results, the same tables
    again = _recipe(args, tiny_pair)
    assert again.count("done before") == 6 and (tables / "pos.md").read_text() == md
    assert "| fr |" in first and "| fr |" in again
