"""Standard benchmark formats, tasks declared in a file, and the paper's protocol (issue 15, part 1).

Formats staged in $CSFAIR_DATA are read from real slices of it (WikiANN as PAN-X, SAGT CoNLL-U);
the others (MNLI, XNLI 1.0, PAWS-X, LinCE) from small files the tests write in the official layouts.
"""
import json
from pathlib import Path

import pytest

from conftest import data_path, head_lines
from csfair.evaluation.corpora import XNLI_LABELS, read_ner
from csfair.evaluation.readers import read_conllu, read_hf, read_mnli, read_panx, read_xnli_official
from csfair.evaluation.tasks import DEFAULT_TASKS_FILE, TASKS, MissingDataError, load_tasks_file, paper_task, \
    write_task_data
from csfair.io import InputFormatError, LineIssues

# --- official layouts ----------------------------------------------------------------------------

GLUE_TRAIN = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
GLUE_DEV = GLUE_TRAIN[:11] + ["label2", "label3", "label4", "label5", "gold_label"]
XNLI_COLS = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
             "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre", "label1", "label2",
             "label3", "label4", "label5", "sentence1_tokenized", "sentence2_tokenized", "match"]
PREMISES = [
    ("The new rights are nice enough", [("Everyone really likes the newest benefits", "neutral"),
                                        ("The new rights are rather good", "entailment"),
                                        ("Nobody likes the new rights at all", "contradiction")]),
    ("He said the bridge was closed for repairs until May.", [("The bridge is open every day.", "contradiction"),
                                                             ("Repairs are being done on the bridge.", "entailment"),
                                                             ("The repairs cost a lot of money.", "neutral")]),
]
TRANSLATED = {"fr": "[fr] ", "de": "[de] ", "tr": "[tr] ", "sw": "[sw] "}


