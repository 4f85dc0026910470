"""Model ``csfair_roberta_fast``: fairseq's RoBERTa with a faster encoder and the same parameters.

The module tree, parameter names, initialisation (the same random draws in the same order) and
state dict are those of fairseq's ``roberta`` model, so a checkpoint of either loads strictly into
the other and exports to transformers exactly as before (``scripts/hf_convert.py``). Only the
forward computation of the sentence encoder differs (issue 13, part 3):

* batch-first activations (B x T x C) through the whole stack, without fairseq's per-layer
  time-major reshapes; the encoder still returns fairseq's time-major ``encoder_out`` and
  ``inner_states`` (as views);
* one packed QKV projection: ``F.linear`` on the concatenation of the ``q_proj``/``k_proj``/
  ``v_proj`` weights (the three parameters stay as they are; autograd splits the gradient);
* a direct ``F.scaled_dot_product_attention`` call with a boolean key-padding mask broadcast
  over heads and queries, instead of fairseq's float ``-inf`` mask expanded to B*H copies;
* GELU on the activation's own dtype (PyTorch computes half/bfloat16 GELU in float32 internally
  and rounds once, which is what ``gelu(x.float()).type_as(x)`` does, without the float copy);
* no host synchronisation: fairseq tests ``padding_mask.any()`` to decide whether to pass a mask;
  on an accelerator the mask is always passed (a mask without padding changes nothing).

With dropout 0 the outputs equal stock fairseq's up to floating-point summation order
(tests/test_fast_encoder.py checks 1e-5 in fp32). With dropout, attention dropout uses SDPA's
``dropout_p`` as stock fairseq's ``F.multi_head_attention_forward`` path already does; the random
masks are not guaranteed to match stock's.

Options outside the fast path (quantisation noise, xFormers attention, an explicit ``attn_mask``)
fall back to fairseq's own layer code with the same parameters.

Architectures: ``csfair_roberta_fast_base`` (fairseq's ``roberta_base``: 12 layers, 768 hidden,
12 heads, 3072 FFN) and ``csfair_roberta_fast_tiny`` (``cs_roberta_tiny``: 4 layers, 256 hidden,
4 heads, 1024 FFN).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model, register_model_architecture
from fairseq.models.roberta.model import RobertaEncoder, RobertaModel, base_architecture
from fairseq.models.transformer import TransformerConfig, TransformerEncoder
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase
from fairseq.modules.transformer_sentence_encoder import init_bert_params
from fairseq.utils import safe_getattr, safe_hasattr

from .cs_roberta import cs_roberta_tiny_architecture


class CsfairFastEncoderLayer(TransformerEncoderLayerBase):
    """fairseq's post/pre-norm encoder layer (same submodules and parameters), batch-first.

    ``forward(x, encoder_padding_mask)``: ``x`` float (B, T, C); ``encoder_padding_mask`` bool
    (B, T), True at padding, or None; returns (B, T, C) in ``x``'s dtype.
    """

    def __init__(self, cfg, return_fc=False):
        super().__init__(cfg, return_fc=return_fc)
        # quantisation noise hooks act on the separate projection modules and xFormers replaces the
        # attention kernel: both keep fairseq's own code path
        self.fast = not (cfg.quant_noise.pq > 0 or self.self_attn.use_xformers or return_fc)
        if cfg.activation_fn == "gelu":
            self.activation_fn = F.gelu

    def _attention(self, x: torch.Tensor, keep: Optional[torch.Tensor]) -> torch.Tensor:
        a = self.self_attn
        bsz, tgt_len, dim = x.shape
        w = torch.cat((a.q_proj.weight, a.k_proj.weight, a.v_proj.weight))
        b = torch.cat((a.q_proj.bias, a.k_proj.bias, a.v_proj.bias))
        # (B, T, 3C) -> 3 x (B, H, T, D), views of one projection
        qkv = F.linear(x, w, b).view(bsz, tgt_len, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        p = a.dropout_module.p if (self.training or a.dropout_module.apply_during_inference) else 0.0
        # the scale is SDPA's default 1/sqrt(D), fairseq's ``scaling``
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        out = out.transpose(1, 2).reshape(bsz, tgt_len, dim)
        return F.linear(out, a.out_proj.weight, a.out_proj.bias)

    def forward(self, x, encoder_padding_mask: Optional[torch.Tensor], attn_mask: Optional[torch.Tensor] = None,
                keep_mask: Optional[torch.Tensor] = None):
        """``keep_mask``: bool, broadcastable to (B, H, T, T), True where attention is allowed
        (``~encoder_padding_mask[:, None, None, :]``; the encoder computes it once for all layers)."""
        if not self.fast or attn_mask is not None:
            y = super().forward(x.transpose(0, 1), encoder_padding_mask, attn_mask=attn_mask)
            return y.transpose(0, 1)
        if keep_mask is None and encoder_padding_mask is not None:
            keep_mask = ~encoder_padding_mask[:, None, None, :]
        residual = x
        if self.normalize_before:
            x = self.self_attn_layer_norm(x)
        x = self._attention(x, keep_mask)
        x = self.dropout_module(x)
        x = residual + x
        if not self.normalize_before:
            x = self.self_attn_layer_norm(x)
        residual = x
        if self.normalize_before:
            x = self.final_layer_norm(x)
        x = self.activation_fn(self.fc1(x))
        x = self.activation_dropout_module(x)
        x = self.fc2(x)
        x = self.dropout_module(x)
        x = residual + x
        if not self.normalize_before:
            x = self.final_layer_norm(x)
        return x


class CsfairFastTransformerEncoder(TransformerEncoder):
    """fairseq's ``TransformerEncoder`` (same modules) running :class:`CsfairFastEncoderLayer`.

    Returns fairseq's dictionary: ``encoder_out`` [(T, B, C)], ``encoder_padding_mask`` [(B, T)
    bool], ``encoder_states`` [(T, B, C), ...] when ``return_all_hiddens``.
    """

    def build_encoder_layer(self, args):
        # as TransformerEncoderBase.build_encoder_layer, with the fast layer class
        cfg = TransformerConfig.from_namespace(args)
        layer = CsfairFastEncoderLayer(cfg)
        checkpoint = cfg.checkpoint_activations
        if checkpoint:
            layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
        min_params_to_wrap = cfg.min_params_to_wrap if not checkpoint else 0
        return fsdp_wrap(layer, min_num_params=min_params_to_wrap)

    def forward_scriptable(self, src_tokens, src_lengths: Optional[torch.Tensor] = None,
                           return_all_hiddens: bool = False, token_embeddings: Optional[torch.Tensor] = None):
        encoder_padding_mask = src_tokens.eq(self.padding_idx)
        x, encoder_embedding = self.forward_embedding(src_tokens, token_embeddings)
        # zero the padding positions, as fairseq (multiplying by 1 where there is none is exact)
        x = x * (1 - encoder_padding_mask.unsqueeze(-1).type_as(x))
        # Deciding to drop the mask needs .any(), a host sync on an accelerator: only on CPU,
        # where it is free, is an unpadded batch run without a mask.
        pad = encoder_padding_mask
        if src_tokens.device.type == "cpu" and not bool(pad.any()):
            pad = None
        keep = None if pad is None else ~pad[:, None, None, :]
        encoder_states = []
        if return_all_hiddens:
            encoder_states.append(x.transpose(0, 1))
        for layer in self.layers:
            x = layer(x, encoder_padding_mask=pad, keep_mask=keep)
            if return_all_hiddens:
                encoder_states.append(x.transpose(0, 1))
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        src_lengths = src_tokens.ne(self.padding_idx).sum(dim=1, dtype=torch.int32).reshape(-1, 1).contiguous()
        return {
            "encoder_out": [x.transpose(0, 1)],  # T x B x C
            "encoder_padding_mask": [encoder_padding_mask],  # B x T
            "encoder_embedding": [encoder_embedding],  # B x T x C
            "encoder_states": encoder_states,  # List[T x B x C]
            "fc_results": [],
            "src_tokens": [],
            "src_lengths": [src_lengths],
        }


class CsfairFastRobertaEncoder(RobertaEncoder):
    """fairseq's ``RobertaEncoder`` whose ``sentence_encoder`` is :class:`CsfairFastTransformerEncoder`."""

    def build_encoder(self, args, dictionary, embed_tokens):
        encoder = CsfairFastTransformerEncoder(args, dictionary, embed_tokens)
        encoder.apply(init_bert_params)
        if safe_getattr(args, "compile_encoder_layers", False):
            # nn.Module.compile compiles in place: parameter names and the state dict are unchanged
            for layer in encoder.layers:
                layer.compile(dynamic=safe_getattr(args, "compile_dynamic", None))
        return encoder

    def output_layer(self, features, masked_tokens=None, **unused):
        """LM head on ``features`` (B, T, C). ``masked_tokens``: None (all positions), a bool (B, T)
        mask (fairseq's; boolean indexing synchronises with the host on an accelerator), or int64
        flat positions (N,) into the B*T positions, e.g. computed by a collater, which select the
        same rows (in row-major order when sorted) without a synchronisation. Returns (N, vocab)."""
        if masked_tokens is not None and masked_tokens.dtype != torch.bool:
            features = features.reshape(-1, features.size(-1)).index_select(0, masked_tokens)
            masked_tokens = None
        return self.lm_head(features, masked_tokens)


