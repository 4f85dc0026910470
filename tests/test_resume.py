"""Fresh draws every epoch with DataLoader workers, and exact resume across an epoch boundary.

Everything goes through the real ``fairseq-train`` CLI with its defaults for the data loader
(``reuse_dataloader`` and persistent workers on), on a real en+fr slice small enough that three
epochs take seconds:

* with ``--num-workers`` 0, 1 and 2 every item's input differs between epochs (masks and
  code-switching are drawn anew), and for the same (epoch, index) it is identical whatever the
  number of workers (and the losses are too);
* a run killed (SIGKILL) in epoch 2 and resumed with workers on gives the uninterrupted run's item
  ids, input checksums and losses bit for bit, and the same final parameters;
* a checkpoint refuses to resume with another substitution table, naming both.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import defaultdict

import pytest
import torch

from conftest import ROOT, VENV_BIN, head_lines, run

ARGS = ["--user-dir", str(ROOT / "user_dir"), "--task", "codeswitch_masked_lm", "--langs", "en,fr",
        "--cs-table-name", "ibm1", "--criterion", "cs_masked_lm", "--arch", "cs_roberta_tiny",
        "--encoder-layers", "1", "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
        "--encoder-attention-heads", "2", "--dropout", "0.1", "--tokens-per-sample", "64",
        "--sample-break-mode", "complete", "--optimizer", "adam", "--lr", "1e-3",
        "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10", "--batch-size", "16",
        "--max-epoch", "3", "--save-interval-updates", "4", "--keep-interval-updates", "1",
        "--no-epoch-checkpoints", "--disable-validation", "--seed", "5",
        "--log-format", "simple", "--log-interval", "10", "--cpu"]
WORKERS = (0, 1, 2)


def trace(path):
    return [json.loads(line) for line in open(path)]


def by_update(path):
    return {x["update"]: x for x in trace(path)}


def draws(path):
    """{(epoch, item id): (crc32, length)} of a trace."""
    out = {}
    for x in trace(path):
        for i, c, n in zip(x["ids"], x["crc32"], x["lengths"]):
            out[(x["epoch"], i)] = (c, n)
    return out


@pytest.fixture(scope="module")
def slice_bin(tiny_pair, tmp_path_factory):
    """600 training lines per language (about 20 batches per epoch), the tiny pair's dictionary and tables."""
    d = tmp_path_factory.mktemp("epochs_bin")
    for lang in ("en", "fr"):
        src = head_lines(tiny_pair["dir"] / f"{lang}.train.spm", d / f"{lang}.train.spm", 600)
        run([VENV_BIN / "fairseq-preprocess", "--only-source", "--srcdict", tiny_pair["dict"], "--trainpref", src,
             "--destdir", d / "bin" / lang, "--workers", "1"])
    shutil.copytree(tiny_pair["bin"] / "tables", d / "bin" / "tables")
    return d / "bin"


