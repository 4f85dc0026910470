#!/usr/bin/env python
"""Training throughput on one GPU: stock fairseq, csfair (none / multiview), transformers Trainer.

One job, interleaved fresh processes (csfair issue 13, part 5), all on the same French training
blocks of ``--data`` (``<data>/fr``, blocks of whole sentences up to 128 tokens), the same network
shape, vocabulary and batch:

* ``stock``: fairseq's own ``--task masked_lm`` (fp16 on GPU);
* ``none`` / ``multiview``: csfair's ``codeswitch_masked_lm`` (``--cs-mode none``: stock batches;
  ``multiview``: IBM-1 code-switching with ``<data>/tables/ibm1.fr-en``), each with ``--fp16`` and
  ``--bf16``, and with fairseq's RoBERTa (``cs_roberta_base``) and the fast encoder
  (``csfair_roberta_fast_base`` with ``--optimizer csfair_fast_adam``), where registered;
* ``hf``: transformers ``Trainer`` + ``RobertaForMaskedLM`` (bf16, ``attn_implementation="sdpa"``),
  via :mod:`bench.hf_trainer_compare`;
* a ``--num-workers`` sweep of multiview.

Each fairseq run trains a fixed number of updates and logs every ``--log-interval``; the steady-state
rate is the median of fairseq's per-interval ``wps`` (non-padding input tokens per second) after the
warm-up intervals, leaving out intervals that contain an epoch boundary (new DataLoader workers).
The Trainer run is timed the same way (per-interval non-padding tokens / wall time, CUDA-synchronised).

Reported per configuration: tokens/s, ratio to stock, MFU, peak memory
(``torch.cuda.max_memory_allocated`` over the whole run; without CUDA the process's peak resident
memory), the GPU model. MFU = tokens/s x FLOPs per token / the GPU's dense bf16 peak, with FLOPs per
token = ``6 * L * (4 d^2 + 2 d f)`` (encoder matmuls, forward + backward) ``+ 6 * h * (d^2 + d V)``
(LM head: fairseq applies it to the predicted positions only, ``h = 0.15``; the transformers
``RobertaForMaskedLM`` to every position, ``h = 1``, ~6.5% more FLOPs per token at roberta-base shape
and vocabulary 8k, and its MFU counts them) ``+ 12 * L * T * d`` (attention scores and values,
T = mean sequence length).

Rounds: ``--repeats`` (default 2) interleaved rounds over all configurations, each run a fresh
process, so that a drift of the machine (clocks, other jobs) spreads over every configuration; the
per-configuration figure is the median over rounds, and each round's figure is kept in the JSON.
``--goals`` runs only what the GPU issue's goals compare (stock fp16, csfair ``none`` and
``multiview`` bf16 with the fast encoder and Adam at the recipe's 2 workers, the Trainer) and prints
each goal with its measured ratio (bench/device/run.sh).

Without CUDA it runs a reduced version (tiny architecture, batch 8, a few updates, fp32 and bf16
only where it trains) so that CI keeps it working (tests/test_bench_gpu_throughput.py).

Usage (GPU; needs fairseq-fixed and csfair's user_dir): everything, 2 rounds, ~12 minutes on an H100:
    python bench/gpu_throughput.py --data data-bin/en-fr
the goals only, 2 rounds, ~5 minutes: python bench/gpu_throughput.py --data data-bin/en-fr --goals
CPU/CI: python bench/gpu_throughput.py --data DATA --reduced [--only stock_fp32,multiview_fp32]
Writes bench/results/gpu_throughput.json and prints a Markdown table.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: Dense (no sparsity) bf16/fp16 tensor-core peak FLOP/s by GPU model (vendor data sheets).
PEAK_FLOPS = [
    ("H200", 989.4e12),
    ("GH200", 989.4e12),
    ("H100 NVL", 835.0e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.4e12),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("A100", 312.0e12),
    ("L40S", 362.0e12),
    ("A10G", 70.0e12),
]

SHAPES = {  # (layers, hidden, ffn, heads)
    "base": (12, 768, 3072, 12),
    "tiny": (4, 256, 1024, 4),
}

#: Runs fairseq-train in this process and prints the run's peak memory at exit: CUDA's (fairseq resets
#: the peak counter every step to log gb_free; the reset is disabled so that the peak is the run's),
#: else the process's peak resident set (ru_maxrss, KiB on Linux).
FAIRSEQ_WRAPPER = r"""
import atexit, resource, runpy, sys
import torch
if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
    atexit.register(lambda: print("CSFAIR_PEAK_MEM_BYTES", torch.cuda.max_memory_allocated(), flush=True))
