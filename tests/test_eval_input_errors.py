"""Evaluation input that is wrong or unusual fails loudly or is read as declared (csfair issue 21, part B).

Every case damages a small real slice of $CSFAIR_DATA in a temporary data root: a byte-order mark,
a PAN-X file of another language, malformed CoNLL-U lines, header-less TSV, labels outside the set
and trailing tabs, placeholder rows in a row-aligned set, empty files; and the zero-shot runner's
errors (one line naming the file, exit status 2), checkpoint positions and vocabulary.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, VENV_BIN, data_path, head_lines
from csfair.evaluation.corpora import read_conllu, read_ner, read_udpos_tsv, read_xnli, split_by_group
from csfair.evaluation.readers import read_panx, read_pairs
from csfair.evaluation.tasks import TASKS, TaskError, load_tasks_file, write_task_data
from csfair.io import BOM, InputFormatError, iter_parallel

UD = {"en": "UD_English-GUM-v2.5/en_gum-ud-{split}.conllu", "fr": "UD_French-GSD/fr_gsd-ud-{split}.conllu",
      "de": "UD_German-GSD/de_gsd-ud-{split}.conllu"}


def _sentences(src: Path, dst: Path, n: int, skip: int = 0) -> Path:
    """The first ``n`` blank-line-separated blocks of a file (after ``skip`` blocks), complete."""
    text = src.read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()][skip:skip + n]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return dst


def _bom(path: Path) -> Path:
    path.write_bytes(BOM + path.read_bytes())
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A data root of real slices: UD treebanks, UD-POS, WikiANN (also as raw PAN-X), XNLI (60 rows)."""
    r = tmp_path_factory.mktemp("data")
    for lg, rel in UD.items():
        for split in (("train", "dev") if lg == "en" else ("test",)):
            _sentences(data_path("ud/" + rel.format(split=split)), r / "ud" / rel.format(split=split), 12)
    for name in ("train-en.tsv", "dev-en.tsv", "dev-fr.tsv"):
        _sentences(data_path(f"pos/udpos-xtreme/{name}"), r / "pos" / "udpos-xtreme" / name, 20)
    for lg, split in (("en", "train"), ("en", "val"), ("de", "test")):
        src = _sentences(data_path(f"ner/wikiann/{lg}/{split}.conllu"), r / "ner" / "wikiann" / lg / f"{split}.conllu", 30)
        panx = r / "ner" / "panx" / lg / {"val": "dev"}.get(split, split)
        panx.parent.mkdir(parents=True, exist_ok=True)
        panx.write_text("\n\n".join("\n".join(f"{lg}:{w}\t{t}" for w, t in zip(s.words, s.labels))
                                    for s in read_ner(src)) + "\n", encoding="utf-8")
    for lg in ("en", "fr", "de"):
        d = r / "nli" / "xnli-xtreme"
        d.mkdir(parents=True, exist_ok=True)
        head_lines(data_path(f"nli/xnli-xtreme/dev-{lg}.tsv"), d / f"dev-{lg}.tsv", 60)
    return r


@pytest.fixture
def data_root(root, tmp_path, monkeypatch):
    """A private copy of the slices (a test may damage it) as $CSFAIR_DATA."""
    mine = tmp_path / "data"
    shutil.copytree(root, mine)
    monkeypatch.setenv("CSFAIR_DATA", str(mine))
    return mine


# --- silent case 6: a byte-order mark is not data ------------------------------------------------

