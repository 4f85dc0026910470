#!/usr/bin/env python
"""CPU profile and speed of the fast encoder (``csfair_roberta_fast``) and optimizer (``csfair_fast_adam``).

In one process, on the same weights and batches (fp32, dropout 0 as in the equivalence tests,
training mode):

1. ``--profile``: ``torch.profiler`` tables (top operators by self CPU time) of one
   forward+backward of stock fairseq RoBERTa and of the fast encoder, for the ``cs_roberta_tiny``
   and ``roberta_base`` shapes at batch ``--profile-batch`` (16) x 128 tokens;
2. speed: forward+backward (masked-LM loss on 15% of the positions, as ``cs_masked_lm``) of stock
   and fast at the ``roberta_base`` shape, batch ``--batch`` (8) x 128, alternating stock/fast for
   ``--rounds`` rounds; then fairseq's ``Adam`` step vs ``csfair_fast_adam``'s on the same
   roberta_base parameters and gradients, alternating likewise. Medians and their ratios, of
   wall-clock time and of this process's CPU time (less sensitive to other processes on a shared
   machine; with one thread it counts the work done).

Batches: random ids of an 8,002-symbol vocabulary (csfair's recipes), lengths uniform in
[96, 128] with padding (as ``--sample-break-mode complete`` blocks), ``<s>`` first.

Usage: python bench/fast_encoder_cpu.py [--profile] [--rounds 5] [--threads N] [--json OUT]
"""
import argparse
import json
import os
import platform
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F

VOCAB = 8002


def build(shape: str, fast: bool, seed: int = 1):
    """(model, dictionary) for ``shape`` in {"tiny", "base"}; the same weights for fast and stock."""
    import user_dir  # noqa: F401
    from fairseq.data import Dictionary
    from fairseq.models.roberta.model import RobertaModel, base_architecture
    from user_dir.models.cs_roberta import cs_roberta_tiny_architecture
    from user_dir.models.csfair_roberta_fast import CsfairRobertaFastModel

    d = Dictionary()
    for i in range(VOCAB - len(d) - 1):
        d.add_symbol(f"w{i}")
    d.add_symbol("<mask>")

    class Task:
        source_dictionary = d

    args = argparse.Namespace(max_positions=128, dropout=0.0, attention_dropout=0.0)
    (cs_roberta_tiny_architecture if shape == "tiny" else base_architecture)(args)
    torch.manual_seed(seed)
    cls = CsfairRobertaFastModel if fast else RobertaModel
    return cls.build_model(args, Task()), d


def batch(d, bsz: int, seed: int = 0):
    """(tokens (B, 128) int64 with padding, masked (B, 128) bool, targets (n,) int64)."""
    g = torch.Generator().manual_seed(seed)
    tok = torch.randint(d.nspecial, VOCAB - 1, (bsz, 128), generator=g)
    lengths = torch.randint(96, 129, (bsz,), generator=g)
    tok[:, 0] = d.bos()
    for i, n in enumerate(lengths.tolist()):
        tok[i, n - 1] = d.eos()
        tok[i, n:] = d.pad()
    masked = tok.ne(d.pad()) & (torch.rand(tok.shape, generator=g) < 0.15)
    return tok, masked, tok[masked]


def fwd_bwd(model, tok, masked, targets):
    logits = model(tok, masked_tokens=masked)[0]
    loss = F.cross_entropy(logits, targets, reduction="sum")
    loss.backward()
    return loss.detach()


def profile(shape: str, bsz: int, top: int):
    from torch.profiler import ProfilerActivity, profile as tprofile

    out = {}
    for fast in (False, True):
        model, d = build(shape, fast)
        model.train()
        tok, masked, targets = batch(d, bsz)
        fwd_bwd(model, tok, masked, targets)  # warm-up
        model.zero_grad(set_to_none=True)
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            fwd_bwd(model, tok, masked, targets)
        name = "fast" if fast else "stock"
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
        total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3
        print(f"\n### {shape} shape, batch {bsz}x128, fp32, forward+backward: {name} (total self CPU {total:.0f} ms)\n")
        print(table)
        out[name] = dict(total_self_cpu_ms=total, table=table)
    return out


