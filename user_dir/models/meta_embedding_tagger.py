"""Meta-embedding taggers of Winata et al. (2021): MME and HME, a Transformer encoder and a CRF.

Each word is represented by several pretrained embeddings (one fastText space per language, and for
HME also subword and character representations), combined into one vector, encoded by a small
Transformer (4 layers, hidden 200, 4 heads) and tagged by a CRF (``--use-crf`` of the task).

Combinations (``--me-combination``), for sources ``j`` with vectors ``x_ij`` of word ``i``:

* ``concat``: ``u_i = W [x_i1; ...; x_iJ]``;
* ``linear``: ``u_i = Σ_j W_j x_ij``;
* ``attention`` (MME): ``x'_ij = W_j x_ij``, ``α_ij = softmax_j(v^T tanh(x'_ij) + b)``,
  ``u_i = Σ_j α_ij x'_ij`` (Winata et al., 2021, Section 3; Kiela et al., 2018).

HME adds two sources: subword embeddings (frozen fastText vectors of the word's sentencepiece pieces,
averaged) and a trainable character CNN (Kim et al., 2016) over the word's characters. Word and
subword tables are frozen; characters, projections, attention, encoder and head are trained.

The frozen tables are ``<meta>/emb.<source>.npy`` (one row per word of the task's dictionary),
written by ``scripts/zeroshot.py``; the head is a :class:`TokenTaggingHead` registered under
``classification_heads`` so that the ``token_tagging`` criterion and the hub work unchanged.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
from fairseq.models import BaseFairseqModel, register_model, register_model_architecture

from .token_tagging_head import TokenTaggingHead


class CharCNN(nn.Module):
    """Character embeddings -> 1-D convolution (width 3) -> max over positions."""

    def __init__(self, n_chars: int, dim: int = 50, filters: int = 100, width: int = 3):
        super().__init__()
        self.embed = nn.Embedding(n_chars, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, filters, width, padding=width // 2)

    def forward(self, chars):  # (N, L) -> (N, filters)
        x = self.embed(chars).transpose(1, 2)
        x = torch.relu(self.conv(x))
        x = x.masked_fill((chars == 0)[:, None, :], float("-inf")).max(-1).values
        return torch.nan_to_num(x, neginf=0.0)


class MetaEmbedding(nn.Module):
    """Combines ``J`` source vectors per word into one ``dim``-vector (see the module docstring).

    Shapes: ``forward(list of J tensors (B, T, d_j))`` -> ``(B, T, dim)`` and attention ``(B, T, J)``
    (None unless ``combination == "attention"``).
    """

    def __init__(self, in_dims, dim, combination="attention"):
        super().__init__()
        self.combination = combination
        if combination == "concat":
            self.proj = nn.Linear(sum(in_dims), dim)
        else:
            self.projs = nn.ModuleList([nn.Linear(d, dim) for d in in_dims])
            if combination == "attention":
                self.score = nn.Linear(dim, 1)

    def forward(self, sources):
        if self.combination == "concat":
            return self.proj(torch.cat(sources, -1)), None
        projected = torch.stack([p(x) for p, x in zip(self.projs, sources)], dim=2)  # B x T x J x dim
        if self.combination == "linear":
            return projected.sum(2), None
        alpha = torch.softmax(self.score(torch.tanh(projected)).squeeze(-1), dim=-1)  # B x T x J
        return (alpha.unsqueeze(-1) * projected).sum(2), alpha


@register_model("meta_embedding_tagger")
class MetaEmbeddingTagger(BaseFairseqModel):
    """MME / HME tagger over words (``word_tagging`` task)."""

    @staticmethod
    def add_args(parser):
        parser.add_argument("--me-combination", choices=["concat", "linear", "attention"],
                            help="how the sources are combined (attention = MME)")
        parser.add_argument("--me-sources", type=str, help="comma-separated frozen tables in <meta>: emb.<name>.npy")
        parser.add_argument("--me-char-cnn", action="store_true", help="add a trainable character CNN source (HME)")
        parser.add_argument("--me-dim", type=int, help="combined / encoder dimension")
        parser.add_argument("--me-layers", type=int, help="Transformer encoder layers")
        parser.add_argument("--me-heads", type=int, help="attention heads")
        parser.add_argument("--me-ffn", type=int, help="feed-forward dimension")
        parser.add_argument("--me-dropout", type=float, help="dropout")

    def __init__(self, args, tables, dictionary, num_classes, use_crf, head_name):
        super().__init__()
        self.args = args
        self.padding_idx = dictionary.pad()
        self.sources = nn.ModuleList([nn.Embedding.from_pretrained(t, freeze=True, padding_idx=self.padding_idx)
                                      for t in tables])
        dims = [t.size(1) for t in tables]
        self.char_cnn = None
        if args.me_char_cnn:
            chars, table = self._char_table(dictionary)
            self.register_buffer("word_chars", table)
            self.char_cnn = CharCNN(len(chars) + 1)
            dims.append(100)
        self.meta = MetaEmbedding(dims, args.me_dim, args.me_combination)
        self.dropout = nn.Dropout(args.me_dropout)
        layer = nn.TransformerEncoderLayer(args.me_dim, args.me_heads, args.me_ffn, args.me_dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, args.me_layers, enable_nested_tensor=False)
        self.classification_heads = nn.ModuleDict({
            head_name: TokenTaggingHead(args.me_dim, args.me_dim, num_classes, "tanh", args.me_dropout, use_crf)})
        self.last_attention = None

    @staticmethod
    def _char_table(dictionary, max_len=20):
        chars = sorted({c for s in dictionary.symbols for c in s})
        index = {c: i + 1 for i, c in enumerate(chars)}
        table = torch.zeros(len(dictionary), max_len, dtype=torch.long)
        for w, sym in enumerate(dictionary.symbols):
            if w < dictionary.nspecial:
                continue
            ids = [index[c] for c in sym[:max_len]]
            table[w, : len(ids)] = torch.tensor(ids)
        return chars, table

    @classmethod
    def build_model(cls, args, task):
        base_architecture(args)
        meta = task.cfg.meta_dir
        tables = []
        for name in [s for s in args.me_sources.split(",") if s]:
            path = os.path.join(meta, f"emb.{name}.npy")
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: embedding table of source {name!r} not found")
            arr = np.load(path)
            if arr.shape[0] != len(task.source_dictionary):
                raise ValueError(f"{path} has {arr.shape[0]} rows, the dictionary {len(task.source_dictionary)}")
            tables.append(torch.from_numpy(arr.astype(np.float32)))
        return cls(args, tables, task.source_dictionary, task.num_classes, task.cfg.use_crf,
                   task.cfg.classification_head_name)

    def _positions(self, x):
        t, d = x.size(1), x.size(2)
        pos = torch.arange(t, device=x.device, dtype=torch.float)[:, None]
        div = torch.exp(torch.arange(0, d, 2, device=x.device, dtype=torch.float) * (-math.log(10000.0) / d))
        pe = torch.zeros(t, d, device=x.device)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: (d // 2)])
        return pe[None]

    def forward(self, src_tokens, src_lengths=None, features_only=True, classification_head_name=None, **kwargs):
        """``(emissions or features (B, T, C|dim), {"attention": (B, T, J) or None})``."""
        sources = [emb(src_tokens) for emb in self.sources]
        if self.char_cnn is not None:
            b, t = src_tokens.shape
            chars = self.word_chars[src_tokens.view(-1)]
            sources.append(self.char_cnn(chars).view(b, t, -1))
        x, alpha = self.meta(sources)
        self.last_attention = alpha
        x = self.dropout(x + self._positions(x))
        x = self.encoder(x, src_key_padding_mask=src_tokens.eq(self.padding_idx))
        if classification_head_name is not None:
            x = self.classification_heads[classification_head_name](x)
        return x, {"attention": alpha}

    def max_positions(self):
        return 1024


def base_architecture(args):
    args.me_combination = getattr(args, "me_combination", None) or "attention"
    args.me_sources = getattr(args, "me_sources", None) or "en"
    args.me_char_cnn = getattr(args, "me_char_cnn", False)
    args.me_dim = getattr(args, "me_dim", None) or 200
    args.me_layers = getattr(args, "me_layers", None) or 4
    args.me_heads = getattr(args, "me_heads", None) or 4
    args.me_ffn = getattr(args, "me_ffn", None) or 400
    args.me_dropout = getattr(args, "me_dropout", None) if getattr(args, "me_dropout", None) is not None else 0.1


@register_model_architecture("meta_embedding_tagger", "mme_tagger")
def mme_tagger(args):
    args.me_combination = getattr(args, "me_combination", None) or "attention"
    base_architecture(args)


@register_model_architecture("meta_embedding_tagger", "hme_tagger")
def hme_tagger(args):
    args.me_char_cnn = True
    base_architecture(args)
