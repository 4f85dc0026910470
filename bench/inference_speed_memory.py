#!/usr/bin/env python
"""Inference throughput and peak memory versus sequence length: csfair (fairseq) RoBERTa vs transformers.

Like Winata et al. (2021), Fig. 3 and Table 6: for each model size and sequence length, the same
randomly initialised network (built from its configuration, nothing downloaded) is run in its
fairseq form and as a transformers ``RobertaModel``; each measurement is a fresh process, so peak
memory (``ru_maxrss`` on CPU, ``torch.cuda.max_memory_allocated`` on GPU) is that of one
configuration. Throughput is the median over repeats of sentences per second; the ratio is
fairseq / transformers in the same run.

Usage:
    python bench/inference_speed_memory.py [--sizes tiny,base] [--lengths 16,32,64,128,256,512]
        [--batch 8] [--repeats 5]
Writes bench/results/inference_speed_memory.json and prints a Markdown table.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {  # layers, hidden, heads, ffn, max positions
    "tiny": (4, 256, 4, 1024, 128),
    "base": (12, 768, 12, 3072, 512),
}
VOCAB = 8002


def build(impl, size):
    import torch

    layers, hidden, heads, ffn, positions = SIZES[size]
    torch.manual_seed(0)
    if impl == "transformers":
        from transformers import RobertaConfig, RobertaModel

        cfg = RobertaConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=ffn, max_position_embeddings=positions + 2, type_vocab_size=1,
                            pad_token_id=1, layer_norm_eps=1e-5)
        model = RobertaModel(cfg, add_pooling_layer=False)
        run = lambda ids: model(input_ids=ids, attention_mask=ids.ne(1).long()).last_hidden_state  # noqa: E731
    else:
        from argparse import Namespace

        from fairseq.data import Dictionary
        from fairseq.models.roberta import RobertaModel as FsRoberta
        from fairseq.models.roberta.model import base_architecture

        d = Dictionary()
        for i in range(VOCAB - 5):
            d.add_symbol(f"w{i}")
        d.add_symbol("<mask>")
        args = Namespace(encoder_layers=layers, encoder_embed_dim=hidden, encoder_attention_heads=heads,
                         encoder_ffn_embed_dim=ffn, max_positions=positions, tokens_per_sample=positions)
        base_architecture(args)

        class _Task:
            source_dictionary = d
        model = FsRoberta.build_model(args, _Task())
        run = lambda ids: model(ids, features_only=True)[0]  # noqa: E731
    model.eval()
    return model, run


def measure(impl, size, length, batch, repeats, device):
    """Runs in a child process: one configuration, prints a JSON line."""
    import torch

    torch.set_grad_enabled(False)
    model, run = build(impl, size)
    model.to(device)
    # encoder parameters (fairseq's model also holds an LM head that features_only does not run)
    params = sum(p.numel() for n, p in model.named_parameters() if "lm_head" not in n)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB - 1, (batch, length), generator=g)
    ids[:, 0] = 0
    ids[:, -1] = 2
    ids = ids.to(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):  # warm-up (kernel selection, allocator)
        run(ids)
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run(ids)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024  # KiB -> MiB
    print(json.dumps(dict(impl=impl, size=size, length=length, batch=batch, params=params,
                          sentences_per_s=batch / statistics.median(times), median_s=statistics.median(times),
                          peak_mib=peak, peak_kind="cuda_max_allocated" if device == "cuda" else "rss_increase")))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="tiny,base")
    p.add_argument("--lengths", default="16,32,64,128,256,512")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default=None)
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "inference_speed_memory.json"))
    args = p.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.child:
        impl, size, length, batch = args.child
        measure(impl, size, int(length), int(batch), args.repeats, device)
        return
    rows = []
    for size in args.sizes.split(","):
        for length in map(int, args.lengths.split(",")):
            if length > SIZES[size][4]:
                continue
            for impl in ("fairseq", "transformers"):
                out = subprocess.run([sys.executable, __file__, "--child", impl, size, str(length), str(args.batch),
                                      "--repeats", str(args.repeats), "--device", device],
                                     capture_output=True, text=True, cwd=ROOT)
                line = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if out.returncode != 0 or not line:
                    raise SystemExit(f"{impl} {size} {length} failed:\n{out.stderr[-2000:]}")
                rows.append(json.loads(line[-1]))
                print(f"[bench] {rows[-1]}", file=sys.stderr, flush=True)
    res = dict(machine=dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                            cpus=os.cpu_count(), device=device, torch=torch.__version__), rows=rows)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)
    print("| size | length | fairseq sent/s | transformers sent/s | ratio | fairseq peak MiB | transformers peak MiB |")
    print("|---|---|---|---|---|---|---|")
    by = {(r["impl"], r["size"], r["length"]): r for r in rows}
    for size in args.sizes.split(","):
        for length in map(int, args.lengths.split(",")):
            a, b = by.get(("fairseq", size, length)), by.get(("transformers", size, length))
            if a and b:
                print(f"| {size} ({a['params'] / 1e6:.1f}M / {b['params'] / 1e6:.1f}M) | {length} | {a['sentences_per_s']:.1f} | "
                      f"{b['sentences_per_s']:.1f} | {a['sentences_per_s'] / b['sentences_per_s']:.2f} | {a['peak_mib']:.0f} | {b['peak_mib']:.0f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
