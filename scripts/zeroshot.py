#!/usr/bin/env python
"""Zero-shot cross-lingual transfer: fine-tune on the training language, evaluate on others.

For each pretrained checkpoint (a table column), task and seed: write the task's data with the
checkpoint's sentencepiece model and dictionary, fine-tune with ``fairseq-train`` (Visser et al.,
2025, Table 2: max length 128, batch 32, lr 5e-5, weight decay 0.01, warmup ratio 0.25, linear
decay, 3 epochs for NER/POS, 4 for NLI), score the training language's dev set after every epoch
and keep the best epoch (model selection as in XTREME and Hugging Face's ``load_best_model_at_end``;
the epoch is recorded), evaluate every target language's test set with it, and append one JSON
line per evaluation to ``<out>/results.jsonl`` (per-item scores for the significance test in
``<out>/items.jsonl``; ``<out>`` is ``runs/zeroshot`` by default, git-ignored).

A column ``NAME=hf:PATH_OR_ID`` is a Hugging Face transformers encoder (a model directory, or a Hub id
already in the local cache: nothing is downloaded), fine-tuned with ``AutoModelForTokenClassification``
/ ``AutoModelForSequenceClassification`` on the same data, seeds, hyperparameters, selection rule and
metrics (csfair_hf/zeroshot.py); its protocol holds the digest of its weights, config and tokenizer
files instead of the checkpoint SHA-256.

Every record carries a protocol key (csfair.evaluation.results.protocol_key) over every fine-tuning
hyperparameter, the data sizes, the code version (git commit, plus a digest of uncommitted
changes; csfair.__version__ outside git) and the pretrained checkpoint's SHA-256: finished runs
are skipped only when the key matches, and tables show the current command's protocols only.
A run whose English (training-language) dev score does not beat the majority-class baseline, or whose
dev predictions are (nearly) all one label, is flagged (``flags``), marked in the tables and left
out of the mean in every language; exclusion never depends on a test set (a test set's collapse is
``eval_flags``: a note next to a value that stays in the mean). At the end, tables of mean ± std
(n = kept seeds, items = test items per run) are printed and written to
``<out>/tables/<task>.{md,csv,json}`` with ``<task>.manifest.json`` (commit, command, checkpoint
SHA-256s, protocol keys, where the predictions are); with ``--reference NAME`` each cell is compared
with that column by :func:`csfair.evaluation.stats.hierarchical_bootstrap` (fine-tuning seeds,
pretrained checkpoints and test items; ``*`` in Markdown, the interval in CSV/JSON) and
``<task>.forest.png`` shows every difference with its interval. A column name given more than once
(``--checkpoint ibm1=seed1.pt --checkpoint ibm1=seed2.pt``) is one column of several pretrained
checkpoints (pretraining seeds: the test's third level).

Usage:
    python scripts/zeroshot.py --checkpoint mbert=hf:bert-base-multilingual-cased --checkpoint xlmr=hf:xlm-roberta-base \\
        --checkpoint ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt --tasks pos --reference mbert
    python scripts/zeroshot.py --checkpoint ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt \\
        --checkpoint nocs=checkpoints/en-fr/none/checkpoint_last.pt --tasks pos,ner-wikiann,xnli \\
        --seeds 1,2,3 [--max-train 2000 --max-eval 1000] [--grid] [--freeze-encoder] [--crf] [--reference nocs]
        [--launcher local --jobs 2 | --launcher slurm --slurm-partition gpu --slurm-time 4:00:00 --gpus-per-job 1]
    python scripts/zeroshot.py --checkpoint ... --paper --tasks ner-wikiann,xnli   # MNLI/XNLI 1.0 and PAN-X where present
    python scripts/zeroshot.py --checkpoint ... --tasks-file my_tasks.toml --tasks pawsx

Tasks are declared in csfair/evaluation/tasks.toml (more with --tasks-file or $CSFAIR_TASKS_FILE).
``--launcher local|slurm`` runs the same grid as one submitit job per run (scripts/sweep.py), collected
into the same results.jsonl, skipping the same finished runs, with the same tables at the end.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/sweep.py when imported as a module
import sweep  # noqa: E402  (scripts/sweep.py: the launchers)
from csfair.evaluation import metrics as M  # noqa: E402
from csfair.baselines.embeddings import FASTTEXT_BUCKET  # noqa: E402
from csfair.evaluation.tasks import TASKS, add_tasks_file, paper_task, unk_rates, unk_word_rates, write_task_data  # noqa: E402
from csfair.evaluation.forest import forest_plot  # noqa: E402
from csfair.io import sha256_file  # noqa: E402
from csfair.evaluation.results import (  # noqa: E402
    add_significance,
    aggregate,
    append_items,
    append_result,
    failure_flags,
    item_scores,
    items_key,
    load_items,
    load_results,
    majority_predictions,
    protocol_key,
    to_markdown,
    write_tables,
)

DATA_FORMAT = 2  # bump when the written task data changes (2: unseen-label policy in the label dictionary)

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


SCRATCH_HIDDEN = 768  # scratch:LAYERS columns (BERT-base width)


class Model:
    """A table column: a pretrained checkpoint (NAME=PATH), a randomly initialised Transformer
    (NAME=scratch:LAYERS or NAME=scratch:LAYERS:HIDDEN; hidden 768 by default, FFN 4 x hidden, one
    attention head per 64 dimensions), a meta-embedding tagger (NAME=mme / NAME=hme) or a transformers
    model (NAME=hf:DIRECTORY or NAME=hf:HUB_ID, resolved offline)."""

    def __init__(self, spec):
        if "=" not in spec:
            raise SystemExit(f"--checkpoint expects NAME=PATH, NAME=scratch:LAYERS, NAME=mme, NAME=hme or "
                             f"NAME=hf:PATH_OR_ID; got {spec!r}")
        self.name, value = spec.split("=", 1)
        self.kind, self.path, self.layers, self.hidden, self.tagger, self.hf = "pretrained", None, None, None, None, None
        self.member = None  # k-th checkpoint of a column of several (number_members)
        if value.startswith("hf:"):
            from csfair_hf.finetune import resolve_model

            ref = value[len("hf:"):]
            try:
                resolve_model(ref)
            except ValueError as err:
                raise SystemExit(f"--checkpoint {spec!r}: {err}")
            self.kind, self.hf = "hf", os.path.abspath(ref) if os.path.isdir(ref) else ref
        elif value.startswith("scratch:"):
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


def number_members(models):
    """A column name given several times names one column of several pretrained checkpoints (pretraining
    seeds of one method): number them (``model.member`` 1, 2, ...; None for a column of one checkpoint)."""
    by_name = {}
    for m in models:
        by_name.setdefault(m.name, []).append(m)
    for name, ms in by_name.items():
        if len(ms) > 1:
            if any(m.kind not in ("pretrained", "hf") for m in ms):
                raise SystemExit(f"--checkpoint {name}=...: a column name repeats only for pretrained checkpoints "
                                 "(the pretraining seeds of one method)")
            paths = [m.path or m.hf for m in ms]
            if len(set(paths)) < len(paths):
                raise SystemExit(f"--checkpoint {name}=...: the same checkpoint given twice")
        for j, m in enumerate(ms, 1):
            m.member = j if len(ms) > 1 else None


def _member_dir(model):
    """Run directory prefix of one checkpoint of a several-checkpoint column ("" otherwise)."""
    return f"ckpt{model.member}-" if model.member else ""


def _unit(model, spec, seed):
    """A launcher's unit of work (scripts/sweep.py): one run of the grid."""
    u = dict(model=model.name, task=spec.name, seed=seed)
    if model.member:
        u["member"] = model.member
    return u