def _tsv(path: Path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(str(r[c]) for c in header) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _mnli_rows(dev=False):
    rows = []
    for p_id, (premise, hyps) in enumerate(PREMISES, 31193):
        for h_id, (hyp, label) in enumerate(hyps):
            row = dict(index=len(rows), promptID=p_id, pairID=f"{p_id}{'enc'[h_id]}", genre="government",
                       sentence1_binary_parse=f"( {premise} )", sentence2_binary_parse=f"( {hyp} )",
                       sentence1_parse=f"(ROOT (S {premise}))", sentence2_parse=f"(ROOT (S {hyp}))",
                       sentence1=premise, sentence2=hyp, label1=label, gold_label=label)
            if dev:
                row.update(label2=label, label3=label, label4="neutral", label5=label)
            rows.append(row)
    return rows


def _xnli_rows(langs):
    rows = []
    for lang in langs:
        for p_id, (premise, hyps) in enumerate(PREMISES, 1):
            for h_id, (hyp, label) in enumerate(hyps):
                t = TRANSLATED.get(lang, "")
                rows.append(dict(language=lang, gold_label=label, sentence1_binary_parse="", sentence2_binary_parse="",
                                 sentence1_parse="", sentence2_parse="", sentence1=t + premise, sentence2=t + hyp,
                                 promptID=p_id, pairID=3 * p_id + h_id, genre="facetoface", label1=label,
                                 label2=label, label3=label, label4=label, label5=label,
                                 sentence1_tokenized=t + premise, sentence2_tokenized=t + hyp, match="True"))
    return rows


def test_mnli_glue_tsv_and_multinli_jsonl(tmp_path):
    rows = _mnli_rows()
    rows[4]["gold_label"] = "-"  # MultiNLI's "no majority" pairs: skipped and counted
    tsv = _tsv(tmp_path / "MNLI" / "train.tsv", GLUE_TRAIN, rows)
    issues = LineIssues("mnli")
    got = read_mnli(tsv, issues)
    assert [x.label for x in got] == [r["gold_label"] for r in rows if r["gold_label"] != "-"]
    assert issues.total == 1 and "train.tsv:6" in issues.examples[0]
    assert got[0].text_a == PREMISES[0][0] and got[0].group == got[1].group != got[3].group
    dev = read_mnli(_tsv(tmp_path / "MNLI" / "dev_matched.tsv", GLUE_DEV, _mnli_rows(dev=True)))
    assert [(x.text_b, x.label) for x in dev] == [h for _, hs in PREMISES for h in hs]
    jl = tmp_path / "multinli_1.0_train.jsonl"
    keep = ("annotator_labels", "genre", "gold_label", "pairID", "promptID", "sentence1", "sentence1_binary_parse",
            "sentence1_parse", "sentence2", "sentence2_binary_parse", "sentence2_parse")
    jl.write_text("".join(json.dumps({k: (r.get(k) or [r["label1"]]) for k in keep}) + "\n" for r in rows))
    issues = LineIssues("jsonl")
    assert [(x.text_a, x.text_b, x.label) for x in read_mnli(jl, issues)] == [(x.text_a, x.text_b, x.label) for x in got]
    assert issues.total == 1 and "multinli_1.0_train.jsonl:5" in issues.examples[0]
    # bad input: path:line and the reason
    text = tsv.read_text().splitlines()
    tsv.write_text("\n".join(text[:3] + [text[3] + "\textra"] + text[4:]) + "\n")
    with pytest.raises(InputFormatError, match=r"train.tsv:4: expected 12 tab-separated columns"):
        read_mnli(tsv)
    tsv.write_text("\n".join(text[:1] + [text[1].replace("\tneutral\tneutral", "\tneutral\tmaybe")]) + "\n")
    with pytest.raises(InputFormatError, match=r"train.tsv:2: unknown label 'maybe'"):
        read_mnli(tsv)
    jl.write_text('{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}\n{"sentence1": "a",\n')
    with pytest.raises(InputFormatError, match=r"multinli_1.0_train.jsonl:2: not JSON"):
        read_mnli(jl)


def test_xnli_official_tsv_jsonl_and_languages(tmp_path):
    langs = ["en", "fr", "de", "tr", "sw"]
    tsv = _tsv(tmp_path / "xnli.test.tsv", XNLI_COLS, _xnli_rows(langs))
    got = read_xnli_official(tsv)
    assert list(got) == langs and all(len(v) == 6 for v in got.values())
    for lang in langs[1:]:  # aligned: same labels and premise ids row by row
        assert [(x.label, x.group) for x in got[lang]] == [(x.label, x.group) for x in got["en"]]
    assert got["fr"][0].text_a.startswith("[fr] ") and got["en"][3].group == "xnli:2"
    assert list(read_xnli_official(tsv, langs=["sw"])) == ["sw"]
    jl = tmp_path / "xnli.test.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in _xnli_rows(["de"])))
    assert [(x.text_b, x.label) for x in read_xnli_official(jl)["de"]] == [(x.text_b, x.label) for x in got["de"]]
    rows = _xnli_rows(["en"])
    rows[2]["language"] = ""
    with pytest.raises(InputFormatError, match=r"xnli.test.tsv:4: no 'language' field"):
        read_xnli_official(_tsv(tmp_path / "xnli.test.tsv", XNLI_COLS, rows))


def test_panx_raw_and_xtreme_processed_match_the_staged_wikiann(tmp_path):
    """PAN-X is WikiANN with the Rahimi splits: the same real sentences in its two XTREME layouts."""
    staged = head_lines(data_path("ner/wikiann/de/train.conllu"), tmp_path / "de.conllu", 120)
    gold = read_ner(staged)
    assert len(gold) >= 5
    raw = tmp_path / "panx" / "de" / "train"
    proc = tmp_path / "panx" / "train-de.tsv"
    raw.parent.mkdir(parents=True)
    raw.write_text("\n\n".join("\n".join(f"de:{w}\t{t}" for w, t in zip(s.words, s.labels)) for s in gold) + "\n",
                   encoding="utf-8")
    proc.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(s.words, s.labels)) for s in gold) + "\n",
                    encoding="utf-8")
    for path in (raw, proc):
        got = read_panx(path)
        assert [(s.words, s.labels) for s in got] == [(s.words, s.labels) for s in gold], path
    lines = raw.read_text(encoding="utf-8").split("\n")
    lines[3] = lines[3][3:]  # one token without its language prefix
    raw.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"train:4: token .* lacks the 'de:' prefix"):
        read_panx(raw)
    test = tmp_path / "panx" / "test-de.tsv"
    test.write_text("Berlin\nist\n")  # XTREME's test files without labels
    with pytest.raises(InputFormatError, match=r"test-de.tsv:1: no tag .* labels removed"):
        read_panx(test)


