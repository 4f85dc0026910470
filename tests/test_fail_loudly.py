"""Fail loudly, lose nothing (csfair issue 21): each silent fault of the issue reproduced on real data,
and the loud behaviour that replaced it. See docs/guarantees.md."""
import errno
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import ROOT, VENV_BIN, data_path, head_lines


# ------------------------------------------------------------------ results files (silent case 4)

def _real_records(n=3):
    """Records of the zero-shot runner's shape (``csfair.evaluation.zeroshot.protocol.run_record`` plus
    the runner's keys): a nested ``metrics`` object, lists, floats, non-ASCII text."""
    return [dict(model="ibm1", task="pos", protocol="3f9c2a71d0e4b6a8", seed=seed, lang=lang, split="test",
                 metrics=dict(accuracy=0.8123 - 0.01 * seed, macro_f1=0.6518 + 0.002 * seed), n=500,
                 flags=[], eval_flags=[], unk_rate=0.0123, unk_word_rate=0.0311, unseen_labels={"X": 2},
                 majority_baseline=0.1674, items=f"3f9c2a71d0e4b6a8/{seed}/{lang}/test", params=5385811,
                 note="données réelles")
            for seed, lang in zip(range(1, n + 1), ("fr", "de", "tr", "es", "ru"))]


def test_append_cut_short_by_a_full_disk_loses_no_record(tmp_path, monkeypatch):
    from csfair.evaluation import results as R

    path = tmp_path / "results.jsonl"
    a, b, c = _real_records()
    R.append_result(path, a)
    real_write = os.write
    calls = []

    def full_disk(fd, data):  # the kernel takes 100 bytes, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match=r"results.jsonl: appending a result failed \(No space left on device\)") as e:
        R.append_result(path, b)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "write", real_write)
    # the part-line was cut off again: the file ends with a complete line
    assert path.read_bytes().endswith(b"\n") and R.load_results(path) == [a]
    R.append_result(path, c)
    assert R.load_results(path) == [a, c]


def test_a_fragment_left_by_an_older_append_is_closed_and_skipped(tmp_path):
    from csfair.evaluation import results as R

    path = tmp_path / "results.jsonl"
    a, b, c = _real_records()
    line_b = json.dumps(b, sort_keys=True)
    # what the old append left after ENOSPC: a fragment without newline
    path.write_text(json.dumps(a, sort_keys=True) + "\n" + line_b[:57], encoding="utf-8")
    with pytest.warns(R.ResultsFileWarning, match=r"results.jsonl:2: not a complete JSON record"):
        assert R.load_results(path) == [a]
    with pytest.warns(R.ResultsFileWarning, match="ends with an incomplete line"):
        R.append_result(path, c)
    assert path.read_text(encoding="utf-8").splitlines()[1:] == [line_b[:57], json.dumps(c, sort_keys=True)]
    with pytest.warns(R.ResultsFileWarning, match=r":2: not a complete JSON record"):
        assert R.load_results(path) == [a, c]  # c is not glued to the fragment
    # a file written by the old append: fragment and next record on one line; the record is recovered
    path.write_text(json.dumps(a, sort_keys=True) + "\n" + line_b[:57] + json.dumps(c, sort_keys=True) + "\n")
    with pytest.warns(R.ResultsFileWarning, match=r":2: the 57-character fragment .* the record is kept"):
        assert R.load_results(path) == [a, c]
    # a truncated record whose tail is a nested object is not mistaken for a record
    trunc = line_b[:line_b.index('"metrics": {')] + '"metrics": {"accuracy": 0.5}'
    path.write_text(json.dumps(a, sort_keys=True) + "\n" + trunc + "\n")
    with pytest.warns(R.ResultsFileWarning, match="not a complete JSON record"):
        assert R.load_results(path) == [a]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path.write_text(json.dumps(a, sort_keys=True) + "\n")
        assert R.load_results(path) == [a]  # an intact file: no warning


# ------------------------------------------------------------------ the recipe on a small real slice


