"""fairseq glue for fine-tuning and zero-shot evaluation (used by ``scripts/zeroshot.py``).

* :func:`binarize_task`: the raw files of :func:`csfair.evaluation.tasks.write_task_data` into the
  ``<lang>/{input0,input1,label}/<split>.{bin,idx}`` layout, with fairseq's own binariser (what
  ``fairseq-preprocess --only-source`` runs): pieces with the pretrained dictionary (copied byte
  for byte, so the checkpoint's dictionary checksum matches), labels with a label dictionary built
  from the training labels;
* :func:`pretrained_arch_args`: the ``--arch`` and size flags that rebuild a checkpoint's encoder;
* :func:`predict`: gold and predicted labels of a split, per example, in data order;
* :func:`finish_finetune_model`: what the fine-tuning tasks add to a built model (provenance, frozen encoder).
"""
import os
import shutil
from typing import Dict, List, Tuple

import torch

from .checkpoint_loading import read_checkpoint


def finish_finetune_model(model, data_dir: str, freeze_encoder: bool):
    """Attach the provenance record (the fine-tuning dictionary's checksum) and optionally freeze the encoder.

    Used by ``token_tagging`` and ``cs_sentence_prediction``. With ``freeze_encoder`` only the
    ``classification_heads.*`` parameters train (the frozen-encoder probes of the Spanglish study).

    Args:
        model: a built fairseq model with ``classification_heads``.
        data_dir: the task's data directory (``input0/dict.txt`` is checksummed).
        freeze_encoder: set ``requires_grad = False`` on every parameter outside the heads.
    Returns:
        the same model.
    """
    from csfair.io import sha256_file

    from .models.checkpoint_provenance import CheckpointProvenance

    model.add_module("csfair_provenance", CheckpointProvenance(
        {"dict_sha256": sha256_file(os.path.join(data_dir, "input0", "dict.txt")), "cs_mode": "none"}))
    if freeze_encoder:
        for name, p in model.named_parameters():
            if not name.startswith("classification_heads."):
                p.requires_grad = False
    return model


def _binarize(text_file: str, dictionary, out_prefix: str) -> None:
    from fairseq.binarizer import FileBinarizer, VocabularyDatasetBinarizer

    os.makedirs(os.path.dirname(out_prefix), exist_ok=True)
    binarizer = VocabularyDatasetBinarizer(dictionary, append_eos=True)
    FileBinarizer.multiprocess_dataset(text_file, "mmap", binarizer, out_prefix, vocab_size=len(dictionary),
                                       num_workers=1)


UNSEEN_LABEL_POLICIES = ("error", "never-predicted")


def binarize_task(raw_dir: str, bin_dir: str, dict_path, pair: bool, source_lang: str,
                  spm_model: str = None, unseen_labels: str = "error") -> Dict[str, str]:
    """Binarise every ``<lang>.<split>`` of ``raw_dir`` into ``bin_dir/<lang>/``.

    ``dict_path`` None builds a word dictionary from every ``input0`` file (word-level taggers:
    their embeddings are frozen, so every evaluated word gets a row) as ``bin_dir/words.dict.txt``.

    ``spm_model`` is copied to ``bin_dir/spm.model`` (the hub finds a fine-tuned model's vocabulary there).

    The label dictionary holds the training labels (``<source_lang>.train.label``). A label that
    occurs in an evaluation split but not in training would otherwise binarise to ``<unk>`` and
    drop out of the scores silently; ``unseen_labels`` decides instead:

    * ``"error"``: raise ``ValueError`` naming the file and the labels;
    * ``"never-predicted"``: append the label to the dictionary with count 0 — the head has
      outputs for the training labels only (``TokenTaggingTask.num_classes``; the runner passes
      ``--num-classes`` = training labels to ``sentence_prediction``), so the label is gold but
      never predicted and every occurrence counts as an error. The counts per split are written
      to ``bin_dir/unseen_labels.json`` (``{"<lang>.<split>": {label: occurrences}}``).

    Returns:
        ``{"<lang>.<split>": data directory}``.

    Raises:
        InputFormatError: ``unseen_labels="error"`` and an evaluation split has a label training lacks.
    """
    import json
    from collections import Counter

    if unseen_labels not in UNSEEN_LABEL_POLICIES:
        raise ValueError(f"unseen_labels must be one of {UNSEEN_LABEL_POLICIES}, got {unseen_labels!r}")
    from fairseq.data import Dictionary

    fields = ["input0", "input1"] if pair else ["input0"]
    if dict_path is None:
        words = Dictionary()
        for name in sorted(os.listdir(raw_dir)):
            if name.endswith(".input0"):
                Dictionary.add_file_to_dictionary(os.path.join(raw_dir, name), words, lambda line: line.split(), 1)
        words.finalize(threshold=0, nwords=-1, padding_factor=1)
        os.makedirs(bin_dir, exist_ok=True)
        dict_path = os.path.join(bin_dir, "words.dict.txt")
        words.save(dict_path)
    if spm_model:
        os.makedirs(bin_dir, exist_ok=True)
        shutil.copyfile(spm_model, os.path.join(bin_dir, "spm.model"))
    src_dict = Dictionary.load(dict_path)
    label_dict = Dictionary()
    train_labels = os.path.join(raw_dir, f"{source_lang}.train.label")
    Dictionary.add_file_to_dictionary(train_labels, label_dict, lambda line: line.split(), num_workers=1)
    label_dict.finalize(threshold=0, nwords=-1, padding_factor=1)
    unseen = {}
    for name in sorted(os.listdir(raw_dir)):
        if not name.endswith(".label") or name == f"{source_lang}.train.label":
            continue
        path = os.path.join(raw_dir, name)
        with open(path, encoding="utf-8") as fh:
            missing = Counter(t for line in fh for t in line.split() if t not in label_dict.indices)
        if missing:
            if unseen_labels == "error":
                from csfair.io import InputFormatError

                raise InputFormatError(
                    path, 0, f"labels {dict(sorted(missing.items()))} (label: occurrences) are not in the training "
                    f"labels of {train_labels}; use --unseen-labels never-predicted to score them as a class the model "
                    f"never predicts")
            unseen[name[: -len(".label")]] = dict(sorted(missing.items()))
    for lab in sorted({lab for c in unseen.values() for lab in c}):
        label_dict.add_symbol(lab, n=0)  # after every training label: never an output of the head
    if unseen_labels != "error":
        os.makedirs(bin_dir, exist_ok=True)
        with open(os.path.join(bin_dir, "unseen_labels.json"), "w", encoding="utf-8") as fh:
            json.dump(unseen, fh, indent=1, sort_keys=True)
    out = {}
    for name in sorted(os.listdir(raw_dir)):
        if not name.endswith(".input0"):
            continue
        lang, split = name[: -len(".input0")].rsplit(".", 1)
        root = os.path.join(bin_dir, lang)
        for f in fields:
            _binarize(os.path.join(raw_dir, f"{lang}.{split}.{f}"), src_dict, os.path.join(root, f, split))
            shutil.copyfile(dict_path, os.path.join(root, f, "dict.txt"))
        _binarize(os.path.join(raw_dir, f"{lang}.{split}.label"), label_dict, os.path.join(root, "label", split))
        label_dict.save(os.path.join(root, "label", "dict.txt"))
        out[f"{lang}.{split}"] = root
    return out


