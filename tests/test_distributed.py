"""Two gloo processes on CPU (scripts/train_distributed.sh) against one process.

(a) each rank sees a disjoint shard and together they see every item once per epoch;
(b) the masked, code-switched input of an item depends on (seed, epoch, index) only: the same
    with 2 ranks and DataLoader workers as with 1 rank and none;
(c) 2 ranks x batch B reach the same parameters after k updates as 1 rank x batch 2B, formed by
    fairseq as --update-freq 2; and one literal 2B batch gives the same gradient as the two B batches.
"""
import json
from collections import defaultdict

import pytest
import torch

from conftest import ROOT, VENV_BIN, run

# A very small model and the validation split as training data: a whole epoch takes seconds.
# No dropout and SGD, so that the two runs differ only by floating-point summation order.
ARGS = ["--user-dir", str(ROOT / "user_dir"), "--task", "codeswitch_masked_lm", "--langs", "en,fr",
        "--cs-table-name", "ibm1", "--cs-word-prob", "0.2", "--criterion", "cs_masked_lm",
        "--arch", "cs_roberta_tiny", "--encoder-layers", "1", "--encoder-embed-dim", "64",
        "--encoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2", "--dropout", "0",
        "--attention-dropout", "0", "--tokens-per-sample", "64", "--sample-break-mode", "eos",
        "--train-subset", "valid", "--disable-validation", "--optimizer", "sgd", "--lr", "0.5",
        "--lr-scheduler", "fixed", "--batch-size", "8", "--required-batch-size-multiple", "1",
        "--max-epoch", "1", "--seed", "3", "--log-format", "simple", "--no-epoch-checkpoints"]
TOLERANCE = 1e-5  # max |parameter difference| after one epoch (k updates) of SGD


def read_trace(path):
    return [json.loads(line) for line in open(path)]


@pytest.fixture(scope="module")
def runs(tiny_pair, tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    data = str(tiny_pair["bin"])
    run(["bash", ROOT / "scripts" / "train_distributed.sh", "--nproc", "2", "--backend", "gloo", "--",
         data, *ARGS, "--num-workers", "0", "--save-dir", d / "two", "--data-trace-dir", d / "two_trace"])
    run([VENV_BIN / "fairseq-train", data, *ARGS, "--cpu", "--update-freq", "2", "--num-workers", "2",
         "--save-dir", d / "one", "--data-trace-dir", d / "one_trace"])
    return d


def test_a_ranks_see_disjoint_shards_covering_every_item_once(runs):
    seen = {}
    for rank in (0, 1):
        lines = [x for x in read_trace(runs / "two_trace" / f"trace.rank{rank}.jsonl") if not x["dummy"]]
        assert lines and all(x["epoch"] == 1 for x in lines)
        ids = [i for x in lines for i in x["ids"]]
        assert len(ids) == len(set(ids)), f"rank {rank} saw an item twice"
        seen[rank] = set(ids)
    assert not seen[0] & seen[1]
    one = [i for x in read_trace(runs / "one_trace" / "trace.rank0.jsonl") for i in x["ids"]]
    assert len(one) == len(set(one))
    assert seen[0] | seen[1] == set(one)
    assert len(one) > 300  # 200 en + 200 fr validation sentences, minus the few longer than 64 tokens


def test_b_inputs_depend_on_seed_epoch_index_only(runs):
    digest = {}
    for rank in (0, 1):
        for x in read_trace(runs / "two_trace" / f"trace.rank{rank}.jsonl"):
            if not x["dummy"]:
                digest.update(zip(x["ids"], x["crc32"]))
    one = {}
    for x in read_trace(runs / "one_trace" / "trace.rank0.jsonl"):
        one.update(zip(x["ids"], x["crc32"]))
    assert digest.keys() == one.keys()
    assert all(digest[i] == one[i] for i in one)


def test_c_two_ranks_equal_one_rank_with_twice_the_batch(runs):
    a = torch.load(runs / "two" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    b = torch.load(runs / "one" / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert a["optimizer_history"][-1]["num_updates"] == b["optimizer_history"][-1]["num_updates"] > 10
    diffs = {k: (a["model"][k].float() - b["model"][k].float()).abs().max().item()
             for k in a["model"] if torch.is_tensor(a["model"][k])}
    worst = max(diffs.values())
    assert worst < TOLERANCE, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]
    # and the runs did move the parameters (the comparison is not vacuous)
    per_update = defaultdict(list)
    for x in read_trace(runs / "one_trace" / "trace.rank0.jsonl"):
        per_update[x["update"]].append(x["loss"] / max(x["sample_size"], 1))
    assert per_update[0] != per_update[max(per_update)]


def test_c_one_literal_2b_batch_gives_the_two_ranks_gradient(tiny_pair, runs):
    """The first update's two B batches (one per rank), and their union as one batch of 2B."""
    import user_dir  # noqa: F401
    from fairseq import models
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    first = [next(x for x in read_trace(runs / "two_trace" / f"trace.rank{r}.jsonl") if x["update"] == 0)
             for r in (0, 1)]
    task = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=str(tiny_pair["bin"]), langs="en,fr", cs_table_name="ibm1", cs_word_prob=0.2,
        tokens_per_sample=64, sample_break_mode="eos", seed=3))
    task.load_dataset("valid")
    ds = task.dataset("valid")
    ds.set_epoch(1)
    args = parse_args_and_arch(get_training_parser(), [str(tiny_pair["bin"]), *ARGS])
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(0)
    model = models.build_model(cfg.model, task)
    crit = task.build_criterion(cfg.criterion)

    def grads(batches):
        model.zero_grad()
        total = 0
        for ids in batches:
            sample = ds.collater([ds[i] for i in ids])
            loss, sample_size, _ = crit(model, sample)
            loss.backward()
            total += sample_size
        return [p.grad.detach().clone() / total for p in model.parameters() if p.grad is not None]

    two = grads([first[0]["ids"], first[1]["ids"]])
    one = grads([first[0]["ids"] + first[1]["ids"]])
    worst = max((x - y).abs().max().item() for x, y in zip(two, one))
    assert worst < 1e-6
    assert max(x.abs().max().item() for x in two) > 1e-3