RECIPE = ROOT / "scripts" / "recipes" / "pair.sh"
# the recipe's small-run options; a 1-layer 32-wide model through `-- extra fairseq-train args`
SMALL = ["--test-lines", "200", "--valid-lines", "100", "--vocab-size", "1000", "--batch-size", "8", "--warmup", "2"]
TINY_ARCH = ["--encoder-layers", "1", "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
             "--encoder-attention-heads", "2", "--log-interval", "1"]


def slice_data(dest, n_parallel=1500, n_mono=2500, empty_parallel=False):
    """A small real $CSFAIR_DATA for en-fr: the first Multi30k pairs and monolingual lines, and the
    MUSE dictionaries restricted to the slice's words, and the UD treebanks (linked; the default stopwords
    read them). No evaluation sets: the held-out split skips them."""
    for lang in ("en", "fr"):
        out = dest / "parallel" / "multi30k" / f"train.{lang}.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(data_path(f"parallel/multi30k/train.{lang}.gz"), "rt", encoding="utf-8") as fh, \
                gzip.open(out, "wt", encoding="utf-8") as w:
            for i, line in enumerate(fh):
                if i >= n_parallel or empty_parallel:
                    break
                w.write(line)
        (dest / "mono" / "derived").mkdir(parents=True, exist_ok=True)
        head_lines(data_path(f"mono/derived/{lang}.txt"), dest / "mono" / "derived" / f"{lang}.txt", n_mono)
    words = {w.lower() for lang in ("en", "fr")
             for w in (dest / "mono" / "derived" / f"{lang}.txt").read_text(encoding="utf-8").split()}
    (dest / "dict" / "muse").mkdir(parents=True, exist_ok=True)
    for d in ("en-fr", "fr-en"):
        with open(data_path(f"dict/muse/{d}.txt"), encoding="utf-8") as fh, \
                open(dest / "dict" / "muse" / f"{d}.txt", "w", encoding="utf-8") as w:
            w.writelines(line for line in fh if line.split(" ", 1)[0] in words)
    (dest / "ud").symlink_to(data_path("ud"))  # the treebanks of the default --stopwords function
    return dest


def recipe_env(data):
    return dict(os.environ, CSFAIR_DATA=str(data), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
                PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def recipe(data, folders, *args, extra=(), **kw):
    cmd = ["bash", str(RECIPE), "en-fr", *SMALL, "--data-bin", str(folders / "bin"), "--work", str(folders / "work"),
           "--save-root", str(folders / "ck"), *args]
    if extra:
        cmd += ["--", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=recipe_env(data), timeout=kw.pop("timeout", 600), **kw)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The recipe's data steps (--prep-only) on a small real slice: ``(data, folders)``."""
    base = tmp_path_factory.mktemp("recipe21")
    data = slice_data(base / "data")
    p = recipe(data, base, "--prep-only")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return data, base


def _descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_killed_training_is_not_done_and_the_rerun_resumes(prepared):
    """Silent case 1: SIGKILL of fairseq-train inside the recipe at update 5 of 30."""
    data, base = prepared
    args = ["--run", "killed", "--max-update", "30"]
    # a checkpoint every 4 updates; no validation (fairseq validates at every mid-epoch save)
    extra = TINY_ARCH + ["--save-interval-updates", "4", "--disable-validation"]
    cmd = ["bash", str(RECIPE), "en-fr", *SMALL, "--data-bin", str(base / "bin"), "--work", str(base / "work"),
           "--save-root", str(base / "ck"), *args, "--", *extra]
    save = base / "ck" / "killed"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=recipe_env(data))
    killed, seen = None, []
    for line in proc.stdout:
        seen.append(line)
        if "num_updates=" in line and int(line.split("num_updates=")[1].split(",")[0]) >= 5:
            trainers = [p for p in _descendants(proc.pid) if "fairseq-train" in _cmdline(p)]
            top = [p for p in trainers if not any(p in _descendants(q) for q in trainers)]
            assert len(top) == 1, trainers
            os.kill(top[0], signal.SIGKILL)
            killed = top[0]
            break
    out, err = proc.communicate(timeout=300)
    assert killed, "".join(seen)[-3000:] + err[-3000:]
    assert proc.returncode == 1, out + err
    assert "training failed (killed by signal 9): no .done written" in err
    assert "MLM accuracy" not in out  # no evaluation of a half-trained model
    assert not (save / ".done").exists() and (save / "checkpoint_last.pt").exists()
    # what a killed save leaves; the rerun removes it
    (save / "checkpoint_last.pt.tmp").write_bytes(b"half a checkpoint")
    p = recipe(data, base, *args, extra=extra)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "checkpoint_last.pt.tmp" in p.stdout and not (save / "checkpoint_last.pt.tmp").exists()
    assert "resuming from" in p.stdout and "the last attempt stopped before its target" in p.stdout
    assert "resuming from " + str(save / "checkpoint_last.pt") + " (update 4 of 30" in p.stdout
    assert (save / ".done").read_text().startswith("update 30 of 30")
    assert "MLM accuracy on held-out fr" in p.stdout
    assert (save / "train.log").read_text().count("# ==== ") == 2  # both attempts' logs kept


