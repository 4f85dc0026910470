"""Shared fixtures: a tiny but real English-French pipeline built once per test session.

From ``$CSFAIR_DATA`` (small slices so the suite stays fast): IBM-1 lexicons on 3,000 Multi30k
pairs, a 1,000-piece sentencepiece model on 3,000 monolingual lines per language, the fairseq
dictionary, ``fairseq-preprocess`` per language, and IBM-1 substitution tables in both directions.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CSFAIR_DATA", str((ROOT / ".." / "shared" / "data").resolve()))
VENV_BIN = Path(sys.executable).parent


def data_path(rel: str) -> Path:
    from csfair.paths import data_file

    return data_file(rel)


def run(cmd, **kw):
    """Run a command; on failure show its output in the assertion message."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=kw.pop("cwd", ROOT), **kw)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p


def _fairseq_backend():
    from user_dir.zeroshot_backend import FairseqBackend

    return FairseqBackend()


def _transformers_backend():
    from csfair_hf.zeroshot import TransformersBackend

    return TransformersBackend()


#: the zero-shot runner's backends, as scripts/zeroshot.py passes them (imported when a column needs one)
ZEROSHOT_BACKENDS = {"fairseq": _fairseq_backend, "hf": _transformers_backend}
#: the command a launcher's job runs (the runner restricted to one unit)
ZEROSHOT_COMMAND = [sys.executable, str(ROOT / "scripts" / "zeroshot.py")]


def zeroshot_main(argv, **kw):
    """The zero-shot runner in this process, with the backends and job command of scripts/zeroshot.py."""
    from csfair.evaluation.zeroshot import main

    return main(argv, backends=ZEROSHOT_BACKENDS, command=ZEROSHOT_COMMAND, **kw)


def head_lines(src: Path, dst: Path, n: int, skip: int = 0) -> Path:
    import gzip

    opener = gzip.open if str(src).endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8") as fh, open(dst, "w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i < skip:
                continue
            if i >= skip + n:
                break
            out.write(line)
    return dst


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory):
    """Artifacts of a tiny real en-fr pipeline (paths in a dict)."""
    from csfair.lexicons.ibm1 import build_ibm1_lexicons
    from csfair.pretraining.table_build import TableConfig, build_table
    from csfair.text import load_stopwords, moses_tokenize_lines
    from csfair.pretraining.vocab import WordEncoder, encode_file, train_sentencepiece, write_fairseq_dict

    d = tmp_path_factory.mktemp("tiny_en_fr")
    out = {"dir": d}
    fwd, bwd, _ = build_ibm1_lexicons(
        data_path("parallel/multi30k/train.en.gz"), data_path("parallel/multi30k/train.fr.gz"),
        "en", "fr", max_pairs=3000, workers=1, progress=False,
    )
    out["lex_en_fr"], out["lex_fr_en"] = d / "ibm1.en-fr.tsv", d / "ibm1.fr-en.tsv"
    fwd.save_tsv(out["lex_en_fr"])
    bwd.save_tsv(out["lex_fr_en"])

    for lang in ("en", "fr"):
        raw = head_lines(data_path(f"mono/derived/{lang}.txt"), d / f"{lang}.raw", 3400)
        lines = raw.read_text(encoding="utf-8").splitlines()
        tok = list(moses_tokenize_lines(lines, lang))
        (d / f"{lang}.train.tok").write_text("\n".join(tok[:3000]) + "\n", encoding="utf-8")
        (d / f"{lang}.valid.tok").write_text("\n".join(tok[3000:3200]) + "\n", encoding="utf-8")
        (d / f"{lang}.test.tok").write_text("\n".join(tok[3200:3400]) + "\n", encoding="utf-8")
    train_sentencepiece({"en": d / "en.train.tok", "fr": d / "fr.train.tok"}, d / "spm", vocab_size=1000)
    out["spm"] = d / "spm.model"
    for lang in ("en", "fr"):
        for split in ("train", "valid", "test"):
            encode_file(out["spm"], d / f"{lang}.{split}.tok", d / f"{lang}.{split}.spm")
    out["dict"] = d / "dict.txt"
    write_fairseq_dict(out["spm"], [d / "en.train.spm", d / "fr.train.spm"], out["dict"])

    bin_dir = d / "bin"
    for lang in ("en", "fr"):
        run([VENV_BIN / "fairseq-preprocess", "--only-source", "--srcdict", out["dict"],
             "--trainpref", d / f"{lang}.train.spm", "--validpref", d / f"{lang}.valid.spm",
             "--testpref", d / f"{lang}.test.spm", "--destdir", bin_dir / lang, "--workers", "1"])
    out["bin"] = bin_dir
    import shutil

    shutil.copyfile(out["spm"], bin_dir / "spm.model")  # a data-bin holds its vocabulary (as the recipes)

    enc = WordEncoder(out["spm"], out["dict"])
    cfg = TableConfig(src_stopwords=load_stopwords("iso", "en"), tgt_stopwords=load_stopwords("iso", "fr"))
    extra = dict(dict_sha256=enc.vocab.sha256(), dict_size=len(enc.vocab), dict_path=str(out["dict"]))
    for lex, name in ((fwd, "ibm1.en-fr"), (bwd, "ibm1.fr-en")):
        c = cfg if name.endswith("en-fr") else TableConfig(
            src_stopwords=load_stopwords("iso", "fr"), tgt_stopwords=load_stopwords("iso", "en"))
        table, _ = build_table(lex, enc, enc.vocab.unk, c, extra_meta=extra)
        table.save(bin_dir / "tables" / name)
    out["encoder"] = enc
    return out


