#!/usr/bin/env python
"""Continued (code-switched) masked-LM pretraining of any Hugging Face encoder with ``Trainer``.

transformers' ``examples/pytorch/language-modeling/run_mlm.py``, with csfair's code-switching and the
fairseq path's guarantees (docs/transformers.md). Options are ``HfArgumentParser``'s ``--snake_case``
(``ModelArguments``, ``DataTrainingArguments``, ``TrainingArguments``), as in transformers' examples.

* Data through ``datasets`` (:mod:`csfair_hf.mlm_data`): ``--train_file``/``--validation_file``
  (text, one example per line, e.g. Moses-tokenised ``.tok``; ``.json``/``.jsonl``; ``.csv``) or
  ``--dataset_name`` (``--cache_dir``), ``--validation_split_percentage`` when there is no validation
  set (its near-copies in the training rows dropped), ``map`` with ``--preprocessing_num_workers``,
  ``--line_by_line`` or run_mlm.py's blocks, ``--max_train_samples``/``--max_eval_samples`` counting
  examples (lines or blocks). ``--max_seq_length`` defaults to the model's limit.
* Batches from :class:`csfair_hf.collator.DataCollatorForCodeSwitchedLM`: the stock
  ``DataCollatorForLanguageModeling`` masking (dynamic), then, with ``--cs_mode multiview|static`` and
  ``--cs_table``, the code-switching of Visser et al. (2025, Sec. 3.1) with csfair's sampler (paper
  defaults: 50% of instances, 3% of words).
* :class:`csfair_hf.trainer.CodeSwitchMLMTrainer`: draws keyed on (seed, epoch, example index), so new
  every epoch, identical with any ``--dataloader_num_workers`` and exactly resumed by
  ``--resume_from_checkpoint``; code-switching rates (``cs_inst``, ``cs_word``, ``cs_same``, ``cs_tok``,
  ``cs_cut``) counted from the batches and logged with the loss.
* ``--do_eval`` (and ``--eval_strategy steps|epoch`` during training): held-out MLM accuracy with the
  metric of ``scripts/eval_mlm.py`` (special tokens never scored; fixed evaluation seed, ``--eval_draws``
  mask draws; a mask digest; ``csfair_hf/mlm_eval.py``), before and after training.

The output directory holds a normal transformers model and tokenizer (``from_pretrained``),
``train_results.json``, ``eval_results.json``, ``all_results.json``, ``trainer_state.json`` (as the
examples write them) and ``csfair_mlm.json``: the options, the tables' checksums, the rates and the
held-out accuracy before and after.

Usage:
    python scripts/run_mlm_cs.py --model_name_or_path bert-base-multilingual-cased \\
        --train_file train.tok --validation_file valid.tok --line_by_line \\
        --cs_table tables/mbert.en-es --cs_mode multiview --do_train --do_eval --output_dir out/mbert-cs \\
        --num_train_epochs 3 --per_device_train_batch_size 32 --learning_rate 5e-5
"""
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional


logger = logging.getLogger("run_mlm_cs")


@dataclass
class ModelArguments:
    """Which model and tokenizer to start from."""

    model_name_or_path: str = field(metadata={"help": "hub id or directory of the masked-LM model to continue"})
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "tokenizer (default: the model's); must be fast"})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "where datasets (and hub files) are cached"})


