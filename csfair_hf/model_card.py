"""Model cards (``README.md``) for checkpoints exported to transformers by ``scripts/hf_convert.py export``.

A card is YAML front matter that the Hugging Face Hub reads (``huggingface_hub.ModelCardData``:
``language``, ``license`` when known, ``library_name: transformers``, ``tags``, ``pipeline_tag``)
and a Markdown body: the model, its pretraining data, the code-switching mode with the
substitution tables' checksums (from the checkpoint's provenance record,
``user_dir/models/checkpoint_provenance.py``), how input must be tokenised (Moses, then the
sentencepiece tokenizer in the directory: csfair trains on Moses-tokenised text), and a usage
example in Python that runs against the exported directory as it is (``tests/test_hf_model_card.py``
executes it).
"""
import os
from typing import Dict, List, Optional

#: The usage example; ``{lang}`` is the Moses language. It needs torch, transformers and sacremoses only.
USAGE = '''\
import torch
from sacremoses import MosesTokenizer
from transformers import AutoModelForMaskedLM, AutoTokenizer

model_dir = "."  # this directory (or the model's Hub id once uploaded)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()

# 1. Moses tokenisation, exactly as csfair tokenised the pretraining text
moses = MosesTokenizer(lang="{lang}")
raw = "A man is riding a bike in the park."
sentence = " ".join(moses.tokenize(raw, escape=False, return_str=True, aggressive_dash_splits=False).split())
# 2. then this directory's sentencepiece tokenizer; mask one word and predict it
inputs = tokenizer(sentence.replace("bike", tokenizer.mask_token), return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits
where = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
top = tokenizer.convert_ids_to_tokens(logits[0, where].topk(5).indices.tolist())
print("fill-mask:", top)

# sentence features: the last layer's states, averaged over the tokens
with torch.no_grad():
    states = model(**tokenizer(sentence, return_tensors="pt"), output_hidden_states=True).hidden_states[-1]
features = states.mean(dim=1)
print("features:", tuple(features.shape))
'''


