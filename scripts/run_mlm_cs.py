#!/usr/bin/env python
"""Continued (code-switched) masked-LM pretraining of any Hugging Face encoder with ``Trainer``.

Shaped like transformers' ``examples/pytorch/language-modeling/run_mlm.py`` (``HfArgumentParser``
with ``ModelArguments``, ``DataTrainingArguments`` and ``TrainingArguments``), on plain text files
(one sentence per line, Moses-tokenised like csfair's tables), without the ``datasets`` library.
Batches come from :class:`csfair_hf.collator.DataCollatorForCodeSwitchedLM`: the stock
``DataCollatorForLanguageModeling`` masking (dynamic: new masks every epoch), then, with
``--cs_mode multiview|static`` and ``--cs_table``, the code-switching of Visser et al. (2025,
Sec. 3.1) with csfair's sampler (paper defaults: 50% of instances, 3% of words). The code-switching
rates are logged with the loss (``cs_inst``, ``cs_word``, ``cs_tok``).

The output directory holds a normal transformers model and tokenizer (``from_pretrained``), plus
``csfair_mlm.json``: the code-switching options, the tables' checksums and the held-out MLM accuracy
(``--validation_file``) of the model before and after training with the metric of
``scripts/eval_mlm.py`` (special tokens never scored; fixed evaluation seed, ``--eval_draws`` mask
draws, mean ± standard error; ``csfair_hf/mlm_eval.py``).

Usage:
    python scripts/run_mlm_cs.py --model_name_or_path bert-base-multilingual-cased \\
        --train_file train.tok --validation_file valid.tok --line_by_line --max_seq_length 128 \\
        --cs_table tables/mbert.en-es --cs_mode multiview --output_dir out/mbert-cs \\
        --num_train_epochs 3 --per_device_train_batch_size 32 --learning_rate 5e-5
"""
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "scripts")):
    if p not in sys.path:
        sys.path.insert(0, p)

logger = logging.getLogger("run_mlm_cs")


@dataclass
class ModelArguments:
    """Which model and tokenizer to start from."""

    model_name_or_path: str = field(metadata={"help": "hub id or directory of the masked-LM model to continue"})
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "tokenizer (default: the model's); must be fast"})


@dataclass
class DataTrainingArguments:
    """Text, masking and code-switching options."""

    train_file: Optional[str] = field(default=None, metadata={"help": "training text, one sentence per line"})
    validation_file: Optional[str] = field(default=None, metadata={"help": "held-out text for the MLM accuracy"})
    line_by_line: bool = field(default=False, metadata={"help": "one example per line (else lines are concatenated "
                                                                  "and cut into max_seq_length blocks, as run_mlm.py)"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per example, specials included; also the "
                                                                "bound after code-switching"})
    mlm_probability: float = field(default=0.15, metadata={"help": "masking probability (15%, dynamic masking)"})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "use only the first N training lines"})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "use only the first N held-out lines"})
    cs_table: List[str] = field(default_factory=list, metadata={
        "help": "substitution table directory (csfair-lexicon table --hf-tokenizer) for the training text's language "
                "(one; the collator itself takes one table per language through the examples' cs_table index)"})
    cs_mode: str = field(default="none", metadata={"help": "none | static | multiview (the paper's method)"})
    cs_instance_prob: float = field(default=0.5, metadata={"help": "probability that an instance is code-switched (paper 0.5)"})
    cs_word_prob: float = field(default=0.03, metadata={"help": "probability that an eligible word is replaced (paper 0.03)"})
    cs_overflow: str = field(default="truncate", metadata={
        "help": "truncate | drop: a replacement that passes max_seq_length cuts the instance's tail (default: keeps the "
                "word rate and candidate distribution in full blocks) or is dropped"})
    cs_temperature: Optional[float] = field(default=None, metadata={"help": "re-normalise the table with this T (default: the table's, paper 3)"})
    cs_min_prob: Optional[float] = field(default=None, metadata={"help": "stricter p threshold than the table's (paper 0.02)"})
    eval_draws: int = field(default=5, metadata={"help": "mask draws of the held-out MLM accuracy"})
    eval_seed: int = field(default=1, metadata={"help": "masking seed of the evaluation (not the training seed)"})
    eval_batch_size: int = field(default=64, metadata={"help": "batch size of the evaluation (fixed: the masks depend on it)"})
    eval_before: bool = field(default=True, metadata={"help": "also score the model before training"})


def load_tables(args: DataTrainingArguments):
    from csfair.pretraining.substitution_table import SubstitutionTable

    tables = []
    for path in args.cs_table:
        t = SubstitutionTable.load(path)
        if args.cs_temperature is not None or args.cs_min_prob is not None:
            t = t.with_sampling(args.cs_temperature if args.cs_temperature is not None else t.meta["temperature"],
                                args.cs_min_prob if args.cs_min_prob is not None else t.meta["min_prob"])
        tables.append(t)
    return tables


def make_examples(tokenizer, path: str, args: DataTrainingArguments, limit: Optional[int]):
    from csfair_hf.tokenization import group_lines, read_lines, tokenize_lines

    if not os.path.exists(path):
        raise SystemExit(f"{path}: no such file")
    lines = read_lines(path, limit)
    if not lines:
        raise SystemExit(f"{path}: no text")
    if args.line_by_line:
        return tokenize_lines(tokenizer, lines, args.max_seq_length)
    return group_lines(tokenizer, lines, args.max_seq_length)


