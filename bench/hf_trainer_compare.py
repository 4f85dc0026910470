#!/usr/bin/env python
"""MLM training tokens/s: fairseq (csfair's ``codeswitch_masked_lm``, no code-switching) vs transformers ``Trainer``.

The same network (``cs_roberta_tiny`` = ``RobertaForMaskedLM`` with 4 layers, 256 hidden, 4 heads,
1024 FFN, 8,002-symbol vocabulary, 130 positions), the same token blocks (the French training split
of ``data-bin/en-fr``, blocks of whole sentences up to 128 tokens), batch 32, Adam lr 5e-4,
15% masking (80/10/10), the same number of updates, one process on the same cores. Runs alternate
fairseq / transformers; tokens/s counts the non-padding input tokens of the processed batches.

Usage: python bench/hf_trainer_compare.py [--updates 60] [--repeats 2]
Writes bench/results/hf_trainer_compare.json.
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


def blocks(data):
    import user_dir  # noqa: F401
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMConfig, CodeSwitchMaskedLMTask

    task = CodeSwitchMaskedLMTask.setup_task(CodeSwitchMaskedLMConfig(
        data=data, langs="fr", cs_mode="none", tokens_per_sample=128, sample_break_mode="complete", seed=1))
    task.load_dataset("train")
    base = task._wrappers[-1].dataset  # <s> + blocks, before masking
    # "complete" blocks never split a sentence, so a few exceed 128 tokens; fairseq-train skips them
    # (its train iterator ignores inputs longer than the model's max positions): so does this side
    items = [base[i].tolist() for i in range(len(base))]
    return [x for x in items if len(x) <= 128], len(task.source_dictionary)


def run_hf(data, updates, vocab_size, items, shape=None, batch_size=32, bf16=False, use_cpu=True,
           attn_implementation=None, callbacks=None, on_batch=None):
    """Train ``RobertaForMaskedLM`` with the ``Trainer``; returns (tokens/s over train(), train_runtime).

    ``shape`` overrides the network (default: cs_roberta_tiny), ``attn_implementation`` is passed to the
    model (e.g. "sdpa"), ``callbacks`` to the Trainer, and ``on_batch(batch)`` sees each collated batch
    (bench/gpu_throughput.py uses these for the GPU comparison).
    """
    import torch
    from transformers import (DataCollatorForLanguageModeling, RobertaConfig, RobertaForMaskedLM, Trainer,
                              TrainingArguments)

    from user_dir.hf_interop import build_hf_tokenizer

    tok = build_hf_tokenizer(os.path.join(data, "spm.model"), os.path.join(data, "dict.txt"))
    net = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    net.update(shape or {})
    cfg = RobertaConfig(vocab_size=vocab_size, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
                        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, **net)
    torch.manual_seed(1)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = RobertaForMaskedLM(cfg, **extra) if not extra else RobertaForMaskedLM._from_config(cfg, **extra)
    base_collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15)
    collator = base_collator if on_batch is None else (lambda feats: on_batch(base_collator(feats)))
    ds = [{"input_ids": x} for x in items]
    n_tokens = sum(len(ds[i % len(ds)]["input_ids"]) for i in range(updates * batch_size))
    args = TrainingArguments(output_dir=os.path.join("/tmp", "hf_bench"), per_device_train_batch_size=batch_size,
                             max_steps=updates, learning_rate=5e-4, logging_steps=updates, save_strategy="no",
                             report_to=[], use_cpu=use_cpu, dataloader_num_workers=0, seed=1, disable_tqdm=True,
                             bf16=bf16)
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator, callbacks=callbacks)
    t0 = time.time()
    out = trainer.train()
    dt = time.time() - t0
    return n_tokens / dt, out.metrics.get("train_runtime", dt)


def run_fairseq(data, updates):
    cmd = [sys.executable, "-m", "fairseq_cli.train", data, "--user-dir", os.path.join(ROOT, "user_dir"),
           "--task", "codeswitch_masked_lm", "--langs", "fr", "--cs-mode", "none", "--arch", "cs_roberta_tiny",
           "--criterion", "masked_lm", "--tokens-per-sample", "128", "--sample-break-mode", "complete",
           "--optimizer", "adam", "--lr", "5e-4", "--lr-scheduler", "fixed", "--batch-size", "32",
           "--max-update", str(updates), "--log-format", "simple", "--log-interval", str(updates),
           "--num-workers", "0", "--no-save", "--disable-validation", "--cpu", "--seed", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-3000:])
    return float(re.findall(r"\| train \|.*?\| wps ([0-9.]+)", p.stdout + p.stderr)[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "data-bin", "en-fr"))
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "hf_trainer_compare.json"))
    args = p.parse_args()
    items, vocab = blocks(args.data)
    fs, hf = [], []
    for _ in range(args.repeats):
        fs.append(run_fairseq(args.data, args.updates))
        hf.append(run_hf(args.data, args.updates, vocab, items)[0])
        print(f"[bench] fairseq {fs[-1]:.0f} tokens/s, transformers Trainer {hf[-1]:.0f} tokens/s", flush=True)
    import torch
    import transformers

    res = dict(machine=dict(platform=platform.platform(), cpus=os.cpu_count(), torch=torch.__version__,
                            transformers=transformers.__version__),
               fairseq_tokens_per_s=fs, transformers_tokens_per_s=hf,
               ratio_fairseq_over_transformers=[a / b for a, b in zip(fs, hf)],
               median_ratio=statistics.median(a / b for a, b in zip(fs, hf)), updates=args.updates,
               notes="fairseq wps counts input tokens per second over the run (incl. its data loading); the "
                     "transformers rate divides the batches' tokens by Trainer.train() wall time (incl. start-up)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