def test_tokens_per_sample_that_drops_most_data_stops_the_recipe(prepared):
    """Silent case 5 (and the IndexError of a too small --tokens-per-sample), through the recipe."""
    data, base = prepared
    p = recipe(data, base, "--run", "tps16", "--tokens-per-sample", "16", "--max-update", "5", extra=TINY_ARCH)
    assert p.returncode == 1, p.stdout[-2000:]
    assert "train samples (" in p.stdout and "are longer than max_positions=16" in p.stdout
    assert "--max-invalid-size-share" in p.stdout and "training failed (exit status 1)" in p.stderr
    assert not (base / "ck" / "tps16" / ".done").exists() and "MLM accuracy" not in p.stdout


def _hold(folder, mode, command="pytest holder"):
    from csfair.locks import LOCK_NAME, acquire

    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    acquire(fd, folder, mode, command=command)
    return fd


def test_a_second_writer_is_refused_naming_the_first(prepared):
    """Never two writers: a folder locked by another run stops the recipe before it writes anything."""
    data, base = prepared
    bin_dir, work = base / "bin", base / "work"
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and p.name != ".csfair-lock"}
    fd = _hold(bin_dir, "exclusive", "bash pair.sh en-fr (the first run)")
    try:
        p = recipe(data, base, "--prep-only")
    finally:
        os.close(fd)
    assert p.returncode == 1
    assert f"is in use by pid {os.getpid()} on {socket.gethostname()} (bash pair.sh en-fr (the first run)) since " in p.stderr
    after = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and p.name != ".csfair-lock"}
    assert after == before  # nothing was written
    # a prepared data-bin is shared: a reader (a training run) does not stop another run from using it
    fd = _hold(bin_dir, "shared", "fairseq-train reading it")
    try:
        assert recipe(data, base, "--prep-only").returncode == 0
        # but data steps that must write (no .prep-done) wait for no one: refused, naming the reader
        mark = (bin_dir / ".prep-done").read_text()
        (bin_dir / ".prep-done").unlink()
        p = recipe(data, base, "--prep-only")
        assert p.returncode == 1 and "(fairseq-train reading it)" in p.stderr and ", shared" in p.stderr
        (bin_dir / ".prep-done").write_text(mark)
    finally:
        os.close(fd)
    # a training run's folder has one writer
    run = base / "ck" / "locked"
    run.mkdir(parents=True, exist_ok=True)
    fd = _hold(run, "exclusive", "another training")
    try:
        p = recipe(data, base, "--run", "locked", "--max-update", "2", extra=TINY_ARCH)
    finally:
        os.close(fd)
    assert p.returncode == 1 and f"{run} is in use by pid {os.getpid()}" in p.stderr and "(another training)" in p.stderr