@dataclass
class DataTrainingArguments:
    """Text, masking and code-switching options."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "a datasets hub id or local dataset directory"})
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "its configuration name"})
    train_file: Optional[str] = field(default=None, metadata={
        "help": "training text: .json/.jsonl, .csv, anything else is text with one example per line"})
    validation_file: Optional[str] = field(default=None, metadata={"help": "held-out text (same format) for --do_eval"})
    text_column_name: Optional[str] = field(default=None, metadata={"help": "default: 'text' if present, else the first column"})
    validation_split_percentage: int = field(default=5, metadata={
        "help": "without a validation set: the first N%% of the training rows become it (those with a near-copy "
                "among the training rows dropped: csfair.evaluation.nearcopy)"})
    line_by_line: bool = field(default=False, metadata={"help": "one example per line (else lines are concatenated "
                                                                  "and cut into max_seq_length blocks, as run_mlm.py)"})
    max_seq_length: Optional[int] = field(default=None, metadata={
        "help": "tokens per example, specials included; also the bound after code-switching (default: the "
                "model's position limit and the tokenizer's model_max_length, whichever is smaller)"})
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "processes of datasets' map"})
    overwrite_cache: bool = field(default=False, metadata={"help": "recompute the tokenised datasets"})
    mlm_probability: float = field(default=0.15, metadata={"help": "masking probability (15%%, dynamic masking)"})
    max_train_samples: Optional[int] = field(default=None, metadata={
        "help": "use only the first N training examples (lines with --line_by_line, else blocks)"})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "use only the first N held-out examples"})
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
    eval_before: bool = field(default=True, metadata={"help": "with --do_train and --do_eval: also score the model before training"})
    record_draws: bool = field(default=False, metadata={
        "help": "append every trained example's draw (step, epoch, index, CRC-32 of input and labels) to "
                "OUTPUT_DIR/draws.tsv"})


def position_limit(model) -> Optional[int]:
    """Tokens the model can take (``max_position_embeddings``, less RoBERTa's two offset positions)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and model.config.model_type in ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl"):
        limit -= 2  # RoBERTa-style positions start after the padding index
    return limit


def evaluate(model, tokenizer, examples, args: DataTrainingArguments) -> dict:
    from csfair.evaluation.mlm import summarize  # the one MLM metric, shared with the fairseq path

    from csfair_hf.mlm_eval import score_mlm

    raw = score_mlm(model, tokenizer, examples, draws=args.eval_draws, seed=args.eval_seed,
                    batch_size=args.eval_batch_size, mlm_probability=args.mlm_probability)
    return summarize(raw)


def main(argv=None, callbacks=None) -> dict:
    """Run as the command line says; returns the report written to ``csfair_mlm.json``.

    Args:
        argv: the options (default ``sys.argv[1:]``; one ``.json`` path: the options as JSON).
        callbacks: extra ``TrainerCallback`` objects (tests).
    """
    from transformers import AutoModelForMaskedLM, HfArgumentParser, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.mlm_data import hub_error, load_raw_datasets, load_tables, tokenize_datasets
    from csfair_hf.tokenization import load_tokenizer
    from csfair_hf.trainer import CodeSwitchMLMTrainer

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
    if not (targs.do_train or targs.do_eval):
        raise SystemExit("nothing to do: give --do_train and/or --do_eval (as run_mlm.py)")
    checkpoint = None
    if targs.do_train:  # which checkpoint to resume from (before any work: a wrong one fails at once)
        checkpoint = targs.resume_from_checkpoint
        last = get_last_checkpoint(targs.output_dir) if os.path.isdir(targs.output_dir) else None
        if checkpoint is not None and checkpoint.lower() in ("true", "last"):
            if last is None:
                raise SystemExit(f"--resume_from_checkpoint {checkpoint}: no checkpoint in {targs.output_dir}")
            checkpoint = last
        elif checkpoint is not None and not os.path.isdir(checkpoint):
            raise SystemExit(f"--resume_from_checkpoint {checkpoint}: no such checkpoint directory")
        elif checkpoint is None and last is not None:
            raise SystemExit(f"{targs.output_dir} holds {os.path.basename(last)}: give --resume_from_checkpoint true "
                             "to continue that run, or another --output_dir")
    set_seed(targs.seed)
    t0 = time.time()

    # ---- model and tokenizer (a hub id that is not cached cannot be fetched offline: say how)
    try:
        tokenizer = load_tokenizer(margs.tokenizer_name or margs.model_name_or_path)
        model = AutoModelForMaskedLM.from_pretrained(margs.model_name_or_path)
    except OSError as err:
        raise SystemExit(hub_error(margs.tokenizer_name or margs.model_name_or_path, err)) from None
    limit = position_limit(model)
    tok_limit = tokenizer.model_max_length if tokenizer.model_max_length < int(1e20) else None
    if dargs.max_seq_length is None:
        known = [x for x in (limit, tok_limit) if x is not None]
        dargs.max_seq_length = min(known) if known else 1024
        if not known:
            logger.warning("neither the model nor the tokenizer states a length limit: --max_seq_length 1024 (run_mlm.py's cap)")
    elif limit is not None and dargs.max_seq_length > limit:
        raise SystemExit(f"--max_seq_length {dargs.max_seq_length} > the model's {limit} positions")
    unit = "lines" if dargs.line_by_line else "blocks"

    # ---- data (datasets: load, map with word ids, select)
    try:
        raw, text_column, split_info = load_raw_datasets(
            dargs.train_file if targs.do_train else None,
            dargs.validation_file if targs.do_eval else None,
            dargs.dataset_name, dargs.dataset_config_name,
            dargs.validation_split_percentage if targs.do_eval else 0, margs.cache_dir, dargs.text_column_name)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err)) from None
    if split_info["validation_split_percentage"]:
        print(f"validation: the first {split_info['validation_split_percentage']}% of the training rows "
              f"({split_info['validation_copies_dropped']} near-copies of training rows dropped)", flush=True)
    ds = tokenize_datasets(raw, tokenizer, text_column, dargs.max_seq_length, dargs.line_by_line,
                           dargs.preprocessing_num_workers, dargs.overwrite_cache)
    train = valid = None
    if targs.do_train:
        if "train" not in ds:
            raise SystemExit("--do_train needs --train_file or a dataset with a train split")
        train = ds["train"]
        if dargs.max_train_samples is not None:
            train = train.select(range(min(len(train), dargs.max_train_samples)))
        if len(train) == 0:
            raise SystemExit(f"no training {unit} (lines shorter than a block?)")
    if targs.do_eval:
        if "validation" not in ds:
            raise SystemExit("--do_eval needs --validation_file, a dataset with a validation split, or "
                             "--validation_split_percentage > 0")
        valid = ds["validation"]
        if dargs.max_eval_samples is not None:
            valid = valid.select(range(min(len(valid), dargs.max_eval_samples)))
        if len(valid) == 0:
            raise SystemExit(f"no validation {unit}")
    how = f"lines (truncated to {dargs.max_seq_length} tokens)" if dargs.line_by_line else \
        f"blocks of {dargs.max_seq_length} tokens"
    print(f"examples: {len(train) if train is not None else 0:,} training and "
          f"{len(valid) if valid is not None else 0:,} validation {how}", flush=True)

    # ---- collator, report, trainer
    tables = load_tables(dargs.cs_table, dargs.cs_temperature, dargs.cs_min_prob)
    collator = DataCollatorForCodeSwitchedLM(
        tokenizer, mlm_probability=dargs.mlm_probability, cs_tables=tables, cs_mode=dargs.cs_mode,
        cs_instance_prob=dargs.cs_instance_prob, cs_word_prob=dargs.cs_word_prob, max_seq_length=dargs.max_seq_length,
        cs_overflow=dargs.cs_overflow, pad_to_multiple_of=None, seed=targs.seed,
    )
    report = dict(model_name_or_path=margs.model_name_or_path, data=asdict(dargs), examples_unit=unit,
                  train_examples=len(train) if train is not None else 0,
                  eval_examples=len(valid) if valid is not None else 0, validation_split=split_info,
                  tables=[dict(path=p, checksum=t.meta.get("checksum") or t.checksum(), src_lang=t.meta.get("src_lang"),
                               tgt_lang=t.meta.get("tgt_lang")) for p, t in zip(dargs.cs_table, tables)],
                  seed=targs.seed)
    last_eval = {}

    def held_out(m):
        last_eval["result"] = evaluate(m, tokenizer, valid, dargs)
        r = last_eval["result"]
        return dict(r, loss=r["loss_bits"] * 0.6931471805599453)  # nats, Trainer's eval_loss

    if valid is not None and train is not None and dargs.eval_before:
        report["mlm_before"] = evaluate(model, tokenizer, valid, dargs)
        _print_acc("before", report["mlm_before"], unit)
    trainer = CodeSwitchMLMTrainer(
        model=model, args=targs, train_dataset=train, eval_dataset=valid, data_collator=collator,
        processing_class=tokenizer, callbacks=callbacks, held_out_eval=held_out if valid is not None else None,
        draw_log=os.path.join(targs.output_dir, "draws.tsv") if dargs.record_draws else None)
    if train is not None:
        os.makedirs(targs.output_dir, exist_ok=True)
        result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()  # model + tokenizer, loadable with from_pretrained
        metrics = dict(result.metrics, train_samples=len(train))
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        report["train"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        report["resumed_from"] = checkpoint
        report["cs_rates"] = trainer.cs_rates.rates() if collator.code_switching else None
        if report["cs_rates"]:
            r = report["cs_rates"]
            print(f"code-switching over the run ({r['instances']:,} {unit}): cs_inst {r['cs_inst']:.4f}, cs_word "
                  f"{r['cs_word']:.4f} ({r['replaced']:,} of {r['eligible']:,} eligible words), cs_same {r['cs_same']:.4f}, "
                  f"cs_tok {r['cs_tok']:.4f}, cs_cut {r['cs_cut']:.4f}", flush=True)
        report["loss_log"] = [dict(step=h["step"], loss=h["loss"]) for h in trainer.state.log_history if "loss" in h]
    if valid is not None:
        metrics = dict(trainer.evaluate(), eval_samples=len(valid))
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        key = "mlm_after" if train is not None else "mlm"
        report[key] = last_eval["result"]
        _print_acc("after" if train is not None else "model", report[key], unit)
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


def _print_acc(name: str, s: dict, unit: str = "lines") -> None:
    print(f"MLM accuracy ({name}): {100 * s['accuracy']:.2f} ± {100 * s['accuracy_se']:.2f} % (± SE over "
          f"{s['sentences']:,} {unit}; mask draws ± {100 * s['accuracy_se_draws']:.2f}; pooled over "
          f"{len(s['accuracy_per_draw'])} draws, {s['masked_tokens']:,} scored tokens; mask digest "
          f"{s['mask_digest'][:12]})", flush=True)


if __name__ == "__main__":
    main()
