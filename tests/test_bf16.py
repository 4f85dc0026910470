"""``--bf16`` without TPU mode: option parsing, torchrun ranks, and a real bf16-autocast training run.

fairseq 0.12 turns ``--bf16`` into ``--tpu`` (XLA device, no rank inference); ``user_dir/bf16_support.py``
undoes that and trains csfair's pretraining tasks under bf16 autocast with fp32 weights. Checked here:

* parsing: ``--bf16`` leaves ``tpu`` False in every config group and records the autocast mode
  (fairseq's own bf16 off, so fp32 model and optimizer); an explicit ``--tpu`` is kept; a stock
  task keeps fairseq's bf16 path;
* torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` reach fairseq's ``infer_init_method`` with ``--bf16``
  (and do not with TPU mode);
* ``fairseq-train --cpu --bf16`` on the tiny real en-fr data: finite losses, autocast enabled, fp32
  parameters and Adam state in the checkpoint that load strictly into stock fairseq's
  ``RobertaModel`` (whose forward pass under the tasks' autocast changes the logits slightly),
  and a run resumed from its mid-epoch checkpoint that repeats the uninterrupted run's losses and
  parameters exactly.
"""
import json
import shutil

import pytest
import torch

from conftest import ROOT, VENV_BIN, run

TASK = ["--user-dir", str(ROOT / "user_dir"), "--task", "codeswitch_masked_lm", "--langs", "en,fr",
        "--cs-table-name", "ibm1", "--criterion", "cs_masked_lm", "--arch", "cs_roberta_tiny",
        "--optimizer", "adam"]
TRAIN = TASK + ["--encoder-layers", "1", "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
                "--encoder-attention-heads", "2", "--dropout", "0.1", "--tokens-per-sample", "64",
                "--sample-break-mode", "complete", "--lr", "1e-3",
                "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "4", "--batch-size", "16",
                "--max-update", "8", "--save-interval-updates", "4", "--keep-interval-updates", "2",
                "--validate-interval-updates", "8", "--skip-invalid-size-inputs-valid-test", "--no-epoch-checkpoints", "--seed", "3", "--num-workers", "0",
                "--log-format", "simple", "--log-interval", "1", "--cpu"]


def parse(argv):
    from fairseq import options

    from user_dir import command_hooks

    command_hooks.install()  # the wrappers, as fairseq-train's --user-dir import installs them
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    return args, convert_namespace_to_omegaconf(args)


def test_bf16_is_not_tpu_mode_and_torchrun_ranks_are_read(tmp_path, monkeypatch):
    import copy

    from fairseq.distributed import utils as distributed_utils
    from omegaconf import open_dict

    from user_dir.bf16_support import choose_bf16_mode

    # torchrun's variables for rank 8 of 16: the first GPU of the second node of 8 GPUs. fairseq takes
    # the device as RANK % torch.cuda.device_count() (and calls cuda.set_device for a device > 0):
    # model 8 GPUs on this CPU machine
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511", "WORLD_SIZE": "16", "RANK": "8", "LOCAL_RANK": "0"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    argv = [str(tmp_path), *TASK, "--bf16", "--distributed-world-size", "16"]

    args, cfg = parse(argv)
    assert args.bf16 and not args.tpu
    assert not cfg.common.tpu and not cfg.distributed_training.tpu and not cfg.optimizer.tpu
    assert not cfg.criterion.tpu and not cfg.model.tpu
    with_amp = copy.deepcopy(cfg)
    with open_dict(with_amp.common):
        with_amp.common.amp = True
    with pytest.raises(ValueError, match="--bf16 and --amp"):
        choose_bf16_mode(with_amp)
    assert choose_bf16_mode(cfg) == "autocast"
    # fairseq's own bf16 (bf16 model, FP16Optimizer) is off; the mode is recorded in the config
    assert cfg.common.bf16 is False and cfg.common.memory_efficient_bf16 is False
    assert cfg.common.csfair_bf16_autocast is True
    assert choose_bf16_mode(cfg) == "autocast"  # idempotent
    d = cfg.distributed_training
    distributed_utils.infer_init_method(d)
    assert d.distributed_init_method == "env://"
    assert (d.distributed_world_size, d.distributed_rank, d.device_id) == (16, 8, int(env["LOCAL_RANK"]))
    assert d.distributed_no_spawn  # processes come from torchrun

    # an explicit --tpu is the user's choice: fairseq's TPU mode is kept, and it ignores the environment
    args, cfg = parse(argv + ["--tpu"])
    assert args.tpu and cfg.distributed_training.tpu
    assert choose_bf16_mode(cfg) == "tpu" and cfg.common.bf16
    distributed_utils.infer_init_method(cfg.distributed_training)
    assert cfg.distributed_training.distributed_init_method is None

    # a stock task (no autocast support): not TPU mode either, fairseq's bf16 path unchanged
    args, cfg = parse([str(tmp_path), "--user-dir", str(ROOT / "user_dir"), "--task", "masked_lm",
                       "--arch", "roberta_base", "--criterion", "masked_lm", "--bf16"])
    assert not args.tpu and not cfg.criterion.tpu
    assert choose_bf16_mode(cfg) == "fairseq" and cfg.common.bf16 and "csfair_bf16_autocast" not in cfg.common