def test_leftovers_of_killed_steps_are_removed_and_missing_derived_files_rebuilt(prepared):
    data, base = prepared
    bin_dir, work = base / "bin", base / "work"
    dead = 4194304 + 1  # above Linux's pid_max: no such process
    leftovers = [work / "lexicons" / f".ibm1.en-fr.tsv.tmp-{dead}", work / f"config.txt.tmp-{dead}",
                 bin_dir / "tables" / f".ibm1.en-fr.tmp-{dead}" / "key_hash.npy", bin_dir / ".en.tmp" / "train.bin"]
    for f in leftovers:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"partial")
    tsv, js = work / "lexicons" / "ibm1.en-fr.table.tsv", work / "table.ibm1.en-fr.json"
    table_before = json.loads((bin_dir / "tables" / "ibm1.en-fr" / "meta.json").read_text())["checksum"]
    tsv.unlink()
    js.unlink()
    (work / ".prep-done").unlink()  # as after a prep that was killed: the data steps run (exclusively)
    p = recipe(data, base, "--prep-only")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "removed 2 leftover(s) of killed steps in " + str(work) in p.stdout
    assert "removed 2 leftover(s) of killed steps in " + str(bin_dir) in p.stdout
    assert not any(f.exists() for f in leftovers) and not (bin_dir / "tables" / f".ibm1.en-fr.tmp-{dead}").exists()
    assert "exists but not all of" in p.stdout and tsv.exists() and json.loads(js.read_text())["entries"] > 0
    assert json.loads((bin_dir / "tables" / "ibm1.en-fr" / "meta.json").read_text())["checksum"] == table_before
    assert "exists, skipped: " + str(bin_dir / "tables" / "ibm1.fr-en") in p.stdout  # the complete ones are kept
    assert (work / ".prep-done").exists()


# ------------------------------------------------------------------ corrupted tables (silent case 2)

def _corrupt_copy(tiny_pair, tmp_path):
    """A copy of the tiny pipeline's data-bin whose ibm1.en-fr table has random candidate ids of the same shape."""
    bin_dir = tmp_path / "bin"
    shutil.copytree(tiny_pair["bin"], bin_dir)
    shutil.copyfile(tiny_pair["dict"], bin_dir / "dict.txt")
    f = bin_dir / "tables" / "ibm1.en-fr" / "cand_tokens.npy"
    good = np.load(f)
    bad = np.random.default_rng(0).integers(4, 900, size=good.shape).astype(good.dtype)
    np.save(f, bad)
    return bin_dir, f


