"""Hugging Face transformers interop: export csfair checkpoints, import RoBERTa / XLM-R ones.

fairseq's RoBERTa and transformers' ``RobertaForMaskedLM`` / ``XLMRobertaForMaskedLM`` are the
same network (post-layer-norm Transformer encoder, learned positions offset by ``padding_idx + 1``,
embedding layer norm, GELU, LM head tied to the embeddings), so the conversion is a renaming of
weights (the mapping of transformers' own ``convert_roberta_original_pytorch_checkpoint_to_pytorch``).

Vocabulary: a csfair ``dict.txt`` lists the sentencepiece pieces in id order after fairseq's four
specials, so fairseq id = sentencepiece id + 1 and ``<mask>`` is last: XLM-R's layout. The export
builds a transformers ``XLMRobertaTokenizer`` (Unigram, tokenizers backend) from the sentencepiece
model with exactly these ids. (csfair pre-tokenises text with Moses before sentencepiece; pass
Moses-tokenised text to the exported tokenizer to get the same ids.)

Both directions are verified by running both models on the same inputs: the largest absolute
difference of the logits must stay below ``atol`` (1e-4).

Heads: a sentence classification head of a fine-tuned checkpoint (``cs_sentence_prediction``:
fairseq's ``RobertaClassificationHead``, ``<s>`` -> dense -> tanh -> out_proj) is transformers'
``RobertaClassificationHead`` and is exported as a ``*ForSequenceClassification`` directory under
``<out_dir>/heads/<name>/``, verified the same way. Token tagging heads are not exported: they
classify the first piece of each word through two layers (and optionally a CRF), which
``*ForTokenClassification`` (one linear layer on every piece) cannot represent.
"""
import json
import os
import shutil
from typing import Dict, List, Optional

import torch

FS = "encoder.sentence_encoder."

LAYER_MAP = {  # fairseq layer suffix -> transformers layer suffix
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.output.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "output.LayerNorm",
}


def _pairs(num_layers: int, prefix: str) -> List[tuple]:
    """(fairseq key, transformers key) for every weight and bias of the encoder and LM head."""
    pairs = [
        (FS + "embed_tokens.weight", f"{prefix}.embeddings.word_embeddings.weight"),
        (FS + "embed_positions.weight", f"{prefix}.embeddings.position_embeddings.weight"),
        (FS + "layernorm_embedding.weight", f"{prefix}.embeddings.LayerNorm.weight"),
        (FS + "layernorm_embedding.bias", f"{prefix}.embeddings.LayerNorm.bias"),
        ("encoder.lm_head.dense.weight", "lm_head.dense.weight"),
        ("encoder.lm_head.dense.bias", "lm_head.dense.bias"),
        ("encoder.lm_head.layer_norm.weight", "lm_head.layer_norm.weight"),
        ("encoder.lm_head.layer_norm.bias", "lm_head.layer_norm.bias"),
        ("encoder.lm_head.bias", "lm_head.bias"),
    ]
    for i in range(num_layers):
        for fs, hf in LAYER_MAP.items():
            for wb in ("weight", "bias"):
                pairs.append((f"{FS}layers.{i}.{fs}.{wb}", f"{prefix}.encoder.layer.{i}.{hf}.{wb}"))
    return pairs


def _model_args(cfg_model):
    get = (lambda k, d=None: cfg_model.get(k, d)) if isinstance(cfg_model, dict) else (
        lambda k, d=None: getattr(cfg_model, k, d))
    return get


def check_convertible(get) -> None:
    """Raise ValueError if the fairseq model is not a transformers RoBERTa."""
    problems = []
    if get("encoder_normalize_before", False):
        problems.append("pre-layer-norm (--encoder-normalize-before)")
    if get("activation_fn", "gelu") != "gelu":
        problems.append(f"activation {get('activation_fn')}")
    if not get("layernorm_embedding", True):
        problems.append("no embedding layer norm")
    if not get("no_scale_embedding", True):
        problems.append("scaled embeddings")
    if get("untie_weights_roberta", False):
        problems.append("untied LM head")
    if problems:
        raise ValueError("this fairseq model has no transformers RoBERTa equivalent: " + ", ".join(problems))


