"""The recipe's data preparation is byte-identical across two runs (issue 10: reproducible main job).

Runs the command-line steps of ``scripts/recipes/pair.sh`` with the recipe's own
flags (workers, threads, seeds) twice on a real slice and compares every file they write: split text, Moses text, sentencepiece model, encoded text, fairseq dictionary,
binarised data, IBM-1 lexicons and substitution tables.
"""
import hashlib
import os
from pathlib import Path

from conftest import VENV_BIN, data_path, head_lines, run


def prepare(root: Path, src: Path) -> None:
    """Recipe steps 1-6 on the slice in ``src`` (a smaller vocabulary, the recipe's flags)."""
    lex, text, bin_ = root / "lexicons", root / "text", root / "bin"
    run([VENV_BIN / "csfair-prep", "split-pair", "--mono", f"en:{src / 'en.txt'}", "--mono", f"fr:{src / 'fr.txt'}",
         "--src-lang", "en", "--tgt-lang", "fr", "--parallel-src", src / "para.en", "--parallel-tgt", src / "para.fr",
         "--test", "100", "--valid", "100", "--seed", "1", "--eval-langs", "en,fr", "--eval-tasks", "pos",
         "--out-dir", root])
    run([VENV_BIN / "csfair-lexicon", "ibm1", "--src-file", root / "parallel" / "train.en", "--tgt-file",
         root / "parallel" / "train.fr", "--src-lang", "en", "--tgt-lang", "fr", "--out-dir", lex, "--workers", "2",
         "--quiet"])
    for lang in ("en", "fr"):
        for split in ("train", "valid", "test"):
            if (text / f"{lang}.{split}.txt").exists():
                run([VENV_BIN / "csfair-prep", "moses", "--lang", lang, "--input", text / f"{lang}.{split}.txt",
                     "--output", text / f"{lang}.{split}.tok", "--workers", "2", "--quiet"])
    run([VENV_BIN / "csfair-prep", "spm-train", "--input", f"en:{text / 'en.train.tok'}",
         "--input", f"fr:{text / 'fr.train.tok'}", "--model-prefix", bin_ / "spm", "--vocab-size", "1000"])
    for f in sorted(text.glob("*.tok")):
        run([VENV_BIN / "csfair-prep", "spm-encode", "--model", bin_ / "spm.model", "--input", f,
             "--output", f.with_suffix(".spm")])
    run([VENV_BIN / "csfair-prep", "fairseq-dict", "--model", bin_ / "spm.model", "--counts-from",
         text / "en.train.spm", text / "fr.train.spm", "--output", bin_ / "dict.txt"])
    for lang in ("en", "fr"):
        args = ["--trainpref", text / f"{lang}.train.spm", "--validpref", text / f"{lang}.valid.spm"]
        if (text / f"{lang}.test.spm").exists():
            args += ["--testpref", text / f"{lang}.test.spm"]
        run([VENV_BIN / "fairseq-preprocess", "--only-source", "--srcdict", bin_ / "dict.txt", *args,
             "--destdir", bin_ / lang, "--workers", "2"])
        os.remove(bin_ / lang / "preprocess.log")  # fairseq's log (absolute paths, times)
    for d in ("en-fr", "fr-en"):
        run([VENV_BIN / "csfair-lexicon", "table", "--lexicon", lex / f"ibm1.{d}.tsv", "--spm-model",
             bin_ / "spm.model", "--dict", bin_ / "dict.txt", "--out", bin_ / "tables" / f"ibm1.{d}", "--quiet",
             "--src-corpus", text / f"{d[:2]}.train.tok", "--tgt-corpus", text / f"{d[3:]}.train.tok"])


def digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_data_preparation_is_byte_identical_across_runs(tmp_path):
    src = tmp_path / "slice"
    src.mkdir()
    head_lines(data_path("parallel/multi30k/train.en.gz"), src / "para.en", 2000)
    head_lines(data_path("parallel/multi30k/train.fr.gz"), src / "para.fr", 2000)
    for lang in ("en", "fr"):
        head_lines(data_path(f"mono/derived/{lang}.txt"), src / f"{lang}.txt", 2500)
    # both runs in the same place (table metadata records absolute paths), the first one moved away
    prepare(tmp_path / "run", src)
    (tmp_path / "run").rename(tmp_path / "a")
    prepare(tmp_path / "run", src)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "run")
    assert len(a) > 25 and sorted(a) == sorted(b)
    differ = [k for k in a if a[k] != b[k]]
    assert not differ, differ