def test_a_byte_order_mark_is_not_part_of_the_first_token(data_root, tmp_path):
    pos = data_root / "pos" / "udpos-xtreme" / "dev-fr.tsv"
    clean = read_udpos_tsv(pos)
    assert clean[0].words[0] == "FLEXIBLE"
    assert [(s.words, s.labels) for s in read_udpos_tsv(_bom(pos))] == [(s.words, s.labels) for s in clean]
    # PAN-X: with the mark, the first token's "en:" prefix was not recognised and every token kept it
    panx = data_root / "ner" / "panx" / "en" / "train"
    clean = read_panx(panx)
    got = read_panx(_bom(panx))
    assert [s.words for s in got] == [s.words for s in clean] and not any(w.startswith("en:") for w in got[0].words)
    conllu = data_root / "ud" / UD["fr"].format(split="test")
    clean = read_conllu(conllu)
    assert [(s.words, s.labels, s.meta) for s in read_conllu(_bom(conllu))] == [(s.words, s.labels, s.meta) for s in clean]
    # parallel text (lexicons, tables) and the tasks file itself
    src, tgt = tmp_path / "a.en", tmp_path / "a.fr"
    src.write_bytes(BOM + b"the cat\nthe dog\n")
    tgt.write_bytes(BOM + b"le chat\nle chien\n")
    assert [(s, t) for _, s, t in iter_parallel(src, tgt)] == [("the cat", "le chat"), ("the dog", "le chien")]
    toml = tmp_path / "t.toml"
    toml.write_bytes(BOM + b'[pos-bom]\ninherit = "pos"\nlangs = ["fr"]\n')
    assert list(load_tasks_file(toml, known=TASKS)) == ["pos-bom"]
    # stopword lists (JSON) and the transformers path's text files
    from csfair.text import load_stopwords

    sw = tmp_path / "sw.json"
    sw.write_bytes(BOM + json.dumps({"fr": ["le", "la"]}).encode())
    assert load_stopwords(str(sw), "fr") == {"le", "la"}
    from csfair_hf.tokenization import read_lines

    assert read_lines(str(src)) == ["the cat", "the dog"]


def test_a_panx_file_of_another_language_is_an_error(data_root):
    de = data_root / "ner" / "panx" / "de" / "test"
    de.write_text(de.read_text(encoding="utf-8").replace("de:", "en:"), encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"de/test:1: token 'en:.*' has the language prefix 'en:', but this "
                                               r"file is 'de'"):
        read_panx(de)
    # the same through a task: the reader is told the task's language for the split
    spec = load_tasks_file(_write(data_root / "t.toml", '[ner-panx]\ninherit = "panx"\nlangs = ["de"]\n'), TASKS)
    with pytest.raises(InputFormatError, match=r"de/test:1: .* prefix 'en:'"):
        spec["ner-panx"].load(1)


# --- CoNLL-U: the malformed line itself, 10 columns --------------------------------------------

def test_conllu_errors_name_the_malformed_line(data_root, capsys):
    f = data_root / "ud" / UD["fr"].format(split="test")
    lines = f.read_text(encoding="utf-8").split("\n")
    second = [i for i, ln in enumerate(lines) if ln == ""][0] + 1  # the second sentence's first line
    token = next(i for i in range(second, len(lines)) if lines[i][:1].isdigit()) + 3  # its 4th token line
    for damage, message in [(lambda c: c[:7], "expected the 10 tab-separated CoNLL-U columns .*got 7"),
                            (lambda c: c[:4], "expected the 10 .*got 4"),
                            (lambda c: ["x"] + c[1:], "CoNLL-U token line not parsed"),
                            (lambda c: c[:6] + ["root"] + c[7:], "CoNLL-U token line not parsed")]:
        bad = list(lines)
        bad[token] = "\t".join(damage(lines[token].split("\t")))
        f.write_text("\n".join(bad), encoding="utf-8")
        with pytest.raises(InputFormatError, match=rf"{f.name}:{token + 1}: {message}"):
            read_conllu(f)
    bad = list(lines)
    bad[token] += "\t"  # a trailing tab: repaired, counted
    f.write_text("\n".join(bad), encoding="utf-8")
    f0 = data_root / "fr0.conllu"
    f0.write_text("\n".join(lines), encoding="utf-8")
    assert [s.labels for s in read_conllu(f)] == [s.labels for s in read_conllu(f0)]
    assert f"{f.name}: normalised 1 line(s): 1 trailing tab(s) removed" in capsys.readouterr().err


