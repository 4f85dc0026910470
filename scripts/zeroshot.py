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

from csfair.evaluation import metrics as M  # noqa: E402
from csfair.baselines.embeddings import FASTTEXT_BUCKET  # noqa: E402
from csfair.evaluation.tasks import TASKS, write_task_data  # noqa: E402
from csfair.io import sha256_file  # noqa: E402
from csfair.evaluation.results import aggregate, append_result, load_results, to_csv, to_markdown  # noqa: E402

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


# Languages with fastText vectors (mono/derived) used by the meta-embedding taggers, per task.
SCRATCH_HIDDEN = 768  # scratch:LAYERS columns (BERT-base width)
TAGGER_LANGS = {"pos": ["en", "fr", "de", "es"], "ner-wikiann": ["en", "de", "es"],
                "ner-wikineural": ["en", "fr", "de", "es"], "lid-calcs": ["en", "es"], "lid-sentimix": ["en", "es"],
                "pos-sagt": ["en", "de"], "pos-arabizi": ["en", "fr"]}


class Model:
    """A table column: a pretrained checkpoint (NAME=PATH), a randomly initialised Transformer
    (NAME=scratch:LAYERS or NAME=scratch:LAYERS:HIDDEN; hidden 768 by default, FFN 4 x hidden, one
    attention head per 64 dimensions) or a meta-embedding tagger (NAME=mme / NAME=hme)."""

    def __init__(self, spec):
        if "=" not in spec:
            raise SystemExit(f"--checkpoint expects NAME=PATH, NAME=scratch:LAYERS, NAME=mme or NAME=hme; got {spec!r}")
        self.name, value = spec.split("=", 1)
        self.kind, self.path, self.layers, self.hidden, self.tagger = "pretrained", None, None, None, None
        if value.startswith("scratch:"):
            shape = value.split(":")[1:]
            if len(shape) not in (1, 2) or not all(x.isdigit() and int(x) > 0 for x in shape):
                raise SystemExit(f"--checkpoint {spec!r}: expected NAME=scratch:LAYERS[:HIDDEN] with positive integers")
            self.kind, self.layers = "scratch", int(shape[0])
            self.hidden = int(shape[1]) if len(shape) == 2 else SCRATCH_HIDDEN
        elif value in ("mme", "hme"):
            self.kind, self.tagger = "tagger", value
        else:
            if not os.path.exists(value):
                raise SystemExit(f"{value}: checkpoint not found")
            self.path = os.path.abspath(value)


def _column_key(model):
    """The ``checkpoint`` field of a non-pretrained column's results (``scratch:L``, ``scratch:L:H``, ``tagger:mme``)."""
    if model.kind == "scratch":
        return f"scratch:{model.layers}" + (f":{model.hidden}" if model.hidden != SCRATCH_HIDDEN else "")
    return f"tagger:{model.tagger}"


