"""Sweeps through submitit (issue 15, part 4): the zero-shot grid as one job per run on submitit's
local executor, collected into one results file, finished runs skipped, the serial runner's tables."""
import json
import os
import shutil
import sys
from collections import Counter

import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import sweep  # noqa: E402
import zeroshot  # noqa: E402

TABLES = ("pos.md", "pos.csv", "pos.json")


def _records(out):
    return [json.loads(x) for x in open(out / "results.jsonl")]


def test_local_executor_sweep_runs_once_skips_and_matches_the_serial_tables(tiny_pair, tiny_mlm, tmp_path, capsys):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    shutil.copyfile(tiny_mlm, a)
    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)  # another column: other bytes
    k = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][k] = state["model"][k] + 0.01
    torch.save(state, b)
    out = tmp_path / "out"
    # the smallest grid the runner allows: one training batch, one epoch
    argv = ["--checkpoint", f"a={a}", "--checkpoint", f"b={b}", "--spm", str(tiny_pair["spm"]), "--dict",
            str(tiny_pair["dict"]), "--tasks", "pos", "--langs", "fr", "--seeds", "1", "--max-train", "32",
            "--max-eval", "16", "--epochs", "1", "--lr", "1e-3", "--out", str(out)]
    zeroshot.main(argv + ["--launcher", "local", "--jobs", "2"])
    log = capsys.readouterr().out
    assert "2 run(s) to do with --launcher local, 2 at once" in log and log.count("[sweep] started ") == 2
    recs = _records(out)
    runs = Counter((r["model"], r["seed"], r["lang"], r["split"]) for r in recs)
    # 2 columns x 1 seed (2 jobs at once; test time), each with its English dev and French test record, once each, one protocol per column
    assert set(runs) == {(m, s, lg, sp) for m in "ab" for s in (1,) for lg, sp in (("en", "valid"), ("fr", "test"))}
    assert set(runs.values()) == {1}
    assert len({r["protocol"] for r in recs}) == 2 and all(len(r["dev_by_epoch"]) == 1 for r in recs)
    items = [json.loads(x)["key"] for x in open(out / "items.jsonl")]
    assert sorted(items) == sorted(r["items"] for r in recs)  # every record's per-item scores, once
    assert not os.listdir(out / "sweep" / "shards")  # every shard merged and removed
    tables = {t: (out / "tables" / t).read_bytes() for t in TABLES}
    results = (out / "results.jsonl").read_bytes()

    # the same sweep again: every run found done, nothing submitted, nothing appended
    zeroshot.main(argv + ["--launcher", "local", "--jobs", "2"])
    log = capsys.readouterr().out
    assert log.count("done before") >= 2 and "[sweep] started " not in log and "to do with" not in log
    assert (out / "results.jsonl").read_bytes() == results

    # the serial runner over the same results: the same tables, byte for byte
    for t in TABLES:
        (out / "tables" / t).unlink()
    zeroshot.main(argv)
    assert "[sweep]" not in capsys.readouterr().out
    assert {t: (out / "tables" / t).read_bytes() for t in TABLES} == tables
    assert (out / "results.jsonl").read_bytes() == results


def test_shard_merge_is_complete_only_and_idempotent(tmp_path):
    out, shard = tmp_path / "out", tmp_path / "shard"
    shard.mkdir()
    old = json.dumps({"model": "a", "seed": 1, "split": "test"}, sort_keys=True)
    (out).mkdir()
    (out / "results.jsonl").write_text(old + "\n")
    new = [json.dumps({"model": "a", "seed": s, "split": "test"}, sort_keys=True) for s in (1, 2)]
    (shard / "results.jsonl").write_text("\n".join(new) + "\n" + '{"model": "a", "se')  # a cut-off last line
    (shard / "items.jsonl").write_text(json.dumps({"key": "p|2|fr|test", "num": [1, 0]}) + "\n")
    assert sweep.merge_shard(shard, out) is None and shard.exists()  # no DONE: a job still running or failed
    (shard / "DONE").touch()
    keep = shard.with_name("copy")
    shutil.copytree(shard, keep)
    assert sweep.merge_shard(shard, out) == 1 and not shard.exists()
    assert (out / "results.jsonl").read_text().splitlines() == [old, new[1]]
    # a merge cut short after its append is redone: nothing twice
    assert sweep.merge_shard(keep, out) == 0
    assert (out / "results.jsonl").read_text().splitlines() == [old, new[1]]
    assert len((out / "items.jsonl").read_text().splitlines()) == 1


def test_slurm_options_reach_the_sbatch_script(tmp_path):
    import argparse

    p = argparse.ArgumentParser()
    sweep.add_launcher_args(p)
    args = p.parse_args(["--launcher", "slurm", "--slurm-partition", "gpu", "--slurm-time", "1-02:30:00",
                         "--gpus-per-job", "2", "--jobs", "3", "--slurm-extra", "account=proj",
                         "--slurm-setup", "module load cuda"])
    from submitit.slurm.slurm import _make_sbatch_string  # what submitit.SlurmExecutor submits

    params = sweep.Launcher(args, str(tmp_path)).slurm_parameters()
    text = _make_sbatch_string("CMD", str(tmp_path), map_count=4, **params)
    for line in ("#SBATCH --partition=gpu", f"#SBATCH --time={24 * 60 + 150}", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --account=proj", "#SBATCH --array=0-3%3", "module load cuda"):
        assert line in text, (line, text)
    assert [sweep.parse_time(t) for t in ("90", "1:30:00", "45:30", "2-00")] == [90, 90, 45.5, 2880]


def test_slurm_jobs_collected_as_they_complete(tmp_path, monkeypatch):
    """The SLURM path submits one job array and collects each job as it ends (submitit.helpers.as_completed):
    a failed job is reported with its log and never counted as done. submitit's local executor stands in
    for sbatch (same Job interface)."""
    import argparse

    import submitit

    p = argparse.ArgumentParser()
    sweep.add_launcher_args(p)
    launcher = sweep.Launcher(p.parse_args(["--launcher", "slurm"]), str(tmp_path))
    monkeypatch.setattr(launcher, "executor", lambda: submitit.LocalExecutor(folder=str(tmp_path / "logs" / "%j")))
    launcher.poll_s = 0.2
    done = []
    failed = launcher.run([("ok", [sys.executable, "-c", "pass"], done.append),
                           ("bad", [sys.executable, "-c", "raise SystemExit(3)"], done.append)])
    assert failed == ["bad"] and done == ["ok"]
