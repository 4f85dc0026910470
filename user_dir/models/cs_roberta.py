"""RoBERTa architectures for code-switched pretraining.

* ``cs_roberta_base``: fairseq's ``roberta_base`` (12 layers, 768 hidden, 12 heads, 3072 FFN),
  the BERT-base size of Visser et al. (2025), Section 3.3. Pair it with
  ``--tokens-per-sample 128`` (their reduced sequence length) and batch 512.
* ``cs_roberta_tiny``: 4 layers, 256 hidden, 4 heads, 1024 FFN, for CPU demos and tests.
"""
from fairseq.models import register_model_architecture
from fairseq.models.roberta.model import base_architecture
from fairseq.utils import safe_getattr


@register_model_architecture("roberta", "cs_roberta_base")
def cs_roberta_base_architecture(args):
    base_architecture(args)


@register_model_architecture("roberta", "cs_roberta_tiny")
def cs_roberta_tiny_architecture(args):
    args.encoder_layers = safe_getattr(args, "encoder_layers", 4)
    args.encoder_embed_dim = safe_getattr(args, "encoder_embed_dim", 256)
    args.encoder_ffn_embed_dim = safe_getattr(args, "encoder_ffn_embed_dim", 1024)
    args.encoder_attention_heads = safe_getattr(args, "encoder_attention_heads", 4)
    base_architecture(args)