def test_conllu_fields_ranges_and_empty_nodes(tmp_path):
    """Real SAGT sentences (with multi-word tokens): UPOS and the MISC code-switching id, one per word."""
    sagt = head_lines(data_path("ud-cs/UD_Turkish_German-SAGT/qtd_sagt-ud-train.conllu"), tmp_path / "s.conllu", 400)
    text = sagt.read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip() and any(l[:1].isdigit() for l in b.split("\n"))]
    if not text.endswith("\n\n"):
        blocks = blocks[:-1]  # the slice cut its last sentence
        sagt.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    words = [[l.split("\t") for l in b.split("\n") if l.split("\t")[0].isdigit()] for b in blocks]
    assert any("-" in l.split("\t")[0] for b in blocks for l in b.split("\n"))  # the slice has ranges
    upos, csid = read_conllu(sagt), read_conllu(sagt, "misc:CSID")
    assert [s.labels for s in upos] == [[w[3] for w in ws] for ws in words]
    assert [s.words for s in csid] == [[w[1] for w in ws] for ws in words]
    assert {lab for s in csid for lab in s.labels} <= {"TR", "DE", "MIXED", "OTHER", "LANG3"}
    assert upos[0].meta["sent_id"] == "TRDE-CS-C19-0001"
    empty = tmp_path / "e.conllu"
    empty.write_text("# sent_id = 1\n1\tSue\tSue\tPROPN\t_\t_\t2\tnsubj\t_\t_\n2\tlikes\tlike\tVERB\t_\t_\t0\troot\t_\t_\n"
                     "3\tcoffee\tcoffee\tNOUN\t_\t_\t2\tobj\t_\t_\n4\tand\tand\tCCONJ\t_\t_\t6\tcc\t_\t_\n"
                     "5\tBill\tBill\tPROPN\t_\t_\t2\tconj\t_\t_\n5.1\tlikes\tlike\tVERB\t_\t_\t_\t_\t2:conj\t_\n"
                     "6\ttea\ttea\tNOUN\t_\t_\t5\torphan\t_\tSpaceAfter=No\n\n")
    (s,) = read_conllu(empty)
    assert s.words == ["Sue", "likes", "coffee", "and", "Bill", "tea"] and s.labels[-1] == "NOUN"
    with pytest.raises(InputFormatError, match=r"e.conllu:2: token 1 has no form or misc:Lang"):
        read_conllu(empty, "misc:Lang")


def test_hugging_face_datasets_from_local_json_and_save_to_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    jl = tmp_path / "xnli-fr.jsonl"
    rows = [dict(premise="[fr] " + p, hypothesis="[fr] " + h, label=XNLI_LABELS.index(lab)) for p, hs in PREMISES
            for h, lab in hs]
    rows[1]["label"] = -1
    jl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    issues = LineIssues("hf")
    got = read_hf("classification", {"text_a": "premise", "text_b": "hypothesis", "label": "label"}, dataset="json",
                  data_files=str(jl), cache_dir=tmp_path / "cache", label_names=XNLI_LABELS, issues=issues)
    assert [x.label for x in got] == [lab for i, (_, hs) in enumerate(PREMISES) for j, (_, lab) in enumerate(hs)
                                      if (i, j) != (0, 1)]
    assert issues.total == 1 and got[0].source.startswith("hf:json[train]:1")
    got_cls = got
    with pytest.raises(InputFormatError, match=r"no column 'sentence1'"):
        read_hf("classification", {"text_a": "sentence1", "label": "label"}, dataset="json", data_files=str(jl),
                cache_dir=tmp_path / "cache")
    # tagging with ClassLabel names, from a save_to_disk DatasetDict of real WikiANN sentences
    gold = read_ner(head_lines(data_path("ner/wikiann/es/train.conllu"), tmp_path / "es.conllu", 80))
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    ds = datasets.Dataset.from_dict({"tokens": [s.words for s in gold],
                                     "ner_tags": [[names.index(t) for t in s.labels] for s in gold]}, features=feats)
    datasets.DatasetDict(train=ds, validation=ds, test=ds).save_to_disk(str(tmp_path / "wikiann-es"))
    got = read_hf("tagging", {"tokens": "tokens", "tags": "ner_tags"}, disk=tmp_path / "wikiann-es", split="test")
    assert [(s.words, s.labels) for s in got] == [(s.words, s.labels) for s in gold]
    # both as splits of a task declared in a tasks file, paths relative to $CSFAIR_DATA
    monkeypatch.setenv("CSFAIR_DATA", str(tmp_path))
    f = tmp_path / "hf.toml"
    f.write_text("""
[wikiann-hf]
kind = "tagging"
metric = "macro_f1"
epochs = 3
train_lang = "es"
langs = ["es"]
reader = "hf"
options = { columns = { tokens = "tokens", tags = "ner_tags" } }
train = { disk = "wikiann-es" }
valid = { disk = "wikiann-{lang}" }
test = { disk = "wikiann-{lang}" }

[xnli-hf]
kind = "classification"
pair = true
metric = "accuracy"
epochs = 4
train_lang = "fr"
langs = ["fr"]
reader = "hf"
options = { columns = { text_a = "premise", text_b = "hypothesis", label = "label" }, label_names = ["entailment", "neutral", "contradiction"] }
train = { dataset = "json", data_files = "xnli-fr.jsonl", split = "train", cache_dir = "cache" }
valid = { dataset = "json", data_files = "xnli-fr.jsonl", split = "train", cache_dir = "cache" }
test = { dataset = "json", data_files = "xnli-{lang}.jsonl", split = "train", cache_dir = "cache" }
""")
    tasks = load_tasks_file(f)
    d = tasks["wikiann-hf"].load(1)
    assert [s.labels for s in d["valid"]] == [s.labels for s in d["test"]["es"]] == [s.labels for s in gold]
    d = tasks["xnli-hf"].load(1)
    assert [x.label for x in d["test"]["fr"]] == [x.label for x in got_cls] and d["train"][0].text_a.startswith("[fr]")
    (tmp_path / "xnli-fr.jsonl").rename(tmp_path / "moved.jsonl")
    assert tasks["xnli-hf"].missing() == [("train", ("fr",), ("xnli-fr.jsonl",)), ("valid", ("fr",), ("xnli-fr.jsonl",)),
                                          ("test", ("fr",), ("xnli-fr.jsonl",))]
    with pytest.raises(FileNotFoundError, match=r"hf:json\[train\]: could not be loaded"):
        read_hf("tagging", {"tokens": "tokens", "tags": "tags"}, dataset="json", data_files=str(tmp_path / "nope.json"),
                cache_dir=tmp_path / "cache")