# --- your own evaluation data, declared without Python -------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_treebanks_by_language_name_globs_and_per_language_paths(data_root):
    f = _write(data_root / "ud.toml", """
[ud-pos]
kind = "tagging"
metric = "accuracy"
epochs = 3
train_lang = "en"
langs = ["fr", "de"]
reader = "conllu"
train = "ud/UD_English-*/en_*-ud-train.conllu"
valid = "ud/UD_English-*/en_*-ud-dev.conllu"
test = { by_lang = { fr = "ud/UD_French-GSD/fr_gsd-ud-test.conllu", de = "ud/UD_German-*/*-test.conllu" } }
""")
    spec = load_tasks_file(f)["ud-pos"]
    data = spec.load(1)
    for lg in ("fr", "de"):
        want = read_conllu(data_root / "ud" / UD[lg].format(split="test"))
        assert [s.words for s in data["test"][lg]] == [s.words for s in want] and want
    assert [s.words for s in data["train"]] == [s.words for s in read_conllu(data_root / "ud" / UD["en"].format(split="train"))]
    # a language without a path, a pattern that matches several files, a pattern that matches none
    f.write_text(f.read_text().replace('langs = ["fr", "de"]', 'langs = ["fr", "de", "es"]'))
    with pytest.raises(TaskError, match=r"test: by_lang has no path for 'es' \(has: fr, de\)"):
        load_tasks_file(f)["ud-pos"].load(1)
    f.write_text(f.read_text().replace('langs = ["fr", "de", "es"]', 'langs = ["fr", "de"]')
                 .replace("ud/UD_English-*/en_*-ud-train.conllu", "ud/UD_English-*/*.conllu"))
    with pytest.raises(TaskError, match=r"the pattern 'ud/UD_English-\*/\*.conllu' matches 2 files"):
        load_tasks_file(f)["ud-pos"].load(1)
    f.write_text(f.read_text().replace("ud/UD_English-*/*.conllu", "ud/UD_Welsh-*/*-train.conllu"))
    assert "train (en): ud/UD_Welsh-*/*-train.conllu" in load_tasks_file(f)["ud-pos"].missing_message()


NLI = """
[nli-own]
kind = "classification"
pair = true
metric = "accuracy"
epochs = 4
train_lang = "en"
langs = ["fr"]
reader = "pairs"
options = { text_a = "premise", text_b = "hypothesis", label = "label", label_names = ["entailment", "neutral", "contradiction"] }
train = "nli/xnli-xtreme/dev-en.tsv"
valid = { holdout = 0.2 }
test = "nli/xnli-xtreme/dev-{lang}.tsv"
"""


def test_header_less_tsv_says_no_header_and_reads_declared_columns(data_root, capsys):
    f = _write(data_root / "nli.toml", NLI)
    with pytest.raises(InputFormatError, match=r"dev-en.tsv:1: no header: the first line looks like data .* declare "
                                               r"its columns"):
        load_tasks_file(f)["nli-own"].load(1)
    f.write_text(NLI.replace('label = "label",', 'label = "label", columns = ["premise", "hypothesis", "label"],'))
    data = load_tasks_file(f)["nli-own"].load(1)
    want = read_xnli(data_root / "nli" / "xnli-xtreme" / "dev-fr.tsv")
    assert [(x.text_a, x.text_b, x.label) for x in data["test"]["fr"]] == [(x.text_a, x.text_b, x.label) for x in want]
    assert len(data["train"]) + len(data["valid"]) == 60
    # training and testing on translations of the same rows: said, not silent
    err = capsys.readouterr().err
    assert "warning: task nli-own: train and test are read from the same files 'nli/xnli-xtreme/dev-{lang}.tsv'" in err


def test_labels_outside_the_set_need_a_label_map_and_trailing_tabs_are_counted(data_root, capsys):
    f = data_root / "ner" / "wikiann" / "en" / "train.conllu"
    clean = read_ner(f)
    lines = f.read_text(encoding="utf-8").split("\n")
    misc = [i for i, ln in enumerate(lines) if ln.endswith("\tB-LOC")][:3]
    for i in misc:  # a corpus with an entity type the task does not have
        lines[i] = lines[i][:-len("B-LOC")] + "B-OTH"
    tabs = [i for i, ln in enumerate(lines) if ln.endswith("\tO")][:5]
    for i in tabs:
        lines[i] += "\t"
    f.write_text("\n".join(lines), encoding="utf-8")
    toml = _write(data_root / "ner.toml", '[ner-oth]\ninherit = "ner-wikiann"\nlangs = ["de"]\n')
    with pytest.raises(InputFormatError, match=r"train.conllu:\d+: label 'B-OTH' of token \d+ .* is not in task "
                                               r"ner-oth's label set .* label_map"):
        load_tasks_file(toml, TASKS)["ner-oth"].load(1)
    assert "train.conllu: normalised 5 line(s): 5 trailing tab(s) removed" in capsys.readouterr().err
    toml.write_text(toml.read_text() + 'label_map = { "B-OTH" = "O", "I-OTH" = "O" }\n')
    data = load_tasks_file(toml, TASKS)["ner-oth"].load(1)
    assert "task ner-oth: label_map changed 3 label(s): B-OTH -> O: 3" in capsys.readouterr().err
    got = data["train"]
    assert [s.words for s in got] == [s.words for s in clean]
    changed = [(a, b) for s, c in zip(got, clean) for a, b in zip(s.labels, c.labels) if a != b]
    assert changed == [("O", "B-LOC")] * 3


