"""Training through the real fairseq-train CLI with --user-dir user_dir (tiny real data)."""
import json
import re
import sys

from conftest import ROOT, VENV_BIN, run

COMMON = ["--arch", "cs_roberta_tiny", "--encoder-layers", "2", "--tokens-per-sample", "64",
          "--sample-break-mode", "complete", "--optimizer", "adam", "--lr", "5e-4", "--lr-scheduler", "fixed",
          "--batch-size", "8", "--log-format", "simple", "--log-interval", "1", "--seed", "7", "--num-workers", "0",
          "--no-save", "--disable-validation", "--cpu"]


def train_losses(log: str):
    return [float(x) for x in re.findall(r"train_inner \| epoch \d+: +\d+ / \d+ loss=([0-9.]+)", log)]


def test_smoke_training_multiview_then_held_out_mlm_accuracy(tiny_pair, tmp_path):
    save = tmp_path / "ckpt"
    args = [VENV_BIN / "fairseq-train", tiny_pair["bin"], "--user-dir", ROOT / "user_dir",
            "--task", "codeswitch_masked_lm", "--langs", "en,fr", "--cs-mode", "multiview", "--cs-table-name", "ibm1",
            "--criterion", "cs_masked_lm", *COMMON, "--max-update", "12", "--log-interval", "4",
            "--save-dir", save]
    args.remove("--no-save")
    p = run(args)
    log = p.stdout + p.stderr
    # per-epoch/interval metrics: code-switched instance and word fractions, MLM accuracy
    m = re.search(r"\| train \| epoch 001 \|.*accuracy ([0-9.]+).*cs_inst ([0-9.]+).*cs_word ([0-9.]+)", log)
    assert m, log[-3000:]
    acc, inst, word = map(float, m.groups())
    assert 0.0 <= acc <= 1.0 and 0.3 < inst < 0.7 and 0.0 < word < 0.1
    ckpt = save / "checkpoint_last.pt"
    assert ckpt.exists()
    out = tmp_path / "mlm.json"
    p = run([sys.executable, ROOT / "scripts" / "eval_mlm.py", "--checkpoint", ckpt, "--data", tiny_pair["bin"],
             "--lang", "fr", "--split", "test", "--json", out])
    assert "MLM accuracy on held-out fr (test)" in p.stdout
    res = json.loads(out.read_text())
    assert 0.0 <= res["accuracy"] <= 1.0 and res["masked_tokens"] > 500 and res["lang"] == "fr"


def test_cs_mode_none_has_the_losses_of_stock_masked_lm(tiny_pair):
    """Same data, seed and model: the stock task and ours with --cs-mode none log identical losses."""
    stock = run([VENV_BIN / "fairseq-train", tiny_pair["bin"] / "fr", "--task", "masked_lm",
                 "--user-dir", ROOT / "user_dir", "--criterion", "masked_lm", *COMMON, "--max-update", "6"])
    ours = run([VENV_BIN / "fairseq-train", tiny_pair["bin"], "--user-dir", ROOT / "user_dir",
                "--task", "codeswitch_masked_lm", "--langs", "fr", "--cs-mode", "none",
                "--criterion", "masked_lm", *COMMON, "--max-update", "6"])
    a, b = train_losses(stock.stdout + stock.stderr), train_losses(ours.stdout + ours.stderr)
    assert len(a) == 6 and a == b, (a, b)
    # multiview changes the inputs and so the losses (same masks, code-switched context)
    cs = run([VENV_BIN / "fairseq-train", tiny_pair["bin"], "--user-dir", ROOT / "user_dir",
              "--task", "codeswitch_masked_lm", "--langs", "fr", "--cs-mode", "multiview",
              "--cs-tables", "fr:tables/ibm1.fr-en", "--cs-word-prob", "0.3",
              "--criterion", "masked_lm", *COMMON, "--max-update", "6"])
    assert train_losses(cs.stdout + cs.stderr) != a


def test_lexicon_cli_inspect_prints_three_columns(tiny_pair):
    p = run([VENV_BIN / "csfair-lexicon", "inspect", tiny_pair["bin"] / "tables" / "ibm1.en-fr", "woman"])
    rows = [line.split("\t") for line in p.stdout.splitlines()]
    assert rows and all(len(r) == 3 for r in rows)
    assert rows[0][0] == "femme"
    assert abs(sum(float(r[2]) for r in rows) - 1.0) < 2e-3
    assert all(float(r[1]) > 0.02 for r in rows)
