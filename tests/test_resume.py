"""Exact resume: kill training mid-epoch, restart from checkpoint_last.pt, get the same run.

Also: a checkpoint refuses to resume with another substitution table, naming both.
"""
import json
import os
import signal
import subprocess
import time

import pytest
import torch

from conftest import ROOT, VENV_BIN, run

ARGS = ["--user-dir", str(ROOT / "user_dir"), "--task", "codeswitch_masked_lm", "--langs", "en,fr",
        "--cs-table-name", "ibm1", "--criterion", "cs_masked_lm", "--arch", "cs_roberta_tiny",
        "--encoder-layers", "2", "--encoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
        "--encoder-attention-heads", "2", "--dropout", "0.1", "--tokens-per-sample", "64",
        "--sample-break-mode", "complete", "--optimizer", "adam", "--lr", "1e-3",
        "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10", "--batch-size", "16",
        "--max-update", "60", "--save-interval-updates", "5", "--keep-interval-updates", "1",
        "--no-epoch-checkpoints", "--disable-validation", "--seed", "5", "--num-workers", "1",
        "--log-format", "simple", "--log-interval", "10", "--cpu"]


def trace(path):
    return {x["update"]: x for x in (json.loads(line) for line in open(path))}


@pytest.fixture(scope="module")
def resumed(tiny_pair, tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    data = str(tiny_pair["bin"])
    run([VENV_BIN / "fairseq-train", data, *ARGS, "--save-dir", d / "full", "--data-trace-dir", d / "full_trace"])

    # the same run, killed (SIGKILL) mid-epoch once a mid-run checkpoint exists
    cmd = [str(VENV_BIN / "fairseq-train"), data, *ARGS, "--save-dir", str(d / "cut"),
           "--data-trace-dir", str(d / "cut_trace1")]
    log = open(d / "cut1.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    t_path = d / "cut_trace1" / "trace.rank0.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (d / "cut" / "checkpoint_last.pt").exists() and t_path.exists() and sum(1 for _ in open(t_path)) >= 12:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be interrupted"
    killed_at = max(trace(t_path))
    ckpt = torch.load(d / "cut" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    resumed_from = ckpt["optimizer_history"][-1]["num_updates"]
    assert 5 <= resumed_from < 60 and ckpt["extra_state"]["train_iterator"]["iterations_in_epoch"] == resumed_from

    run(cmd[:-1] + [str(d / "cut_trace2")])
    return d, killed_at, resumed_from


def test_resumed_run_sees_the_same_batches_and_losses(resumed):
    d, killed_at, resumed_from = resumed
    full = trace(d / "full_trace" / "trace.rank0.jsonl")
    before = trace(d / "cut_trace1" / "trace.rank0.jsonl")
    after = trace(d / "cut_trace2" / "trace.rank0.jsonl")
    assert sorted(full) == list(range(60))
    assert sorted(after) == list(range(resumed_from, 60))  # restarts at the checkpoint, mid-epoch
    assert all(full[u]["epoch"] == 1 for u in full)
    for part in (before, after):
        for u, x in part.items():
            assert x["ids"] == full[u]["ids"], u
            assert x["crc32"] == full[u]["crc32"], u
            assert x["loss"] == full[u]["loss"], (u, x["loss"], full[u]["loss"])  # bit-identical


def test_resumed_run_ends_with_identical_parameters(resumed):
    d, _, _ = resumed
    a = torch.load(d / "full" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(d / "cut" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for k in a:
        if torch.is_tensor(a[k]):
            assert torch.equal(a[k], b[k]), k


def test_checkpoint_records_version_and_table_checksums(resumed, tiny_pair):
    d, _, _ = resumed
    state = torch.load(d / "cut" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    rec = state["model"]["csfair_provenance._extra_state"]
    from csfair import __version__
    from csfair.substitution_table import SubstitutionTable

    assert rec["csfair_version"] == __version__ and rec["cs_mode"] == "multiview"
    table = SubstitutionTable.load(tiny_pair["bin"] / "tables" / "ibm1.en-fr")
    assert rec["tables"]["en"]["checksum"] == table.meta["checksum"]


def test_resume_with_another_table_fails_naming_both(resumed, tiny_pair, tmp_path):
    from csfair.substitution_table import SubstitutionTable

    d, _, _ = resumed
    other = SubstitutionTable.load(tiny_pair["bin"] / "tables" / "ibm1.en-fr").with_sampling(1.0, 0.02)
    other.save(tmp_path / "ibm1.en-fr.T1")
    save = tmp_path / "resume"
    save.mkdir()
    (save / "checkpoint_last.pt").symlink_to(d / "cut" / "checkpoint_last.pt")
    args = [a for a in ARGS]
    i = args.index("--cs-table-name")
    args[i:i + 2] = ["--cs-tables", f"en:{tmp_path / 'ibm1.en-fr.T1'},fr:tables/ibm1.fr-en"]
    p = subprocess.run([str(VENV_BIN / "fairseq-train"), str(tiny_pair["bin"]), *args, "--save-dir", str(save),
                        "--max-update", "70"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0
    err = p.stdout + p.stderr
    assert "substitution table for 'en' differs from the one this checkpoint was trained with" in err
    assert "ibm1.en-fr.T1" in err and "tables/ibm1.en-fr" in err
    # deliberately continuing with a new table is possible
    p = subprocess.run([str(VENV_BIN / "fairseq-train"), str(tiny_pair["bin"]), *args, "--save-dir", str(save),
                        "--max-update", "62", "--cs-allow-table-change"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]


def test_loading_for_evaluation_checks_the_dictionary(resumed, tiny_pair, tmp_path):
    import shutil

    from fairseq import checkpoint_utils

    import user_dir  # noqa: F401
    from user_dir.models.checkpoint_provenance import CodeSwitchProvenanceError

    d, _, _ = resumed
    fake = tmp_path / "bin"
    shutil.copytree(tiny_pair["bin"] / "fr", fake / "fr")
    with open(fake / "fr" / "dict.txt", "a") as fh:
        fh.write("extra_symbol 1\n")
    with pytest.raises(Exception) as e:
        checkpoint_utils.load_model_ensemble_and_task(
            [str(d / "cut" / "checkpoint_last.pt")],
            arg_overrides={"data": str(fake), "langs": "fr", "cs_mode": "none", "cs_table_name": ""})
    chain = [e.value] + [e.value.__context__, getattr(e.value.__context__, "__context__", None)]
    assert any(isinstance(x, (CodeSwitchProvenanceError, RuntimeError)) for x in chain if x is not None)
    assert "dictionary" in " ".join(str(x) for x in chain if x is not None)