@pytest.fixture(scope="session")
def tiny_mlm(tiny_pair, tmp_path_factory):
    """A tiny code-switched MLM checkpoint on the tiny real pair (60 updates); its log next to it."""
    d = tmp_path_factory.mktemp("pre")
    p = run([VENV_BIN / "fairseq-train", tiny_pair["bin"], "--user-dir", ROOT / "user_dir", "--task", "codeswitch_masked_lm",
             "--langs", "en,fr", "--cs-table-name", "ibm1", "--arch", "cs_roberta_tiny", "--encoder-layers", "2",
             "--encoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256", "--encoder-attention-heads", "2",
             "--criterion", "cs_masked_lm", "--tokens-per-sample", "128", "--sample-break-mode", "complete",
             "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16", "--max-update", "60", "--save-dir", d,
             "--no-epoch-checkpoints", "--disable-validation", "--cpu", "--log-format", "simple", "--log-interval", "10"])
    (d / "train.log").write_text(p.stdout + p.stderr)
    return d / "checkpoint_last.pt"


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory):
    """Small offline transformers MLMs of the three tokenizer families (tests/hf_models.py), on en+es:
    ``{"bert", "xlmr", "roberta"}`` directories for ``from_pretrained``, ``"spm"`` (the XLM-R
    sentencepiece model) and ``"text_en"``/``"text_es"`` (the lines they were trained on)."""
    from hf_models import build_all

    return build_all(tmp_path_factory.mktemp("hf_models"))


@pytest.fixture(scope="session")
def hf_tables(hf_models, tmp_path_factory):
    """en->es substitution tables for the three ``hf_models`` tokenizers, built by ``csfair-lexicon
    table --hf-tokenizer`` from the real MUSE en-es dictionary restricted to the words of the
    fixture's English text (the full dictionary takes ~15 s per tokenizer): ``{family: table dir}``."""
    from csfair_cli.lexicon import main as lexicon_main

    d = tmp_path_factory.mktemp("hf_tables")
    words = {w.lower() for line in hf_models["text_en"].read_text(encoding="utf-8").split("\n") for w in line.split()}
    muse = d / "muse.en-es.txt"
    with open(data_path("dict/muse/en-es.txt"), encoding="utf-8") as fh, open(muse, "w", encoding="utf-8") as out:
        out.writelines(line for line in fh if line.split(" ", 1)[0].lower() in words)
    lexicon_main(["muse", "--muse-dict", str(muse), "--src-lang", "en", "--tgt-lang", "es", "--out", str(d / "muse.en-es.tsv")])
    out = {}
    for fam in ("bert", "xlmr", "roberta"):
        out[fam] = d / f"{fam}.en-es"
        lexicon_main(["table", "--lexicon", str(d / "muse.en-es.tsv"), "--hf-tokenizer", str(hf_models[fam]),
                      "--out", str(out[fam]), "--src-corpus", str(hf_models["text_en"]),
                      "--tgt-corpus", str(hf_models["text_es"]), "--quiet"])
    return out