# --- the tasks file ------------------------------------------------------------------------------

PAWSX = [("1", "The team won the league in 1998 .", "In 1998 the team won the league ."),
         ("2", "She moved to Paris after the war .", "After the war she moved to Lyon ."),
         ("3", "The river flows north into the lake .", "The river flows into the lake to the north ."),
         ("4", "He was born in Ohio and raised in Texas .", "He was born in Texas and raised in Ohio .")]
LINCE = [[("@user", "other"), ("jajaja", "other"), ("que", "lang2"), ("cute", "lang1"), ("!", "other")],
         [("#", "other"), ("no", "lang2"), ("way", "lang1"), ("Miami", "ne")],
         [("vamos", "lang2"), ("to", "lang1"), ("the", "lang1"), ("beach", "lang1")]]
EXTRA_TASKS = """
[pawsx]
title = "PAWS-X"
kind = "classification"
pair = true
metric = "accuracy"
epochs = 3
train_lang = "en"
langs = ["fr", "de"]
reader = "pairs"
files = "pawsx/x-final/{lang}/{split}.tsv"
splits = { train = "train", valid = "dev_2k", test = "test_2k" }
labels = ["0", "1"]

[lid-lince-spaeng]
kind = "tagging"
metric = "accuracy"
epochs = 3
train_lang = "cs"
langs = ["es-en"]
reader = "columns"
options = { comment = "# sent_enum", ncols = 2 }
train = "lince/lid_spaeng/train.conll"
valid = { holdout = 0.34 }
test = "lince/lid_spaeng/dev.conll"
labels = ["lang1", "lang2", "ne", "other", "mixed", "ambiguous", "fw", "unk"]
embedding_langs = ["en", "es"]

[lid-sagt]
inherit = "pos-sagt"
options = { field = "misc:CSID" }
labels = ["TR", "DE", "MIXED", "OTHER", "LANG3"]
"""


