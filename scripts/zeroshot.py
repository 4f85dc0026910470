#!/usr/bin/env python
"""Zero-shot cross-lingual transfer: fine-tune on the training language, evaluate on others.

For each pretrained checkpoint (a table column), task and seed: write the task's data with the
checkpoint's sentencepiece model and dictionary, fine-tune with ``fairseq-train`` (Visser et al.,
2025, Table 2: max length 128, batch 32, lr 5e-5, weight decay 0.01, warmup ratio 0.25, linear
decay, 3 epochs for NER/POS, 4 for NLI), evaluate the training language's dev set (model
selection) and every target language's test set, and append one JSON line per evaluation to
``<out>/results.jsonl``. Finished runs are skipped when the command is repeated. At the end,
tables of mean ± std over seeds (rows: languages, columns: checkpoints) are printed and written
to ``<out>/tables/<task>.{md,csv}``.

Usage:
    python scripts/zeroshot.py --checkpoint ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt \\
        --checkpoint nocs=checkpoints/en-fr/none/checkpoint_last.pt --tasks pos,ner-wikiann,xnli \\
        --seeds 1,2,3 [--max-train 2000 --max-eval 1000] [--grid] [--freeze-encoder] [--crf]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from csfair import metrics as M  # noqa: E402
from csfair.finetune_data import TASKS, write_task_data  # noqa: E402
from csfair.io import sha256_file  # noqa: E402
from csfair.results import aggregate, append_result, load_results, to_csv, to_markdown  # noqa: E402

GRID_LR = (2e-5, 5e-5, 1e-4)
GRID_EPOCHS = (3, 4, 5)


def log(msg):
    print(f"[zeroshot] {msg}", flush=True)


def score(spec, pairs):
    gold = [g for g, _ in pairs]
    pred = [p for _, p in pairs]
    if spec.metric_fn == "span_f1":
        return M.span_f1(gold, pred)
    if spec.metric_fn == "token_accuracy":
        return M.token_accuracy(gold, pred)
    return M.sentence_metrics(gold, pred)


def prepare(spec, name, ckpt, args, out):
    """Data of a task for a checkpoint's vocabulary (cached by dictionary checksum)."""
    from user_dir.finetune import binarize_task, pretrained_arch_args

    arch_args, task_cfg = pretrained_arch_args(ckpt)
    data = task_cfg.get("data", "").split(os.pathsep)[0]
    if data and not os.path.isabs(data):
        data = os.path.join(ROOT, data)  # recipes train from the repository root
    spm = args.spm or os.path.join(data, "spm.model")
    dict_path = args.dict or next(
        (p for p in [os.path.join(data, "dict.txt")] + [os.path.join(data, lg, "dict.txt") for lg in
                                                         task_cfg.get("langs", "").split(",") if lg]
         if os.path.exists(p)), None)
    for p, what in ((spm, "sentencepiece model"), (dict_path, "dictionary")):
        if not p or not os.path.exists(p):
            raise SystemExit(f"{name}: {what} of {ckpt} not found ({p}); pass --spm/--dict")
    key = sha256_file(dict_path)[:10]
    root = os.path.join(out, "data", key, spec.name + (f"-train{args.max_train}" if args.max_train else "")
                        + (f"-eval{args.max_eval}" if args.max_eval else ""))
    done = os.path.join(root, "bin", ".done")
    if not os.path.exists(done):
        log(f"{spec.name}: writing data for dictionary {key} ({spm})")
        stats = write_task_data(spec, spm, root, max_positions=128, max_train=args.max_train,
                                max_eval=args.max_eval, seed=1, workers=2)
        binarize_task(os.path.join(root, "raw"), os.path.join(root, "bin"), dict_path, spec.pair, spec.source_lang, spm)
        open(done, "w").close()
    stats = json.load(open(os.path.join(root, "raw", "stats.json")))
    return root, arch_args, task_cfg["max_positions"], stats


