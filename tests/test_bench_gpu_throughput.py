"""bench/gpu_throughput.py in its reduced (CPU/CI) mode, on the tiny real en-fr data."""
import json
import sys

from conftest import ROOT, run


def test_reduced_benchmark_writes_rows_with_rates_and_ratios(tiny_pair, tmp_path):
    out = tmp_path / "gpu_throughput.json"
    # two fresh fairseq-train processes (stock masked_lm, csfair multiview), 3 updates each
    p = run([sys.executable, ROOT / "bench" / "gpu_throughput.py", "--data", tiny_pair["bin"], "--reduced",
             "--only", "stock_fp32,multiview_fp32", "--updates", "3", "--log-interval", "1", "--warmup-intervals", "1",
             "--num-workers", "0", "--out", out])
    res = json.loads(out.read_text())
    rows = {r["name"]: r for r in res["configs"]}
    assert set(rows) == {"stock_fp32", "multiview_fp32"}, p.stdout[-2000:]
    for r in rows.values():
        assert r["status"] == "ok", r
        assert r["tokens_per_s"] > 0 and r["flops_per_token"] > 0 and r["runs"][0]["intervals"] == 2
        assert all(w > 0 for w in r["runs"][0]["interval_wps"])
    assert rows["stock_fp32"]["ratio_to_stock"] == 1.0
    assert 0 < rows["multiview_fp32"]["ratio_to_stock"] < 10
    assert res["mode"].startswith("reduced") and res["shape"] == "tiny"
    assert "| multiview_fp32 |" in p.stdout  # the printed Markdown table