def _trace(path):
    return {x["update"]: x for x in map(json.loads, open(path))}


@pytest.fixture(scope="module")
def bf16_runs(tiny_pair, tmp_path_factory):
    """An 8-update --bf16 run, and the same run resumed from its update-4 checkpoint."""
    d = tmp_path_factory.mktemp("bf16")
    data = str(tiny_pair["bin"])
    full = run([VENV_BIN / "fairseq-train", data, *TRAIN, "--bf16", "--save-dir", d / "full",
                "--data-trace-dir", d / "trace_full"])
    (d / "resumed").mkdir()
    shutil.copyfile(d / "full" / "checkpoint_1_4.pt", d / "resumed" / "checkpoint_last.pt")
    resumed = run([VENV_BIN / "fairseq-train", data, *TRAIN, "--bf16", "--save-dir", d / "resumed",
                   "--data-trace-dir", d / "trace_resumed"])
    return d, full.stdout + full.stderr, resumed.stdout + resumed.stderr


def test_cpu_bf16_trains_with_fp32_weights_and_a_stock_loadable_checkpoint(bf16_runs, tiny_pair):
    from argparse import Namespace

    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaModel

    d, log, _ = bf16_runs
    assert "torch.autocast(bfloat16)" in log and "XLA" not in log
    trace = _trace(d / "trace_full" / "trace.rank0.jsonl")
    assert sorted(trace) == list(range(8))
    losses = [trace[u]["loss"] for u in range(8)]
    assert all(torch.isfinite(torch.tensor(x)) for x in losses)
    state = torch.load(d / "full" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert state["cfg"]["common"]["csfair_bf16_autocast"] is True and state["cfg"]["common"]["bf16"] is False
    floats = {k: v.dtype for k, v in state["model"].items() if torch.is_tensor(v) and v.is_floating_point()}
    assert floats and set(floats.values()) == {torch.float32}
    moments = [t for s in state["last_optimizer_state"]["state"].values() for t in s.values() if torch.is_tensor(t)]
    assert moments and all(t.dtype == torch.float32 for t in moments if t.is_floating_point())

    # stock fairseq RoBERTa (no csfair code) takes every parameter, strictly
    dictionary = Dictionary.load(str(tiny_pair["dict"]))
    dictionary.add_symbol("<mask>")  # as fairseq's masked_lm task

    class StockTask:
        source_dictionary = dictionary

    model_args = state["cfg"]["model"]
    assert isinstance(model_args, Namespace)
    stock = RobertaModel.build_model(model_args, StockTask())
    weights = {k: v for k, v in state["model"].items() if not k.startswith("csfair_provenance.")}
    stock.load_state_dict(weights, strict=True)

    # the tasks' autocast, on this model: logits from bf16 matmuls, close to the fp32 ones
    from user_dir.bf16_support import Bf16AutocastMixin, autocast_for, set_autocast_dtype
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMTask
    from user_dir.tasks.tlm_masked_lm import TlmMaskedLMTask
    from user_dir.tasks.weam_masked_lm import WeamMaskedLMTask

    from fairseq.tasks import FairseqTask

    for task in (CodeSwitchMaskedLMTask, WeamMaskedLMTask, TlmMaskedLMTask):
        # every pretraining task's step reaches the autocast step before fairseq's own
        assert task.supports_bf16_autocast and task.__mro__.index(Bf16AutocastMixin) < task.__mro__.index(FairseqTask)
    tokens = torch.tensor([[0] + list(range(10, 40)) + [2]])
    stock.eval()
    with torch.no_grad():
        ref = stock(tokens)[0]
        set_autocast_dtype(torch.bfloat16)
        try:
            with autocast_for(stock):
                low = stock(tokens)[0]
        finally:
            set_autocast_dtype(None)
    # (the LM head adds its fp32 bias, so both come out fp32; the matmuls before it ran in bf16)
    assert ref.dtype == low.dtype == torch.float32 and all(p.dtype == torch.float32 for p in stock.parameters())
    assert not torch.equal(low, ref) and torch.allclose(low, ref, atol=0.05 * ref.abs().max().item())


def test_bf16_run_resumes_exactly(bf16_runs):
    d, _, resumed_log = bf16_runs
    assert "Loaded checkpoint" in resumed_log and "(epoch 1 @ 4 updates)" in resumed_log
    full = _trace(d / "trace_full" / "trace.rank0.jsonl")
    resumed = _trace(d / "trace_resumed" / "trace.rank0.jsonl")
    assert sorted(resumed) == list(range(4, 8))
    for u, x in resumed.items():
        assert (x["ids"], x["crc32"]) == (full[u]["ids"], full[u]["crc32"]), u
        assert x["loss"] == full[u]["loss"], (u, x["loss"], full[u]["loss"])  # bit-identical
    a = torch.load(d / "full" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    b = torch.load(d / "resumed" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    for k, v in a["model"].items():
        if torch.is_tensor(v):
            assert torch.equal(v, b["model"][k]), k