def _extra_data(root: Path):
    for lang in ("en", "fr", "de"):
        d = root / "pawsx" / "x-final" / lang
        d.mkdir(parents=True)
        for split in ("train", "dev_2k", "test_2k"):
            (d / f"{split}.tsv").write_text("id\tsentence1\tsentence2\tlabel\n" + "".join(
                f"{i}\t{a}\t{b}\t{int(i) % 2}\n" for i, a, b in PAWSX), encoding="utf-8")
    d = root / "lince" / "lid_spaeng"
    d.mkdir(parents=True)
    for split in ("train", "dev"):
        (d / f"{split}.conll").write_text("".join(f"# sent_enum = {i}\n" + "".join(f"{w}\t{t}\n" for w, t in s) + "\n"
                                                  for i, s in enumerate(LINCE, 1)), encoding="utf-8")
    d = root / "ud-cs" / "UD_Turkish_German-SAGT"
    d.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        src = data_path(f"ud-cs/UD_Turkish_German-SAGT/qtd_sagt-ud-{split}.conllu")
        text = head_lines(src, d / "tmp", 300).read_text(encoding="utf-8")
        (d / f"qtd_sagt-ud-{split}.conllu").write_text(text[:text.rindex("\n\n") + 2], encoding="utf-8")
    (d / "tmp").unlink()


def test_a_new_task_is_a_few_lines_of_a_tasks_file(tmp_path, monkeypatch):
    import sentencepiece as spm

    root = tmp_path / "data"
    _extra_data(root)
    monkeypatch.setenv("CSFAIR_DATA", str(root))
    f = tmp_path / "more.toml"
    f.write_text(EXTRA_TASKS)
    tasks = load_tasks_file(f, known=TASKS)
    assert list(tasks) == ["pawsx", "lid-lince-spaeng", "lid-sagt"]
    paws = tasks["pawsx"].load(1)
    assert [(x.text_a, x.text_b, x.label) for x in paws["test"]["de"]] == [(a, b, str(int(i) % 2)) for i, a, b in PAWSX]
    lince = tasks["lid-lince-spaeng"].load(1)
    assert sorted(map(tuple, (s.words for s in lince["train"] + lince["valid"]))) == \
        sorted(tuple(w for w, _ in s) for s in LINCE)  # the '#' token is kept, the '# sent_enum' lines are not
    assert len(lince["valid"]) == 1 and lince["test"]["es-en"][1].words[0] == "#"
    sagt = tasks["lid-sagt"].load(1)
    assert sagt["train"][0].labels[:4] == ["TR", "TR", "TR", "DE"] and tasks["lid-sagt"].test_langs == ("tr-de",)
    # the data written for fine-tuning: sentence pairs with a sentencepiece model, LID at word level
    sp_text = tmp_path / "sp.txt"
    sp_text.write_text("".join(a + "\n" + b + "\n" for _, a, b in PAWSX) * 3)
    spm.SentencePieceTrainer.train(input=str(sp_text), model_prefix=str(tmp_path / "sp"), vocab_size=60,
                                   hard_vocab_limit=False, minloglevel=2)
    stats = write_task_data(tasks["pawsx"], tmp_path / "sp.model", tmp_path / "out-paws")
    assert stats["de.test"]["examples"] == 4 and stats["en.train"]["labels"] == {"1": 2, "0": 2}
    assert len((tmp_path / "out-paws" / "raw" / "fr.test.input1").read_text().splitlines()) == 4
    stats = write_task_data(tasks["lid-sagt"], None, tmp_path / "out-sagt", word_level=True)
    assert stats["cs.train"]["words"] == sum(len(s.words) for s in sagt["train"])
    # a label outside the declared set: the file and line
    (root / "lince" / "lid_spaeng" / "dev.conll").write_text("# sent_enum = 1\nhola\tlang2\namigo\tspanish\n\n")
    with pytest.raises(InputFormatError, match=r"dev.conll:2: label 'spanish' of token 2 .* label set"):
        tasks["lid-lince-spaeng"].load(1)
    # missing data: every missing file, where it is expected
    (root / "pawsx" / "x-final" / "fr" / "test_2k.tsv").unlink()
    with pytest.raises(MissingDataError, match=r"(?s)task pawsx: data not found under the data root .*data.*"
                                               r"test \(fr\): pawsx/x-final/fr/test_2k.tsv"):
        tasks["pawsx"].load(1)
    f.write_text("[bad]\nkind = \"tagging\"\nmetric = accuracy\n")
    with pytest.raises(InputFormatError, match=r"more.toml:3: not valid TOML"):
        load_tasks_file(f)
    f.write_text("[bad]\ninherit = \"pos\"\nmetrc = \"accuracy\"\n")
    with pytest.raises(ValueError, match=r"task bad: unknown key\(s\) metrc"):
        load_tasks_file(f, known=TASKS)


