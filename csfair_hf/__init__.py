"""csfair_hf: thin Hugging Face transformers glue for csfair's framework-free method code.

Like ``user_dir/`` for fairseq, this package may import transformers; ``csfair/`` never does
(tests/test_layout.py). Modules: :mod:`csfair_hf.tokenization` (examples that keep the fast
tokenizer's word ids, the word encoder that builds substitution tables for a transformers
tokenizer), :mod:`csfair_hf.collator` (the code-switching MLM data collator for ``Trainer``),
:mod:`csfair_hf.trainer` (``CodeSwitchMLMTrainer``: draws keyed on (seed, epoch, index) with any number
of DataLoader workers and across resumes, rates counted from the batches, the held-out MLM metric),
:mod:`csfair_hf.mlm_data` (run_mlm.py's ``datasets`` loading and map functions, hub download hints),
:mod:`csfair_hf.probe` (token/sentence classification heads on a frozen transformers encoder),
:mod:`csfair_hf.mlm_eval` (held-out MLM accuracy: the transformers front end of csfair.evaluation.mlm),
:mod:`csfair_hf.finetune` and :mod:`csfair_hf.zeroshot` (``NAME=hf:PATH`` columns of
scripts/zeroshot.py: the runner's TransformersBackend), :mod:`csfair_hf.model_card` (the card written by scripts/hf_convert.py export).
"""
