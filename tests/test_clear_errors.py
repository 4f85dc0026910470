"""Misleading errors made clear (csfair issue 21): each names the file, the cause and the fix, in one line.

Truncated gzip input, unreadable checkpoints (eval_mlm, the hub, hf_convert), a checkpoint of
another task, ``--langs`` naming a language without data, a resume with another table or another
architecture, and a full disk (the atomic writers and fairseq's checkpoint saving).
"""
import gzip
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, VENV_BIN, data_path, head_lines


def script(name):
    """A script of scripts/ as a module (its ``main(argv)`` is the command line, run in-process)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


eval_mlm, hf_convert = script("eval_mlm"), script("hf_convert")

#: tiny_mlm's training options (tests/conftest.py), to resume it for two more updates
TINY_MLM_ARGS = ["--user-dir", str(ROOT / "user_dir"), "--task", "codeswitch_masked_lm", "--langs", "en,fr",
                 "--cs-table-name", "ibm1", "--arch", "cs_roberta_tiny", "--encoder-layers", "2",
                 "--encoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256", "--encoder-attention-heads", "2",
                 "--criterion", "cs_masked_lm", "--tokens-per-sample", "128", "--sample-break-mode", "complete",
                 "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16", "--max-update", "62",
                 "--no-epoch-checkpoints", "--disable-validation", "--cpu", "--log-format", "simple"]


def one_line_error(stderr: str, prog: str) -> str:
    """The single ``prog: error: ...`` line of a failed command; asserts there is no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [x for x in stderr.splitlines() if x.startswith(f"{prog}: error: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def truncated_gzip(src, dst, n_lines):
    """The first ``n_lines`` of a real corpus, gzipped and cut to half of its compressed bytes."""
    data = gzip.compress(head_lines(src, dst.with_name(dst.name + ".plain"), n_lines).read_bytes())
    dst.write_bytes(data[: len(data) // 2])
    return dst


def fairseq_train(args, cwd):
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(VENV_BIN / "fairseq-train"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


# --------------------------------------------------------------------------- gzip
def test_truncated_or_fake_gzip_names_file_and_line(tmp_path, capsys):
    from csfair.cli.lexicon import main as lexicon_main
    from csfair.io import InputFormatError, count_lines, iter_parallel

    mono = truncated_gzip(data_path("mono/derived/fr.txt"), tmp_path / "fr.txt.gz", 4000)
    p = subprocess.run([sys.executable, "-m", "csfair.cli.prep", "split", "--input", mono, "--out-prefix",
                        tmp_path / "fr", "--test", "10", "--valid", "10"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2
    line = one_line_error(p.stderr, "csfair-prep split")
    assert f"{mono}:" in line and "truncated gzip file" in line and "fetch or copy the file again" in line
    assert not list(tmp_path.glob("fr.*.txt"))  # no split written
    with pytest.raises(InputFormatError, match="truncated gzip file"):
        count_lines(mono)

    # IBM-1 lexicon step: the side that is cut short is named, at the line where it ends
    src = tmp_path / "en.gz"
    src.write_bytes(gzip.compress(head_lines(data_path("parallel/multi30k/train.en.gz"), tmp_path / "en", 2000)
                                  .read_bytes()))
    tgt = truncated_gzip(data_path("parallel/multi30k/train.fr.gz"), tmp_path / "fr.gz", 2000)
    with pytest.raises(SystemExit) as e:
        lexicon_main(["ibm1", "--src-file", str(src), "--tgt-file", str(tgt), "--src-lang", "en", "--tgt-lang", "fr",
                      "--out-dir", str(tmp_path / "lex"), "--quiet"])
    assert e.value.code == 2
    line = one_line_error(capsys.readouterr().err, "csfair-lexicon ibm1")
    assert f"{tgt}:" in line and "truncated gzip file" in line and str(src) not in line
    assert not (tmp_path / "lex").exists()
    with pytest.raises(InputFormatError) as e:
        list(iter_parallel(src, tgt))
    good = e.value.lineno - 1  # every line before the reported one was read intact
    assert 0 < good < 2000 and f"ends after {good} line(s)" in str(e.value)

    fake = tmp_path / "plain.txt.gz"
    fake.write_text("not compressed\n")
    with pytest.raises(InputFormatError, match=r"plain.txt.gz:1: not a gzip file although its name ends in .gz"):
        count_lines(fake)


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def bad_checkpoints(tiny_mlm, tmp_path_factory):
    """Broken copies of the real tiny checkpoint: truncated, empty, random bytes, a zip with a damaged tensor."""
    d = tmp_path_factory.mktemp("bad_ckpt")
    data = tiny_mlm.read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    damaged = bytearray(data)
    at = data.index(b"data.pkl") + 1000  # inside the pickle's zip entry: the archive's end record survives
    damaged[at:at + 64] = b"\xff" * 64
    (d / "damaged.pt").write_bytes(bytes(damaged))
    return d


@pytest.mark.parametrize("name, cause", [("truncated", "truncated PyTorch checkpoint"), ("empty", "empty file"),
                                         ("garbage", "not a PyTorch checkpoint"),
                                         ("damaged", "corrupted PyTorch checkpoint")])
def test_unreadable_checkpoint_is_named_by_eval_mlm_hub_and_hf_convert(bad_checkpoints, tiny_pair, name, cause,
                                                                       tmp_path, capsys):
    from user_dir.checkpoint_loading import CheckpointError, read_checkpoint
    from user_dir.hub_interface import from_pretrained

    path = bad_checkpoints / f"{name}.pt"
    with pytest.raises(SystemExit) as e:
        eval_mlm.main(["--checkpoint", str(path), "--data", str(tiny_pair["bin"]), "--lang", "fr", "--cpu"])
    assert e.value.code == 2
    line = one_line_error(capsys.readouterr().err, "eval_mlm")
    assert f"{path}: " in line and cause in line
    with pytest.raises(CheckpointError, match=f"{path}: .*{cause}"):
        from_pretrained(str(bad_checkpoints), f"{name}.pt", data_name_or_path=str(tiny_pair["bin"]), device="cpu")
    with pytest.raises(CheckpointError, match=cause):
        read_checkpoint(str(path))
    with pytest.raises(SystemExit) as e:  # the converter goes through the hub; its command prints one line
        hf_convert.main(["export", str(path), str(tmp_path / "hf")])
    assert e.value.code == 2
    assert cause in one_line_error(capsys.readouterr().err, "hf_convert export") and not (tmp_path / "hf").exists()


def test_checkpoint_of_another_task_says_what_it_is(tiny_mlm, tiny_pair, tmp_path, capsys):
    """A tagger's or a TLM checkpoint given to eval_mlm: refused before fairseq builds anything (a tagger used to
    be scored as if it were the masked LM, a TLM one failed with "Dataset not found: test (DATA/src/test)")."""
    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    state["cfg"]["task"]["_name"] = "tlm_masked_lm"  # what a TLM run saves (its model is a RoBERTa too)
    state["cfg"]["model"].arch = "tlm_roberta_tiny"
    other = tmp_path / "tlm.pt"
    torch.save(state, other)
    with pytest.raises(SystemExit):
        eval_mlm.main(["--checkpoint", str(other), "--data", str(tiny_pair["bin"]), "--lang", "fr", "--cpu"])
    line = one_line_error(capsys.readouterr().err, "eval_mlm")
    assert (f"{other}: a tlm_masked_lm checkpoint (arch tlm_roberta_tiny, 2 layers, dim 128); eval_mlm" in line
            and "needs a codeswitch_masked_lm or masked_lm checkpoint" in line)
    # a task whose data is missing says what the checkpoint is before what is missing
    from user_dir.checkpoint_loading import load_model_and_task

    state["cfg"]["task"]["_name"] = "token_tagging"
    state["cfg"]["task"]["data"] = str(tiny_pair["bin"])
    state["cfg"]["model"].arch = "cs_roberta_tiny"
    tagger = tmp_path / "tagger.pt"
    torch.save(state, tagger)
    with pytest.raises(FileNotFoundError, match=r"tagger.pt is a token_tagging checkpoint \(arch cs_roberta_tiny.*"
                                                r"input0/dict.txt"):
        load_model_and_task(str(tagger))


# --------------------------------------------------------------------------- fairseq-train
def test_langs_without_data_and_resume_with_other_table_or_architecture(tiny_mlm, tiny_pair, tmp_path):
    """fairseq-train: one line, no traceback, the precise cause (not a missing table, not "architectures must
    match")."""
    from csfair.pretraining.substitution_table import SubstitutionTable

    b = tiny_pair["bin"]
    args = [a if a != "en,fr" else "en,de" for a in TINY_MLM_ARGS]
    p = fairseq_train([b, *args, "--save-dir", tmp_path / "de"], ROOT)
    assert p.returncode != 0
    line = one_line_error(p.stderr, "fairseq-train")
    assert f"--langs en,de: no data for de in {b} (no directory {b / 'de'}); it has data for en, fr" in line
    assert "substitution table" not in line

    save = tmp_path / "resume"
    save.mkdir()
    shutil.copyfile(tiny_mlm, save / "checkpoint_last.pt")
    other = tmp_path / "ibm1.en-fr.T1"
    SubstitutionTable.load(b / "tables" / "ibm1.en-fr").with_sampling(1.0, 0.02).save(other)
    args = list(TINY_MLM_ARGS)
    i = args.index("--cs-table-name")
    args[i:i + 2] = ["--cs-tables", f"en:{other},fr:tables/ibm1.fr-en"]
    p = fairseq_train([b, *args, "--save-dir", save], ROOT)
    assert p.returncode != 0
    line = one_line_error(p.stderr, "fairseq-train")
    assert line.startswith(f"fairseq-train: error: {save / 'checkpoint_last.pt'}: substitution table for 'en' "
                           "differs from the one this checkpoint was trained with")
    assert "architectures match" not in p.stdout + p.stderr

    args = list(TINY_MLM_ARGS)
    args[args.index("--encoder-layers") + 1] = "3"
    p = fairseq_train([b, *args, "--save-dir", save], ROOT)
    line = one_line_error(p.stderr, "fairseq-train")
    assert (f"{save / 'checkpoint_last.pt'}: a codeswitch_masked_lm checkpoint (arch cs_roberta_tiny, 2 layers, "
            "dim 128) does not fit this run's model (arch cs_roberta_tiny, 3 layers, dim 128)") in line
    assert "Missing key(s)" in line and "resume with the architecture options it was trained with" in line
    assert torch.load(save / "checkpoint_last.pt", weights_only=False)["cfg"]["model"].encoder_layers == 2


# --------------------------------------------------------------------------- disk full
def test_disk_full_names_the_file_and_loses_nothing(tmp_path, tiny_mlm, monkeypatch):
    """A real ENOSPC (writes to /dev/full) in the atomic writers and in fairseq's checkpoint saving."""
    import user_dir  # noqa: F401  (installs the checkpoint-saving patch)
    from fairseq import checkpoint_utils

    import csfair.io as cio

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    dest = tmp_path / "lexicon.tsv"
    dest.write_text("old\n")
    link = tmp_path / "tmp.link"
    link.symlink_to("/dev/full")
    monkeypatch.setattr(cio, "_tmp_sibling", lambda p: link)  # the writer's temporary file is the full device
    with pytest.raises(cio.DiskFullError, match=rf"{dest}: disk full \(ENOSPC\) while writing it \(OSError: "
                                                r"\[Errno 28\].*nothing there was replaced"):
        with cio.atomic_write(dest) as fh:
            fh.write("new\n" * 100_000)
    assert dest.read_text() == "old\n" and not os.path.lexists(link)

    # fairseq writes NAME.tmp then renames it: a full disk names NAME, keeps the old NAME, removes NAME.tmp
    ckpt = tmp_path / "checkpoint_last.pt"
    shutil.copyfile(tiny_mlm, ckpt)
    (tmp_path / "checkpoint_last.pt.tmp").symlink_to("/dev/full")
    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    with pytest.raises(cio.DiskFullError, match=rf"{ckpt}: disk full \(ENOSPC\)"):
        checkpoint_utils.torch_persistent_save(state, str(ckpt))
    assert not os.path.lexists(tmp_path / "checkpoint_last.pt.tmp") and ckpt.read_bytes() == tiny_mlm.read_bytes()


def _tmpfs_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    p = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return p.returncode == 0


@pytest.mark.skipif(not _tmpfs_available(), reason="needs user and mount namespaces (unshare -rm) for a small tmpfs")
def test_disk_full_on_a_real_small_file_system_via_the_cli(tiny_pair, tmp_path):
    """``csfair-lexicon table`` onto a 100 KB tmpfs: numpy says only "8752 requested and 3568 written"."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "csfair.cli.lexicon", "table", "--lexicon", tiny_pair["lex_en_fr"], "--spm-model",
           tiny_pair["spm"], "--dict", tiny_pair["dict"], "--out", mnt / "ibm1.en-fr", "--src-stopwords", "iso",
           "--tgt-stopwords", "iso", "--quiet"]
    script = f'mount -t tmpfs -o size=100k tmpfs "{mnt}" && "$@"; rc=$?; ls -A "{mnt}"; exit $rc'
    p = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *map(str, cmd)], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode == 2
    line = one_line_error(p.stderr, "csfair-lexicon table")
    assert f"{mnt / 'ibm1.en-fr'}: disk full (ENOSPC) while writing it (OSError: " in line
    assert "requested and" in line and "nothing there was replaced" in line
    assert p.stdout.strip() == ""  # the partial table directory was removed
