"""scripts/run_mlm_cs.py end to end on the small local BERT and real English text: the transformers path
with the fairseq path's guarantees (csfair issue 23).

One uninterrupted run (0 DataLoader workers) is the reference; the same run with 2 workers, from a JSON
copy of the text and with ``remove_unused_columns`` left on, must draw identically (the recorded draws,
the per-step losses and the code-switching rates); a run killed by SIGKILL right after a checkpoint
and resumed must continue exactly as the reference did. Tiny: 48 lines, batch 8, 2 epochs (12 steps).
"""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, VENV_BIN

SCRIPTS = str(ROOT / "scripts")


def _run_mlm_cs():
    if SCRIPTS not in sys.path:
        sys.path.insert(0, SCRIPTS)
    import run_mlm_cs

    return run_mlm_cs


def _argv(data, out, workers, *extra):
    return ["--model_name_or_path", str(data["model"]), "--train_file", str(data["train"]),
            "--validation_file", str(data["valid"]), "--line_by_line", "--cs_table", str(data["table"]),
            "--cs_mode", "multiview", "--cs_word_prob", "0.2", "--output_dir", str(out), "--do_train", "--do_eval",
            "--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3",
            "--logging_steps", "1", "--report_to", "none", "--use_cpu", "--eval_draws", "2", "--seed", "3",
            "--eval_strategy", "steps", "--eval_steps", "6", "--record_draws", "--disable_tqdm", "true",
            "--dataloader_num_workers", str(workers), "--cache_dir", str(data["cache"]), *extra]


def _draws(out):
    return (out / "draws.tsv").read_text().splitlines()