SPLIT = """
[nli-split]
kind = "classification"
pair = true
metric = "accuracy"
epochs = 4
train_lang = "en"
langs = ["fr", "de"]
reader = "xnli-xtreme"
split_by_group = { files = "nli/xnli-xtreme/dev-{lang}.tsv", dev = 0.2, test = 0.4 }
"""


def test_placeholder_rows_of_a_row_aligned_set_are_named_counted_and_dropped_on_request(data_root, capsys):
    fr = data_root / "nli" / "xnli-xtreme" / "dev-fr.tsv"
    lines = fr.read_text(encoding="utf-8").split("\n")
    for i in (4, 31):  # two untranslated rows: empty texts, the label kept
        lines[i] = "\t\t" + lines[i].split("\t")[2]
    fr.write_text("\n".join(lines), encoding="utf-8")
    f = _write(data_root / "split.toml", SPLIT)
    with pytest.raises(TaskError, match=r"task nli-split: rows are not aligned across languages: fr has 2 placeholder "
                                        r"row\(s\) \(empty text; e.g. .*dev-fr.tsv:5\); set placeholders = \"drop\""):
        load_tasks_file(f)["nli-split"].load(1)
    f.write_text(SPLIT.replace("test = 0.4 }", 'test = 0.4, placeholders = "drop" }'))
    data = load_tasks_file(f)["nli-split"].load(1)
    assert "task nli-split: dropped 2 row(s) in every language: fr has 2 placeholder row(s)" in capsys.readouterr().err
    rows = {lg: read_xnli(data_root / "nli" / "xnli-xtreme" / f"dev-{lg}.tsv") for lg in ("en", "fr", "de")}
    kept = {lg: [x for i, x in enumerate(r) if i not in (4, 31)] for lg, r in rows.items()}
    train, dev, tests = split_by_group(kept, "en", dev=0.2, test=0.4, seed=1)
    assert [x.source for x in data["train"]] == [x.source for x in train]
    assert [x.source for x in data["test"]["fr"]] == [x.source for x in tests["fr"]] and tests["fr"]
    assert all(x.text_a.strip() for lg in ("fr", "de") for x in data["test"][lg])
    # a row its reader skipped in one language (here: a pairs file with "-" as no label) is found by its line
    for lg, r in rows.items():
        text = "premise\thypothesis\tlabel\n" + "".join(f"{x.text_a}\t{x.text_b}\t{x.label}\n" for x in r)
        if lg == "de":
            text = text.replace("\tneutral\n", "\t-\n", 1)
        _write(data_root / "nli" / f"pairs-{lg}.tsv", text)
    decl = SPLIT.replace('reader = "xnli-xtreme"', 'reader = "pairs"\noptions = { text_a = "premise", '
                         'text_b = "hypothesis", skip_labels = ["-"] }').replace("xnli-xtreme/dev-{lang}", "pairs-{lang}")
    f.write_text(decl)
    with pytest.raises(TaskError, match=r"task nli-split: rows are not aligned .* de lacks 1 row\(s\) of en \(e.g. line"):
        load_tasks_file(f)["nli-split"].load(1)
    f.write_text(decl.replace("test = 0.4 }", 'test = 0.4, placeholders = "drop" }'))
    data = load_tasks_file(f)["nli-split"].load(1)
    assert len(data["test"]["de"]) == len(data["test"]["fr"]) and "dropped 3 row(s)" in capsys.readouterr().err


def test_split_by_group_for_any_task_with_a_group_key(data_root):
    """A PAWS-X-like set: each language's rows carry the shared id; no id is in two parts."""
    rows = {lg: read_xnli(data_root / "nli" / "xnli-xtreme" / f"dev-{lg}.tsv") for lg in ("en", "fr")}
    for lg, r in rows.items():
        order = list(enumerate(r))[::-1] if lg == "fr" else list(enumerate(r))  # not row-aligned: another order
        _write(data_root / "nli" / f"ids-{lg}.tsv", "id\tsentence1\tsentence2\tlabel\n"
               + "".join(f"{i // 3}\t{x.text_a}\t{x.text_b}\t{x.label}\n" for i, x in order))
    f = _write(data_root / "g.toml", """
[pawsx-like]
kind = "classification"
pair = true
metric = "accuracy"
epochs = 2
train_lang = "en"
langs = ["fr"]
reader = "pairs"
options = { group = "id" }
split_by_group = { files = "nli/ids-{lang}.tsv", dev = 0.2, test = 0.4, align = "group" }
""")
    data = load_tasks_file(f)["pawsx-like"].load(1)
    train_ids = {x.group for x in data["train"] + data["valid"]}
    assert train_ids and not train_ids & {x.group for x in data["test"]["fr"]}
    test_ids = {x.group for x in data["test"]["fr"]}
    assert len(test_ids) == round(20 * 0.4) and len(data["test"]["fr"]) == 3 * len(test_ids)  # 3 rows per id
    assert len(data["train"]) + len(data["valid"]) == 3 * (20 - len(test_ids))