def finetune(spec, ckpt, arch_args, max_positions, n_train, data_root, run_dir, seed, lr, epochs, args):
    updates_per_epoch = math.ceil(n_train / args.batch_size)
    total = epochs * updates_per_epoch
    warmup = math.ceil(args.warmup_ratio * total)
    common = [
        "--user-dir", os.path.join(ROOT, "user_dir"), *arch_args, "--max-positions", str(max_positions),
        "--finetune-from-model", ckpt, "--batch-size", str(args.batch_size), "--optimizer", "adam",
        "--adam-betas", "(0.9,0.999)", "--adam-eps", "1e-08", "--weight-decay", str(args.weight_decay),
        "--lr", str(lr), "--lr-scheduler", "polynomial_decay", "--end-learning-rate", "0", "--power", "1",
        "--warmup-updates", str(warmup), "--total-num-update", str(total), "--max-epoch", str(epochs),
        "--seed", str(seed), "--save-dir", run_dir, "--no-epoch-checkpoints", "--disable-validation",
        "--num-workers", "0", "--log-format", "simple", "--log-interval", "100", "--required-batch-size-multiple", "1",
    ]
    if args.freeze_encoder:
        common.append("--freeze-encoder")
    if spec.kind == "tagging":
        cmd = ["fairseq-train", os.path.join(data_root, "bin", spec.source_lang), "--task", "token_tagging",
               "--criterion", "token_tagging", "--class-weighting", args.class_weighting,
               "--focal-gamma", str(args.focal_gamma), *common]
        if args.crf:
            cmd.append("--use-crf")
    else:
        labels = json.load(open(os.path.join(data_root, "raw", "stats.json")))[f"{spec.source_lang}.train"]["labels"]
        cmd = ["fairseq-train", os.path.join(data_root, "bin", spec.source_lang), "--task", "cs_sentence_prediction",
               "--criterion", "sentence_prediction", "--num-classes", str(len(labels)), "--init-token", "0",
               "--separator-token", "2", "--shorten-method", "truncate", *common]
    os.makedirs(run_dir, exist_ok=True)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    with open(os.path.join(run_dir, "train.log"), "w") as logf:
        p = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"fine-tuning failed: see {os.path.join(run_dir, 'train.log')}")
    return os.path.join(run_dir, "checkpoint_last.pt"), total


