"""bench/gpu_throughput.py in its reduced (CPU/CI) mode, on the tiny real en-fr data; its FLOP count and goals.

Tests of a benchmark, not of csfair: out of the default suite (csfair issue 22, section 5); whoever changes
the benchmark runs them with ``bash scripts/test.sh -m benchmark``."""
import json
import re
import sys

import pytest

from conftest import ROOT, run

pytestmark = pytest.mark.benchmark

sys.path.insert(0, str(ROOT / "bench"))
import gpu_throughput as gt  # noqa: E402


def test_reduced_benchmark_interleaves_two_rounds_by_default(tiny_pair, tmp_path):
    out = tmp_path / "gpu_throughput.json"
    # fresh fairseq-train processes (stock masked_lm, csfair multiview), 3 updates each, default --repeats (2)
    p = run([sys.executable, ROOT / "bench" / "gpu_throughput.py", "--data", tiny_pair["bin"], "--reduced",
             "--only", "stock_fp32,multiview_fp32", "--updates", "3", "--log-interval", "1", "--warmup-intervals", "1",
             "--num-workers", "0", "--out", out])
    res = json.loads(out.read_text())
    rows = {r["name"]: r for r in res["configs"]}
    assert set(rows) == {"stock_fp32", "multiview_fp32"}, p.stdout[-2000:]
    assert res["settings"]["repeats"] == 2
    # interleaved: stock, multiview, stock, multiview (not two of one, then two of the other)
    order = re.findall(r"\[gpu_throughput\] (\w+): ok", p.stdout)
    assert order == ["stock_fp32", "multiview_fp32"] * 2, p.stdout[-2000:]
    for r in rows.values():
        assert r["status"] == "ok", r
        assert len(r["runs"]) == 2 and all(x["intervals"] == 2 for x in r["runs"])
        assert len(r["tokens_per_s_rounds"]) == 2 and min(r["tokens_per_s_rounds"]) <= r["tokens_per_s"] <= max(
            r["tokens_per_s_rounds"])
        assert all(w > 0 for x in r["runs"] for w in x["interval_wps"])
        assert r["flops_per_token"] > 0 and r["lm_head_fraction"] == 0.15
        assert 0.01 < r["peak_rss_gib"] < 64 and r["peak_mem_gib"] is None  # no CUDA: the process's peak RSS
    assert rows["stock_fp32"]["ratio_to_stock"] == 1.0
    assert 0 < rows["multiview_fp32"]["ratio_to_stock"] < 10
    assert res["mode"].startswith("reduced") and res["shape"] == "tiny"
    assert "| multiview_fp32 |" in p.stdout and "2 interleaved rounds asked" in p.stdout  # the printed table


def test_the_trainer_is_charged_for_its_lm_head_on_every_position():
    """fairseq runs the LM head on the 15% predicted positions, RobertaForMaskedLM on all of them: at roberta-base
    shape, vocabulary 8k and 128 tokens that is ~6.5% more FLOPs per token, and the Trainer's MFU counts them."""
    fairseq = gt.flops_per_token("base", 8005, 128.0)
    hf = gt.flops_per_token("base", 8005, 128.0, head_fraction=1.0)
    L, d, f, _ = gt.SHAPES["base"]
    assert abs((hf - fairseq) - 6 * 0.85 * (d * d + d * 8005)) < 1e-3
    assert 0.06 < hf / fairseq - 1 < 0.07


def test_goals_are_reported_with_their_ratio_and_verdict():
    def row(name, kind, tps):
        return dict(name=name, kind=kind, task="x", prec="bf16", enc="fast", workers=2, status="ok", runs=[],
                    tokens_per_s=tps, tokens_per_s_rounds=[tps, tps])

    configs = [row("stock_fp16", "fairseq", 100.0), row("none_bf16_fast", "fairseq", 200.0),
               row("multiview_bf16_fast", "fairseq", 190.0), row("hf_trainer_bf16", "hf", 80.0)]
    assert gt.goal_configs(True) == [c["name"] for c in configs]
    out = dict(environment=dict(device="NVIDIA H100 80GB HBM3", torch="2.11.0", cuda="13.0", fairseq="0.12.3.1"),
               mode="GPU", shape="base", vocab=8005, settings=dict(batch_size=256, repeats=2), peak_flops=989.4e12,
               flops_formula="f", configs=configs,
               goals=[dict(goal="a", config="multiview_bf16_fast", reference="stock_fp16", ratio=1.9, minimum=1.6,
                           met=True),
                      dict(goal="b", config="multiview_bf16_fast", reference="hf_trainer_bf16", ratio=190 / 80,
                           minimum=2.0, met=True),
                      dict(goal="c", config="multiview_bf16_fast", reference="none_bf16_fast", ratio=0.95,
                           minimum=0.97, met=False)])
    text = gt.table(out)
    assert "goal: c: multiview_bf16_fast / none_bf16_fast = 0.95 -> NOT met" in text
    assert "goal: a: multiview_bf16_fast / stock_fp16 = 1.90 -> met" in text and "| 100 / 100 |" in text