@pytest.fixture(scope="module")
def mlm_data(hf_models, hf_tables, tmp_path_factory):
    """The small BERT, its en->es table, 48 training and 24 held-out lines as text and JSON files."""
    from csfair_hf.tokenization import read_lines

    d = tmp_path_factory.mktemp("run_mlm_cs")
    lines = read_lines(hf_models["text_en"])
    (d / "train.txt").write_text("\n".join(lines[:48]) + "\n", encoding="utf-8")
    with open(d / "train.json", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": i, "text": ln}, ensure_ascii=False) + "\n" for i, ln in enumerate(lines[:48]))
    (d / "valid.txt").write_text("\n".join(lines[-24:]) + "\n", encoding="utf-8")
    (d / "valid.json").write_text("".join(json.dumps({"text": ln}) + "\n" for ln in lines[-24:]), encoding="utf-8")
    return dict(model=hf_models["bert"], table=hf_tables["bert"], train=d / "train.txt", valid=d / "valid.txt",
                cache=d / "cache", lines=lines, dir=d)


@pytest.fixture(scope="module")
def mlm_runs(mlm_data):
    """The reference run (0 workers, text file) and the 2-worker run (JSON file, remove_unused_columns on)."""
    data, d = mlm_data, mlm_data["dir"]
    run = _run_mlm_cs()
    ref = run.main(_argv(data, d / "w0", 0, "--save_strategy", "no", "--remove_unused_columns", "false"))
    jdata = dict(data, train=d / "train.json", valid=d / "valid.json")
    w2 = run.main(_argv(jdata, d / "w2", 2, "--save_strategy", "no"))
    return dict(data=data, ref=ref, w2=w2, ref_dir=d / "w0", w2_dir=d / "w2")


def test_draws_fresh_every_epoch_and_identical_across_workers(mlm_runs):
    """Keyed draws: with 0 and 2 workers the same masks and substitutions per (epoch, example) and the same
    losses; every epoch draws anew; the rates, counted from the batches, are nonzero and equal."""
    ref, w2 = mlm_runs["ref"], mlm_runs["w2"]
    a, b = _draws(mlm_runs["ref_dir"]), _draws(mlm_runs["w2_dir"])
    assert len(a) == 1 + 2 * 48 and a == b  # header + every example of both epochs, in the same order
    by = {}
    for row in a[1:]:
        step, epoch, index, inp, lab = row.split("\t")
        by.setdefault(int(index), {})[int(epoch)] = (inp, lab)
    assert sorted(by) == list(range(48)) and all(sorted(v) == [0, 1] for v in by.values())
    same = sum(v[0] == v[1] for v in by.values())
    assert same <= 4, f"{same} of 48 examples drew the same masks and substitutions in both epochs"
    assert [h["loss"] for h in ref["loss_log"]] == [h["loss"] for h in w2["loss_log"]]
    assert len(ref["loss_log"]) == 12
    r = ref["cs_rates"]
    assert r == w2["cs_rates"] and r["instances"] == 96 and r["replaced"] > 0 and 0 < r["cs_inst"] < 1
    assert set(r) >= {"cs_inst", "cs_word", "cs_same", "cs_tok", "cs_cut"}
    # logged with the loss at every step (the window rates add up to the totals' instances)
    state = json.loads((mlm_runs["ref_dir"] / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert all({"cs_inst", "cs_word", "cs_tok"} <= set(h) for h in logged)
    assert mlm_runs["w2"]["mlm_after"]["mask_digest"] == ref["mlm_after"]["mask_digest"]


def test_trains_saves_and_scores(mlm_runs, capsys):
    """A normal transformers model and tokenizer come out; the held-out MLM metric of scripts/eval_mlm.py
    (same masks before and after, specials never scored) during training (--eval_strategy) and after;
    run_mlm.py's result files."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from csfair_hf.mlm_eval import score_mlm
    from csfair_hf.tokenization import tokenize_lines

    ref, out = mlm_runs["ref"], mlm_runs["ref_dir"]
    before, after = ref["mlm_before"], ref["mlm_after"]
    assert before["mask_digest"] == after["mask_digest"] and after["masked_tokens"] > 0
    assert ref["train"]["train_loss"] > 0 and ref["examples_unit"] == "lines" and ref["train_examples"] == 48
    saved = json.loads((out / "csfair_mlm.json").read_text())
    assert saved["tables"][0]["checksum"] and saved["mlm_after"]["accuracy"] == after["accuracy"]
    results = {f: json.loads((out / f).read_text()) for f in ("all_results.json", "train_results.json", "eval_results.json")}
    assert results["eval_results.json"]["eval_accuracy"] == after["accuracy"]
    assert results["all_results.json"]["train_samples"] == 48 and "eval_accuracy" in results["all_results.json"]
    state = json.loads((out / "trainer_state.json").read_text())
    evals = [h for h in state["log_history"] if "eval_accuracy" in h]
    assert [h["step"] for h in evals] == [6, 12]  # --eval_steps 6 during training
    assert evals[-1]["eval_accuracy"] == after["accuracy"]  # the final --do_eval scores the same model

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert model.config.model_type == "bert" and tok.is_fast
    raw = score_mlm(model, tok, tokenize_lines(tok, mlm_runs["data"]["lines"][-24:], 128), draws=2, seed=1)
    assert raw["mask_digest"] == after["mask_digest"]
    # the metric of scripts/eval_mlm.py: headline SE over sentences, the mask-draw spread second
    from csfair.evaluation.stats import ratio_standard_error

    assert after["accuracy_se"] == pytest.approx(ratio_standard_error(raw["sent_correct"], raw["sent_scored"]))
    assert "accuracy_se_draws" in after and raw["sent_loss"].sum() == pytest.approx(sum(d["loss_sum"] for d in raw["per_draw"]))
    assert [d["correct"] for d in raw["per_draw"]] == [round(a * d["scored"]) for a, d in
                                                     zip(after["accuracy_per_draw"], raw["per_draw"])]


def test_killed_run_resumes_exactly(mlm_runs, tmp_path):
    """SIGKILL right after the checkpoint of step 8 (2 batches into epoch 2; 2 persistent workers, which
    keep their dataset copy across epochs), then --resume_from_checkpoint: steps 9-12 have the
    reference's losses and draws, and the final rates count the whole run (restored from the checkpoint)."""
    data, ref = mlm_runs["data"], mlm_runs["ref"]
    out = tmp_path / "killed"
    argv = _argv(data, out, 2, "--save_steps", "4", "--dataloader_persistent_workers", "true")
    killer = tmp_path / "kill_after_save.py"
    killer.write_text(
        "import os, signal, sys\n"
        f"sys.path.insert(0, {SCRIPTS!r})\n"
        "import run_mlm_cs\n"
        "from transformers import TrainerCallback\n"
        "class Kill(TrainerCallback):\n"
        "    def on_save(self, args, state, control, **kw):\n"
        "        if state.global_step == 8:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "run_mlm_cs.main(sys.argv[1:], callbacks=[Kill()])\n")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    p = subprocess.run([str(VENV_BIN / "python"), str(killer), *argv], capture_output=True, text=True, env=env)
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    assert (out / "checkpoint-8" / "trainer_state.json").exists() and not (out / "model.safetensors").exists()
    run = _run_mlm_cs()
    with pytest.raises(SystemExit, match="resume_from_checkpoint true"):
        run.main(argv)  # a run directory with checkpoints is not silently restarted
    res = run.main(argv + ["--resume_from_checkpoint", "true"])
    assert res["resumed_from"].endswith("checkpoint-8")
    assert len(res["loss_log"]) == 12 and res["loss_log"] == ref["loss_log"]  # 1-8 restored, 9-12 trained again
    assert _draws(out) == _draws(mlm_runs["ref_dir"])  # killed run's steps 1-8, then the resumed 9-12
    assert res["cs_rates"] == ref["cs_rates"]
    assert res["mlm_after"]["accuracy"] == ref["mlm_after"]["accuracy"]


def test_blocks_split_and_sample_counts(mlm_data, tmp_path, capsys):
    """run_mlm.py's defaults: lines grouped into blocks of the model's length (130 positions, tokenizer
    128), the validation set cut from the training rows when none is given (its near-copies in the
    training rows dropped, re-cased ones included), --max_train_samples counting blocks."""
    data = mlm_data
    lines = data["lines"]
    # the first 10% (20 rows) hold 10 copies of training rows, 5 of them re-cased and re-spaced
    rows = lines[:5] + [" ".join(ln.upper().split()) for ln in lines[5:10]] + lines[190:200] + lines[:180]
    train = tmp_path / "text.tok"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = _run_mlm_cs().main([
        "--model_name_or_path", str(data["model"]), "--train_file", str(train), "--validation_split_percentage", "10",
        "--max_train_samples", "5", "--output_dir", str(tmp_path / "out"), "--do_train", "--do_eval", "--max_steps", "1",
        "--per_device_train_batch_size", "5", "--report_to", "none", "--use_cpu", "--eval_draws", "1", "--eval_before",
        "false", "--save_strategy", "no", "--cache_dir", str(data["cache"]), "--disable_tqdm", "true"])
    printed = capsys.readouterr().out
    assert res["data"]["max_seq_length"] == 128 and res["examples_unit"] == "blocks" and res["train_examples"] == 5
    split = res["validation_split"]
    assert split["validation_split_percentage"] == 10 and 10 <= split["validation_copies_dropped"] < 20
    assert "5 training and" in printed and "blocks of 128 tokens" in printed
    assert re.search(r"MLM accuracy \(after\): .* SE over \d+ blocks;", printed), printed
    assert res["cs_rates"] is None and res["mlm_after"]["blocks"] == res["eval_examples"] > 0


def test_help_options_and_offline_error(hf_models, tmp_path, capsys, monkeypatch):
    """--help prints (no unescaped %); a hub id that is neither a directory nor cached fails offline with
    the installed huggingface_hub's download command; a table for another tokenizer is refused."""
    import huggingface_hub.constants

    from csfair_hf.mlm_data import download_command

    run = _run_mlm_cs()
    with pytest.raises(SystemExit) as e:
        run.main(["--help"])
    assert e.value.code == 0 and "--max_train_samples" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (tmp_path / "t.txt").write_text("a line\n")
    cmd = download_command("csfair-test/no-such-model")
    assert cmd == "hf download csfair-test/no-such-model"  # huggingface_hub 2.x has only the `hf` CLI
    with pytest.raises(SystemExit, match=f"`{cmd}`"):
        run.main(["--model_name_or_path", "csfair-test/no-such-model", "--train_file", str(tmp_path / "t.txt"),
                  "--do_train", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="nothing to do"):
        run.main(["--model_name_or_path", str(hf_models["bert"]), "--output_dir", str(tmp_path / "o")])


def test_dataset_name_local_directory_and_loading_errors(hf_models, tmp_path, monkeypatch):
    """--dataset_name reads a local dataset directory (train/validation splits from its files); an empty
    or missing file and, offline, an uncached dataset id are clear errors (the last with the download
    command of the installed huggingface_hub)."""
    import datasets
    import huggingface_hub.constants

    from csfair_hf.mlm_data import load_raw_datasets
    from csfair_hf.tokenization import read_lines

    lines = read_lines(hf_models["text_en"], limit=30)
    d = tmp_path / "ds"
    d.mkdir()
    (d / "train.txt").write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    (d / "validation.txt").write_text("\n".join(lines[20:]) + "\n", encoding="utf-8")
    raw, column, info = load_raw_datasets(dataset_name=str(d), cache_dir=str(tmp_path / "cache"))
    assert column == "text" and raw["train"]["text"] == lines[:20] and raw["validation"]["text"] == lines[20:]
    assert info["validation_split_percentage"] == 0  # the dataset's own validation split is used
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt: empty file"):
        load_raw_datasets(train_file=str(tmp_path / "empty.txt"))
    with pytest.raises(FileNotFoundError, match="nope.txt: no such file"):
        load_raw_datasets(train_file=str(tmp_path / "nope.txt"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="`hf download csfair-test/no-such-dataset --repo-type dataset`"):
        load_raw_datasets(dataset_name="csfair-test/no-such-dataset", cache_dir=str(tmp_path / "cache"))