def test_empty_data_and_empty_tasks_files_are_refused_before_training(data_root, tmp_path):
    (data_root / "pos" / "udpos-xtreme" / "dev-fr.tsv").write_text("")
    spec = load_tasks_file(_write(data_root / "p.toml", '[pos-x]\ninherit = "pos"\nlangs = ["fr"]\n'), TASKS)["pos-x"]
    with pytest.raises(InputFormatError, match=r"dev-fr.tsv: no examples \(.*task pos-x test, fr\): an empty file"):
        spec.load(1)
    with pytest.raises(InputFormatError, match=r"empty.toml: declares no task"):
        load_tasks_file(_write(tmp_path / "empty.toml", "# nothing yet\n"))


# --- the zero-shot runner: one-line errors, positions, vocabulary --------------------------------

@pytest.fixture(scope="module")
def fairseq_backend():
    """The zero-shot runner's fairseq backend (user_dir/zeroshot_backend.py)."""
    from user_dir.zeroshot_backend import FairseqBackend

    return FairseqBackend()


def _pos_task(data_root, damage=None):
    f = data_root / "pos" / "udpos-xtreme" / "dev-fr.tsv"
    if damage:
        lines = f.read_text(encoding="utf-8").split("\n")
        lines[5] = damage(lines[5])
        f.write_text("\n".join(lines), encoding="utf-8")
    return _write(data_root / "own.toml", '[pos-own]\ninherit = "pos"\nlangs = ["fr"]\n')


def test_runner_user_errors_are_one_line_without_traceback(tiny_pair, root, data_root, tmp_path, capsys):
    from conftest import ZEROSHOT_BACKENDS
    from csfair.evaluation.zeroshot import cli

    common = ["--checkpoint", "x=scratch:1", "--spm", str(tiny_pair["spm"]), "--dict", str(tiny_pair["dict"]),
              "--tasks", "pos-own", "--seeds", "1", "--out", str(tmp_path / "out")]
    saved = dict(TASKS)
    try:
        # a missing tag, through the real script: one line, the file and line, exit status 2
        toml = _pos_task(data_root, damage=lambda ln: ln.split("\t")[0])
        p = subprocess.run([sys.executable, ROOT / "scripts" / "zeroshot.py", *common, "--tasks-file", str(toml)],
                           capture_output=True, text=True, env={**__import__("os").environ,
                                                               "PATH": f"{VENV_BIN}:/usr/bin:/bin"})
        assert p.returncode == 2, p.stderr[-2000:]
        assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr
        assert "[zeroshot] error: " in p.stderr and "dev-fr.tsv:6: expected 2 tab-separated columns, got 1" in p.stderr
        # an unknown label and an empty test file: the same, and nothing was trained
        for damage, message in [(lambda ln: ln.split("\t")[0] + "\tNOUNS", r"dev-fr.tsv:\d+: label 'NOUNS' .* label set"),
                                (None, r"dev-fr.tsv: no examples")]:
            shutil.copyfile(root / "pos" / "udpos-xtreme" / "dev-fr.tsv", data_root / "pos" / "udpos-xtreme" / "dev-fr.tsv")
            toml = _pos_task(data_root, damage)
            if damage is None:
                (data_root / "pos" / "udpos-xtreme" / "dev-fr.tsv").write_text("")
            with pytest.raises(SystemExit) as e:
                cli([*common, "--tasks-file", str(toml)], backends=ZEROSHOT_BACKENDS)
            assert e.value.code == 2
            err = capsys.readouterr().err.strip()
            assert err.startswith("[zeroshot] error: ") and "\n" not in err
            assert __import__("re").search(message, err), err
            assert not (tmp_path / "out" / "runs").exists()
    finally:
        TASKS.clear()
        TASKS.update(saved)


