"""Hugging Face transformers glue for csfair (as ``user_dir/`` is the fairseq glue).

The method stays framework-free in ``csfair/``, which never imports transformers; the modules here
adapt it to transformers models, tokenizers and the Hub (fine-tuning columns of the zero-shot
runner, model cards of exported checkpoints, ...). They may import ``csfair`` and transformers /
huggingface_hub, never ``user_dir`` or fairseq.
"""
