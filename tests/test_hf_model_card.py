"""Exported models people can use (issue 14, part 4): ``hf_convert.py export`` writes a model card that
parses offline, records the checkpoint's languages, code-switching mode and table checksums, and whose
usage example runs against the exported directory."""
import json
import re

import torch


def test_export_writes_a_model_card_that_parses_and_whose_example_runs(tiny_mlm, tmp_path, monkeypatch, capsys):
    from huggingface_hub import ModelCard

    from csfair.text import moses_tokenize
    from csfair_hf.model_card import card_text

    from user_dir import hf_convert

    out = tmp_path / "hf"
    hf_convert.main(["export", str(tiny_mlm), str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_card"] == str(out / "README.md")
    # the runner's parameter count of a fairseq column counts tied weights once, as transformers does: the
    # same network has the same count (transformers' one extra: its single token-type embedding)
    from user_dir.zeroshot_backend import FairseqBackend

    hidden = json.loads((out / "config.json").read_text())["hidden_size"]
    assert FairseqBackend().count_parameters(str(tiny_mlm)) == summary["parameters"] - hidden

    card = ModelCard.load(out / "README.md")
    meta = card.data.to_dict()
    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    task = state["cfg"]["task"]
    assert meta["language"] == task["langs"].split(",") and meta["library_name"] == "transformers"
    assert "license" not in meta  # unknown: left out rather than guessed
    assert meta["pipeline_tag"] == "fill-mask" and f"code-switching-{task['cs_mode']}" in meta["tags"]
    record = state["model"]["csfair_provenance._extra_state"]
    assert len(record["tables"]) == 2  # one table per text language, each with its checksum in the card
    for lang, table in record["tables"].items():
        assert re.search(rf"\| {lang} \| `[^`]+` \| `{table['checksum']}` \|", card.text), lang
    assert record["dict_sha256"] in card.text and f"updates: {state['optimizer_history'][-1]['num_updates']}" in card.text
    assert "Moses" in card.text
    assert ModelCard(card_text(summary, license="other")).data.license == "other"

    code = re.findall(r"```python\n(.*?)```", card.text, flags=re.S)
    assert len(code) == 1
    monkeypatch.chdir(out)  # the example reads "." : the exported directory as it is
    ns = {}
    exec(compile(code[0], str(out / "README.md"), "exec"), ns)
    printed = capsys.readouterr().out
    assert printed.count("fill-mask:") == 1 and len(ns["top"]) == 5
    assert ns["sentence"] == moses_tokenize(ns["raw"], "en")  # the card's Moses call is csfair's
    assert tuple(ns["features"].shape) == (1, json.loads((out / "config.json").read_text())["hidden_size"])
