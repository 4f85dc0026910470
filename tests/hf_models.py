"""Small transformers models for the tests, built offline from the real data (no download).

Each builder writes a directory that ``from_pretrained`` reads exactly as it would a hub id:

* :func:`build_bert`: ``BertForMaskedLM`` (2 layers, hidden 64) with a cased WordPiece
  ``BertTokenizerFast`` (``##`` continuations, mBERT's family; the vocabulary from a seeded
  sentencepiece model, because the ``tokenizers`` WordPiece trainer is not reproducible);
* :func:`build_xlmr`: ``XLMRobertaForMaskedLM`` with an ``XLMRobertaTokenizerFast`` made from a
  sentencepiece Unigram model (``▁`` word starts; the fairseq id layout ``<s> <pad> </s> <unk>``,
  pieces, ``<mask>``, as ``user_dir/hf_interop.build_hf_tokenizer``);
* :func:`build_roberta`: ``RobertaForMaskedLM`` with a byte-level BPE ``RobertaTokenizerFast``
  (``Ġ`` word starts) trained by ``tokenizers``.

The weights are random (the tests check plumbing and invariants, not quality); every builder takes
the training lines, so callers choose the slice (:func:`mono_lines`). A few seconds each.
"""
from pathlib import Path
from typing import Dict, List, Sequence

#: Size of the tiny encoders (shared by the three families).
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
            max_position_embeddings=130)


def mono_lines(langs: Sequence[str] = ("en", "es"), n: int = 3000) -> Dict[str, List[str]]:
    """The first ``n`` lines of ``$CSFAIR_DATA/mono/derived/{lang}.txt`` per language."""
    from csfair.paths import data_file

    out = {}
    for lang in langs:
        with open(data_file(f"mono/derived/{lang}.txt"), encoding="utf-8") as fh:
            out[lang] = [line.rstrip("\n") for _, line in zip(range(n), fh)]
    return out


def _save(model, tokenizer, out: Path) -> Path:
    """Save both, and check what every caller relies on: a fast tokenizer (word ids) whose ids all
    index the model's embedding matrix, and a directory that reloads with the same vocabulary."""
    from transformers import AutoTokenizer

    assert tokenizer.is_fast, f"{type(tokenizer).__name__}: the collator needs a fast tokenizer's word_ids()"
    n_emb = model.get_input_embeddings().num_embeddings
    assert len(tokenizer) <= n_emb, f"tokenizer has {len(tokenizer)} ids, the model embeds {n_emb}"
    assert tokenizer.mask_token_id is not None and tokenizer.pad_token_id is not None
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).get_vocab() == tokenizer.get_vocab(), f"{out}: vocabulary not reloaded"
    return out


def build_bert(out: Path, lines: Sequence[str], vocab_size: int = 2000, seed: int = 0, spm_model: Path = None) -> Path:
    """A cased WordPiece BERT MLM in ``out`` (``BertForMaskedLM`` + ``BertTokenizerFast``).

    The WordPiece vocabulary is read off a seeded sentencepiece model of ``lines`` (``▁piece`` ->
    ``piece``, ``piece`` -> ``##piece``, plus every character in both forms so that no word of the
    text is ``[UNK]``): the ``tokenizers`` WordPiece trainer is not deterministic across processes
    (tie-breaking follows hash-map order; three builds gave three vocabularies), and the tests and
    measurements must be reproducible. Tokenisation is the library's WordPiece (greedy
    longest-match-first, ``##`` continuations, BERT pre-tokenizer), which is what the code under
    test sees. ``spm_model``: reuse a model instead of training one on ``lines``.
    """
    import sentencepiece as spm
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    out = Path(out)
    if spm_model is None:
        spm_model = train_spm(out / "spm" / "spm", {"all": list(lines)}, vocab_size=vocab_size)
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = {}
    for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]:
        vocab.setdefault(t, len(vocab))
    chars = sorted({c for line in lines for c in line if not c.isspace()})
    for i in range(sp.get_piece_size()):
        if sp.is_control(i) or sp.is_unknown(i):
            continue
        p = sp.id_to_piece(i)
        w = p[1:] if p.startswith("\u2581") else "##" + p
        if w and w != "##":
            vocab.setdefault(w, len(vocab))
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault("##" + c, len(vocab))
    tok = BertTokenizerFast(vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=128)
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **TINY))
    return _save(model, tok, out)


def build_xlmr(out: Path, spm_model: Path, seed: int = 0) -> Path:
    """An XLM-R MLM in ``out`` whose tokenizer is the sentencepiece model ``spm_model`` (Unigram)."""
    import sentencepiece as spm
    import torch
    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaTokenizerFast

    out = Path(out)
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    # fairseq/XLM-R id layout: <s>=0 <pad>=1 </s>=2 <unk>=3, the pieces, then <mask>
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, sp.get_piece_size())]
    vocab.append(("<mask>", 0.0))
    proto = pb.ModelProto()
    proto.ParseFromString(Path(spm_model).read_bytes())
    tok = XLMRobertaTokenizerFast(vocab=vocab, _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap or None,
                                  model_max_length=128)
    torch.manual_seed(seed)
    model = XLMRobertaForMaskedLM(XLMRobertaConfig(vocab_size=len(tok), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                   type_vocab_size=1, **TINY))
    return _save(model, tok, out)


def build_roberta(out: Path, lines: Sequence[str], vocab_size: int = 2000, seed: int = 0) -> Path:
    """A byte-level BPE RoBERTa MLM in ``out`` (``RobertaForMaskedLM`` + ``RobertaTokenizerFast``)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    out = Path(out)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(lines), vocab_size=vocab_size, min_frequency=2, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    raw = out / "bpe"
    raw.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(raw))
    tok = RobertaTokenizerFast(vocab=str(raw / "vocab.json"), merges=str(raw / "merges.txt"), model_max_length=128)
    torch.manual_seed(seed)
    model = RobertaForMaskedLM(RobertaConfig(vocab_size=len(tok), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                             type_vocab_size=1, **TINY))
    return _save(model, tok, out)


def train_spm(out_prefix: Path, lines: Dict[str, List[str]], vocab_size: int = 1000) -> Path:
    """A sentencepiece Unigram model on the given lines (csfair's trainer, as the demo builds its own)."""
    from csfair.pretraining.vocab import train_sentencepiece

    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for lang, ls in lines.items():
        p = out_prefix.parent / f"spm_input.{lang}.txt"
        p.write_text("\n".join(ls) + "\n", encoding="utf-8")
        inputs[lang] = p
    train_sentencepiece(inputs, out_prefix, vocab_size=vocab_size, threads=1)
    return Path(f"{out_prefix}.model")


def build_all(root: Path, n_lines: int = 2000) -> Dict[str, Path]:
    """The three families under ``root`` (``bert``, ``xlmr``, ``roberta``) on en+es text, plus the text."""
    root = Path(root)
    lines = mono_lines(("en", "es"), n_lines)
    both = lines["en"] + lines["es"]
    out = {"spm": train_spm(root / "spm" / "spm", lines)}
    out["bert"] = build_bert(root / "bert", both, spm_model=out["spm"])
    out["roberta"] = build_roberta(root / "roberta", both)
    out["xlmr"] = build_xlmr(root / "xlmr", out["spm"])
    for lang, ls in lines.items():
        out[f"text_{lang}"] = root / f"mono.{lang}.txt"
        out[f"text_{lang}"].write_text("\n".join(ls) + "\n", encoding="utf-8")
    return out