def _short_checkpoint(tiny_mlm, dst: Path, positions: int) -> Path:
    """tiny_mlm with its position table cut to ``positions`` (as if pretrained with --tokens-per-sample 64)."""
    import torch

    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    key = "encoder.sentence_encoder.embed_positions.weight"
    cfg = state["cfg"]["model"]
    get = (lambda k: cfg[k]) if isinstance(cfg, dict) or hasattr(cfg, "keys") else (lambda k: getattr(cfg, k))
    pad = state["model"][key].shape[0] - get("max_positions")  # fairseq's padding_idx + 1 offset
    state["model"][key] = state["model"][key][:positions + pad].clone()
    for k in ("max_positions", "tokens_per_sample"):
        if isinstance(cfg, dict) or hasattr(cfg, "keys"):
            cfg[k] = positions
        else:
            setattr(cfg, k, positions)
    state["cfg"]["task"]["tokens_per_sample"] = positions
    state["cfg"]["task"]["data"] = str(dst.parent / "nowhere")  # the data-bin it came from is gone
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return dst


def test_runner_data_fits_the_checkpoint_and_a_copied_checkpoint_finds_its_vocabulary(
        tiny_pair, tiny_mlm, data_root, tmp_path, fairseq_backend):
    import argparse

    from csfair.evaluation.zeroshot import Column

    ckpt = _short_checkpoint(tiny_mlm, tmp_path / "copied" / "run" / "checkpoint_last.pt", 64)
    args = argparse.Namespace(spm=None, dict=None, max_train=40, max_eval=20, unseen_labels="never-predicted")
    spec = load_tasks_file(_pos_task(data_root), TASKS)["pos-own"]
    model = Column(f"c64={ckpt}")
    with pytest.raises(SystemExit, match=r"--checkpoint c64 .*: sentencepiece model spm.model not found \(looked in "
                                         r".*nowhere, then .*run and its parents\); pass the checkpoint's vocabulary with "
                                         r"--spm PATH/spm.model --dict PATH/dict.txt, or copy both next to the checkpoint .*records the dictionary's sha256"):
        fairseq_backend.prepare(spec, model, args, str(tmp_path / "out"))
    shutil.copyfile(tiny_pair["spm"], tmp_path / "copied" / "spm.model")  # copied next to it (one folder up)
    shutil.copyfile(tiny_pair["dict"], tmp_path / "copied" / "dict.txt")
    root, arch, max_pos, stats = fairseq_backend.prepare(spec, model, args, str(tmp_path / "out"))
    assert max_pos == 64 and root.endswith("-len64")
    longest = max(len(ln.split()) for f in Path(root, "raw").glob("*.input0") for ln in f.read_text().splitlines())
    assert 30 < longest <= 62  # <s> + 62 pieces + </s>: the encoder's 64 positions (long sentences were cut)
    assert sum(v["words_truncated"] for v in stats.values()) > 0
    # another dictionary than the checkpoint's is refused, naming both checksums
    other = tmp_path / "other.dict.txt"
    other.write_text(Path(tiny_pair["dict"]).read_text(encoding="utf-8") + "zzzextra 1\n", encoding="utf-8")
    args.dict = str(other)
    with pytest.raises(SystemExit, match=r"other.dict.txt is not the dictionary this checkpoint was trained with"):
        fairseq_backend.prepare(spec, model, args, str(tmp_path / "out"))


def test_the_documented_example_loads(data_root):
    """docs/evaluation.md's tasks-file example, on the slices (ner-own's es test set is not among them)."""
    text = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    block = text.split("### Examples", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    tasks = load_tasks_file(_write(data_root / "doc.toml", block), TASKS)
    import tomllib

    assert list(tasks) == list(tomllib.loads(block)) and {"ud-pos", "nli-own", "ner-own"} <= set(tasks)
    assert set(tasks["ud-pos"].load(1)["test"]) == {"fr", "de"}
    nli = tasks["nli-own"].load(1)
    premises = {x.text_a for x in nli["train"]}
    fr = read_xnli(data_root / "nli" / "xnli-xtreme" / "dev-fr.tsv")
    en = read_xnli(data_root / "nli" / "xnli-xtreme" / "dev-en.tsv")
    rows_of = {x.source.rpartition(":")[2] for x in nli["test"]["fr"]}  # the fr test rows' lines
    assert nli["test"]["fr"] and not premises & {x.text_a for x in en if x.source.rpartition(":")[2] in rows_of}
    assert len(fr) == len(en) == 60
    assert "test (es): ner/wikiann/es/test.conllu" in tasks["ner-own"].missing_message()