def speed(bsz: int, rounds: int):
    stock, d = build("base", False)
    fast, _ = build("base", True)
    fast.load_state_dict(stock.state_dict(), strict=True)
    stock.train(), fast.train()
    tok, masked, targets = batch(d, bsz)
    times = {"stock": [], "fast": []}
    cpu = {"stock": [], "fast": []}
    losses = {}
    for m in (stock, fast):  # warm-up
        fwd_bwd(m, tok, masked, targets)
        m.zero_grad(set_to_none=True)
    for _ in range(rounds):
        for name, m in (("stock", stock), ("fast", fast)):
            t, c = time.perf_counter(), time.process_time()
            losses[name] = fwd_bwd(m, tok, masked, targets).item()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            m.zero_grad(set_to_none=True)
    enc = {k: statistics.median(v) for k, v in times.items()}
    enc["ratio_stock_over_fast"] = enc["stock"] / enc["fast"]
    enc["cpu_stock"], enc["cpu_fast"] = statistics.median(cpu["stock"]), statistics.median(cpu["fast"])
    enc["cpu_ratio_stock_over_fast"] = enc["cpu_stock"] / enc["cpu_fast"]
    enc["all_cpu_s"] = cpu
    enc["loss_rel_diff"] = abs(losses["stock"] - losses["fast"]) / losses["stock"]
    enc["all_s"] = times

    # optimizers: the same parameters and gradients (the fast model's, after one backward)
    from fairseq.optim.adam import Adam
    from user_dir.optim.csfair_fast_adam import CsfairForeachAdam

    fwd_bwd(fast, tok, masked, targets)
    grads = [p.grad.clone() for p in fast.parameters()]
    del stock
    kw = dict(lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    sets = {}
    for name, cls in (("adam", Adam), ("csfair_fast_adam", CsfairForeachAdam)):
        ps = [p.detach().clone().requires_grad_() for p in fast.parameters()]
        for p, g in zip(ps, grads):
            p.grad = g
        opt = cls(ps, **kw)
        opt.step()  # state initialisation outside the timing
        sets[name] = (ps, opt)
    otimes = {k: [] for k in sets}
    ocpu = {k: [] for k in sets}
    for _ in range(rounds):
        for name, (ps, opt) in sets.items():
            t, c = time.perf_counter(), time.process_time()
            opt.step()
            otimes[name].append(time.perf_counter() - t)
            ocpu[name].append(time.process_time() - c)
    same = all(torch.equal(a, b) for a, b in zip(sets["adam"][0], sets["csfair_fast_adam"][0]))
    opt_res = {k: statistics.median(v) for k, v in otimes.items()}
    opt_res["ratio_adam_over_fast"] = opt_res["adam"] / opt_res["csfair_fast_adam"]
    opt_res["cpu_adam"] = statistics.median(ocpu["adam"])
    opt_res["cpu_csfair_fast_adam"] = statistics.median(ocpu["csfair_fast_adam"])
    opt_res["cpu_ratio_adam_over_fast"] = opt_res["cpu_adam"] / opt_res["cpu_csfair_fast_adam"]
    opt_res["all_cpu_s"] = ocpu
    opt_res["bit_identical_parameters"] = same
    opt_res["parameters"] = sum(p.numel() for p in sets["adam"][0])
    opt_res["tensors"] = len(sets["adam"][0])
    opt_res["all_s"] = otimes
    return enc, opt_res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", action="store_true", help="print torch.profiler tables first")
    p.add_argument("--profile-batch", type=int, default=16, help="sequences per profiled batch (128 tokens each)")
    p.add_argument("--top", type=int, default=12, help="operators per profile table")
    p.add_argument("--batch", type=int, default=8, help="sequences per timed batch (128 tokens each)")
    p.add_argument("--rounds", type=int, default=5, help="alternating stock/fast rounds (medians reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    p.add_argument("--skip-speed", action="store_true", help="profile only")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(),
               cores=os.cpu_count(), load_average_before=os.getloadavg())
    if args.profile:
        res["profile"] = {s: profile(s, args.profile_batch, args.top) for s in ("tiny", "base")}
    if not args.skip_speed:
        enc, opt = speed(args.batch, args.rounds)
        res["encoder_fwd_bwd_base"] = enc
        res["adam_step_base"] = opt
        print(f"\nroberta_base shape, batch {args.batch}x128, fp32, forward+backward (median of {args.rounds}, "
              f"{res['threads']} threads, load average before {res['load_average_before'][0]:.1f}):")
        print(f"  stock {enc['stock'] * 1e3:.0f} ms   fast {enc['fast'] * 1e3:.0f} ms   "
              f"stock/fast {enc['ratio_stock_over_fast']:.3f}   loss rel. diff {enc['loss_rel_diff']:.1e}")
        print(f"  process CPU time: stock {enc['cpu_stock'] * 1e3:.0f} ms   fast {enc['cpu_fast'] * 1e3:.0f} ms   "
              f"stock/fast {enc['cpu_ratio_stock_over_fast']:.3f}")
        print(f"Adam step on the same {opt['parameters']:,} parameters ({opt['tensors']} tensors):")
        print(f"  fairseq adam {opt['adam'] * 1e3:.1f} ms   csfair_fast_adam {opt['csfair_fast_adam'] * 1e3:.1f} ms   "
              f"adam/fast {opt['ratio_adam_over_fast']:.3f}   bit-identical parameters: {opt['bit_identical_parameters']}")
        print(f"  process CPU time: fairseq adam {opt['cpu_adam'] * 1e3:.1f} ms   csfair_fast_adam "
              f"{opt['cpu_csfair_fast_adam'] * 1e3:.1f} ms   adam/fast {opt['cpu_ratio_adam_over_fast']:.3f}")
    res["load_average_after"] = os.getloadavg()
    if args.json:
        from csfair.io import atomic_write

        with atomic_write(args.json) as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