def pretrained_arch_args(checkpoint: str) -> Tuple[List[str], dict]:
    """``--arch`` and encoder-size flags of a checkpoint, and its task config (dict).

    The task config also holds ``max_positions`` (the encoder's positions) and ``csfair_provenance``:
    the checkpoint's provenance record (``dict_sha256``: the SHA-256 of the dictionary it was
    trained with; ``{}`` for a checkpoint without one), with which a copied checkpoint's vocabulary
    is checked.
    """
    state = read_checkpoint(checkpoint)
    cfg = state["cfg"]
    model = cfg["model"]
    get = (lambda k, d=None: getattr(model, k, d)) if not isinstance(model, dict) else (lambda k, d=None: model.get(k, d))
    args = ["--arch", get("arch") or get("_name")]
    for key in ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads"):
        if get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(get(key))]
    if get("encoder_normalize_before"):
        args.append("--encoder-normalize-before")
    positions = get("max_positions") or get("tokens_per_sample") or cfg["task"].get("tokens_per_sample")
    task = dict(cfg["task"]) if cfg.get("task") is not None else {}
    record = (state.get("model") or {}).get("csfair_provenance._extra_state") or {}
    return args, dict(task, max_positions=int(positions), csfair_provenance=dict(record))


@torch.no_grad()
def predict(checkpoint: str, data_dir: str, split: str, kind: str, batch_size: int = 64) -> List[Tuple]:
    """``[(gold, pred), ...]`` per example of ``split``, in data order.

    Tagging: label lists over the kept words (first pieces); classification: label strings.
    """
    import user_dir  # noqa: F401
    from fairseq import checkpoint_utils, utils

    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data_dir})
    model = models[0]
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        model.cuda()
    model.eval()
    task.load_dataset(split)
    itr = task.get_batch_iterator(
        dataset=task.dataset(split), max_sentences=batch_size, max_positions=task.max_positions(),
        ignore_invalid_inputs=False, num_workers=0, disable_iterator_cache=True,
    ).next_epoch_itr(shuffle=False)
    nspec = task.label_dictionary.nspecial
    names = task.label_dictionary.symbols
    results: Dict[int, Tuple] = {}
    for sample in itr:
        if use_cuda:
            sample = utils.move_to_cuda(sample)
        if kind == "tagging":
            head_name = task.cfg.classification_head_name
            head = model.classification_heads[head_name]
            em = model(**sample["net_input"], features_only=True, classification_head_name=head_name)[0]
            target = sample["target"]
            words = target >= 0
            if head.crf is not None:
                from .models.token_tagging_head import crf_decode

                paths = crf_decode(head.crf, em, words)
            else:
                arg = em.argmax(-1)
                paths = [arg[i][words[i]].tolist() for i in range(arg.size(0))]
            for i, sid in enumerate(sample["id"].tolist()):
                gold = [names[nspec + c] for c in target[i][words[i]].tolist()]
                pred = [names[nspec + c] for c in paths[i]]
                results[sid] = (gold, pred)
        else:
            head_name = getattr(task.cfg, "classification_head_name", "sentence_classification_head")
            logits = model(**sample["net_input"], features_only=True, classification_head_name=head_name)[0]
            pred = logits.argmax(-1).tolist()
            gold = sample["target"].view(-1).tolist()
            for sid, g, p in zip(sample["id"].tolist(), gold, pred):
                results[sid] = (names[nspec + g], names[nspec + p])
    return [results[i] for i in sorted(results)]
