"""The zero-shot runner's fairseq backend (:class:`csfair.evaluation.zeroshot.backend.ZeroShotBackend`):
pretrained csfair/fairseq checkpoints (``--checkpoint NAME=PATH``), randomly initialised Transformers
(``NAME=scratch:LAYERS[:HIDDEN]``) and the meta-embedding taggers (``NAME=mme``/``NAME=hme``).

* ``prepare``: the task's raw files in the checkpoint's sentencepiece vocabulary
  (:func:`csfair.evaluation.tasks.write_task_data`), binarised with its dictionary
  (:func:`user_dir.finetune.binarize_task`), cached under ``<out>/data/<dict sha>/<task><sizes>``; the
  taggers' word-level data and fastText tables;
* ``finetune``: ``fairseq-train`` (Visser et al., 2025, Table 2: max length 128, batch 32, lr 5e-5, weight
  decay 0.01, warmup ratio 0.25, linear decay) with one checkpoint per epoch, the training language's
  dev set scored with every epoch's checkpoint and the best one kept (``checkpoint_best.pt``);
* ``predict`` (:func:`user_dir.finetune.predict`), ``count_parameters``, ``column_digest`` (the
  checkpoint's SHA-256), ``discard``.

Not a registering module: it is glue that the runner's caller (scripts/zeroshot.py) hands to the runner,
next to :mod:`user_dir.finetune`, which it uses.
"""
import json
import math
import os
import subprocess
import sys

from csfair.baselines.embeddings import FASTTEXT_BUCKET
from csfair.evaluation.tasks import unk_rates, unk_word_rates, write_task_data
from csfair.evaluation.zeroshot.backend import Finetuned, Prepared
from csfair.evaluation.zeroshot.columns import column_key
from csfair.evaluation.zeroshot.protocol import DATA_FORMAT, FINETUNE_POSITIONS
from csfair.io import sha256_file
from csfair.paths import find_upwards

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[zeroshot] {msg}", flush=True)


def _bucket(args):
    """--fasttext-bucket, fastText's default when not given."""
    return FASTTEXT_BUCKET if args.fasttext_bucket is None else args.fasttext_bucket


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
    from .finetune import pretrained_arch_args

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
                           None) or (near and find_upwards(near, "spm.model", 3))
    dict_path = args.dict or next((os.path.join(data, n) for n in dict_names if data and
                                   os.path.exists(os.path.join(data, n))), None) or \
        (near and next(filter(None, (find_upwards(near, n, 3) for n in dict_names)), None))
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


def prepare(spec, model, args, out):
    """Data of a task for a model's vocabulary (cached), the fairseq-train model flags, counts."""
    from .finetune import binarize_task

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
                                  + (f"-b{_bucket(args)}" if _bucket(args) != FASTTEXT_BUCKET else ""))
            build_meta_tables(words.symbols, words.nspecial, langs, meta, ft_dir, spm, max_lines=args.fasttext_lines,
                              bucket=_bucket(args))
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


def select_best_epoch(spec, ckpts, data_root, dev_score):
    """Score the training language's dev set with every epoch's checkpoint (``dev_score`` of its pairs); keep the best.

    The best is the highest dev score of the task's metric, the earliest epoch on ties (as
    Hugging Face's ``load_best_model_at_end``, which replaces the best only on improvement). The
    others are deleted; the best is renamed ``checkpoint_best.pt``.

    Returns:
        (best checkpoint path, best epoch (1-based), dev score per epoch, the best epoch's dev pairs).
    """
    from .finetune import predict

    dev, best = [], None
    for ep, ckpt in enumerate(ckpts, 1):
        pairs = predict(ckpt, os.path.join(data_root, "bin", spec.source_lang), "valid", spec.kind)
        value = dev_score(pairs)
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

    from .checkpoint_loading import read_checkpoint

    state = read_checkpoint(str(checkpoint))["model"]
    skip = ("word_chars", "version", "_extra_state", "_float_tensor")
    seen, total = set(), 0
    for k, v in state.items():
        if torch.is_tensor(v) and not k.endswith(skip):
            view = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
            if view not in seen:
                seen.add(view)
                total += v.numel()
    return int(total)


def train_labels(spec, data_root):
    """The training language's training labels (per sentence for tagging)."""
    raw = os.path.join(data_root, "raw", f"{spec.source_lang}.train")
    if spec.kind == "tagging":
        return [json.loads(x)["labels"] for x in open(raw + ".jsonl", encoding="utf-8")]
    return [x.strip() for x in open(raw + ".label", encoding="utf-8")]


_SHA = {}


def column_digest(model, args):
    """What identifies a column's starting point: the pretrained checkpoint's SHA-256 (its bytes, not
    its name), or the scratch/tagger column key (with the taggers' fastText settings)."""
    if model.kind == "pretrained":
        st = os.stat(model.path)
        key = (model.path, st.st_size, st.st_mtime_ns)
        if key not in _SHA:
            _SHA[key] = sha256_file(model.path)
        return _SHA[key]
    if model.kind == "tagger":
        return f"{column_key(model)}:fasttext-lines={args.fasttext_lines}:bucket={_bucket(args)}"
    return column_key(model)


class FairseqBackend:
    """:class:`csfair.evaluation.zeroshot.backend.ZeroShotBackend` through ``fairseq-train`` (see the module
    docstring); a fine-tuned model's handle is its ``checkpoint_best.pt``."""

    def resolve(self, column):
        """Nothing to check beyond :class:`~csfair.evaluation.zeroshot.columns.Column` (the file exists)."""

    def column_digest(self, column, args):
        return column_digest(column, args)

    def prepare(self, spec, column, args, out):
        return Prepared(*prepare(spec, column, args, out))

    def finetune(self, spec, column, prepared, run_dir, seed, lr, epochs, args, dev_score):
        n_train = prepared.stats[f"{spec.source_lang}.train"]["examples"]
        ckpts, updates = finetune(spec, column, prepared.arch, prepared.max_positions, n_train, prepared.data, run_dir,
                                  seed, lr, epochs, args)
        best, best_epoch, dev, pairs = select_best_epoch(spec, ckpts, prepared.data, dev_score)
        return Finetuned(best, updates, best_epoch, dev, pairs)

    def train_labels(self, spec, prepared):
        return train_labels(spec, prepared.data)

    def predict(self, spec, handle, prepared, lang, split):
        from .finetune import predict

        return predict(handle, os.path.join(prepared.data, "bin", lang), split, spec.kind)

    def count_parameters(self, handle):
        return count_parameters(handle)

    def discard(self, handle):
        os.remove(handle)
