"""scripts/run_mlm_cs.py end to end on the small local BERT: Trainer with the code-switching collator,
a saved model that reloads with from_pretrained, and the held-out MLM accuracy of scripts/eval_mlm.py."""
import json
import sys

import pytest

from conftest import ROOT


def test_run_mlm_cs_trains_saves_and_scores(hf_models, hf_tables, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import run_mlm_cs
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from csfair_hf.mlm_eval import score_mlm
    from csfair_hf.tokenization import tokenize_lines, read_lines

    lines = read_lines(hf_models["text_en"])
    # the held-out lines are not in this run's training lines
    (tmp_path / "train.txt").write_text("\n".join(lines[:256]) + "\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(lines[-80:]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    report = run_mlm_cs.main([
        "--model_name_or_path", str(hf_models["bert"]), "--train_file", str(tmp_path / "train.txt"),
        "--validation_file", str(tmp_path / "valid.txt"), "--line_by_line", "--max_seq_length", "64",
        "--cs_table", str(hf_tables["bert"]), "--cs_mode", "multiview", "--output_dir", str(out), "--do_train",
        "--max_steps", "4", "--per_device_train_batch_size", "16", "--learning_rate", "1e-3", "--logging_steps", "2",
        "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--eval_draws", "2", "--seed", "3",
    ])
    printed = capsys.readouterr().out
    assert "MLM accuracy (before)" in printed and "MLM accuracy (after)" in printed
    before, after = report["mlm_before"], report["mlm_after"]
    # the same masks for both models (the evaluation's seed, not the model's), specials never scored
    assert before["mask_digest"] == after["mask_digest"] and after["masked_tokens"] > 0
    assert report["train"]["train_loss"] > 0 and report["cs_rates"]["replaced"] > 0
    assert 0 < report["cs_rates"]["cs_word"] < 0.2
    saved = json.loads((out / "csfair_mlm.json").read_text())
    assert saved["tables"][0]["checksum"] and saved["mlm_after"]["accuracy"] == after["accuracy"]

    # a normal transformers model: reloads, and scores the same on the same masks
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert model.config.model_type == "bert" and tok.is_fast
    raw = score_mlm(model, tok, tokenize_lines(tok, lines[-80:], 64), draws=2, seed=1)
    assert raw["mask_digest"] == after["mask_digest"]
    # the metric of scripts/eval_mlm.py: headline SE over sentences, the mask-draw spread second
    from csfair.evaluation.stats import ratio_standard_error

    assert after["accuracy_se"] == pytest.approx(ratio_standard_error(raw["sent_correct"], raw["sent_scored"]))
    assert "accuracy_se_draws" in after and raw["sent_loss"].sum() == pytest.approx(sum(d["loss_sum"] for d in raw["per_draw"]))
    assert [d["correct"] for d in raw["per_draw"]] == [round(a * d["scored"]) for a, d in
                                                     zip(after["accuracy_per_draw"], raw["per_draw"])]