@pytest.fixture(scope="module")
def runs(slice_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("epochs")
    data = str(slice_bin)
    for w in WORKERS:
        run([VENV_BIN / "fairseq-train", data, *ARGS, "--num-workers", str(w), "--save-dir", d / f"full{w}",
             "--data-trace-dir", d / f"trace{w}"])
    n_per_epoch = sum(1 for x in trace(d / "trace2" / "trace.rank0.jsonl") if x["epoch"] == 1)

    # the same run with 2 workers, killed (SIGKILL) in epoch 2 once a checkpoint of epoch 2 exists
    cmd = [str(VENV_BIN / "fairseq-train"), data, *ARGS, "--num-workers", "2", "--save-dir", str(d / "cut"),
           "--data-trace-dir", str(d / "cut_trace1")]
    log = open(d / "cut1.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    deadline = time.time() + 240
    saved = re.compile(r"Saved checkpoint \S+ \(epoch 2 @ (\d+) updates")
    while time.time() < deadline and proc.poll() is None:
        # a checkpoint saved in the middle of epoch 2 (fairseq logs it once the file is complete)
        if any(n_per_epoch < int(u) < 2 * n_per_epoch for u in saved.findall((d / "cut1.log").read_text())):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be interrupted"
    ckpt = torch.load(d / "cut" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    resumed_from = ckpt["optimizer_history"][-1]["num_updates"]
    it = ckpt["extra_state"]["train_iterator"]
    assert it["epoch"] == 2 and 0 < it["iterations_in_epoch"] < n_per_epoch, it
    run(cmd[:-1] + [str(d / "cut_trace2")])
    return d, n_per_epoch, resumed_from


@pytest.mark.parametrize("workers", WORKERS)
def test_every_epoch_draws_new_inputs(runs, workers):
    d, n_per_epoch, _ = runs
    seen = draws(d / f"trace{workers}" / "trace.rank0.jsonl")
    assert {e for e, _ in seen} == {1, 2, 3}
    ids = sorted({i for e, i in seen if e == 1})
    assert len(ids) > 200 and all((e, i) in seen for e in (1, 2, 3) for i in ids)
    for a, b in ((1, 2), (2, 3), (1, 3)):
        same = [i for i in ids if seen[(a, i)][0] == seen[(b, i)][0]]
        # an item of 16+ tokens has >= 2 masked positions drawn anew: identical only by a fluke
        assert not [i for i in same if seen[(a, i)][1] >= 16], (workers, a, b, same)
        assert len(same) <= 0.02 * len(ids), (workers, a, b, len(same), len(ids))


def test_same_epoch_and_index_give_the_same_input_and_loss_whatever_the_workers(runs):
    d, _, _ = runs
    ref = trace(d / "trace0" / "trace.rank0.jsonl")
    for w in WORKERS[1:]:
        other = trace(d / f"trace{w}" / "trace.rank0.jsonl")
        assert [x["update"] for x in other] == [x["update"] for x in ref]
        for x, y in zip(ref, other):
            assert (x["epoch"], x["ids"], x["crc32"]) == (y["epoch"], y["ids"], y["crc32"]), (w, x["update"])
            assert x["loss"] == y["loss"], (w, x["update"], x["loss"], y["loss"])


def test_run_killed_in_epoch_two_resumes_bit_for_bit(runs):
    d, n_per_epoch, resumed_from = runs
    full = by_update(d / "trace2" / "trace.rank0.jsonl")
    before = by_update(d / "cut_trace1" / "trace.rank0.jsonl")
    after = by_update(d / "cut_trace2" / "trace.rank0.jsonl")
    assert sorted(full) == list(range(3 * n_per_epoch))
    assert n_per_epoch < resumed_from < 2 * n_per_epoch
    assert sorted(after) == list(range(resumed_from, 3 * n_per_epoch))  # restarts mid-epoch 2
    assert {after[u]["epoch"] for u in after} == {2, 3}
    for part in (before, after):
        for u, x in part.items():
            assert (x["epoch"], x["ids"], x["crc32"]) == (full[u]["epoch"], full[u]["ids"], full[u]["crc32"]), u
            assert x["loss"] == full[u]["loss"], (u, x["loss"], full[u]["loss"])  # bit-identical
    a = torch.load(d / "full2" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(d / "cut" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for k in a:
        if torch.is_tensor(a[k]):
            assert torch.equal(a[k], b[k]), k


def test_stale_worker_copies_are_refused(slice_bin):
    """The guard behind the fix: items drawn for another epoch stop training with a clear error."""
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq import options

    import user_dir  # noqa: F401
    from user_dir.tasks.fresh_epoch_draws import StaleEpochError

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(slice_bin), *ARGS, "--num-workers", "1"])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    itr = task.get_batch_iterator(task.dataset("train"), max_sentences=16, num_workers=1, seed=5)
    assert itr.reuse_dataloader is False
    counts = defaultdict(set)
    for epoch in (1, 2):
        for sample in itr.next_epoch_itr(shuffle=True):
            task.check_draw_epoch(sample, epoch)  # fresh workers: never raises
            counts[epoch].update(sample["draw_epoch"].tolist())
    assert counts == {1: {1}, 2: {2}}
    with pytest.raises(StaleEpochError, match="stale copy"):
        task.check_draw_epoch(sample, 3)


def test_checkpoint_records_version_and_table_checksums(runs, tiny_pair):
    d, _, _ = runs
    state = torch.load(d / "cut" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    rec = state["model"]["csfair_provenance._extra_state"]
    from csfair import __version__
    from csfair.pretraining.substitution_table import SubstitutionTable

    assert rec["csfair_version"] == __version__ and rec["cs_mode"] == "multiview"
    table = SubstitutionTable.load(tiny_pair["bin"] / "tables" / "ibm1.en-fr")
    assert rec["tables"]["en"]["checksum"] == table.meta["checksum"]


def test_resume_with_another_table_fails_naming_both(runs, slice_bin, tmp_path):
    from csfair.pretraining.substitution_table import SubstitutionTable

    d, n_per_epoch, _ = runs
    other = SubstitutionTable.load(slice_bin / "tables" / "ibm1.en-fr").with_sampling(1.0, 0.02)
    other.save(tmp_path / "ibm1.en-fr.T1")
    save = tmp_path / "resume"
    save.mkdir()
    (save / "checkpoint_last.pt").symlink_to(d / "cut" / "checkpoint_last.pt")
    args = [a for a in ARGS]
    i = args.index("--cs-table-name")
    args[i:i + 2] = ["--cs-tables", f"en:{tmp_path / 'ibm1.en-fr.T1'},fr:tables/ibm1.fr-en"]
    args[args.index("--max-epoch") + 1] = "4"
    p = subprocess.run([str(VENV_BIN / "fairseq-train"), str(slice_bin), *args, "--save-dir", str(save)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0
    err = p.stdout + p.stderr
    assert "substitution table for 'en' differs from the one this checkpoint was trained with" in err
    assert "ibm1.en-fr.T1" in err and "tables/ibm1.en-fr" in err
    # deliberately continuing with a new table is possible
    p = subprocess.run([str(VENV_BIN / "fairseq-train"), str(slice_bin), *args, "--save-dir", str(save),
                        "--max-update", str(3 * n_per_epoch + 2), "--cs-allow-table-change"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]


def test_loading_for_evaluation_checks_the_dictionary(runs, tiny_pair, tmp_path):
    from fairseq import checkpoint_utils

    import user_dir  # noqa: F401
    from user_dir.checkpoint_loading import safe_loading
    from user_dir.models.checkpoint_provenance import CodeSwitchProvenanceError

    d, _, _ = runs
    fake = tmp_path / "bin"
    shutil.copytree(tiny_pair["bin"] / "fr", fake / "fr")
    with open(fake / "fr" / "dict.txt", "a") as fh:
        fh.write("extra_symbol 1\n")
    with pytest.raises(Exception) as e, safe_loading():  # fairseq's own loader, in csfair's safe-loading scope
        checkpoint_utils.load_model_ensemble_and_task(
            [str(d / "cut" / "checkpoint_last.pt")],
            arg_overrides={"data": str(fake), "langs": "fr", "cs_mode": "none", "cs_table_name": ""})
    chain = [e.value] + [e.value.__context__, getattr(e.value.__context__, "__context__", None)]
    assert any(isinstance(x, (CodeSwitchProvenanceError, RuntimeError)) for x in chain if x is not None)
    assert "dictionary" in " ".join(str(x) for x in chain if x is not None)
