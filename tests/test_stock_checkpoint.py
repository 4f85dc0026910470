"""A csfair checkpoint's stock-loadable copy (user_dir/stock_checkpoint.py) loads strictly into stock fairseq."""
import json
import os
import subprocess
import sys

import torch

from conftest import ROOT, run

#: stock fairseq only, in a fresh process: no --user-dir, no csfair import, torch's default weights_only loading
STOCK = r"""
import json, os, sys
os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
import torch
from fairseq.models.roberta import RobertaModel
hub = RobertaModel.from_pretrained(os.path.dirname(sys.argv[1]), os.path.basename(sys.argv[1]),
                                   data_name_or_path=sys.argv[2])
tokens = torch.tensor(json.loads(sys.argv[3]))
hub.model.eval()
with torch.no_grad():
    logits = hub.model(tokens)[0]
torch.save(logits, sys.argv[4])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("csfair", "user_dir", "csfair_hf"))
print(json.dumps(dict(model=type(hub.model).__name__, task=type(hub.task).__name__, csfair_modules=loaded,
                      params=sum(p.numel() for p in hub.model.parameters()), bpe=type(hub.bpe).__name__,
                      pieces=hub.bpe.encode("a man is riding a horse ."))))
"""


def test_stock_copy_loads_strictly_into_stock_roberta_with_the_same_outputs(tiny_mlm, tiny_pair, tmp_path):
    from user_dir.hub_interface import from_pretrained

    dst = tmp_path / "stock" / "model.pt"
    p = run([sys.executable, "-m", "user_dir.stock_checkpoint", tiny_mlm, dst])
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["dropped_state_keys"] == ["csfair_provenance._extra_state"]
    assert summary["provenance"]["dict_sha256"] and "task.cs_mode" in summary["dropped_options"]
    assert "common.user_dir" in summary["dropped_options"]
    original = torch.load(tiny_mlm, map_location="cpu", weights_only=False)["model"]
    copy = torch.load(dst, map_location="cpu", weights_only=True)  # plain containers: torch's safe loader takes it
    assert copy["model"].keys() == original.keys() - {"csfair_provenance._extra_state"}
    assert all(torch.equal(copy["model"][k], original[k]) for k in copy["model"])
    assert copy["cfg"]["model"]["arch"] == "roberta" and copy["cfg"]["task"]["_name"] == "masked_lm"
    assert copy["csfair"]["source_arch"] == "cs_roberta_tiny" and copy["csfair"]["provenance"] == summary["provenance"]

    # the model csfair loads, and the same tokens through stock fairseq's copy
    ours = from_pretrained(str(tiny_mlm.parent), tiny_mlm.name, data_name_or_path=str(tiny_pair["bin"]))
    tokens = ours.encode("a man is riding a horse .").unsqueeze(0)
    ours.model.eval()
    with torch.no_grad():
        want = ours.model(tokens)[0]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # stock fairseq cannot see csfair's tree
    out = subprocess.run([sys.executable, "-c", STOCK, str(dst), str(tiny_pair["bin"] / "fr"),
                          json.dumps(tokens.tolist()), str(tmp_path / "logits.pt")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["model"] == "RobertaModel" and info["task"] == "MaskedLMTask" and info["csfair_modules"] == []
    assert info["bpe"] == "SentencepieceBPE" and "\u2581man" in info["pieces"]  # the data's spm.model, no download

    got = torch.load(tmp_path / "logits.pt")
    assert got.shape == want.shape and (got - want).abs().max() <= 1e-6


def test_the_original_is_refused_by_stock_fairseq_and_the_helper_refuses_fine_tuned_models(tiny_mlm, tiny_pair,
                                                                                          tmp_path):
    """Why the copy exists: stock RoBERTa's strict load rejects the original's provenance key (and takes the copy's
    weights); and a checkpoint of another task is refused, naming it, with nothing written."""
    from argparse import Namespace

    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaModel

    from user_dir.stock_checkpoint import write_stock_checkpoint

    dst = tmp_path / "stock.pt"
    write_stock_checkpoint(str(tiny_mlm), str(dst))
    copy = torch.load(dst, map_location="cpu", weights_only=True)
    dictionary = Dictionary.load(str(tiny_pair["dict"]))
    dictionary.add_symbol("<mask>")  # as fairseq's masked_lm task

    class StockTask:
        source_dictionary = dictionary

    stock = RobertaModel.build_model(Namespace(**copy["cfg"]["model"]), StockTask())
    state = torch.load(tiny_mlm, map_location="cpu", weights_only=False)
    try:
        stock.load_state_dict(state["model"], strict=True)
        raise AssertionError("stock RoBERTa took the original state dict")
    except RuntimeError as e:
        assert "csfair_provenance._extra_state" in str(e)
    stock.load_state_dict(copy["model"], strict=True)

    state["cfg"]["task"]["_name"] = "token_tagging"
    bad = tmp_path / "tagger.pt"
    torch.save(state, bad)
    try:
        write_stock_checkpoint(str(bad), str(tmp_path / "out.pt"))
        raise AssertionError("a fine-tuned checkpoint was accepted")
    except ValueError as e:
        assert "token_tagging" in str(e) and "not masked-LM pretraining" in str(e)
    assert not (tmp_path / "out.pt").exists()