def build_hf_tokenizer(spm_model: str, dict_path: str):
    """A transformers ``XLMRobertaTokenizer`` whose ids are the fairseq dictionary's ids.

    Raises:
        ValueError: the dictionary is not the sentencepiece vocabulary in id order.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import XLMRobertaTokenizer

    sp = spm.SentencePieceProcessor(model_file=spm_model)
    symbols = [line.rsplit(" ", 1)[0] for line in open(dict_path, encoding="utf-8") if line.strip()]
    for k, sym in enumerate(symbols):
        if sp.id_to_piece(k + 3) != sym:
            raise ValueError(f"{dict_path}: symbol {k + 4} ({sym!r}) is not sentencepiece piece {k + 3}: "
                             "not a csfair sentencepiece dictionary")
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, sp.get_piece_size())]
    vocab.append(("<mask>", 0.0))
    proto = pb.ModelProto()
    proto.ParseFromString(open(spm_model, "rb").read())
    charsmap = proto.normalizer_spec.precompiled_charsmap
    return XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=charsmap or None)


def _hf_config(get, vocab_size: int, model_type: str):
    from transformers import RobertaConfig, XLMRobertaConfig

    cls = XLMRobertaConfig if model_type == "xlm-roberta" else RobertaConfig
    return cls(
        vocab_size=vocab_size, hidden_size=get("encoder_embed_dim"), num_hidden_layers=get("encoder_layers"),
        num_attention_heads=get("encoder_attention_heads"), intermediate_size=get("encoder_ffn_embed_dim"),
        max_position_embeddings=get("max_positions") + 2, type_vocab_size=1, layer_norm_eps=1e-5,
        hidden_act="gelu", hidden_dropout_prob=get("dropout", 0.1), attention_probs_dropout_prob=get("attention_dropout", 0.1),
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )


@torch.no_grad()
def max_logit_difference(fs_model, hf_model, batches: List[torch.Tensor], pad: int = 1) -> float:
    """Largest |fairseq logits - transformers logits| over padded id batches (MLM head)."""
    fs_model.eval()
    hf_model.eval()
    worst = 0.0
    for ids in batches:
        a = fs_model(ids)[0]
        b = hf_model(input_ids=ids, attention_mask=ids.ne(pad).long()).logits
        mask = ids.ne(pad)
        worst = max(worst, (a - b).abs()[mask].max().item())
    return worst


def export_checkpoint(checkpoint: str, out_dir: str, spm_model: Optional[str] = None, dict_path: Optional[str] = None,
                      model_type: str = "xlm-roberta", sample_batches: Optional[List[torch.Tensor]] = None,
                      atol: float = 1e-4) -> Dict:
    """Write a transformers directory for a csfair MLM checkpoint and verify its logits.

    Args:
        checkpoint: csfair/fairseq RoBERTa checkpoint (``codeswitch_masked_lm``).
        out_dir: output directory (``config.json``, weights, tokenizer, ``csfair_export.json``).
        spm_model, dict_path: vocabulary (default: the checkpoint's data directory).
        model_type: ``xlm-roberta`` (sentencepiece tokenizer) or ``roberta``.
        sample_batches: id batches for the check (default: a few sentences of the dictionary).
        atol: largest allowed absolute logit difference.

    Returns:
        summary dict (parameter count, max logit difference, paths).

    Raises:
        ValueError: not convertible (names the checkpoint's task and architecture when it is not
            a RoBERTa encoder), logits differ by more than ``atol``, or the file is empty,
            truncated or not a checkpoint (:class:`~user_dir.checkpoint_loading.CheckpointError`).
        FileNotFoundError: checkpoint, vocabulary or data directory missing.
    """
    from fairseq.models.roberta import RobertaModel
    from transformers import RobertaForMaskedLM, XLMRobertaForMaskedLM

    from .checkpoint_loading import what_is
    from .hub_interface import from_pretrained

    hub = from_pretrained(os.path.dirname(os.path.abspath(checkpoint)), os.path.basename(checkpoint),
                          bpe_model=spm_model)
    fs_model = hub.model
    get = _model_args(hub.cfg.model)
    if not isinstance(fs_model, RobertaModel):
        desc = {"task": hub.saved_task_cfg.get("_name"), "arch": get("arch") or get("_name"),
                "layers": get("encoder_layers"), "dim": get("encoder_embed_dim")}
        raise ValueError(f"{checkpoint}: {what_is(desc)}, a {type(fs_model).__name__}; hf_convert exports "
                         "RoBERTa encoders (cs_roberta_*, tlm_roberta_*, csfair_roberta_fast_* and their "
                         "fine-tuned checkpoints)")
    check_convertible(get)
    tok_dict = dict_path or hub.dict_path  # before anything is written: a missing vocabulary fails first
    num_layers = get("encoder_layers")
    vocab_size = fs_model.encoder.sentence_encoder.embed_tokens.num_embeddings
    config = _hf_config(get, vocab_size, model_type)
    cls = XLMRobertaForMaskedLM if model_type == "xlm-roberta" else RobertaForMaskedLM
    hf = cls(config)
    fs_state = fs_model.state_dict()
    hf_state = _copy_to_hf(fs_state, hf.state_dict(), num_layers)
    hf_state["lm_head.decoder.weight"] = fs_state[FS + "embed_tokens.weight"].clone()
    if "lm_head.decoder.bias" in hf_state:
        hf_state["lm_head.decoder.bias"] = fs_state["encoder.lm_head.bias"].clone()
    hf.load_state_dict(hf_state, strict=True)
    hf.tie_weights()

    batches = sample_batches or [hub.encode_batch(["a man is riding a bike .", "une femme lit un livre dans le parc ."])]
    diff = max_logit_difference(fs_model, hf, batches)
    if diff > atol:
        raise ValueError(f"exported logits differ by {diff:.2e} > {atol}")
    os.makedirs(out_dir, exist_ok=True)
    hf.save_pretrained(out_dir)
    tok_spm = spm_model or hub.bpe_model
    tokenizer = build_hf_tokenizer(tok_spm, tok_dict)
    _save_tokenizer(tokenizer, tok_spm, out_dir)
    heads_done, heads_left = {}, {}
    for name, head in sorted(getattr(fs_model, "classification_heads", {}).items()):
        why = _sentence_head_problem(head, get)
        if why:
            heads_left[name] = why
            continue
        head_dir = os.path.join(out_dir, "heads", name)
        heads_done[name] = _export_sentence_head(hub, name, head, config, model_type, fs_state, num_layers,
                                                 batches, atol, head_dir)
        _save_tokenizer(tokenizer, tok_spm, head_dir)
    summary = dict(checkpoint=os.path.abspath(checkpoint), out_dir=os.path.abspath(out_dir), model_type=model_type,
                   parameters=sum(p.numel() for p in hf.parameters()), max_abs_logit_diff=diff,
                   heads_exported=heads_done, heads_not_exported=heads_left,
                   note="MLM model and tokenizer; csfair pre-tokenises with Moses",
                   pretraining=pretraining_record(hub, checkpoint))
    with open(os.path.join(out_dir, "csfair_export.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    return summary


def _copy_to_hf(fs_state: Dict, hf_state: Dict, num_layers: int) -> Dict:
    """Copy every mapped fairseq weight into a transformers state dict (keys the model lacks, e.g. the
    LM head of a ``*ForSequenceClassification``, are skipped); zero the token-type embedding, which
    fairseq does not have.

    Raises:
        ValueError: a weight's shape does not fit.
    """
    for fs_key, hf_key in _pairs(num_layers, "roberta"):
        if hf_key not in hf_state:
            continue
        if hf_state[hf_key].shape != fs_state[fs_key].shape:
            raise ValueError(f"{fs_key} {tuple(fs_state[fs_key].shape)} does not fit {hf_key} {tuple(hf_state[hf_key].shape)}")
        hf_state[hf_key] = fs_state[fs_key].clone()
    hf_state["roberta.embeddings.token_type_embeddings.weight"].zero_()
    return hf_state


def _save_tokenizer(tokenizer, spm_model: str, out_dir: str) -> None:
    tokenizer.save_pretrained(out_dir)
    shutil.copyfile(spm_model, os.path.join(out_dir, "sentencepiece.bpe.model"))


def _sentence_head_problem(head, get) -> Optional[str]:
    """Why a fairseq head has no transformers sequence-classification equivalent (None: it has one)."""
    from fairseq.models.roberta.model import RobertaClassificationHead

    if not isinstance(head, RobertaClassificationHead):
        return f"{type(head).__name__}: token-level head (first piece per word, two layers), no transformers equivalent"
    if get("pooler_activation_fn", "tanh") != "tanh":
        return f"pooler activation {get('pooler_activation_fn')} (transformers uses tanh)"
    if not isinstance(head.out_proj, torch.nn.Linear):
        return "quantisation noise / spectral norm on the output projection"
    return None


@torch.no_grad()
def _export_sentence_head(hub, name, head, config, model_type, fs_state, num_layers, batches, atol, head_dir) -> Dict:
    """Write one ``*ForSequenceClassification`` directory; verify its logits on ``batches``.

    Raises:
        ValueError: the logits differ by more than ``atol``.
    """
    import copy

    from transformers import RobertaForSequenceClassification, XLMRobertaForSequenceClassification

    num_classes = head.out_proj.out_features
    labels = getattr(hub.task, "label_dictionary", None)
    if labels is not None:
        names = labels.symbols[labels.nspecial:labels.nspecial + num_classes]
    else:
        names = [f"LABEL_{i}" for i in range(num_classes)]
    cfg = copy.deepcopy(config)
    cfg.num_labels = num_classes
    cfg.id2label = {i: n for i, n in enumerate(names)}
    cfg.label2id = {n: i for i, n in enumerate(names)}
    cfg.classifier_dropout = head.dropout.p
    cls = XLMRobertaForSequenceClassification if model_type == "xlm-roberta" else RobertaForSequenceClassification
    hf = cls(cfg)
    state = _copy_to_hf(fs_state, hf.state_dict(), num_layers)
    for part in ("dense", "out_proj"):
        for t in ("weight", "bias"):
            state[f"classifier.{part}.{t}"] = fs_state[f"classification_heads.{name}.{part}.{t}"].clone()
    hf.load_state_dict(state, strict=True)
    hf.eval()
    hub.model.eval()
    worst = 0.0
    for ids in batches:
        a = hub.model(ids, features_only=True, classification_head_name=name)[0]
        b = hf(input_ids=ids, attention_mask=ids.ne(1).long()).logits
        worst = max(worst, (a - b).abs().max().item())
    if worst > atol:
        raise ValueError(f"head {name}: exported logits differ by {worst:.2e} > {atol}")
    os.makedirs(head_dir, exist_ok=True)
    hf.save_pretrained(head_dir)
    return dict(out_dir=os.path.abspath(head_dir), labels=list(names), max_abs_logit_diff=worst)


def import_hf(hf_dir: str, out_checkpoint: str, out_data: str, sample_batches: Optional[List[torch.Tensor]] = None,
              atol: float = 1e-4) -> Dict:
    """Turn a transformers RoBERTa / XLM-R MLM directory into a csfair/fairseq checkpoint.

    Writes ``out_data/dict.txt`` (the tokenizer's vocabulary in id order, ``<mask>`` last) and,
    when the directory has a sentencepiece model, ``out_data/spm.model``; the checkpoint's task is
    ``codeswitch_masked_lm`` on ``out_data`` so that pretraining can continue with
    ``fairseq-train ... --finetune-from-model out_checkpoint``.

    Raises:
        ValueError: unsupported model, vocabulary layout, or logits differing by more than ``atol``.
    """
    from fairseq import models as fs_models
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch
    from omegaconf import OmegaConf
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    import user_dir  # noqa: F401
    from user_dir.tasks.codeswitch_masked_lm import CodeSwitchMaskedLMTask

    hf = AutoModelForMaskedLM.from_pretrained(hf_dir)
    c = hf.config
    if c.model_type not in ("roberta", "xlm-roberta"):
        raise ValueError(f"{hf_dir}: model type {c.model_type!r}; RoBERTa or XLM-R expected")
    if c.hidden_act != "gelu" or c.type_vocab_size != 1 or c.pad_token_id != 1:
        raise ValueError(f"{hf_dir}: unsupported config (activation {c.hidden_act}, type_vocab_size "
                         f"{c.type_vocab_size}, pad id {c.pad_token_id})")
    tok = AutoTokenizer.from_pretrained(hf_dir)
    tokens = tok.convert_ids_to_tokens(list(range(c.vocab_size)))
    if tokens[:4] != ["<s>", "<pad>", "</s>", "<unk>"] or tokens[-1] != "<mask>":
        raise ValueError(f"{hf_dir}: vocabulary does not start with <s> <pad> </s> <unk> and end with <mask>")
    os.makedirs(out_data, exist_ok=True)
    with open(os.path.join(out_data, "dict.txt"), "w", encoding="utf-8") as fh:
        for t in tokens[4:-1]:
            if t is None or any(ch.isspace() for ch in t):
                raise ValueError(f"{hf_dir}: token {t!r} cannot be a fairseq symbol")
            fh.write(f"{t} 1\n")
    for name in ("sentencepiece.bpe.model", "spm.model"):
        if os.path.exists(os.path.join(hf_dir, name)):
            shutil.copyfile(os.path.join(hf_dir, name), os.path.join(out_data, "spm.model"))
            break

    args = parse_args_and_arch(get_training_parser(), [
        out_data, "--user-dir", os.path.dirname(os.path.abspath(__file__)), "--task", "codeswitch_masked_lm",
        "--cs-mode", "none", "--arch", "cs_roberta_base", "--criterion", "cs_masked_lm",
        "--encoder-layers", str(c.num_hidden_layers), "--encoder-embed-dim", str(c.hidden_size),
        "--encoder-ffn-embed-dim", str(c.intermediate_size), "--encoder-attention-heads", str(c.num_attention_heads),
        "--tokens-per-sample", str(c.max_position_embeddings - 2), "--max-positions", str(c.max_position_embeddings - 2),
        "--dropout", str(c.hidden_dropout_prob), "--attention-dropout", str(c.attention_probs_dropout_prob),
    ])
    cfg = convert_namespace_to_omegaconf(args)
    task = CodeSwitchMaskedLMTask.setup_task(cfg.task)
    fs_model = fs_models.build_model(cfg.model, task)
    if fs_model.encoder.sentence_encoder.embed_tokens.num_embeddings != c.vocab_size:
        raise ValueError("dictionary size does not match the model's vocabulary")
    prefix = hf.base_model_prefix
    hf_state = hf.state_dict()
    fs_state = fs_model.state_dict()
    for fs_key, hf_key in _pairs(c.num_hidden_layers, prefix):
        fs_state[fs_key] = hf_state[hf_key].clone()
    fs_state["encoder.lm_head.weight"] = hf_state[f"{prefix}.embeddings.word_embeddings.weight"].clone()
    # fairseq has no token-type embedding; with a single type it is a constant vector added to
    # every token, so it is folded into the position embeddings (exactly equivalent)
    token_type = hf_state[f"{prefix}.embeddings.token_type_embeddings.weight"]
    fs_state[FS + "embed_positions.weight"] = fs_state[FS + "embed_positions.weight"] + token_type[0][None, :]
    fs_model.load_state_dict(fs_state, strict=True)
    batches = sample_batches or [torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]])]
    diff = max_logit_difference(fs_model, hf, batches)
    if diff > atol:
        raise ValueError(f"imported logits differ by {diff:.2e} > {atol}")
    state = {
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": fs_model.state_dict(),
        # fairseq's checkpoint upgrade reads the last entry; an imported model has no optimizer state
        "optimizer_history": [{"criterion_name": "CodeSwitchMaskedLmLoss", "optimizer_name": "none",
                               "lr_scheduler_state": {"best": None}, "num_updates": 0}],
        "extra_state": {"train_iterator": {"epoch": 1}},
        "last_optimizer_state": None,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_checkpoint)), exist_ok=True)
    tmp = out_checkpoint + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, out_checkpoint)
    return dict(hf_dir=os.path.abspath(hf_dir), checkpoint=os.path.abspath(out_checkpoint), data=os.path.abspath(out_data),
                parameters=sum(p.numel() for p in fs_model.parameters()), max_abs_logit_diff=diff)


def pretraining_record(hub, checkpoint: str) -> Dict:
    """What a checkpoint was trained on and with, for the exported model card (JSON-serialisable).

    From the checkpoint's saved task config (languages, data, masking and ``--cs-*`` options, as
    given to ``fairseq-train``), its model config (sizes), its optimizer history (updates done) and
    its provenance record (``user_dir/models/checkpoint_provenance.py``: csfair version, dictionary
    SHA-256, the substitution tables' paths and checksums). Absent entries are None.
    """
    saved = dict(hub.saved_task_cfg)
    get = _model_args(hub.cfg.model)
    from .checkpoint_loading import read_checkpoint

    state = read_checkpoint(checkpoint, mmap=True)
    history = state.get("optimizer_history") or [{}]
    provenance = getattr(getattr(hub.model, "csfair_provenance", None), "loaded", None)
    if provenance is None:
        provenance = state["model"].get("csfair_provenance._extra_state")
    keys = ("langs", "data", "cs_mode", "cs_table_name", "cs_tables", "cs_instance_prob", "cs_word_prob",
            "cs_temperature", "cs_min_prob", "mask_prob", "tokens_per_sample", "lang_sampling_alpha")
    rec = {k: (str(saved[k]) if k == "cs_mode" and saved.get(k) is not None else saved.get(k)) for k in keys}
    rec.update(task=saved.get("_name"), arch=get("arch") or get("_name"), layers=get("encoder_layers"),
               hidden=get("encoder_embed_dim"), ffn=get("encoder_ffn_embed_dim"), heads=get("encoder_attention_heads"),
               num_updates=history[-1].get("num_updates"),
               provenance=provenance or None)
    return json.loads(json.dumps(rec, default=str))  # enum and config values as plain JSON