def _langs(value) -> List[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [x for x in value.split(",") if x]
    return [str(x) for x in value]


def _table_rows(provenance: Optional[Dict]) -> List[str]:
    tables = (provenance or {}).get("tables") or {}
    rows = []
    for lang, t in sorted(tables.items()):
        rows.append(f"| {lang or '(all)'} | `{os.path.basename(str(t.get('path', '')).rstrip('/'))}` | "
                    f"`{t.get('checksum')}` |")
    return rows


def card_text(summary: Dict, license: Optional[str] = None, name: Optional[str] = None) -> str:
    """The card (front matter and body) of an export summary (``user_dir.hf_interop.export_checkpoint``'s).

    Args:
        summary: the export summary with its ``pretraining`` record.
        license: an SPDX id or ``other``; None leaves the field out (the Hub then shows none).
        name: the card's title (default: the export directory's name).

    Returns:
        str: the README.md text.
    """
    from huggingface_hub import ModelCardData

    pre = summary.get("pretraining") or {}
    prov = pre.get("provenance") or {}
    langs = _langs(pre.get("langs"))
    mode = pre.get("cs_mode") or prov.get("cs_mode") or "none"
    model_type = summary.get("model_type", "xlm-roberta")
    tags = ["csfair", "fairseq", model_type, "masked-lm"] + (["code-switching", f"code-switching-{mode}"]
                                                            if mode != "none" else [])
    data = ModelCardData(language=langs or None, license=license, library_name="transformers", tags=tags,
                         pipeline_tag="fill-mask")
    title = name or os.path.basename(os.path.normpath(summary.get("out_dir", "model")))
    size = f"{pre.get('layers')} layers, hidden {pre.get('hidden')}, FFN {pre.get('ffn')}, {pre.get('heads')} heads"
    lines = [
        f"# {title}", "",
        f"{'An' if model_type[0] in 'aeiou' else 'A'} {model_type} masked language model ({summary.get('parameters', 0) / 1e6:.1f}M parameters; {size}) "
        "pretrained with csfair (code-switched masked-LM pretraining; Visser et al., 2025) "
        "on fairseq and converted to transformers by `scripts/hf_convert.py export` (largest logit difference "
        f"between the two frameworks on the check sentences: {summary.get('max_abs_logit_diff', float('nan')):.1e}).",
        "",
        "## Training data", "",
        f"- languages: {', '.join(langs) if langs else 'not recorded'}",
        f"- pretraining task: `{pre.get('task')}`, data directory `{pre.get('data')}` (fairseq-binarised, "
        "Moses-tokenised, sentencepiece)",
        f"- updates: {pre.get('num_updates')}; tokens per sample: {pre.get('tokens_per_sample')}; "
        f"mask probability: {pre.get('mask_prob')}",
        f"- dictionary SHA-256: `{prov.get('dict_sha256')}`; csfair version: {prov.get('csfair_version')}",
        "",
        "## Code-switching", "",
    ]
    if mode == "none":
        lines += ["Mode `none`: plain masked-LM pretraining, no substituted words.", ""]
    else:
        lines += [
            f"Mode `{mode}`: unmasked words of an instance are replaced by translations drawn from substitution "
            "tables (`multiview`: sampled from the table's distribution; `static`: its most probable candidate); "
            "masked words are never substituted and the targets are the original tokens.", "",
            f"- instance probability {pre.get('cs_instance_prob')}, word probability {pre.get('cs_word_prob')}, "
            f"temperature {pre.get('cs_temperature')}, minimum candidate probability {pre.get('cs_min_prob')}",
            f"- table name: `{pre.get('cs_table_name') or pre.get('cs_tables') or '-'}`", "",
        ]
        rows = _table_rows(prov)
        if rows:
            lines += ["Substitution tables (checksums as recorded in the checkpoint; a table with another checksum "
                      "is another table):", "", "| text language | table | checksum |", "|---|---|---|", *rows, ""]
        else:
            lines += ["The checkpoint records no table checksums.", ""]
    moses_lang = "en" if "en" in langs or not langs else langs[0]
    lines += [
        "## Input: Moses tokenisation, then sentencepiece", "",
        "csfair pretrains on Moses-tokenised text (sacremoses, `escape=False`, no aggressive dash splits, runs of "
        "whitespace collapsed), then sentencepiece. The tokenizer in this directory applies only the sentencepiece "
        "step, with the same ids as the fairseq dictionary: tokenise raw text with Moses first (in its language) "
        "to get the ids the model was trained on. Raw, untokenised text also works but splits punctuation "
        "differently from pretraining.", "",
        "## Usage", "",
        "```python",
        USAGE.replace("{lang}", moses_lang).rstrip("\n"),
        "```", "",
    ]
    heads = summary.get("heads_exported") or {}
    left = summary.get("heads_not_exported") or {}
    if heads or left:
        lines += ["## Fine-tuned heads", ""]
        lines += [f"- `heads/{k}/`: `AutoModelForSequenceClassification`, labels {v.get('labels')}" for k, v in heads.items()]
        lines += [f"- `{k}`: not exported ({why})" for k, why in left.items()]
        lines.append("")
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)


def write_model_card(out_dir: str, summary: Dict, license: Optional[str] = None) -> str:
    """Write ``out_dir/README.md`` (:func:`card_text`); returns its path.

    The card is parsed back with ``huggingface_hub.ModelCard.load`` before it is kept.

    Raises:
        ValueError: the written card does not parse.
    """
    from huggingface_hub import ModelCard

    from csfair.io import atomic_write

    path = os.path.join(out_dir, "README.md")
    text = card_text(summary, license=license)
    with atomic_write(path) as fh:
        fh.write(text)
    try:
        ModelCard.load(path)
    except Exception as err:
        raise ValueError(f"{path}: the model card does not parse ({err})") from None
    return path
