"""Importing csfair changes nothing else in the process, and checkpoints load through torch's safe loading
(csfair issue 22, section 3; docs/guarantees.md, "Safe checkpoint loading").

* ``import user_dir`` (and the hub) in a Python process leaves ``sys.path``, the environment,
  ``sys.excepthook``, fairseq's functions and torch's weights-only allow-list as they were;
* after it, ``torch.load`` of a pickle whose unpickling would run code still raises (nothing ran), and
  so do csfair's own loaders (``read_checkpoint``, fairseq's ``load_checkpoint_to_cpu`` in the
  safe-loading scope) and ``scripts/training_progress.py``, naming the refused class;
* a real fairseq checkpoint (the ``tiny_mlm`` fixture) loads through csfair's loaders with
  ``weights_only=True``, while a bare ``torch.load`` outside the scope still refuses it (the allow-list
  is not process-wide); what rank 0 broadcasts when a distributed run resumes loads in
  ``Trainer.load_checkpoint``'s scope.

Real fairseq-train resumes (``tests/test_resume.py``, ``tests/test_bf16.py``), the hub
(``tests/test_hub_hf.py``) and eval_mlm (``tests/test_eval_mlm.py``) load through the same scope.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

#: a pickle whose unpickling runs a shell command that creates a marker file
PAYLOAD = """
import os, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + {marker!r},))
torch.save({{"model": {{}}, "cfg": {{"payload": Payload()}}}}, {path!r})
"""

SNAPSHOT = """
import json, os, sys, torch
from fairseq import checkpoint_utils, options
from fairseq.distributed import utils as distributed_utils
from fairseq.trainer import Trainer
def snap():
    return {"sys.path": list(sys.path), "environ": dict(os.environ), "excepthook": repr(sys.excepthook),
            "parse_args_and_arch": repr(options.parse_args_and_arch), "call_main": repr(distributed_utils.call_main),
            "Trainer.load_checkpoint": repr(Trainer.load_checkpoint),
            "torch_persistent_save": repr(checkpoint_utils.torch_persistent_save),
            "_torch_persistent_save": repr(checkpoint_utils._torch_persistent_save),
            "safe_globals": sorted(map(repr, torch.serialization.get_safe_globals()))}
before = snap()
import user_dir
from user_dir.hub_interface import from_pretrained
after = snap()
print(json.dumps({k: [before[k], after[k]] for k in before if before[k] != after[k]}))
"""


def _python(code, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-c", code, *kw.pop("args", [])], capture_output=True, text=True,
                          env=env, cwd=ROOT, **kw)


def test_importing_user_dir_changes_nothing_else_in_the_process():
    p = _python(SNAPSHOT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {}


def test_is_fairseq_command():
    from user_dir.command_hooks import is_fairseq_command

    fairseq_cli = os.path.dirname(__import__("fairseq_cli").__file__)
    assert is_fairseq_command("/venv/bin/fairseq-train") and is_fairseq_command("fairseq-hydra-train")
    assert is_fairseq_command(os.path.join(fairseq_cli, "train.py"))  # python -m fairseq_cli.train
    for argv0 in ("", "-c", "/venv/bin/pytest", "scripts/eval_mlm.py", "/venv/bin/csfair-lexicon", "ipykernel_launcher.py"):
        assert not is_fairseq_command(argv0), argv0


@pytest.fixture()
def payload(tmp_path):
    marker, path = tmp_path / "code_ran", tmp_path / "payload.pt"
    p = _python(PAYLOAD.format(marker=str(marker), path=str(path)))
    assert p.returncode == 0 and path.exists() and not marker.exists(), p.stderr
    return path, marker


def test_a_code_running_pickle_still_raises_after_import_user_dir(payload):
    path, marker = payload
    code = f"""
import pickle, sys, torch
import user_dir
from user_dir.checkpoint_loading import CheckpointError, read_checkpoint, safe_loading
from fairseq import checkpoint_utils
def fairseq_in_scope():
    with safe_loading(broadcast=True):
        return checkpoint_utils.load_checkpoint_to_cpu({str(path)!r})
for name, load in [("torch.load", lambda: torch.load({str(path)!r})),
                   ("torch.load(map_location=cpu)", lambda: torch.load({str(path)!r}, map_location="cpu")),
                   ("read_checkpoint", lambda: read_checkpoint({str(path)!r})),
                   ("load_checkpoint_to_cpu in safe_loading", fairseq_in_scope)]:
    try:
        load()
    except (pickle.UnpicklingError, CheckpointError) as e:
        print(name, "refused:", type(e).__name__, str(e).replace("\\n", " ")[:400])
    else:
        sys.exit(name + " loaded the payload")
"""
    p = _python(code)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert not marker.exists(), "the payload ran"
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 4 and all("refused" in ln and "system" in ln for ln in lines), p.stdout
    assert "CheckpointError" in lines[2] and f"{path}: refused by safe loading" in lines[2]

    # the recipe's progress check reads checkpoints through the same loader
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "training_progress.py"), str(path)], capture_output=True,
                       text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and "refused by safe loading" in p.stderr and not marker.exists(), p.stderr


def test_real_checkpoints_load_safely_and_only_inside_the_scope(tiny_mlm):
    import pickle

    import torch
    from fairseq import checkpoint_utils

    from user_dir.checkpoint_loading import load_state, read_checkpoint, safe_loading

    before = set(torch.serialization.get_safe_globals())
    state = read_checkpoint(str(tiny_mlm))
    assert state["cfg"]["model"].arch == "cs_roberta_tiny" and torch.is_tensor(
        state["model"]["encoder.sentence_encoder.embed_tokens.weight"])
    assert load_state(str(tiny_mlm))["optimizer_history"][-1]["num_updates"] == 60
    assert set(torch.serialization.get_safe_globals()) == before  # the scope was left
    with pytest.raises(pickle.UnpicklingError, match="argparse.Namespace"):
        torch.load(tiny_mlm, map_location="cpu", weights_only=True)  # outside the scope: torch's own rules

    # a resumed distributed run: rank 0 loads the checkpoint and broadcasts it (fairseq's _broadcast_object_slow
    # pickles the state with torch.save; the other ranks torch.load it), inside Trainer.load_checkpoint's scope
    import io

    from fairseq.distributed.utils import _put_tensors_in_obj, _split_tensors_from_obj

    with safe_loading():
        loaded = checkpoint_utils.load_checkpoint_to_cpu(str(tiny_mlm))
    tensors = []
    buffer = io.BytesIO()
    torch.save(_split_tensors_from_obj(loaded, tensors), buffer)
    with pytest.raises(pickle.UnpicklingError, match="omegaconf"):
        with safe_loading():
            torch.load(io.BytesIO(buffer.getvalue()), map_location="cpu")
    with safe_loading(broadcast=True):
        got = _put_tensors_in_obj(torch.load(io.BytesIO(buffer.getvalue()), map_location="cpu"), tensors)
    assert got["cfg"].model.arch == "cs_roberta_tiny" and got["optimizer_history"] == loaded["optimizer_history"]
    assert got["model"].keys() == loaded["model"].keys()
    for k, v in loaded["model"].items():
        assert torch.equal(got["model"][k], v) if torch.is_tensor(v) else got["model"][k] == v, k
