"""``tlm_roberta``: fairseq RoBERTa that accepts explicit position ids (for TLM's position reset).

XLM's translation language modelling (Lample & Conneau, 2019) restarts the positions of the second
sentence of a pair. fairseq's RoBERTa computes positions from the tokens; this model takes an
optional ``positions`` input ``(B, T)`` and otherwise behaves, and saves, exactly like RoBERTa (the
same parameter names), so TLM checkpoints fine-tune with the usual tasks.

Architectures: ``tlm_roberta_tiny`` (= ``cs_roberta_tiny``), ``tlm_roberta_base`` (= ``roberta_base``).
"""
import torch.nn.functional as F
from fairseq.models import register_model, register_model_architecture
from fairseq.models.roberta import RobertaModel
from fairseq.models.roberta.model import base_architecture
from fairseq.modules import LearnedPositionalEmbedding

from .cs_roberta import cs_roberta_tiny_architecture


class ResettablePositionalEmbedding(LearnedPositionalEmbedding):
    """Learned positions; uses ``self.override`` (B, T) when it is set."""

    override = None

    def forward(self, input, incremental_state=None, positions=None):
        if positions is None and self.override is not None:
            # explicit ids (padding_idx rows for padding), bypassing fairseq's make_positions
            return F.embedding(self.override, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.sparse)
        return super().forward(input, incremental_state=incremental_state, positions=positions)


@register_model("tlm_roberta")
class TlmRobertaModel(RobertaModel):
    """RoBERTa with an optional ``positions`` input."""

    @classmethod
    def build_model(cls, args, task):
        model = super().build_model(args, task)
        enc = model.encoder.sentence_encoder
        old = enc.embed_positions
        if isinstance(old, LearnedPositionalEmbedding):
            new = ResettablePositionalEmbedding(old.num_embeddings, old.embedding_dim, old.padding_idx)
            new.weight = old.weight
            new.max_positions = old.max_positions
            enc.embed_positions = new
        return model

    def forward(self, src_tokens, features_only=False, return_all_hiddens=False, classification_head_name=None,
                positions=None, **kwargs):
        pe = self.encoder.sentence_encoder.embed_positions
        pe.override = positions
        try:
            return super().forward(src_tokens, features_only, return_all_hiddens, classification_head_name, **kwargs)
        finally:
            pe.override = None


@register_model_architecture("tlm_roberta", "tlm_roberta_tiny")
def tlm_roberta_tiny_architecture(args):
    cs_roberta_tiny_architecture(args)


@register_model_architecture("tlm_roberta", "tlm_roberta_base")
def tlm_roberta_base_architecture(args):
    base_architecture(args)