def test_a_corrupted_table_is_refused_naming_it(tiny_pair, tmp_path):
    import user_dir  # noqa: F401
    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair.pretraining.table_format import CorruptTableError
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    bin_dir, f = _corrupt_copy(tiny_pair, tmp_path)
    table = bin_dir / "tables" / "ibm1.en-fr"
    with pytest.raises(CorruptTableError, match=rf"{table}: substitution table is corrupted: .* \(last changed: cand_tokens.npy\)"):
        SubstitutionTable.load(table)
    # training (the task, as fairseq-train builds it) refuses it
    cfg = CodeSwitchMaskedLMConfig(data=str(bin_dir), langs="en,fr", cs_mode="multiview", cs_table_name="ibm1",
                                   tokens_per_sample=128, sample_break_mode="complete", seed=1)
    with pytest.raises(CorruptTableError, match=str(table)):
        CodeSwitchMaskedLMTask.setup_task(cfg)
    # the transformers path (scripts/run_mlm_cs.py --cs_table loads through csfair_hf.mlm_data) refuses it too
    from csfair_hf.mlm_data import load_tables

    with pytest.raises(CorruptTableError, match=str(table)):
        load_tables([str(table)])
    with pytest.raises(CorruptTableError, match=str(table)):
        load_tables([str(table)], temperature=1.0)
    # the CLI: one line, exit 2
    p = subprocess.run([str(VENV_BIN / "csfair-lexicon"), "inspect", str(table), "house"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "substitution table is corrupted" in p.stderr


def test_the_table_check_runs_once_per_process_for_unchanged_files(tiny_pair, tmp_path, monkeypatch):
    from csfair.pretraining import table_format as tf
    from csfair.pretraining.substitution_table import SubstitutionTable

    src = tmp_path / "t"
    shutil.copytree(tiny_pair["bin"] / "tables" / "ibm1.fr-en", src)
    calls = []
    real = tf.array_checksum
    monkeypatch.setattr(tf, "array_checksum", lambda arrays: calls.append(1) or real(arrays))
    SubstitutionTable.load(src)
    SubstitutionTable.load(src)
    assert len(calls) == 1  # cached by path, size, mtime and inode
    f = src / "cand_prob.npy"
    a = np.load(f)
    a[0] = 0.5 if a[0] != 0.5 else 0.25
    np.save(f, a)  # rewritten after the first check: checked again, and refused
    with pytest.raises(tf.CorruptTableError, match="cand_prob.npy"):
        SubstitutionTable.load(src)
    assert len(calls) == 2


# ------------------------------------------------------------------ empty input (silent case 3)

def test_empty_parallel_input_stops_the_recipe_at_the_lexicon(tmp_path):
    data = slice_data(tmp_path / "data", n_mono=800, empty_parallel=True)
    p = recipe(data, tmp_path, "--prep-only", "--test-lines", "100", "--valid-lines", "50")
    assert p.returncode != 0
    assert "no usable sentence pairs in " + str(tmp_path / "work" / "parallel" / "train.en") in p.stderr
    # no table was built (the recipe writes bin/tables/config.txt, the table options, before step 1)
    assert not list((tmp_path / "bin" / "tables").glob("*/meta.json")) and not (tmp_path / "work" / ".prep-done").exists()


def test_empty_lexicons_tables_and_monolingual_text_are_errors(tiny_pair, tmp_path):
    import user_dir  # noqa: F401
    from csfair_cli.lexicon import main as lexicon_main
    from csfair.io import InputFormatError
    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair.pretraining.vocab import train_sentencepiece
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    def cli(*args):
        return subprocess.run([str(VENV_BIN / "csfair-lexicon"), *map(str, args)], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    p = cli("muse", "--muse-dict", empty, "--src-lang", "en", "--tgt-lang", "fr", "--out", tmp_path / "lex.tsv")
    assert p.returncode == 2 and "empty.txt: no dictionary entries" in p.stderr and not (tmp_path / "lex.tsv").exists()
    # a lexicon without entries, and one whose entries all fall to the filters (every word a stopword)
    lex = tmp_path / "lex.tsv"
    lex.write_text("# csfair-lexicon\tkind=ibm1\tsrc=en\ttgt=fr\tprobabilistic=1\n")
    p = cli("table", "--lexicon", lex, "--spm-model", tiny_pair["spm"], "--dict", tiny_pair["dict"], "--out",
            tmp_path / "t", "--quiet", "--src-stopwords", "none", "--tgt-stopwords", "none")
    assert p.returncode == 2 and "lex.tsv: the lexicon has no entries" in p.stderr and not (tmp_path / "t").exists()
    rows = [ln for ln in tiny_pair["lex_en_fr"].read_text(encoding="utf-8").splitlines() if not ln.startswith("#")][:50]
    lex.write_text("# csfair-lexicon\tkind=ibm1\tsrc=en\ttgt=fr\tprobabilistic=1\n" + "\n".join(rows) + "\n")
    stop = tmp_path / "stop.txt"
    stop.write_text("\n".join(r.split("\t")[0] for r in rows) + "\n")
    p = cli("table", "--lexicon", lex, "--spm-model", tiny_pair["spm"], "--dict", tiny_pair["dict"], "--out",
            tmp_path / "t", "--quiet", "--src-stopwords", stop, "--tgt-stopwords", "none")
    assert p.returncode == 2 and "survived the table's filters" in p.stderr and not (tmp_path / "t").exists()
    # a table with no entries given to training with code-switching on
    bin_dir = tmp_path / "bin"
    shutil.copytree(tiny_pair["bin"], bin_dir)
    t = SubstitutionTable.load(bin_dir / "tables" / "ibm1.en-fr")
    empty_arrays = {k: np.zeros(0 if k not in ("key_offsets", "cand_offsets", "cand_tok_offsets") else 1, dtype=v.dtype)
                    for k, v in t.arrays.items()}
    SubstitutionTable(empty_arrays, dict(t.meta)).save(bin_dir / "tables" / "ibm1.en-fr")
    cfg = CodeSwitchMaskedLMConfig(data=str(bin_dir), langs="en,fr", cs_mode="multiview", cs_table_name="ibm1",
                                   tokens_per_sample=128, sample_break_mode="complete", seed=1)
    with pytest.raises(ValueError, match=r"tables/ibm1.en-fr has no entries .*--cs-mode multiview would code-switch nothing"):
        CodeSwitchMaskedLMTask.setup_task(cfg)
    # an empty monolingual file is named (was: sentencepiece's internal assert)
    with pytest.raises(InputFormatError, match=r"empty.txt: no fr text for the shared vocabulary \(the file is empty\)"):
        train_sentencepiece({"en": tiny_pair["dir"] / "en.train.tok", "fr": empty}, tmp_path / "spm", vocab_size=100)
    assert not (tmp_path / "spm.model").exists()


# ------------------------------------------------------------------ dropped training data (silent case 5), in-process

def test_samples_longer_than_the_model_are_counted_and_bounded(tiny_pair, caplog):
    import user_dir  # noqa: F401
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    def iterator(**kw):
        cfg = CodeSwitchMaskedLMConfig(data=str(tiny_pair["bin"]), langs="en,fr", cs_mode="multiview",
                                       cs_table_name="ibm1", sample_break_mode="complete", seed=1, **kw)
        task = CodeSwitchMaskedLMTask.setup_task(cfg)
        task.load_dataset("train")
        # fairseq's trainer: ignore_invalid_inputs=True for training, i.e. skip silently
        itr = task.get_batch_iterator(dataset=task.dataset("train"), max_sentences=16,
                                      max_positions=task.max_positions(), ignore_invalid_inputs=True, seed=1)
        itr.total = len(task.dataset("train"))
        return itr

    with pytest.raises(ValueError, match=r"of 6,000 train samples \(8\d\.\d%\) are longer than max_positions=16 .* "
                                         r"more than --max-invalid-size-share 0.01"):
        iterator(tokens_per_sample=16)
    itr = iterator(tokens_per_sample=16, max_invalid_size_share=0.9)  # asked for: trained on what is left, said
    assert "train samples" in caplog.text and "skipped (at most --max-invalid-size-share 0.9)" in caplog.text
    assert itr.total == 6000 and 0 < sum(len(b) for b in itr.frozen_batches) < 6000 * 0.2
    with pytest.raises(ValueError, match=r"6,000 of 6,000 train samples .* no sample is left to train on"):
        iterator(tokens_per_sample=2, max_invalid_size_share=1.0)  # was: IndexError inside fairseq
    caplog.clear()
    itr = iterator(tokens_per_sample=128)
    assert sum(len(b) for b in itr.frozen_batches) == itr.total and "longer than max_positions" not in caplog.text


# ------------------------------------------------------------------ csfair-data verify

def test_verify_checks_pinned_checksums_and_says_what_was_only_size_checked(tmp_path):
    data = data_path("MANIFEST.tsv").parent
    lines = data_path("MANIFEST.tsv").read_text(encoding="utf-8").split("\n")
    keep = [ln for ln in lines[1:] if ln.split("\t")[0] in ("nli/sick/SICK.txt", "mono/derived/fr.txt")]
    assert len(keep) == 2
    (tmp_path / "MANIFEST.tsv").write_text("\n".join([lines[0]] + keep) + "\n", encoding="utf-8")
    for rel in ("nli/sick/SICK.txt", "mono/derived/fr.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / rel, tmp_path / rel)

    def verify():
        return subprocess.run([sys.executable, "-m", "csfair_cli.data", "verify", str(tmp_path)], capture_output=True,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))

    p = verify()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "size-checked mono/derived/fr.txt (no checksum recorded or pinned)" in p.stdout
    assert p.stdout.strip().endswith("2 of 2 files verified (1 checked by SHA-256, 1 size-checked only)")
    # one relatedness label changed to another of the same length (4.5 -> 2.5): same size, other content
    sick = tmp_path / "nli/sick/SICK.txt"
    text = sick.read_text(encoding="utf-8")
    first = text.split("\n")[1]
    assert "\t4.5\t" in first
    sick.write_text(text.replace(first, first.replace("\t4.5\t", "\t2.5\t"), 1), encoding="utf-8")
    assert sick.stat().st_size == (data / "nli/sick/SICK.txt").stat().st_size
    p = verify()
    assert p.returncode == 1
    assert "FAILED nli/sick/SICK.txt: SHA-256 differs from the one pinned in staged_sources.tsv" in p.stdout
    assert "1 of 2 files verified" in p.stdout