@register_model("csfair_roberta_fast")
class CsfairRobertaFastModel(RobertaModel):
    """fairseq's ``RobertaModel`` with :class:`CsfairFastRobertaEncoder` (same state dict)."""

    @staticmethod
    def add_args(parser):
        RobertaModel.add_args(parser)
        parser.add_argument("--compile-encoder-layers", action="store_true", default=False,
                            help="torch.compile each encoder layer in place (off by default; the first "
                                 "batches of each shape compile, minutes on CPU)")
        parser.add_argument("--compile-dynamic", type=lambda s: {"true": True, "false": False}[s.lower()],
                            default=None, metavar="BOOL",
                            help="torch.compile's dynamic= for --compile-encoder-layers (true/false; "
                                 "default: PyTorch's automatic choice after a shape change)")

    @classmethod
    def build_model(cls, args, task):
        """As ``RobertaModel.build_model``, with the fast encoder (same modules, same random draws)."""
        from omegaconf import OmegaConf

        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, False)
        base_architecture(args)
        if not safe_hasattr(args, "max_positions"):
            if not safe_hasattr(args, "tokens_per_sample"):
                args.tokens_per_sample = task.max_positions()
            args.max_positions = args.tokens_per_sample
        encoder = CsfairFastRobertaEncoder(args, task.source_dictionary)
        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, True)
        return cls(args, encoder)


@register_model_architecture("csfair_roberta_fast", "csfair_roberta_fast_base")
def csfair_roberta_fast_base_architecture(args):
    base_architecture(args)


@register_model_architecture("csfair_roberta_fast", "csfair_roberta_fast_tiny")
def csfair_roberta_fast_tiny_architecture(args):
    cs_roberta_tiny_architecture(args)