def _vocab_of(model, args):
    """(spm, dict, arch args, max positions) of a pretrained checkpoint or of the demo's vocabulary."""
    from user_dir.finetune import pretrained_arch_args

    if model.kind == "pretrained":
        arch_args, task_cfg = pretrained_arch_args(model.path)
        data = task_cfg.get("data", "").split(os.pathsep)[0]
        if data and not os.path.isabs(data):
            data = os.path.join(ROOT, data)  # recipes train from the repository root
        langs = [lg for lg in (task_cfg.get("langs") or "").split(",") if lg]
        max_pos = task_cfg["max_positions"]
    else:
        data, langs, max_pos = os.path.join(ROOT, "data-bin", "en-fr"), [], 128
        arch_args = []  # taggers: set in prepare()
        if model.kind == "scratch":
            h = model.hidden
            arch_args = ["--arch", "cs_roberta_base", "--encoder-layers", str(model.layers), "--encoder-embed-dim",
                         str(h), "--encoder-ffn-embed-dim", str(4 * h), "--encoder-attention-heads", str(max(1, h // 64))]
    spm = args.spm or os.path.join(data, "spm.model")
    dict_path = args.dict or next((p for p in [os.path.join(data, "dict.txt")] +
                                   [os.path.join(data, lg, "dict.txt") for lg in langs] if os.path.exists(p)), None)
    for p, what in ((spm, "sentencepiece model"), (dict_path, "dictionary")):
        if not p or not os.path.exists(p):
            raise SystemExit(f"{model.name}: {what} not found ({p}); pass --spm/--dict")
    return spm, dict_path, arch_args, max_pos


def prepare(spec, model, args, out):
    """Data of a task for a model's vocabulary (cached), the fairseq-train model flags, counts."""
    from user_dir.finetune import binarize_task

    sizes = (f"-train{args.max_train}" if args.max_train else "") + (f"-eval{args.max_eval}" if args.max_eval else "")
    spm, dict_path, arch_args, max_pos = _vocab_of(model, args)
    if model.kind == "tagger":
        root = os.path.join(out, "data", "words", spec.name + sizes)
    else:
        root = os.path.join(out, "data", sha256_file(dict_path)[:10], spec.name + sizes)
    done = os.path.join(root, "bin", ".done")
    if not os.path.exists(done):
        log(f"{spec.name}: writing {'word-level ' if model.kind == 'tagger' else ''}data to {root}")
        write_task_data(spec, spm, root, max_positions=128, max_train=args.max_train, max_eval=args.max_eval,
                        seed=1, workers=2, word_level=model.kind == "tagger")
        binarize_task(os.path.join(root, "raw"), os.path.join(root, "bin"),
                      None if model.kind == "tagger" else dict_path, spec.pair, spec.source_lang, spm)
        open(done, "w").close()
    stats = json.load(open(os.path.join(root, "raw", "stats.json")))
    if model.kind == "tagger":
        from csfair.baselines.embeddings import build_meta_tables
        from fairseq.data import Dictionary

        langs = TAGGER_LANGS.get(spec.name)
        if not langs:
            raise SystemExit(f"no meta-embedding languages defined for task {spec.name}")
        meta = os.path.join(root, "meta")
        if not os.path.exists(os.path.join(meta, ".done")):
            words = Dictionary.load(os.path.join(root, "bin", "words.dict.txt"))
            log(f"{spec.name}: fastText tables for {', '.join(langs)} (+ subwords) -> {meta}")
            ft_dir = os.path.join(out, "fasttext" + (f"-{args.fasttext_lines}" if args.fasttext_lines else "")
                                  + (f"-b{args.fasttext_bucket}" if args.fasttext_bucket != FASTTEXT_BUCKET else ""))
            build_meta_tables(words.symbols, words.nspecial, langs, meta, ft_dir, spm, max_lines=args.fasttext_lines,
                              bucket=args.fasttext_bucket)
            open(os.path.join(meta, ".done"), "w").close()
        sources = langs + (["subword"] if model.tagger == "hme" else [])
        arch_args = ["--arch", f"{model.tagger}_tagger", "--me-sources", ",".join(sources), "--meta-dir", meta]
        max_pos = 128
    return root, arch_args, max_pos, stats


def finetune(spec, model, arch_args, max_positions, n_train, data_root, run_dir, seed, lr, epochs, args):
    updates_per_epoch = math.ceil(n_train / args.batch_size)
    total = epochs * updates_per_epoch
    warmup = math.ceil(args.warmup_ratio * total)
    common = [
        "--user-dir", os.path.join(ROOT, "user_dir"), *arch_args, "--max-positions", str(max_positions),
        "--batch-size", str(args.batch_size), "--optimizer", "adam",
        "--adam-betas", "(0.9,0.999)", "--adam-eps", "1e-08", "--weight-decay", str(args.weight_decay),
        "--lr", str(lr), "--lr-scheduler", "polynomial_decay", "--end-learning-rate", "0", "--power", "1",
        "--warmup-updates", str(warmup), "--total-num-update", str(total), "--max-epoch", str(epochs),
        "--seed", str(seed), "--save-dir", run_dir, "--no-epoch-checkpoints", "--disable-validation",
        "--num-workers", "0", "--log-format", "simple", "--log-interval", "100", "--required-batch-size-multiple", "1",
    ]
    if model.kind == "pretrained":
        common += ["--finetune-from-model", model.path]
    if args.freeze_encoder and model.kind == "pretrained":
        common.append("--freeze-encoder")
    data = os.path.join(data_root, "bin", spec.source_lang)
    if spec.kind == "tagging":
        task = "word_tagging" if model.kind == "tagger" else "token_tagging"
        cmd = ["fairseq-train", data, "--task", task, "--criterion", "token_tagging", "--class-weighting",
               args.class_weighting, "--focal-gamma", str(args.focal_gamma), *common]
        if args.crf or model.kind == "tagger":  # the meta-embedding taggers have a CRF output layer
            cmd.append("--use-crf")
    else:
        if model.kind == "tagger":
            raise SystemExit(f"{model.name}: meta-embedding taggers do tagging tasks only, not {spec.name}")
        labels = json.load(open(os.path.join(data_root, "raw", "stats.json")))[f"{spec.source_lang}.train"]["labels"]
        cmd = ["fairseq-train", data, "--task", "cs_sentence_prediction",
               "--criterion", "sentence_prediction", "--num-classes", str(len(labels)), "--init-token", "0",
               "--separator-token", "2", "--shorten-method", "truncate", *common]
    os.makedirs(run_dir, exist_ok=True)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    with open(os.path.join(run_dir, "train.log"), "w") as logf:
        p = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"fine-tuning failed: see {os.path.join(run_dir, 'train.log')}")
    return os.path.join(run_dir, "checkpoint_last.pt"), total


def count_parameters(checkpoint):
    """Parameters of a fine-tuned checkpoint's model (frozen tables included; buffers excluded)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    skip = ("word_chars", "version", "_extra_state", "_float_tensor")
    return int(sum(v.numel() for k, v in state.items() if torch.is_tensor(v) and not k.endswith(skip)))


def majority_vote(runs):
    """Per word, the label most seeds predicted (ties: the earliest seed's label)."""
    out = []
    for sent_preds in zip(*runs):
        gold = sent_preds[0][0]
        voted = []
        for w in range(len(gold)):
            labels = [p[1][w] for p in sent_preds]
            voted.append(max(labels, key=lambda lab: (labels.count(lab), -labels.index(lab))))
        out.append((gold, voted))
    return out


def evaluate(spec, ft_ckpt, data_root, langs, keep=None):
    """``{(lang, split): (metrics, n)}``; ``keep`` (a dict) receives the (gold, pred) pairs."""
    from user_dir.finetune import predict

    out = {}
    for lang, split in [(spec.source_lang, "valid")] + [(lg, "test") for lg in langs]:
        pairs = predict(ft_ckpt, os.path.join(data_root, "bin", lang), split, spec.kind)
        out[(lang, split)] = (score(spec, pairs), len(pairs))
        if keep is not None:
            keep[(lang, split)] = pairs
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--checkpoint", action="append", required=True,
                   help="a table column: NAME=PATH (pretrained checkpoint), NAME=scratch:LAYERS[:HIDDEN] (random init, "
                        "hidden 768 unless given), NAME=mme or NAME=hme (meta-embedding taggers)")
    p.add_argument("--tasks", default="pos,ner-wikiann,xnli", help=f"comma-separated: {', '.join(TASKS)}")
    p.add_argument("--langs", default=None, help="evaluate only these target languages")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (paper: 5 for XNLI, 10 for NER)")
    p.add_argument("--max-train", type=int, default=None, help="seeded subset of the training set")
    p.add_argument("--max-eval", type=int, default=None, help="seeded subset of each dev/test set")
    p.add_argument("--lr", type=float, default=5e-5, help="fine-tuning learning rate of pretrained checkpoints")
    p.add_argument("--scratch-lr", type=float, default=1e-3, help="learning rate of scratch models and taggers")
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
    p.add_argument("--fasttext-lines", type=int, default=None,
                   help="monolingual lines per language for the taggers' fastText vectors (default: all)")
    p.add_argument("--fasttext-bucket", type=int, default=FASTTEXT_BUCKET,
                   help="fastText's hashed character n-gram rows (its default 2,000,000 = 800 MB per model at dim 100)")
    args = p.parse_args(argv)

    models = [Model(x) for x in args.checkpoint]
    tasks = [TASKS[t] for t in args.tasks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    results_path = os.path.join(args.out, "results.jsonl")
    suffix = ("/frozen" if args.freeze_encoder else "") + ("/crf" if args.crf else "") + \
             (f"/{args.class_weighting}" if args.class_weighting != "none" else "") + \
             (f"/focal{args.focal_gamma:g}" if args.focal_gamma else "")
    t_start = time.time()
    for model in models:
        label = model.name + (suffix if model.kind == "pretrained" else "")
        for spec in tasks:
            if model.kind == "tagger" and spec.kind != "tagging":
                log(f"{label}: meta-embedding taggers do tagging only; {spec.name} skipped")
                continue
            langs = [lg for lg in spec.test_langs if not args.langs or lg in args.langs.split(",")]
            data_root, arch_args, max_pos, stats = prepare(spec, model, args, args.out)
            log(f"{spec.name} examples: " + ", ".join(f"{k} {v['examples']}" for k, v in stats.items()))
            n_train = stats[f"{spec.source_lang}.train"]["examples"]
            base_lr = args.lr if model.kind == "pretrained" else args.scratch_lr
            configs = [(base_lr, args.epochs or spec.epochs)]
            if args.grid:
                configs = [(lr, ep) for lr in GRID_LR for ep in GRID_EPOCHS]
            base = dict(model=label, task=spec.name, max_train=args.max_train, max_eval=args.max_eval,
                        checkpoint=model.path or _column_key(model))
            done = load_results(results_path)
            if len(configs) > 1:
                best = None
                for lr, ep in configs:
                    got = [r for r in done if r["task"] == spec.name and r["model"] == label and r["split"] == "grid"
                           and r["lr"] == lr and r["epochs"] == ep and r["seed"] == seeds[0]]
                    if not got:
                        run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, f"grid-lr{lr:g}-ep{ep}")
                        t0 = time.time()
                        ft, _ = finetune(spec, model, arch_args, max_pos, n_train, data_root, run_dir, seeds[0], lr, ep, args)
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
            predictions = []  # per seed, for the ensemble of the taggers
            for seed in seeds:
                have = [r for r in load_results(results_path) if r["task"] == spec.name and r["model"] == label
                        and r["seed"] == seed and r["lr"] == lr and r["epochs"] == epochs and r["split"] == "test"
                        and r.get("max_train") == args.max_train and r.get("max_eval") == args.max_eval]
                run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, f"seed{seed}")
                pred_file = os.path.join(run_dir, "predictions.json")
                if {r["lang"] for r in have} >= set(langs):
                    log(f"{label} {spec.name} seed {seed}: done before, skipped")
                    if os.path.exists(pred_file):
                        saved = json.load(open(pred_file))
                        predictions.append({tuple(k.split("|")): v for k, v in saved.items()})
                    params = have[-1].get("params", 0)
                    continue
                t0 = time.time()
                ft, updates = finetune(spec, model, arch_args, max_pos, n_train, data_root, run_dir, seed, lr, epochs, args)
                t_train = time.time() - t0
                params = count_parameters(ft)
                kept = {}
                res = evaluate(spec, ft, data_root, langs, keep=kept)
                predictions.append(kept)
                with open(pred_file, "w") as fh:  # for ensembles and error analysis
                    json.dump({f"{lg}|{sp}": v for (lg, sp), v in kept.items()}, fh)
                for (lang, split), (m, n) in res.items():
                    append_result(results_path, dict(base, lang=lang, split=split, seed=seed, lr=lr, epochs=epochs,
                                                     updates=updates, metrics=m, n=n, params=params,
                                                     train_seconds=round(t_train, 1),
                                                     seconds=round(time.time() - t0, 1)))
                log(f"{label} {spec.name} seed {seed}: {spec.metric} " + ", ".join(
                    f"{lg}/{sp} {m[spec.metric]:.4f}" for (lg, sp), (m, _) in res.items())
                    + f" ({time.time() - t0:.0f} s, {params / 1e6:.2f}M parameters)")
                if not args.keep_checkpoints:
                    os.remove(ft)
            if model.kind == "tagger" and len(predictions) > 1:
                # HME-Ensemble (Winata et al., 2021): majority vote of the seeds, per word
                for key in predictions[0]:
                    voted = majority_vote([pr[key] for pr in predictions])
                    append_result(results_path, dict(base, model=f"{label}-ensemble", lang=key[0], split=key[1],
                                                     seed=0, lr=lr, epochs=epochs, metrics=score(spec, voted),
                                                     n=len(voted), params=params * len(predictions)))
                log(f"{label}-ensemble {spec.name}: majority vote of {len(predictions)} seeds recorded")

    records = load_results(results_path)
    params_of = {}
    for r in records:
        if "params" in r:
            params_of[r["model"]] = r["params"]
    os.makedirs(os.path.join(args.out, "tables"), exist_ok=True)
    for spec in tasks:
        # every column recorded for the task (e.g. fine-tuned and frozen runs of several checkpoints)
        for split, langs in (("test", None), ("valid", [spec.source_lang])):
            table = aggregate(records, spec.name, spec.metric, split=split, langs=langs)
            if not table:
                continue
            headers = {m: (f"{m} ({params_of[m] / 1e6:.1f}M)" if m in params_of else m)
                       for m in next(iter(table.values()))}
            table = {lg: {headers[m]: v for m, v in row.items()} for lg, row in table.items()}
            title = f"{spec.name} ({spec.metric}, {split}; mean ± std over seeds {args.seeds}; parameters in brackets)"
            md = to_markdown(table, title)
            print("\n" + md)
            if split == "test":
                base_path = os.path.join(args.out, "tables", spec.name)
                with open(base_path + ".md", "w") as fh:
                    fh.write(md + "\n")
                with open(base_path + ".csv", "w") as fh:
                    fh.write(to_csv(table))
    log(f"wall time {time.time() - t_start:.0f} s; results in {results_path}")


if __name__ == "__main__":
    main()