def test_zeroshot_tasks_file_option_and_missing_data(tmp_path, monkeypatch, capsys):
    from conftest import zeroshot_main

    root = tmp_path / "data"
    _extra_data(root)
    monkeypatch.setenv("CSFAIR_DATA", str(root))
    f = tmp_path / "more.toml"
    f.write_text(EXTRA_TASKS + '\n[pawsx-full]\ninherit = "pawsx"\nlangs = ["ja"]\nfallback = "pawsx"\n')
    saved = dict(TASKS)
    try:
        # the run stops at the check of --reference, right after the tasks are resolved (no training)
        common = ["--checkpoint", "x=scratch:1", "--reference", "nosuch", "--out", str(tmp_path / "o")]
        with pytest.raises(SystemExit, match=r"--reference 'nosuch' is none of the columns"):
            zeroshot_main([*common, "--tasks-file", str(f), "--tasks", "pawsx,lid-sagt"])
        assert "tasks from" in capsys.readouterr().out and "lid-lince-spaeng" in TASKS
        with pytest.raises(SystemExit, match=r"(?s)task pawsx-full: data not found.*test \(ja\): pawsx/x-final/ja"):
            zeroshot_main([*common, "--tasks", "pawsx-full"])
        with pytest.raises(SystemExit, match=r"unknown task 'pawsx-ful'"):
            zeroshot_main([*common, "--tasks", "pawsx-ful"])
        with pytest.raises(SystemExit, match=r"--reference 'nosuch'"):
            zeroshot_main([*common, "--paper", "--tasks", "pawsx-full"])
        assert "pawsx-full's data is missing, using PAWS-X" in capsys.readouterr().out
    finally:
        TASKS.clear()
        TASKS.update(saved)


def test_paper_protocol_mnli_to_xnli_test_when_present_dev_split_fallback_otherwise(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("CSFAIR_DATA", str(root))
    tasks = load_tasks_file(DEFAULT_TASKS_FILE)
    assert "not comparable with published XNLI" in tasks["xnli"].title and tasks["xnli-mnli"].paper_seeds == 5
    spec, note = paper_task("xnli", tasks)
    assert spec.name == "xnli" and "has no data here" in note and "nli/mnli/train.tsv" in note
    spec, note = paper_task("xnli-mnli", tasks)
    assert spec.name == "xnli" and "xnli-mnli's data is missing, using xnli (dev-split fallback" in note
    assert "test (fr, de, tr, sw): nli/xnli-1.0/xnli.test.tsv or nli/xnli-1.0/xnli.test.jsonl" in note
    rows = _mnli_rows()
    rows[2]["gold_label"] = "-"
    _tsv(root / "nli" / "mnli" / "train.tsv", GLUE_TRAIN, rows)
    _tsv(root / "nli" / "xnli-1.0" / "xnli.dev.tsv", XNLI_COLS, _xnli_rows(["en", "fr"]))
    _tsv(root / "nli" / "xnli-1.0" / "xnli.test.tsv", XNLI_COLS, _xnli_rows(["en", "fr", "de", "tr", "sw", "ur"]))
    spec, note = paper_task("xnli", tasks)
    assert spec.name == "xnli-mnli" and note == "--paper: xnli -> xnli-mnli: xnli (MNLI train, XNLI 1.0 test)"
    data = spec.load(1)
    assert [x.text_b for x in data["train"]] == [r["sentence2"] for r in rows if r["gold_label"] != "-"]
    assert all(not x.text_a.startswith("[") for x in data["valid"]) and len(data["valid"]) == 6
    assert list(data["test"]) == ["fr", "de", "tr", "sw"] and data["test"]["sw"][0].text_a.startswith("[sw] ")
    assert paper_task("pos", tasks) == (tasks["pos"], None)
    # Xhosa: AfriXNLI's test set with the same training and selection (labels as names or 0-2)
    afri = root / "nli" / "afrixnli" / "xho" / "test.tsv"
    afri.parent.mkdir(parents=True)
    afri.write_text("premise\thypothesis\tlabel\n" + "".join(f"[xh] {p}\t[xh] {h}\t{XNLI_LABELS.index(lab)}\n"
                                                            for p, hs in PREMISES for h, lab in hs), encoding="utf-8")
    data = tasks["afrixnli"].load(1)
    assert [x.label for x in data["test"]["xh"]] == [lab for _, hs in PREMISES for _, lab in hs]
    assert len(data["train"]) == 5 and tasks["afrixnli"].paper_seeds == 5