def evaluate(model, tokenizer, examples, args: DataTrainingArguments) -> dict:
    from eval_mlm import summarize

    from csfair_hf.mlm_eval import score_mlm

    raw = score_mlm(model, tokenizer, examples, draws=args.eval_draws, seed=args.eval_seed,
                    batch_size=args.eval_batch_size, mlm_probability=args.mlm_probability)
    return summarize(raw)


def main(argv=None) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModelForMaskedLM, HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed

    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.tokenization import load_tokenizer

    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        margs, dargs, targs = parser.parse_json_file(json_file=os.path.abspath(sys.argv[1]))
    else:
        margs, dargs, targs = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if dargs.cs_mode != "none" and not dargs.cs_table:
        raise SystemExit("--cs_mode multiview/static needs --cs_table")
    if len(dargs.cs_table) > 1:
        raise SystemExit("--cs_table: one table (the training text is one language)")
    set_seed(targs.seed)
    t0 = time.time()
    tokenizer = load_tokenizer(margs.tokenizer_name or margs.model_name_or_path)
    model = AutoModelForMaskedLM.from_pretrained(margs.model_name_or_path)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and model.config.model_type in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa-style positions start after the padding index
    if limit is not None and dargs.max_seq_length > limit:
        raise SystemExit(f"--max_seq_length {dargs.max_seq_length} > the model's {limit} positions")
    tables = load_tables(dargs)
    collator = DataCollatorForCodeSwitchedLM(
        tokenizer, mlm_probability=dargs.mlm_probability, cs_tables=tables, cs_mode=dargs.cs_mode,
        cs_instance_prob=dargs.cs_instance_prob, cs_word_prob=dargs.cs_word_prob, max_seq_length=dargs.max_seq_length,
        cs_overflow=dargs.cs_overflow, pad_to_multiple_of=None,
    )
    train = make_examples(tokenizer, dargs.train_file, dargs, dargs.max_train_samples) if dargs.train_file else None
    valid = make_examples(tokenizer, dargs.validation_file, dargs, dargs.max_eval_samples) if dargs.validation_file else None
    report = dict(model_name_or_path=margs.model_name_or_path, data=asdict(dargs),
                  tables=[dict(path=p, checksum=t.meta.get("checksum") or t.checksum(), src_lang=t.meta.get("src_lang"),
                               tgt_lang=t.meta.get("tgt_lang")) for p, t in zip(dargs.cs_table, tables)],
                  seed=targs.seed)
    if valid is not None and dargs.eval_before:
        report["mlm_before"] = evaluate(model, tokenizer, valid, dargs)
        _print_acc("before", report["mlm_before"])

    class CodeSwitchRates(TrainerCallback):
        """Adds the collator's code-switching rates since the last log to Trainer's logs."""

        def on_log(self, args, state, control, logs=None, **kw):
            if logs is not None and collator.code_switching and "loss" in logs:
                r = collator.cs_rates()
                logs.update(cs_inst=round(r["cs_inst"], 4), cs_word=round(r["cs_word"], 4), cs_tok=round(r["cs_tok"], 4))
                report.setdefault("cs_rates_log", []).append(dict(step=state.global_step, **r))
                collator.reset_counts()

    if train is not None and not targs.do_train:
        logger.warning("--train_file without --do_train: not training (as run_mlm.py)")
        train = None
    if train is not None:
        if targs.dataloader_num_workers:
            logger.warning("dataloader_num_workers > 0: the code-switching rates are counted in the workers and not logged")
        # the collator reads word_ids, which are no argument of the model's forward: keep them
        targs.remove_unused_columns = False
        trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=collator,
                          processing_class=tokenizer, callbacks=[CodeSwitchRates()])
        result = trainer.train()
        trainer.save_model()  # model + tokenizer, loadable with from_pretrained
        report["train"] = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
        report["cs_rates"] = collator.cs_rates() if collator.code_switching else None
        rates = report.get("cs_rates_log", [])
        if rates:
            tot = {k: sum(r[k] for r in rates) for k in ("instances", "eligible", "replaced", "tokens", "changed_tokens")}
            report["cs_rates"] = dict(tot, cs_word=tot["replaced"] / max(tot["eligible"], 1),
                                      cs_tok=tot["changed_tokens"] / max(tot["tokens"], 1))
    if valid is not None:
        report["mlm_after" if train is not None else "mlm"] = evaluate(model, tokenizer, valid, dargs)
        _print_acc("after" if train is not None else "model", report["mlm_after" if train is not None else "mlm"])
    report["seconds"] = round(time.time() - t0, 1)
    os.makedirs(targs.output_dir, exist_ok=True)
    from csfair.io import atomic_write

    with atomic_write(os.path.join(targs.output_dir, "csfair_mlm.json")) as fh:
        json.dump(_plain(report), fh, indent=1)
    return report


def _plain(x):
    import numpy as np

    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x


def _print_acc(name: str, s: dict) -> None:
    print(f"MLM accuracy ({name}): {100 * s['accuracy']:.2f} ± {100 * s['accuracy_se']:.2f} % (± SE over "
          f"{s['sentences']:,} sentences; mask draws ± {100 * s['accuracy_se_draws']:.2f}; pooled over "
          f"{len(s['accuracy_per_draw'])} draws, {s['masked_tokens']:,} scored tokens; mask digest "
          f"{s['mask_digest'][:12]})", flush=True)


if __name__ == "__main__":
    main()