def _column_key(model):
    """The ``checkpoint`` field of a non-pretrained column's results (``scratch:L``, ``scratch:L:H``, ``tagger:mme``,
    ``hf:PATH_OR_ID``)."""
    if model.kind == "hf":
        return f"hf:{model.hf}"
    if model.kind == "scratch":
        return f"scratch:{model.layers}" + (f":{model.hidden}" if model.hidden != SCRATCH_HIDDEN else "")
    return f"tagger:{model.tagger}"


def _near(start, name, levels=3):
    """``name`` in ``start`` or one of its parents (a checkpoint copied with its vocabulary next to it)."""
    cur = os.path.abspath(start)
    for _ in range(levels):
        if os.path.exists(os.path.join(cur, name)):
            return os.path.join(cur, name)
        cur = os.path.dirname(cur)
    return None


def _vocab_of(model, args):
    """(spm, dict, arch args, max positions) of a pretrained checkpoint or of the demo's vocabulary.

    A checkpoint's vocabulary is ``--spm``/``--dict``, else the ``spm.model``/``dict.txt`` of the data
    directory it was trained on (its saved ``data`` path), else those next to the checkpoint or in a
    parent folder (a checkpoint copied elsewhere with its vocabulary). A dictionary whose SHA-256
    differs from the one the checkpoint records, and a sentencepiece model whose pieces are not
    the dictionary's, are refused (token ids would silently not match).

    Raises:
        SystemExit: a file not found or not the checkpoint's, naming the checkpoint, where it looked
            and the flags.
    """
    from user_dir.finetune import pretrained_arch_args

    want = None
    if model.kind == "pretrained":
        arch_args, task_cfg = pretrained_arch_args(model.path)
        data = task_cfg.get("data", "").split(os.pathsep)[0]
        if data and not os.path.isabs(data):
            data = os.path.join(ROOT, data)  # recipes train from the repository root
        langs = [lg for lg in (task_cfg.get("langs") or "").split(",") if lg]
        max_pos = task_cfg["max_positions"]
        want = (task_cfg.get("csfair_provenance") or {}).get("dict_sha256")
        near = os.path.dirname(model.path)
    else:
        data, langs, max_pos, near = os.path.join(ROOT, "data-bin", "en-fr"), [], 128, None
        arch_args = []  # taggers: set in prepare()
        if model.kind == "scratch":
            h = model.hidden
            arch_args = ["--arch", "cs_roberta_base", "--encoder-layers", str(model.layers), "--encoder-embed-dim",
                         str(h), "--encoder-ffn-embed-dim", str(4 * h), "--encoder-attention-heads", str(max(1, h // 64))]
    dict_names = ["dict.txt"] + [os.path.join(lg, "dict.txt") for lg in langs]
    spm = args.spm or next((p for p in ([os.path.join(data, "spm.model")] if data else []) if os.path.exists(p)),
                           None) or (near and _near(near, "spm.model"))
    dict_path = args.dict or next((os.path.join(data, n) for n in dict_names if data and
                                   os.path.exists(os.path.join(data, n))), None) or \
        (near and next(filter(None, (_near(near, n) for n in dict_names)), None))
    what = f"--checkpoint {model.name}" + (f" ({model.path})" if model.path else "")
    looked = f"{data or 'no data directory saved'}" + (f", then {near} and its parents" if near else "")
    sha = f" (the checkpoint records the dictionary's sha256 {want[:12]}...)" if want else ""
    for p, what_file, flag in ((spm, "sentencepiece model spm.model", "--spm"), (dict_path, "dictionary dict.txt", "--dict")):
        if not p or not os.path.exists(p):
            given = flag == "--spm" and args.spm or flag == "--dict" and args.dict
            where = f"{p} does not exist" if given else f"looked in {looked}"
            raise SystemExit(f"{what}: {what_file} not found ({where}); pass the checkpoint's vocabulary with "
                             f"--spm PATH/spm.model --dict PATH/dict.txt, or copy both next to the checkpoint{sha}")
    if want and sha256_file(dict_path) != want:
        raise SystemExit(f"{what}: {dict_path} is not the dictionary this checkpoint was trained with (sha256 "
                         f"{sha256_file(dict_path)[:12]}..., the checkpoint records {want[:12]}...); pass its own with "
                         f"--dict (and the matching --spm)")
    if model.kind == "pretrained":
        _check_spm_matches_dict(spm, dict_path, what)
    return spm, dict_path, arch_args, max_pos


def _check_spm_matches_dict(spm_path, dict_path, what):
    """The dictionary lists the sentencepiece model's pieces (``csfair-prep fairseq-dict``): refuse another model."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=spm_path)
    with open(dict_path, encoding="utf-8-sig") as fh:
        symbols = [line.rsplit(" ", 1)[0] for line in fh if line.strip()]
    symbols = [s for s in symbols if not s.startswith("madeupword") and not s.startswith("<")]
    foreign = sum(sp.piece_to_id(s) == sp.unk_id() for s in symbols)
    if symbols and foreign > 0.01 * len(symbols):
        raise SystemExit(f"{what}: the sentencepiece model {spm_path} does not belong to the dictionary {dict_path} "
                         f"({foreign} of its {len(symbols)} symbols are not pieces of the model); pass the matching "
                         f"--spm")


FINETUNE_POSITIONS = 128  # the paper's fine-tuning length (Visser et al., 2025, Table 2)


def prepare(spec, model, args, out):
    """Data of a task for a model's vocabulary (cached), the fairseq-train model flags, counts."""
    from user_dir.finetune import binarize_task

    spm, dict_path, arch_args, max_pos = _vocab_of(model, args)
    # the data fits the encoder: a checkpoint with fewer positions than the paper's 128 gets shorter inputs
    length = min(FINETUNE_POSITIONS, max_pos)
    sizes = (f"-train{args.max_train}" if args.max_train else "") + (f"-eval{args.max_eval}" if args.max_eval else "") \
        + f"-v{DATA_FORMAT}-{args.unseen_labels}-{spec.digest[:8]}" \
        + (f"-len{length}" if length != FINETUNE_POSITIONS else "")  # the task's declaration: its files and readers
    if model.kind == "tagger":
        root = os.path.join(out, "data", "words", spec.name + sizes)
    else:
        root = os.path.join(out, "data", sha256_file(dict_path)[:10], spec.name + sizes)
    done = os.path.join(root, "bin", ".done")
    if not os.path.exists(done):
        log(f"{spec.name}: writing {'word-level ' if model.kind == 'tagger' else ''}data to {root}")
        write_task_data(spec, spm, root, max_positions=length, max_train=args.max_train, max_eval=args.max_eval,
                        seed=1, workers=2, word_level=model.kind == "tagger")
        binarize_task(os.path.join(root, "raw"), os.path.join(root, "bin"),
                      None if model.kind == "tagger" else dict_path, spec.pair, spec.source_lang, spm,
                      unseen_labels=args.unseen_labels)
        open(done, "w").close()
    stats = json.load(open(os.path.join(root, "raw", "stats.json")))
    unseen_path = os.path.join(root, "bin", "unseen_labels.json")
    unseen = json.load(open(unseen_path)) if os.path.exists(unseen_path) else {}
    for key, labs in unseen.items():
        log(f"{spec.name} {key}: labels never seen in training, scored as never predicted: {labs}")
    if model.kind == "tagger":
        unk = unk_words = {}  # the word dictionary is built from every evaluated word
    else:
        from fairseq.data import Dictionary

        symbols = Dictionary.load(dict_path).symbols
        unk = unk_rates(os.path.join(root, "raw"), symbols)
        unk_words = unk_word_rates(os.path.join(root, "raw"), symbols)
    stats = {k: dict(v, unk_rate=unk.get(k), unk_word_rate=unk_words.get(k), unseen_labels=unseen.get(k, {}))
             for k, v in stats.items()}
    if model.kind == "tagger":
        from csfair.baselines.embeddings import build_meta_tables
        from fairseq.data import Dictionary

        langs = list(spec.embedding_langs)  # the tasks file's embedding_langs
        if not langs:
            raise SystemExit(f"task {spec.name} declares no embedding_langs for the meta-embedding taggers")
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
        # one checkpoint per epoch (model weights only) for the best-epoch selection on dev; fairseq's own
        # --best-checkpoint-metric would select on what the criterion logs (word accuracy for token_tagging,
        # accuracy for sentence_prediction), not on span F1 or macro-F1 as the tables do
        "--seed", str(seed), "--save-dir", run_dir, "--save-interval", "1", "--no-last-checkpoints",
        "--no-save-optimizer-state", "--disable-validation",
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
    for name in os.listdir(run_dir):  # fairseq-train would resume from a stale checkpoint_last.pt of another protocol
        if name.startswith("checkpoint") and name.endswith(".pt"):
            os.remove(os.path.join(run_dir, name))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    with open(os.path.join(run_dir, "train.log"), "w") as logf:
        p = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"fine-tuning failed: see {os.path.join(run_dir, 'train.log')}")
    ckpts = [os.path.join(run_dir, f"checkpoint{ep}.pt") for ep in range(1, epochs + 1)]
    missing = [c for c in ckpts if not os.path.exists(c)]
    if missing:
        raise RuntimeError(f"fine-tuning wrote no {missing[0]}: see {os.path.join(run_dir, 'train.log')}")
    return ckpts, total


def select_best_epoch(spec, ckpts, data_root):
    """Score the training language's dev set with every epoch's checkpoint; keep the best.

    The best is the highest dev score of the task's metric, the earliest epoch on ties (as
    Hugging Face's ``load_best_model_at_end``, which replaces the best only on improvement). The
    others are deleted; the best is renamed ``checkpoint_best.pt``.

    Returns:
        (best checkpoint path, best epoch (1-based), dev score per epoch, the best epoch's dev pairs).
    """
    from user_dir.finetune import predict

    dev, best = [], None
    for ep, ckpt in enumerate(ckpts, 1):
        pairs = predict(ckpt, os.path.join(data_root, "bin", spec.source_lang), "valid", spec.kind)
        value = score(spec, pairs)[spec.metric]
        dev.append(round(float(value), 6))
        if best is None or value > best[0]:
            best = (value, ep, pairs)
    best_path = os.path.join(os.path.dirname(ckpts[0]), "checkpoint_best.pt")
    for ep, ckpt in enumerate(ckpts, 1):
        if ep == best[1]:
            os.replace(ckpt, best_path)
        else:
            os.remove(ckpt)
    return best_path, best[1], dev, best[2]


def count_parameters(checkpoint):
    """Parameters of a fine-tuned checkpoint's model (frozen tables included; buffers excluded; tied weights
    once: the LM head's ``encoder.lm_head.weight`` is the embedding matrix, saved under both names with one
    storage, as ``model.parameters()`` and transformers count it)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    skip = ("word_chars", "version", "_extra_state", "_float_tensor")
    seen, total = set(), 0
    for k, v in state.items():
        if torch.is_tensor(v) and not k.endswith(skip):
            view = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
            if view not in seen:
                seen.add(view)
                total += v.numel()
    return int(total)


def _backend(model):
    """The functions that fine-tune and evaluate a column: csfair_hf.zeroshot's (transformers) for an hf:
    column, this file's (fairseq) otherwise; the same signatures, so every column is recorded alike."""
    if model.kind == "hf":
        from csfair_hf import zeroshot as hf_backend

        return hf_backend
    return types.SimpleNamespace(prepare=prepare, finetune_and_select=finetune_and_select,
                                 count_parameters=count_parameters, evaluate=evaluate, discard=os.remove)


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
    """``{(lang, "test"): (metrics, n)}``; ``keep`` (a dict) receives the (gold, pred) pairs."""
    from user_dir.finetune import predict

    out = {}
    for lang, split in [(lg, "test") for lg in langs]:
        pairs = predict(ft_ckpt, os.path.join(data_root, "bin", lang), split, spec.kind)
        out[(lang, split)] = (score(spec, pairs), len(pairs))
        if keep is not None:
            keep[(lang, split)] = pairs
    return out


def code_version():
    """The git commit of the code (``+<digest>`` of uncommitted changes to the code's tracked files:
    csfair/, csfair_hf/, user_dir/, scripts/, setup.py, requirements/), else csfair.__version__. Documentation
    and run outputs (README, docs/, runs/) are left out of the digest: a snapshot of a table committed next to
    the README must not change the protocol of the runner's next run."""
    import hashlib

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "csfair", "csfair_hf", "user_dir", "scripts", "setup.py",
                               "requirements"],
                              cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        import csfair

        return f"csfair-{csfair.__version__}"
    return head + (f"+{hashlib.sha256(diff).hexdigest()[:12]}" if diff else "")


_SHA = {}


def column_digest(model, args):
    """What identifies a column's starting point: the pretrained checkpoint's SHA-256 (its bytes, not
    its name), a transformers model's digest of its weights, config and tokenizer files, or the
    scratch/tagger column key (with the taggers' fastText settings)."""
    if model.kind == "hf":
        from csfair_hf.zeroshot import column_digest as hf_digest

        return hf_digest(model.hf)
    if model.kind == "pretrained":
        st = os.stat(model.path)
        key = (model.path, st.st_size, st.st_mtime_ns)
        if key not in _SHA:
            _SHA[key] = sha256_file(model.path)
        return _SHA[key]
    if model.kind == "tagger":
        return f"{_column_key(model)}:fasttext-lines={args.fasttext_lines}:bucket={args.fasttext_bucket}"
    return _column_key(model)


def protocol_of(spec, model, args, arch_args, max_pos, stats, lr, epochs, code):
    """Everything that defines a run but its seed (csfair.evaluation.results.protocol_key hashes it)."""
    return dict(
        task=spec.name, kind=model.kind, start=column_digest(model, args),
        arch=[a for a in arch_args if not os.path.isabs(a)], max_positions=max_pos,
        lr=lr, epochs=epochs, batch_size=args.batch_size, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, optimizer="adam(0.9,0.999,1e-8)", scheduler="polynomial_decay(power=1,end=0)",
        freeze_encoder=bool(args.freeze_encoder and model.kind in ("pretrained", "hf")), crf=bool(args.crf or model.kind == "tagger"),
        class_weighting=args.class_weighting, focal_gamma=args.focal_gamma, grid=bool(args.grid),
        max_train=args.max_train, max_eval=args.max_eval, data_seed=1, data_format=DATA_FORMAT,
        data={k: v["examples"] for k, v in sorted(stats.items())}, unseen_labels=args.unseen_labels,
        selection=f"best epoch on {spec.source_lang} dev {spec.metric}", code=code, task_declaration=spec.digest,
    )


def train_labels(spec, data_root):
    """The training language's training labels (per sentence for tagging)."""
    raw = os.path.join(data_root, "raw", f"{spec.source_lang}.train")
    if spec.kind == "tagging":
        return [json.loads(x)["labels"] for x in open(raw + ".jsonl", encoding="utf-8")]
    return [x.strip() for x in open(raw + ".label", encoding="utf-8")]


def run_record(spec, pairs, stats, lang, split, proto, seed, items_path, run_flags=(), majority=None):
    """Metrics, flags, unk rates and per-item scores of one evaluation (the record's fields).

    ``flags`` exclude the run from the tables and come from dev evidence only: ``run_flags`` (the
    training language's dev set, checked after fine-tuning, before any test set is read) and, for a
    dev or grid record, this evaluation's own checks. A test evaluation's checks (predictions
    collapsed to one label, e.g. on a script the vocabulary lacks) go to ``eval_flags``: a note in
    the tables, the value stays in the mean (csfair issue 19, section 2).
    """
    gold = [g for g, _ in pairs]
    pred = [p for _, p in pairs]
    m = score(spec, pairs)
    checks = failure_flags(m[spec.metric] if majority is not None else None, majority, gold, pred)
    dev = split in ("valid", "grid")
    flags = sorted(set(run_flags) | set(checks if dev else ()))
    st = stats.get(f"{lang}.{split}", {})
    rec = dict(lang=lang, split=split, metrics=m, n=len(pairs), flags=flags, eval_flags=[] if dev else sorted(checks),
               unk_rate=st.get("unk_rate"), unk_word_rate=st.get("unk_word_rate"),
               unseen_labels=st.get("unseen_labels", {}))
    if majority is not None:
        rec["majority_baseline"] = majority
    its = item_scores(spec.metric_fn, gold, pred)
    if its is not None and split != "grid":
        key = items_key(proto, seed, lang, split)
        append_items(items_path, key, its)
        rec["items"] = key
    return rec


def finetune_and_select(spec, model, arch_args, max_pos, stats, data_root, run_dir, seed, lr, epochs, args):
    """Fine-tune, keep the best epoch on dev; (checkpoint, updates, best epoch, dev per epoch, dev pairs, run flags, majority)."""
    n_train = stats[f"{spec.source_lang}.train"]["examples"]
    ckpts, updates = finetune(spec, model, arch_args, max_pos, n_train, data_root, run_dir, seed, lr, epochs, args)
    best, best_epoch, dev, pairs = select_best_epoch(spec, ckpts, data_root)
    gold = [g for g, _ in pairs]
    majority = score(spec, list(zip(gold, majority_predictions(train_labels(spec, data_root), gold))))[spec.metric]
    flags = failure_flags(dev[best_epoch - 1], majority, gold, [p for _, p in pairs])
    return best, updates, best_epoch, dev, pairs, flags, majority


def main(argv=None, plan=None):
    """The serial runner; with ``--launcher local|slurm`` it hands the grid to scripts/sweep.py.

    ``plan`` (a list): the launcher's planning pass: the data of every column and task is written, and the
    runs left to do (``{"model", "task", "seed"}``; seed ``"grid"``: a column's lr x epochs grid) are appended
    to ``plan`` instead of being run; no results, no tables.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--checkpoint", action="append", required=True,
                   help="a table column: NAME=PATH (pretrained checkpoint), NAME=hf:PATH_OR_ID (a transformers model "
                        "directory or a Hub id in the local cache), NAME=scratch:LAYERS[:HIDDEN] (random init, "
                        "hidden 768 unless given), NAME=mme or NAME=hme (meta-embedding taggers)")
    p.add_argument("--tasks", default="pos,ner-wikiann,xnli",
                   help=f"comma-separated, declared in csfair/evaluation/tasks.toml: {', '.join(TASKS)}")
    p.add_argument("--tasks-file", action="append", default=[],
                   help="a TOML file of more tasks (the keys of csfair/evaluation/tasks.toml); repeatable; "
                        "also $CSFAIR_TASKS_FILE")
    p.add_argument("--paper", action="store_true",
                   help="the paper's protocol where its data is present: each task replaced by the task declaring "
                        "it as fallback (xnli -> xnli-mnli: MNLI train, XNLI 1.0 test; ner-wikiann -> panx), a "
                        "task whose data is missing by its fallback (named so in the tables); seeds 1..paper_seeds "
                        "per task (5 XNLI, 10 NER) unless --seeds")
    p.add_argument("--langs", default=None, help="evaluate only these target languages")
    p.add_argument("--seeds", default=None,
                   help="fine-tuning seeds (default 1,2,3; with --paper each task's paper_seeds: 5 for XNLI, 10 for NER)")
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
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "zeroshot"),
                   help="results, per-item scores, runs and tables (default: runs/zeroshot, git-ignored)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each run's best-epoch checkpoint_best.pt (hf: columns: the transformers directory hf-best/)")
    p.add_argument("--reference", default=None,
                   help="column to compare every other column with (hierarchical bootstrap over fine-tuning seeds, "
                        "pretrained checkpoints and test items: csfair.evaluation.stats.hierarchical_bootstrap): '*' "
                        "in the Markdown table, interval in CSV/JSON and a forest plot tables/<task>.forest.png")
    p.add_argument("--n-boot", type=int, default=1000, help="item resamples of the significance test (default: 1000)")
    p.add_argument("--boot-seed", type=int, default=12345, help="seed of the significance test's resampling")
    p.add_argument("--unseen-labels", default="never-predicted", choices=["error", "never-predicted"],
                   help="test labels the training language lacks: stop with an error, or score them as a class "
                        "the model never predicts (recorded per evaluation as unseen_labels)")
    p.add_argument("--fasttext-lines", type=int, default=None,
                   help="monolingual lines per language for the taggers' fastText vectors (default: all)")
    p.add_argument("--fasttext-bucket", type=int, default=FASTTEXT_BUCKET,
                   help="fastText's hashed character n-gram rows (its default 2,000,000 = 800 MB per model at dim 100)")
    sweep.add_launcher_args(p)
    args = p.parse_args(argv)
    if args.launcher != "serial":
        return sweep.launch_zeroshot(sys.argv[1:] if argv is None else list(argv), args, main)
    unit = json.loads(args.sweep_unit) if args.sweep_unit else None  # a launcher's job: one run of the grid

    models = [Model(x) for x in args.checkpoint]
    number_members(models)
    for path in args.tasks_file:
        log(f"tasks from {path}: {', '.join(add_tasks_file(path))}")
    tasks = []
    for name in args.tasks.split(","):
        if name not in TASKS:
            raise SystemExit(f"unknown task {name!r} (declared: {', '.join(TASKS)})")
        spec, note = paper_task(name) if args.paper else (TASKS[name], None)
        if note:
            log(note)
        missing = spec.missing_message()
        if missing:
            raise SystemExit(missing)
        if spec.name not in [t.name for t in tasks]:
            tasks.append(spec)
    task_seeds = {spec.name: [int(s) for s in args.seeds.split(",")] if args.seeds else
                  list(range(1, spec.paper_seeds + 1)) if args.paper else [1, 2, 3] for spec in tasks}
    results_path = os.path.join(args.out, "results.jsonl")
    items_path = os.path.join(args.out, "items.jsonl")
    new_results = results_path  # finished runs are looked up in results_path; a launcher's job writes to its shard
    if args.sweep_shard:
        new_results, items_path = (os.path.join(args.sweep_shard, f) for f in ("results.jsonl", "items.jsonl"))
    suffix = ("/frozen" if args.freeze_encoder else "") + ("/crf" if args.crf else "") + \
             (f"/{args.class_weighting}" if args.class_weighting != "none" else "") + \
             (f"/focal{args.focal_gamma:g}" if args.focal_gamma else "")
    names = {m.name + x for m in models for x in ("", suffix, "-ensemble")}
    if args.reference and args.reference not in names:
        raise SystemExit(f"--reference {args.reference!r} is none of the columns ({', '.join(m.name for m in models)})")
    code = code_version()
    # (model label, protocol) -> table column, per task: this command's runs (what the tables show); the
    # checkpoints of a repeated column name share a column (pretraining seeds)
    current = {spec.name: {} for spec in tasks}
    columns_of = {spec.name: [] for spec in tasks}  # for the manifests: each column's checkpoint, digest, protocol
    t_start = time.time()
    for model in models:
        if unit and (model.name != unit["model"] or unit.get("member") != model.member):
            continue
        label = model.name + (suffix if model.kind in ("pretrained", "hf") else "")
        be = _backend(model)
        for spec in tasks:
            if unit and spec.name != unit["task"]:
                continue
            seeds = task_seeds[spec.name]
            if model.kind == "tagger" and spec.kind != "tagging":
                log(f"{label}: meta-embedding taggers do tagging only; {spec.name} skipped")
                continue
            langs = [lg for lg in spec.test_langs if not args.langs or lg in args.langs.split(",")]
            data_root, arch_args, max_pos, stats = be.prepare(spec, model, args, args.out)
            log(f"{spec.name} examples: " + ", ".join(f"{k} {v['examples']}" for k, v in stats.items()))
            for k, v in stats.items():
                if v.get("unk_word_rate") is not None and v["unk_word_rate"] > 0.5:
                    log(f"{spec.name} {k}: {100 * v['unk_word_rate']:.0f}% of the words are entirely <unk> for {label} "
                        f"({100 * (v.get('unk_rate') or 0):.0f}% of the pieces)")
            base_lr = args.lr if model.kind in ("pretrained", "hf") else args.scratch_lr
            configs = [(base_lr, args.epochs or spec.epochs)]
            if args.grid:
                configs = [(lr, ep) for lr in GRID_LR for ep in GRID_EPOCHS]
            base = dict(model=label, task=spec.name, max_train=args.max_train, max_eval=args.max_eval,
                        checkpoint=model.path or _column_key(model), code=code)
            if len(configs) > 1:
                best, grid_left = None, False
                for lr, ep in configs:
                    proto = protocol_key(protocol_of(spec, model, args, arch_args, max_pos, stats, lr, ep, code))
                    got = [r for r in load_results(results_path) if r.get("protocol") == proto and r["split"] == "grid"
                           and r["seed"] == seeds[0]]
                    if not got and plan is not None:
                        grid_left = True
                        break
                    if not got:
                        run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name,
                                               _member_dir(model) + f"grid-lr{lr:g}-ep{ep}")
                        t0 = time.time()
                        ft, _, best_ep, dev, pairs, flags, maj = be.finetune_and_select(
                            spec, model, arch_args, max_pos, stats, data_root, run_dir, seeds[0], lr, ep, args)
                        rec = dict(base, **run_record(spec, pairs, stats, spec.source_lang, "grid", proto, seeds[0],
                                                      items_path, flags, maj),
                                   protocol=proto, seed=seeds[0], lr=lr, epochs=ep, best_epoch=best_ep, dev_by_epoch=dev,
                                   seconds=round(time.time() - t0, 1))
                        append_result(new_results, rec)
                        got = [rec]
                        if not args.keep_checkpoints:
                            be.discard(ft)
                    value = got[-1]["metrics"][spec.metric]
                    failed = bool(got[-1].get("flags"))
                    log(f"{spec.name} grid lr={lr:g} epochs={ep}: dev {spec.metric} {value:.4f}"
                        + (f" (failed: {', '.join(got[-1]['flags'])})" if failed else ""))
                    if not failed and (best is None or value > best[0]):
                        best = (value, lr, ep)
                if grid_left:  # the grid is one job; the seeds wait for its selection
                    plan.append(_unit(model, spec, "grid"))
                    continue
                if best is None:
                    log(f"{spec.name}: every grid run failed; the first configuration is kept and its runs are flagged")
                    best = (None,) + configs[0]
                configs = [best[1:]]
                log(f"{spec.name}: selected lr={best[1]:g} epochs={best[2]} on {spec.source_lang} dev")
                if unit and unit["seed"] == "grid":
                    continue
            lr, epochs = configs[0]
            proto = protocol_key(protocol_of(spec, model, args, arch_args, max_pos, stats, lr, epochs, code))
            current[spec.name][(label, proto)] = label
            columns_of[spec.name].append(dict(
                column=label, checkpoint_number=model.member, kind=model.kind, protocol=proto,
                checkpoint=model.path or _column_key(model),
                sha256=column_digest(model, args) if model.kind in ("pretrained", "hf") else None,
                run_prefix=os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, _member_dir(model))))
            predictions = []  # per seed, for the ensemble of the taggers
            params = 0
            for seed in seeds:
                if unit and unit["seed"] != seed:
                    continue
                have = [r for r in load_results(results_path) if r.get("protocol") == proto and r["seed"] == seed
                        and r["split"] == "test" and r["model"] == label]
                run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, _member_dir(model) + f"seed{seed}")
                pred_file = os.path.join(run_dir, f"predictions-{proto}.json")
                if {r["lang"] for r in have} >= set(langs):
                    log(f"{label} {spec.name} seed {seed}: done before (protocol {proto}), skipped")
                    if os.path.exists(pred_file):
                        saved = json.load(open(pred_file))
                        predictions.append({tuple(k.split("|")): v for k, v in saved.items()})
                    params = have[-1].get("params", 0)
                    continue
                if plan is not None:
                    plan.append(_unit(model, spec, seed))
                    continue
                t0 = time.time()
                ft, updates, best_ep, dev, dev_pairs, run_flags, maj = be.finetune_and_select(
                    spec, model, arch_args, max_pos, stats, data_root, run_dir, seed, lr, epochs, args)
                t_train = time.time() - t0
                params = be.count_parameters(ft)
                kept = {}
                res = be.evaluate(spec, ft, data_root, langs, keep=kept)
                kept = {(spec.source_lang, "valid"): dev_pairs, **kept}
                predictions.append(kept)
                with open(pred_file, "w") as fh:  # for ensembles and error analysis
                    json.dump({f"{lg}|{sp}": v for (lg, sp), v in kept.items()}, fh)
                run_info = dict(base, protocol=proto, seed=seed, lr=lr, epochs=epochs, best_epoch=best_ep,
                                dev_by_epoch=dev, updates=updates, params=params, train_seconds=round(t_train, 1),
                                seconds=round(time.time() - t0, 1))
                recs = [dict(run_info, **run_record(spec, dev_pairs, stats, spec.source_lang, "valid", proto, seed,
                                                    items_path, run_flags, maj))]
                recs += [dict(run_info, **run_record(spec, kept[key], stats, key[0], key[1], proto, seed, items_path,
                                                     run_flags)) for key in res]
                for rec in recs:
                    append_result(new_results, rec)
                log(f"{label} {spec.name} seed {seed}: best epoch {best_ep} (dev {spec.metric} by epoch {dev}); "
                    + ", ".join(f"{r['lang']}/{r['split']} {r['metrics'][spec.metric]:.4f}"
                                + (f" [{','.join(r['flags'])}]" if r["flags"] else "") for r in recs)
                    + f" ({time.time() - t0:.0f} s, {params / 1e6:.2f}M parameters)")
                if not args.keep_checkpoints:
                    be.discard(ft)
            if model.kind == "tagger" and len(predictions) > 1 and plan is None:
                # HME-Ensemble (Winata et al., 2021): majority vote of the seeds, per word
                for key in predictions[0]:
                    voted = majority_vote([pr[key] for pr in predictions])
                    rec = run_record(spec, voted, stats, key[0], key[1], proto, 0, items_path)
                    append_result(new_results, dict(base, **rec, model=f"{label}-ensemble", protocol=proto, seed=0,
                                                     lr=lr, epochs=epochs, params=params * len(predictions)))
                log(f"{label}-ensemble {spec.name}: majority vote of {len(predictions)} seeds recorded")
            if model.kind == "tagger" and len(seeds) > 1:
                current[spec.name][(f"{label}-ensemble", proto)] = f"{label}-ensemble"

    if plan is not None or unit:
        if args.sweep_shard:  # the launcher merges a shard only once its job has written everything
            os.makedirs(args.sweep_shard, exist_ok=True)
            open(os.path.join(args.sweep_shard, "DONE"), "w").close()
        return
    records = load_results(results_path)
    items = load_items(items_path) if args.reference else {}
    params_of = {}
    for r in records:  # counted by this code (count_parameters: tied weights once): older records may count twice
        if "params" in r and (r.get("model"), r.get("protocol")) in current.get(r.get("task"), {}):
            params_of[r["model"]] = r["params"]
    os.makedirs(os.path.join(args.out, "tables"), exist_ok=True)
    for spec in tasks:
        # the columns of this command's runs only (its protocols and seeds; 0: the taggers' ensembles): older
        # results (other code, other checkpoint bytes, other hyperparameters) stay in results.jsonl, never in a cell
        seeds_ok = set(task_seeds[spec.name]) | {0}
        written = {}
        for split, langs in (("test", None), ("valid", [spec.source_lang])):
            table = aggregate(records, spec.name, spec.metric, split=split, langs=langs, seeds=seeds_ok,
                              columns=current[spec.name])
            if not table or not next(iter(table.values())):
                continue
            reference = None
            if args.reference and split == "test":
                cols = next(iter(table.values()))
                reference = args.reference if args.reference in cols else args.reference + suffix
                if reference not in cols:
                    raise SystemExit(f"--reference {args.reference!r} is not a column of {spec.name} ({', '.join(cols)})")
                add_significance(table, items, reference, n_boot=args.n_boot, seed=args.boot_seed, metric=spec.metric)
            headers = {m: (f"{m} ({params_of[m.split('@')[0]] / 1e6:.1f}M)" if m.split("@")[0] in params_of else m)
                       for m in next(iter(table.values()))}
            table = {lg: {headers[m]: v for m, v in row.items()} for lg, row in table.items()}
            title = table_title(spec, split, task_seeds[spec.name])
            md = to_markdown(table, title, reference=headers.get(reference) if reference else None, n_boot=args.n_boot,
                             train_lang=spec.source_lang)
            print("\n" + md)
            if split == "test":
                base = os.path.join(args.out, "tables", spec.name)
                write_tables(base, table, md)
                written["tables"] = [base + ext for ext in (".md", ".csv", ".json")]
                if reference:
                    try:
                        forest_plot(table, headers[reference], base + ".forest.png", title.split("; mean")[0],
                                    spec.metric)
                        written["forest_plot"] = base + ".forest.png"
                    except ValueError as e:
                        log(f"{spec.name}: no forest plot ({e})")
                else:
                    log(f"{spec.name}: no forest plot without --reference (it shows differences to the reference)")
                written["title"], written["reference"] = title, headers.get(reference) if reference else None
        if written:
            path = write_manifest(spec, args, argv, columns_of[spec.name], current[spec.name], seeds_ok, records,
                                  items_path, written, code, time.time() - t_start)
            log(f"{spec.name}: tables, {'forest plot, ' if 'forest_plot' in written else ''}manifest {path}")
    log(f"wall time {time.time() - t_start:.0f} s; results in {results_path}")

def table_title(spec, split, seeds):
    """A table's title: the task, the metric exactly (span F1: seqeval's default, conlleval-compatible mode,
    not strict IOB2), what the rows were scored on, and what a cell holds."""
    if spec.metric_fn == "span_f1":
        what = {"macro_f1": "macro-averaged span F1", "micro_f1": "micro-averaged span F1",
                "precision": "span precision (micro)", "recall": "span recall (micro)"}.get(spec.metric, spec.metric)
        metric = f"{what} (seqeval default mode, conlleval-compatible spans; not strict IOB2)"
    elif spec.metric_fn == "token_accuracy":
        metric = "word-level accuracy (each word scored at its first piece)"
    else:
        metric = {"accuracy": "accuracy", "macro_f1": "macro-F1 over the labels"}.get(spec.metric, spec.metric)
    on = "test sets" if split == "test" else f"{spec.source_lang} dev set (model selection)"
    return (f"{spec.title}: {metric} on the {on}; mean ± std over the kept fine-tuning seeds of "
            f"{','.join(map(str, seeds))} (n = runs in the mean, items = evaluated items per run); runs excluded on "
            f"{spec.source_lang} dev only; best epoch on {spec.source_lang} dev; parameters in brackets")


def write_manifest(spec, args, argv, columns, current, seeds, records, items_path, written, code, seconds):
    """``tables/<task>.manifest.json`` next to the tables: what made them and where their evidence is.

    The commit (``code_version``: with a digest of uncommitted changes), the command (and the recipe's,
    ``$CSFAIR_RECIPE_COMMAND``), every column's checkpoint with its SHA-256 (transformers models: the digest of
    their weights, config and tokenizer files) and protocol keys, the seeds, the significance test and its
    settings, and the files a reader needs to recompute the table or a comparison: results, per-item scores,
    and each run's saved predictions (paths relative to ``--out``).
    """
    import platform
    import shlex
    from datetime import datetime, timezone

    import numpy
    import scipy

    import csfair
    from csfair.evaluation.stats import HIERARCHICAL_TEST
    from csfair.io import atomic_write

    out = os.path.abspath(args.out)
    rel = lambda p: os.path.relpath(os.path.abspath(p), out)  # noqa: E731
    runs = []
    for r in records:
        if (r.get("task") == spec.name and r.get("split") == "test" and (r["model"], r.get("protocol")) in current
                and r["seed"] in seeds):
            key = (r["model"], r["protocol"], r["seed"])
            if key not in [(x["column"], x["protocol"], x["seed"]) for x in runs]:
                run = next((c for c in columns if c["protocol"] == r["protocol"]), {})
                pred = os.path.join(run.get("run_prefix", "") + f"seed{r['seed']}", f"predictions-{r['protocol']}.json")
                runs.append(dict(column=r["model"], protocol=r["protocol"], seed=r["seed"], flags=r.get("flags", []),
                                 predictions=rel(pred) if run and os.path.exists(pred) else None))
    manifest = dict(
        task=spec.name, title=written.get("title"), metric=spec.metric, metric_fn=spec.metric_fn,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), commit=code,
        command=shlex.join(["python", "scripts/zeroshot.py", *(sys.argv[1:] if argv is None else argv)]),
        recipe_command=os.environ.get("CSFAIR_RECIPE_COMMAND"), out=out,
        data=dict(csfair_data=os.path.abspath(os.environ.get("CSFAIR_DATA", os.path.join(ROOT, "..", "shared", "data"))),
                  task_declaration=spec.digest, task_origin=spec.origin),
        columns=[{k: v for k, v in c.items() if k != "run_prefix"} for c in columns],
        seeds=sorted(s for s in seeds if s), reference=written.get("reference"),
        significance=dict(test=HIERARCHICAL_TEST, function="csfair.evaluation.stats.hierarchical_bootstrap",
                          n_boot=args.n_boot, seed=args.boot_seed, alpha=0.05) if written.get("reference") else None,
        files=dict(tables=[rel(p) for p in written["tables"]],
                   forest_plot=rel(written["forest_plot"]) if "forest_plot" in written else None,
                   results=rel(os.path.join(args.out, "results.jsonl")), items=rel(items_path)),
        runs=runs, wall_seconds=round(seconds, 1),
        versions=dict(python=platform.python_version(), numpy=numpy.__version__, scipy=scipy.__version__,
                      csfair=csfair.__version__),
    )
    path = os.path.join(args.out, "tables", f"{spec.name}.manifest.json")
    with atomic_write(path) as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    return path


def cli(argv=None):
    """``main`` for a person at a terminal: a user error (bad or missing input data, a tasks file that cannot be
    used) is one line naming the file (and line) on stderr, exit status 2; a bug keeps its traceback."""
    from csfair.evaluation.tasks import MissingDataError, TaskError
    from csfair.io import InputFormatError

    try:
        return main(argv)
    except (InputFormatError, TaskError, MissingDataError) as e:
        print(f"[zeroshot] error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    cli()