def evaluate(spec, ft_ckpt, data_root, langs):
    from user_dir.finetune import predict

    out = {}
    for lang, split in [(spec.source_lang, "valid")] + [(lg, "test") for lg in langs]:
        pairs = predict(ft_ckpt, os.path.join(data_root, "bin", lang), split, spec.kind)
        out[(lang, split)] = (score(spec, pairs), len(pairs))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH of a pretrained checkpoint (a column)")
    p.add_argument("--tasks", default="pos,ner-wikiann,xnli", help=f"comma-separated: {', '.join(TASKS)}")
    p.add_argument("--langs", default=None, help="evaluate only these target languages")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (paper: 5 for XNLI, 10 for NER)")
    p.add_argument("--max-train", type=int, default=None, help="seeded subset of the training set")
    p.add_argument("--max-eval", type=int, default=None, help="seeded subset of each dev/test set")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--epochs", type=int, default=None, help="default: the task's (3 tagging, 4 NLI)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.25)
    p.add_argument("--grid", action="store_true", help="select lr x epochs on dev with the first seed")
    p.add_argument("--freeze-encoder", action="store_true")
    p.add_argument("--crf", action="store_true", help="CRF output layer (tagging)")
    p.add_argument("--class-weighting", default="none", choices=["none", "balanced"])
    p.add_argument("--focal-gamma", type=float, default=0.0)
    p.add_argument("--spm", default=None, help="sentencepiece model (default: the checkpoint's data dir)")
    p.add_argument("--dict", default=None, help="dictionary (default: the checkpoint's data dir)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "zeroshot"))
    p.add_argument("--keep-checkpoints", action="store_true")
    args = p.parse_args(argv)

    checkpoints = []
    for spec in args.checkpoint:
        if "=" not in spec:
            raise SystemExit(f"--checkpoint expects NAME=PATH, got {spec!r}")
        name, path = spec.split("=", 1)
        if not os.path.exists(path):
            raise SystemExit(f"{path}: checkpoint not found")
        checkpoints.append((name, os.path.abspath(path)))
    tasks = [TASKS[t] for t in args.tasks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    results_path = os.path.join(args.out, "results.jsonl")
    suffix = ("/frozen" if args.freeze_encoder else "") + ("/crf" if args.crf else "") + \
             (f"/{args.class_weighting}" if args.class_weighting != "none" else "") + \
             (f"/focal{args.focal_gamma:g}" if args.focal_gamma else "")
    t_start = time.time()
    for name, ckpt in checkpoints:
        label = name + suffix
        for spec in tasks:
            langs = [lg for lg in spec.test_langs if not args.langs or lg in args.langs.split(",")]
            data_root, arch_args, max_pos, stats = prepare(spec, name, ckpt, args, args.out)
            log(f"{spec.name} examples: " + ", ".join(f"{k} {v['examples']}" for k, v in stats.items()))
            n_train = stats[f"{spec.source_lang}.train"]["examples"]
            configs = [(args.lr, args.epochs or spec.epochs)]
            if args.grid:
                configs = [(lr, ep) for lr in GRID_LR for ep in GRID_EPOCHS]
            base = dict(model=label, task=spec.name, max_train=args.max_train, max_eval=args.max_eval,
                        checkpoint=ckpt)
            done = load_results(results_path)
            if len(configs) > 1:
                best = None
                for lr, ep in configs:
                    got = [r for r in done if r["task"] == spec.name and r["model"] == label and r["split"] == "grid"
                           and r["lr"] == lr and r["epochs"] == ep and r["seed"] == seeds[0]]
                    if not got:
                        run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, f"grid-lr{lr:g}-ep{ep}")
                        t0 = time.time()
                        ft, _ = finetune(spec, ckpt, arch_args, max_pos, n_train, data_root, run_dir, seeds[0], lr, ep, args)
                        (m, n) = evaluate(spec, ft, data_root, [])[(spec.source_lang, "valid")]
                        rec = dict(base, lang=spec.source_lang, split="grid", seed=seeds[0], lr=lr, epochs=ep,
                                   metrics=m, n=n, seconds=round(time.time() - t0, 1))
                        append_result(results_path, rec)
                        got = [rec]
                        if not args.keep_checkpoints:
                            os.remove(ft)
                    value = got[-1]["metrics"][spec.metric]
                    log(f"{spec.name} grid lr={lr:g} epochs={ep}: dev {spec.metric} {value:.4f}")
                    if best is None or value > best[0]:
                        best = (value, lr, ep)
                configs = [best[1:]]
                log(f"{spec.name}: selected lr={best[1]:g} epochs={best[2]} on {spec.source_lang} dev")
            lr, epochs = configs[0]
            for seed in seeds:
                have = [r for r in load_results(results_path) if r["task"] == spec.name and r["model"] == label
                        and r["seed"] == seed and r["lr"] == lr and r["epochs"] == epochs and r["split"] == "test"
                        and r.get("max_train") == args.max_train and r.get("max_eval") == args.max_eval]
                if {r["lang"] for r in have} >= set(langs):
                    log(f"{label} {spec.name} seed {seed}: done before, skipped")
                    continue
                run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, f"seed{seed}")
                t0 = time.time()
                ft, updates = finetune(spec, ckpt, arch_args, max_pos, n_train, data_root, run_dir, seed, lr, epochs, args)
                t_train = time.time() - t0
                res = evaluate(spec, ft, data_root, langs)
                for (lang, split), (m, n) in res.items():
                    append_result(results_path, dict(base, lang=lang, split=split, seed=seed, lr=lr, epochs=epochs,
                                                     updates=updates, metrics=m, n=n, train_seconds=round(t_train, 1),
                                                     seconds=round(time.time() - t0, 1)))
                log(f"{label} {spec.name} seed {seed}: {spec.metric} " + ", ".join(
                    f"{lg}/{sp} {m[spec.metric]:.4f}" for (lg, sp), (m, _) in res.items())
                    + f" ({time.time() - t0:.0f} s)")
                if not args.keep_checkpoints:
                    os.remove(ft)

    records = load_results(results_path)
    os.makedirs(os.path.join(args.out, "tables"), exist_ok=True)
    for spec in tasks:
        # every column recorded for the task (e.g. fine-tuned and frozen runs of several checkpoints)
        for split, langs in (("test", None), ("valid", [spec.source_lang])):
            table = aggregate(records, spec.name, spec.metric, split=split, langs=langs)
            if not table:
                continue
            title = f"{spec.name} ({spec.metric}, {split}; mean ± std over seeds {args.seeds})"
            md = to_markdown(table, title)
            print("\n" + md)
            if split == "test":
                base = os.path.join(args.out, "tables", spec.name)
                with open(base + ".md", "w") as fh:
                    fh.write(md + "\n")
                with open(base + ".csv", "w") as fh:
                    fh.write(to_csv(table))
    log(f"wall time {time.time() - t_start:.0f} s; results in {results_path}")


if __name__ == "__main__":
    main()