else:
    atexit.register(lambda: print("CSFAIR_PEAK_RSS_BYTES", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                                  flush=True))
sys.argv = ["fairseq-train"] + sys.argv[1:]
runpy.run_module("fairseq_cli.train", run_name="__main__")
"""

#: Goals of the GPU issue (csfair issues 13 and 25): (name, configuration, reference, minimum ratio).
GOALS = [("bf16 multiview (fast) >= 1.6x stock fp16", "multiview_{lo}_fast", "stock_{hi}", 1.6),
         ("bf16 multiview (fast) >= 2x the Trainer", "multiview_{lo}_fast", "hf_trainer_{lo}", 2.0),
         ("multiview >= 0.97x none (fast, recipe's workers)", "multiview_{lo}_fast", "none_{lo}_fast", 0.97)]


def peak_flops(name: str):
    for key, flops in PEAK_FLOPS:
        if key.lower() in name.lower():
            return flops
    return None


def flops_per_token(shape, vocab, seq_len, head_fraction=0.15):
    """Training FLOPs per input token (forward + backward = 3x forward, 2 FLOPs per multiply-add).

    Args:
        shape: key of :data:`SHAPES`.
        vocab: output vocabulary size V.
        seq_len: mean sequence length T (attention).
        head_fraction: positions the LM head runs on: 0.15 for fairseq (the predicted tokens only), 1.0
            for transformers' ``RobertaForMaskedLM`` (every position).
    """
    L, d, f, _ = SHAPES[shape]
    return 6 * L * (4 * d * d + 2 * d * f) + 6 * head_fraction * (d * d + d * vocab) + 12 * L * seq_len * d


def environment(reduced: bool):
    """Versions and the device (printed first; fails clearly without fairseq). ``reduced``: no CUDA
    wanted, so torch is not imported here (its version is read from the package metadata)."""
    from importlib import metadata

    if reduced:
        env = dict(python=platform.python_version(), torch=metadata.version("torch"), cuda=None, cuda_available=False)
    else:
        import torch

        env = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                   cuda_available=torch.cuda.is_available())
    env.update(platform=platform.platform(), cpus=os.cpu_count())
    env["device"] = torch.cuda.get_device_name(0) if env["cuda_available"] else (platform.processor() or "cpu")

    try:  # the version without importing fairseq (its import takes seconds; each run imports it anyway)
        env["fairseq"] = next(metadata.version(d) for d in ("fairseq-fixed", "fairseq") if _installed(d))
    except StopIteration:
        print("error: fairseq is not installed in this Python (" + sys.executable + "); install fairseq-fixed "
              "0.12.3.1 (scripts/setup.sh, or `pip install fairseq-fixed==0.12.3.1`) and run again", file=sys.stderr)
        sys.exit(2)
    env["transformers"] = metadata.version("transformers") if _installed("transformers") else None
    return env


def _installed(dist: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def registered():
    """Which optional csfair components this tree registers (archs, optimizer)."""
    import user_dir  # noqa: F401  (registers csfair's components)
    from fairseq.models import ARCH_MODEL_REGISTRY
    from fairseq.optim import OPTIMIZER_REGISTRY

    return dict(fast_base="csfair_roberta_fast_base" in ARCH_MODEL_REGISTRY,
                fast_tiny="csfair_roberta_fast_tiny" in ARCH_MODEL_REGISTRY,
                fast_adam="csfair_fast_adam" in OPTIMIZER_REGISTRY)


def plan(gpu: bool, reg: dict, workers: int, sweep):
    """The configurations, in the interleaved order they run."""
    precs = ["fp16", "bf16"] if gpu else ["fp32", "bf16"]
    enc_ok = reg["fast_base"] if gpu else reg["fast_tiny"]
    out = [dict(name=f"stock_{precs[0]}", kind="fairseq", task="stock", prec=precs[0], enc="stock", workers=workers)]
    for prec in precs:
        for enc in ("stock", "fast"):
            for task in ("none", "multiview"):
                c = dict(name=f"{task}_{prec}" + ("_fast" if enc == "fast" else ""), kind="fairseq", task=task,
                         prec=prec, enc=enc, workers=workers)
                if enc == "fast" and not enc_ok:
                    c["skip"] = "not registered (csfair_roberta_fast_*)"
                out.append(c)
    out.append(dict(name="hf_trainer_bf16" if gpu else "hf_trainer_fp32", kind="hf", task="hf",
                    prec="bf16" if gpu else "fp32", enc="hf", workers=0))
    # the sweep runs last, with the fastest multiview configuration that trained (resolved then)
    for w in sweep:
        if w != workers:
            out.append(dict(name=f"multiview_best_w{w}", kind="fairseq", task="multiview", workers=w, sweep=True,
                            prec=None, enc=None))
    return out


def resolve_sweep(c, results):
    """Give a sweep configuration the precision and encoder of the fastest multiview run so far."""
    if c["prec"] is not None:
        return True
    done = [r for r in results.values() if r["task"] == "multiview" and not r.get("sweep")
            and any(x["status"] == "ok" for x in r["runs"])]
    if not done:
        c["skip"] = "no multiview configuration trained"
        return False
    best = max(done, key=lambda r: statistics.median(x["tokens_per_s"] for x in r["runs"] if x["status"] == "ok"))
    c.update(prec=best["prec"], enc=best["enc"], sweep_of=best["name"])
    return True


def fairseq_cmd(c, args, reg, shape):
    data = args.data
    arch = ("csfair_roberta_fast_" if c["enc"] == "fast" else "cs_roberta_") + shape
    if c["task"] == "stock":
        head = [os.path.join(data, "fr"), "--task", "masked_lm"]
    else:
        head = [data, "--task", "codeswitch_masked_lm", "--langs", "fr", "--cs-mode", c["task"]]
        if c["task"] != "none":
            head += ["--cs-tables", "fr:tables/ibm1.fr-en"]
    opt = "csfair_fast_adam" if c["enc"] == "fast" and reg["fast_adam"] else "adam"
    cmd = head + ["--user-dir", os.path.join(ROOT, "user_dir"), "--arch", arch, "--criterion", "masked_lm",
                  "--tokens-per-sample", "128", "--sample-break-mode", "complete", "--optimizer", opt,
                  "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--lr", "1e-4", "--lr-scheduler", "fixed",
                  "--batch-size", str(args.batch_size), "--max-update", str(args.updates),
                  "--log-format", "simple", "--log-interval", str(args.log_interval), "--seed", "1",
                  "--num-workers", str(c["workers"]), "--no-save", "--disable-validation", "--no-progress-bar"]
    if c["prec"] == "fp16":
        cmd.append("--fp16")
    elif c["prec"] == "bf16":
        cmd.append("--bf16")
    if not args.gpu:
        cmd.append("--cpu")
    return cmd, arch, opt


INNER = re.compile(r"epoch (\d+):.*?wps=([0-9.]+).*?wpb=([0-9.]+), bsz=([0-9.]+), num_updates=(\d+)")


def steady(log: str, warmup: int):
    """Per-interval (epoch, wps, wpb, bsz) after the warm-up; intervals with an epoch change are dropped."""
    rows = [(int(e), float(w), float(b), float(s), int(u)) for e, w, b, s, u in INNER.findall(log)]
    kept = [r for i, r in enumerate(rows) if i >= warmup and (i == 0 or rows[i - 1][0] == r[0])]
    return rows, kept


def run_fairseq(c, args, reg, shape):
    cmd, arch, opt = fairseq_cmd(c, args, reg, shape)
    t0 = time.time()
    res = dict(arch=arch, optimizer=opt)
    try:
        p = subprocess.run([sys.executable, "-c", FAIRSEQ_WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT,
                           timeout=args.run_timeout)
    except subprocess.TimeoutExpired:
        return dict(res, status="failed", error=f"killed after --run-timeout {args.run_timeout:.0f} s",
                    wall_s=round(time.time() - t0, 1))
    log = p.stdout + p.stderr
    res["wall_s"] = round(time.time() - t0, 1)
    if p.returncode != 0:
        err = [ln for ln in log.strip().splitlines() if ln.strip()][-1:] or ["?"]
        return dict(res, status="failed", error=err[0][-300:])
    rows, kept = steady(log, args.warmup_intervals)
    if not kept:
        return dict(res, status="failed", error=f"no steady-state log interval ({len(rows)} intervals logged)")
    m = re.search(r"CSFAIR_PEAK_MEM_BYTES (\d+)", log)
    rss = re.search(r"CSFAIR_PEAK_RSS_BYTES (\d+)", log)
    res.update(status="ok", tokens_per_s=statistics.median(r[1] for r in kept), intervals=len(kept),
               interval_wps=[r[1] for r in kept], mean_seq_len=statistics.mean(r[2] / r[3] for r in kept),
               peak_mem_gib=int(m.group(1)) / 2**30 if m else None,
               peak_rss_gib=int(rss.group(1)) / 2**30 if rss else None)
    return res


def run_hf(c, args, shape):
    spec = dict(data=args.data, shape=shape, updates=args.updates, log_interval=args.log_interval,
                warmup=args.warmup_intervals, batch_size=args.batch_size, prec=c["prec"], gpu=args.gpu)
    t0 = time.time()
    res = dict(arch="RobertaForMaskedLM (sdpa)", optimizer="AdamW (Trainer)")
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--_hf-worker", json.dumps(spec)],
                           capture_output=True, text=True, cwd=ROOT, timeout=args.run_timeout)
    except subprocess.TimeoutExpired:
        return dict(res, status="failed", error=f"killed after --run-timeout {args.run_timeout:.0f} s",
                    wall_s=round(time.time() - t0, 1))
    res["wall_s"] = round(time.time() - t0, 1)
    m = re.search(r"CSFAIR_HF_RESULT (.*)", p.stdout)
    if p.returncode != 0 or not m:
        err = [ln for ln in (p.stdout + p.stderr).strip().splitlines() if ln.strip()][-1:] or ["?"]
        return dict(res, status="failed", error=err[0][-300:])
    return dict(res, status="ok", **json.loads(m.group(1)))


def hf_worker(spec):
    """In a fresh process: the transformers Trainer on the same blocks, shape and batch."""
    import torch
    from transformers import TrainerCallback

    import hf_trainer_compare as hfc

    L, d, f, h = SHAPES[spec["shape"]]
    items, vocab = hfc.blocks(spec["data"])
    times = []

    class Clock(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    lengths = []

    def count(batch):  # non-padding input tokens of each collated batch
        lengths.append(int(batch["attention_mask"].sum()))
        return batch

    hfc.run_hf(spec["data"], spec["updates"], vocab, items, shape=dict(num_hidden_layers=L, hidden_size=d,
               intermediate_size=f, num_attention_heads=h), batch_size=spec["batch_size"], bf16=spec["prec"] == "bf16",
               use_cpu=not spec["gpu"], attn_implementation="sdpa", callbacks=[Clock()], on_batch=count)
    k = spec["log_interval"]
    rates = []
    for i in range(k, len(times), k):
        # the batch of step j was collated before step j ran (no prefetch with 0 workers): tokens of steps i-k+1..i
        n = sum(lengths[i - k + 1:i + 1])
        rates.append(n / (times[i] - times[i - k]))
    kept = rates[spec["warmup"]:]
    import resource

    out = dict(tokens_per_s=statistics.median(kept) if kept else None, intervals=len(kept), interval_wps=kept,
               mean_seq_len=statistics.mean(lengths[: len(times)]) / spec["batch_size"] if lengths else None,
               peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
               peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30)
    print("CSFAIR_HF_RESULT " + json.dumps(out), flush=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--_hf-worker":
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        return hf_worker(json.loads(sys.argv[2]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "data-bin", "en-fr"),
                   help="data-bin with fr/ and tables/ibm1.fr-en (scripts/recipes/en-fr.sh)")
    p.add_argument("--reduced", action="store_true", help="the CPU/CI version (automatic without CUDA)")
    p.add_argument("--updates", type=int, default=None, help="updates per run (default: 80 GPU, 6 reduced)")
    p.add_argument("--log-interval", type=int, default=None, help="updates per log interval (default: 10 GPU, 2 reduced)")
    p.add_argument("--warmup-intervals", type=int, default=None, help="intervals left out (default: 2 GPU, 1 reduced)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per batch (default: 256 GPU, 8 reduced)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: 2 GPU, 1 reduced)")
    p.add_argument("--sweep", default=None, help="--num-workers values for multiview (default: 0,1,2,4 GPU; 0 reduced)")
    p.add_argument("--repeats", type=int, default=2,
                   help="interleaved rounds over all configurations (default 2; the median over rounds is reported)")
    p.add_argument("--only", default="", help="comma-separated configuration names to run (default: all)")
    p.add_argument("--goals", action="store_true",
                   help="run only the configurations the goals compare (stock, none/multiview with the fast encoder "
                        "in bf16, the Trainer) and print each goal's measured ratio")
    p.add_argument("--budget-s", type=float, default=450.0, help="start no new run after this many seconds")
    p.add_argument("--run-timeout", type=float, default=300.0, help="seconds before one run is killed")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "gpu_throughput.json"), help="JSON output")
    p.add_argument("--dry-run", action="store_true", help="print the planned runs (the GPU plan with --gpu-plan) and exit")
    p.add_argument("--gpu-plan", action="store_true", help="with --dry-run: show the GPU plan even without CUDA")
    args = p.parse_args()
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.goals and args.only:
        p.error("--goals and --only exclude each other")

    args.data = os.path.abspath(args.data)
    env = environment(args.reduced)
    print("[gpu_throughput] " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)
    args.gpu = (env["cuda_available"] and not args.reduced) or (args.dry_run and args.gpu_plan)
    reduced = not args.gpu
    shape = "tiny" if reduced else "base"
    for name, gpu_v, cpu_v in (("updates", 80, 6), ("log_interval", 10, 2), ("warmup_intervals", 2, 1),
                               ("batch_size", 256, 8), ("num_workers", 2, 1)):
        if getattr(args, name) is None:
            setattr(args, name, cpu_v if reduced else gpu_v)
    sweep = [int(x) for x in (args.sweep if args.sweep is not None else ("0" if reduced else "0,1,2,4")).split(",") if x]
    if args.goals:
        args.only = ",".join(goal_configs(args.gpu))
    if args.only and "fast" not in args.only:
        # no fast-encoder configuration asked for: skip importing fairseq here (seconds; CI runs this)
        reg = dict(fast_base=False, fast_tiny=False, fast_adam=False, checked=False)
    else:
        reg = registered()
    configs = plan(args.gpu, reg, args.num_workers, sweep)
    if args.only:
        want = set(args.only.split(","))
        unknown = want - {c["name"] for c in configs}
        if unknown:
            p.error(f"--only: unknown configurations {sorted(unknown)}; known: {[c['name'] for c in configs]}")
        configs = [c for c in configs if c["name"] in want]
    if env["transformers"] is None:
        for c in configs:
            if c["kind"] == "hf":
                c["skip"] = "transformers not installed"

    if args.dry_run:
        for c in configs:
            if c.get("sweep"):
                print(f"{c['name']}: multiview with --num-workers {c['workers']}, precision and encoder of the fastest "
                      "multiview run")
                continue
            what = "transformers Trainer" if c["kind"] == "hf" else " ".join(fairseq_cmd(c, args, reg, shape)[0])
            print(f"{c['name']}: " + (f"skip ({c['skip']})" if c.get("skip") else what))
        return
    results = {c["name"]: dict(c, runs=[]) for c in configs}
    t_start = time.time()
    for r in range(args.repeats):
        for c in configs:
            row = results[c["name"]]
            if c.get("sweep") and not resolve_sweep(c, results):
                row.update(c)
                continue
            row.update(c)
            if c.get("skip"):
                continue
            if time.time() - t_start > args.budget_s:
                row.setdefault("note", f"not run in round {r + 1}: time budget ({args.budget_s:.0f} s) spent")
                continue
            res = run_hf(c, args, shape) if c["kind"] == "hf" else run_fairseq(c, args, reg, shape)
            row["runs"].append(res)
            print(f"[gpu_throughput] {c['name']}: {res['status']} "
                  f"{res.get('tokens_per_s', 0) or 0:,.0f} tokens/s ({res['wall_s']} s)"
                  + (f" -- {res['error']}" if res["status"] != "ok" else ""), flush=True)

    vocab = _vocab_size(args.data)
    peak = peak_flops(env["device"]) if args.gpu else None
    for row in results.values():
        ok = [x for x in row["runs"] if x["status"] == "ok" and x.get("tokens_per_s")]
        row["status"] = row.get("skip") or ("ok" if ok else ("failed" if row["runs"] else "not run"))
        if ok:
            row["tokens_per_s"] = statistics.median(x["tokens_per_s"] for x in ok)
            seq = statistics.median(x["mean_seq_len"] for x in ok if x.get("mean_seq_len")) if any(
                x.get("mean_seq_len") for x in ok) else 128.0
            row["lm_head_fraction"] = 1.0 if row["kind"] == "hf" else 0.15
            row["flops_per_token"] = flops_per_token(shape, vocab, seq, row["lm_head_fraction"])
            row["mfu"] = row["tokens_per_s"] * row["flops_per_token"] / peak if peak else None
            row["tokens_per_s_rounds"] = [x["tokens_per_s"] for x in ok]
            for key in ("peak_mem_gib", "peak_rss_gib"):
                mems = [x[key] for x in ok if x.get(key) is not None]
                row[key] = max(mems) if mems else None
        elif row["runs"]:
            row["error"] = row["runs"][-1].get("error")
    stock = results.get(configs[0]["name"]) if configs and configs[0]["task"] == "stock" else None
    stock = stock or next((r for r in results.values() if r["task"] == "stock"), None)
    none = {(r["prec"], r["enc"]): r for r in results.values() if r["task"] == "none" and r.get("tokens_per_s")}
    for row in results.values():
        if row.get("tokens_per_s") and stock and stock.get("tokens_per_s"):
            row["ratio_to_stock"] = row["tokens_per_s"] / stock["tokens_per_s"]
        base = none.get((row["prec"], row["enc"]))
        if row["task"] == "multiview" and row.get("tokens_per_s") and base and not row.get("sweep"):
            row["ratio_to_none"] = row["tokens_per_s"] / base["tokens_per_s"]

    goals = []
    lo, hi = ("bf16", "fp16") if args.gpu else ("bf16", "fp32")
    for text, a, b, need in GOALS:
        ra, rb = results.get(a.format(lo=lo, hi=hi)), results.get(b.format(lo=lo if "hf" not in b else
                                                                            ("bf16" if args.gpu else "fp32"), hi=hi))
        if ra and rb:
            got = (ra["tokens_per_s"] / rb["tokens_per_s"]) if ra.get("tokens_per_s") and rb.get("tokens_per_s") else None
            goals.append(dict(goal=text, config=ra["name"], reference=rb["name"], ratio=got, minimum=need,
                              met=None if got is None else got >= need))
    out = dict(environment=env, mode="reduced (CPU/CI)" if reduced else "GPU", shape=shape, vocab=vocab,
               registered=reg, settings=dict(updates=args.updates, log_interval=args.log_interval,
                                             warmup_intervals=args.warmup_intervals, batch_size=args.batch_size,
                                             num_workers=args.num_workers, repeats=args.repeats,
                                             tokens_per_sample=128, data=os.path.abspath(args.data)),
               peak_flops=peak, flops_formula="6*L*(4d^2+2df) + 6*h*(d^2+dV) + 12*L*T*d per token "
               "(T = mean sequence length; h = 0.15 fairseq, 1.0 transformers Trainer)",
               configs=list(results.values()), goals=goals, wall_s=round(time.time() - t_start, 1))
    from csfair.io import atomic_write

    with atomic_write(args.out) as fh:
        json.dump(out, fh, indent=2)
    print(table(out))
    print(f"wrote {args.out}")


def goal_configs(gpu: bool):
    """The configurations :data:`GOALS` compare, named as :func:`plan` names them in this mode."""
    lo, hi = ("bf16", "fp16") if gpu else ("bf16", "fp32")
    hf = "hf_trainer_bf16" if gpu else "hf_trainer_fp32"
    return [f"stock_{hi}", f"none_{lo}_fast", f"multiview_{lo}_fast", hf]


def _vocab_size(data):
    path = os.path.join(data, "fr", "dict.txt")
    with open(path, encoding="utf-8") as fh:
        n = sum(1 for _ in fh)
    return n + 5  # fairseq's 4 specials + <mask>


def table(out):
    env = out["environment"]
    gpu = out["mode"] == "GPU"
    mem = "peak GiB" if gpu else "peak RSS GiB"
    lines = [f"GPU throughput ({out['mode']}; {env['device']}; torch {env['torch']}, CUDA {env['cuda']}, "
             f"fairseq {env['fairseq']}; {out['shape']} shape, vocab {out['vocab']}, batch "
             f"{out['settings']['batch_size']} x <=128 tokens; {out['settings']['repeats']} interleaved rounds asked, "
             "the median of those run: see rounds)", "",
             f"| configuration | precision | encoder / optimizer | workers | tokens/s | rounds | x stock | x none | MFU "
             f"| {mem} | status |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v, s: "" if v is None else s.format(v)  # noqa: E731
    for r in out["configs"]:
        run = (r.get("runs") or [{}])[-1]
        lines.append(f"| {r['name']} | {r['prec'] or ''} | {run.get('arch', r['enc'] or '')} / {run.get('optimizer', '')} | "
                     f"{r['workers']} | "
                     f"{f(r.get('tokens_per_s'), '{:,.0f}')} | "
                     + " / ".join(f"{x:,.0f}" for x in r.get("tokens_per_s_rounds", [])) + " | "
                     f"{f(r.get('ratio_to_stock'), '{:.2f}')} | "
                     f"{f(r.get('ratio_to_none'), '{:.3f}')} | {f(r.get('mfu'), '{:.1%}')} | "
                     f"{f(r.get('peak_mem_gib' if gpu else 'peak_rss_gib'), '{:.2f}')} | {r['status']}"
                     + (f": {r['error']}" if r.get("error") else "") + " |")
    lines.append("")
    lines.append("MFU: " + ("FLOPs/token " + out["flops_formula"] + f", peak {out['peak_flops'] / 1e12:.1f} TFLOP/s"
                             if out.get("peak_flops") else "not computed (no GPU, or its peak is not in PEAK_FLOPS)"))
    for g in out.get("goals", []):
        verdict = "not measured" if g["met"] is None else ("met" if g["met"] else "NOT met")
        lines.append(f"goal: {g['goal']}: {g['config']} / {g['reference']} = "
                     + (f"{g['ratio']:.2f}" if g["ratio"] is not None else "n/a") + f" -> {verdict}"
                     + ("" if gpu else " (CPU mode: not the GPU goal)"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
