"""``csfair-prep``: text preparation steps of the recipes (split, held-out audit, Moses, sentencepiece,
dictionary).

Every subcommand writes its outputs atomically and prints what it produced, so a recipe can
skip a step whose output exists.
"""
import argparse
import json
import random
import sys

from csfair.cli import run_cli
from csfair.io import LineIssues, atomic_write, iter_lines


def cmd_split(args) -> None:
    """Shuffle a monolingual corpus (seeded) and write train/valid/test splits."""
    issues = LineIssues(args.input, strict=args.strict)
    lines = [t for _, t in iter_lines(args.input, issues, max_chars=args.max_chars)]
    issues.report()
    order = list(range(len(lines)))
    random.Random(args.seed).shuffle(order)
    n_test, n_valid = args.test, args.valid
    if n_test + n_valid >= len(lines):
        raise SystemExit(f"{args.input}: {len(lines)} usable lines, cannot hold out {n_valid} + {n_test}")
    parts = {
        "test": order[:n_test],
        "valid": order[n_test:n_test + n_valid],
        "train": order[n_test + n_valid:],
    }
    if args.max_train is not None:
        parts["train"] = parts["train"][: args.max_train]
    counts = {}
    for name, idx in parts.items():
        if not idx and name != "train":
            continue
        with atomic_write(f"{args.out_prefix}.{name}.txt") as fh:
            for i in sorted(idx):  # keep corpus order inside a split
                fh.write(lines[i] + "\n")
        counts[name] = len(idx)
    print(json.dumps({"input": args.input, "usable_lines": len(lines), "skipped": issues.total, **counts}))


def _lang_path(spec: str, what: str):
    if ":" not in spec:
        raise SystemExit(f"{what} expects LANG:PATH, got {spec!r}")
    return spec.split(":", 1)


def _eval_splits(args):
    from csfair.evaluation.overlap import task_eval_splits

    if args.eval_tasks == "none":
        return []
    langs = [x for x in args.eval_langs.split(",") if x]
    tasks = None if args.eval_tasks == "all" else [x for x in args.eval_tasks.split(",") if x]
    try:
        return task_eval_splits(langs, seed=args.eval_seed, tasks=tasks)
    except KeyError as e:
        raise SystemExit(str(e.args[0]))


def _near_copy(args) -> dict:
    """The near-copy options given (the library's defaults for the others)."""
    return {k: v for k, v in (("n", args.ngram), ("threshold", args.ngram_threshold)) if v is not None}


def cmd_split_pair(args) -> None:
    """Held-out split of a language pair's text: test set and evaluation data out of all training text."""
    from csfair.evaluation.overlap import split_pair

    mono = dict(_lang_path(m, "--mono") for m in args.mono)
    if args.tgt_lang not in mono:
        raise SystemExit(f"--tgt-lang {args.tgt_lang} has no --mono {args.tgt_lang}:PATH")
    parallel = None
    if args.parallel_src or args.parallel_tgt:
        if not (args.parallel_src and args.parallel_tgt and args.src_lang):
            raise SystemExit("parallel text needs --parallel-src, --parallel-tgt and --src-lang")
        parallel = (args.parallel_src, args.parallel_tgt)
    try:
        stats = split_pair(mono, args.tgt_lang, parallel, args.out_dir, _eval_splits(args), args.test, args.valid,
                           max_train=args.max_train, seed=args.seed, max_chars=args.max_chars, src_lang=args.src_lang,
                           **_near_copy(args))
    except ValueError as e:
        raise SystemExit(str(e))
    print(json.dumps({k: v for k, v in stats.items() if k != "eval_splits"}))


def cmd_audit(args) -> None:
    """Copies and near-copies of every evaluation item in the training/lexicon inputs; exit status 1 on a test hit."""
    from csfair.evaluation.overlap import audit, file_eval_split, format_audit, translation_splits, write_audit

    inputs = {}
    for spec in args.input:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--input expects NAME=PATH, got {spec!r}")
        inputs[name] = path
    splits = []
    for spec in args.test_file:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--test-file expects NAME=PATH, got {spec!r}")
        splits.append(file_eval_split(name, path, kind="test"))
    splits += _eval_splits(args)
    base = list(splits)
    for spec in args.translations:
        src, sep, tgt = spec.partition(":")
        if not sep or not tgt:
            raise SystemExit(f"--translations expects SRC_FILE:TGT_FILE, got {spec!r}")
        splits += translation_splits(base, src, tgt)
    report = audit(inputs, splits, **_near_copy(args))  # a bad --ngram/--ngram-threshold: exit 2 (run_cli)
    print(format_audit(report, max_hits=args.max_hits))
    if args.json:
        write_audit(report, args.json)
        print(f"audit written to {args.json}")
    if not report["ok"]:
        raise SystemExit(1)


def cmd_moses(args) -> None:
    """Moses-tokenise a file (sacremoses, no escaping)."""
    from tqdm import tqdm

    from csfair.text import moses_tokenize_lines

    issues = LineIssues(args.input, strict=args.strict)
    lines = [t for _, t in iter_lines(args.input, issues, max_chars=args.max_chars)]
    issues.report()
    n = 0
    with atomic_write(args.output) as fh:
        for out in tqdm(
            moses_tokenize_lines(lines, args.lang, args.lowercase, args.workers),
            total=len(lines), desc=f"moses {args.lang}", unit="line", mininterval=2.0, disable=args.quiet,
        ):
            if out:
                fh.write(out + "\n")
                n += 1
    print(json.dumps({"input": args.input, "output": args.output, "lines": n, "skipped": issues.total}))


def cmd_spm_train(args) -> None:
    """Train a shared sentencepiece model on an equal number of characters per language."""
    from csfair.pretraining.vocab import train_sentencepiece

    inputs = {}
    for spec in args.input:
        if ":" not in spec:
            raise SystemExit(f"--input expects LANG:PATH, got {spec!r}")
        lang, path = spec.split(":", 1)
        inputs[lang] = path
    stats = train_sentencepiece(
        inputs, args.model_prefix, vocab_size=args.vocab_size, max_chars_per_lang=args.max_chars_per_lang,
        model_type=args.model_type, character_coverage=args.character_coverage, seed=args.seed,
        threads=args.threads,
    )
    print(json.dumps({"model": f"{args.model_prefix}.model", **stats}))


def cmd_spm_encode(args) -> None:
    """Encode a text file into space-separated sentencepiece pieces."""
    from csfair.pretraining.vocab import encode_file

    stats = encode_file(args.model, args.input, args.output, LineIssues(args.input, strict=args.strict))
    print(json.dumps({"input": args.input, "output": args.output, **stats}))


def cmd_fairseq_dict(args) -> None:
    """Write fairseq's dict.txt for a sentencepiece model (counts from encoded files)."""
    from csfair.pretraining.vocab import write_fairseq_dict

    stats = write_fairseq_dict(args.model, args.counts_from, args.output)
    print(json.dumps({"output": args.output, **stats}))


def cmd_parallel(args) -> None:
    """Aligned parallel pretraining data (WEAM, TLM): pieces of both sides and word links."""
    from csfair.baselines.parallel_data import write_parallel_data
    from csfair.lexicons.ibm1 import resolve_aligner

    try:  # fast_align's diagonal model has no stand-in (Python 3.12 has no systran-align): say so before any work
        resolve_aligner("fast_align", favor_diagonal=True)
    except RuntimeError as e:
        print(f"csfair-prep parallel: error: word alignments: {e}", file=sys.stderr)
        sys.exit(2)
    stats = write_parallel_data(args.src_file, args.tgt_file, args.src_lang, args.tgt_lang, args.spm, args.out_dir,
                                valid=args.valid, max_pairs=args.max_pairs, workers=args.workers)
    print(json.dumps(stats))


def cmd_fasttext(args) -> None:
    """Skip-gram fastText vectors on a Moses-tokenised, lower-cased corpus."""
    from csfair.baselines.embeddings import train_fasttext

    train_fasttext(args.input, args.output, dim=args.dim, epoch=args.epoch, min_count=args.min_count,
                   threads=args.threads)
    print(json.dumps({"input": args.input, "output": args.output, "dim": args.dim}))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csfair-prep", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("split", help="seeded train/valid/test split of a monolingual corpus")
    s.add_argument("--input", required=True, help="one sentence per line (.gz allowed)")
    s.add_argument("--out-prefix", required=True, help="writes PREFIX.{train,valid,test}.txt")
    s.add_argument("--valid", type=int, default=1000, help="validation lines")
    s.add_argument("--test", type=int, default=0, help="held-out test lines")
    s.add_argument("--max-train", type=int, default=None, help="cap on training lines")
    s.add_argument("--seed", type=int, default=1, help="shuffling seed")
    s.add_argument("--max-chars", type=int, default=10000, help="skip lines longer than this (counted)")
    s.add_argument("--strict", action="store_true", help="fail on the first bad line instead of skipping it")
    s.set_defaults(func=cmd_split)

    def eval_options(s):
        s.add_argument("--eval-langs", required=True,
                       help="comma-separated languages whose zero-shot evaluation splits (valid and test) "
                            "are held out (split-pair) or compared (audit)")
        s.add_argument("--eval-tasks", default="all",
                       help="comma-separated task names of csfair.evaluation.tasks.TASKS, 'all' or 'none'")
        s.add_argument("--eval-seed", type=int, default=1,
                       help="data seed of the task loaders (scripts/zeroshot.py uses 1)")
        s.add_argument("--ngram", type=int, default=None,
                       help="word n-gram length of the near-copy test (default: csfair.evaluation.nearcopy.NGRAM, "
                            "PaLM's 8, GPT-3's minimum); items shorter than this are matched as whole sentences only")
        s.add_argument("--ngram-threshold", type=float, default=None,
                       help="a training line that holds this share of an item's distinct n-grams is a near-copy "
                            "(default: csfair.evaluation.nearcopy.THRESHOLD, PaLM's contamination ratio 0.7)")

    s = sub.add_parser("split-pair", help="held-out split of a pair's text: the test set and every evaluation "
                                          "sentence (aligned rows of multi-parallel tests, translations and "
                                          "near-copies included) out of the training and parallel text")
    s.add_argument("--mono", action="append", required=True, help="LANG:PATH monolingual text, once per language")
    s.add_argument("--tgt-lang", required=True, help="the language that gets the --test split")
    s.add_argument("--src-lang", default=None, help="the other language (side of --parallel-src)")
    s.add_argument("--parallel-src", default=None, help="parallel text, --src-lang side (.gz allowed)")
    s.add_argument("--parallel-tgt", default=None, help="parallel text, --tgt-lang side, line-aligned")
    s.add_argument("--out-dir", required=True,
                   help="writes text/LANG.{train,valid}.txt, text/TGT.test.txt, parallel/train.{SRC,TGT}, "
                        "heldout.json (written last)")
    s.add_argument("--test", type=int, required=True, help="held-out test lines of --tgt-lang")
    s.add_argument("--valid", type=int, default=1000, help="validation lines per language")
    s.add_argument("--max-train", type=int, default=None, help="cap on training lines per language")
    s.add_argument("--seed", type=int, default=1, help="shuffling seed")
    s.add_argument("--max-chars", type=int, default=10000, help="skip lines longer than this (counted)")
    eval_options(s)
    s.set_defaults(func=cmd_split_pair)

    s = sub.add_parser("audit", help="copies and near-copies (tokenisation-insensitive, contained, word n-gram "
                                     "overlap) of evaluation items in training inputs, naming file and line "
                                     "(exit 1 when a test item is found)")
    s.add_argument("--input", action="append", required=True,
                   help="NAME=PATH of a pretraining or lexicon input (one sentence per line), repeatable")
    s.add_argument("--test-file", action="append", default=[],
                   help="NAME=PATH of a test split kept as a text file (e.g. the MLM test set), repeatable")
    s.add_argument("--translations", action="append", default=[],
                   help="SRC_FILE:TGT_FILE line-aligned parallel corpus (the unfiltered original): also audit the "
                        "translations of evaluation items found in it, repeatable")
    s.add_argument("--json", default=None, help="also write the report here (every hit)")
    s.add_argument("--max-hits", type=int, default=20, help="test hits listed on stdout (the rest are counted)")
    eval_options(s)
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("moses", help="Moses tokenisation (sacremoses, no escaping)")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--lang", required=True, help="ISO 639-1 code")
    s.add_argument("--lowercase", action="store_true")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--max-chars", type=int, default=10000, help="skip lines longer than this (counted)")
    s.add_argument("--strict", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_moses)

    s = sub.add_parser("spm-train", help="shared sentencepiece model on a language-balanced sample")
    s.add_argument("--input", action="append", required=True, help="LANG:PATH, once per language")
    s.add_argument("--model-prefix", required=True)
    s.add_argument("--vocab-size", type=int, default=8000)
    s.add_argument("--max-chars-per-lang", type=int, default=None)
    s.add_argument("--model-type", default="unigram", choices=["unigram", "bpe"])
    s.add_argument("--character-coverage", type=float, default=0.9999)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_spm_train)

    s = sub.add_parser("spm-encode", help="encode text into sentencepiece pieces")
    s.add_argument("--model", required=True)
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--strict", action="store_true")
    s.set_defaults(func=cmd_spm_encode)

    s = sub.add_parser("parallel", help="aligned parallel data for WEAM/TLM (pieces + word links)")
    s.add_argument("--src-file", required=True)
    s.add_argument("--tgt-file", required=True)
    s.add_argument("--src-lang", required=True)
    s.add_argument("--tgt-lang", required=True)
    s.add_argument("--spm", required=True, help="the pretraining sentencepiece model")
    s.add_argument("--out-dir", required=True, help="writes OUT/raw/{train,valid}.{src,tgt,align}")
    s.add_argument("--valid", type=int, default=500)
    s.add_argument("--max-pairs", type=int, default=None)
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=cmd_parallel)

    s = sub.add_parser("fasttext", help="skip-gram fastText vectors (for the meta-embedding taggers)")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True, help=".bin model")
    s.add_argument("--dim", type=int, default=100)
    s.add_argument("--epoch", type=int, default=5)
    s.add_argument("--min-count", type=int, default=2)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_fasttext)

    s = sub.add_parser("fairseq-dict", help="fairseq dict.txt for a sentencepiece model")
    s.add_argument("--model", required=True)
    s.add_argument("--counts-from", nargs="+", required=True, help="encoded files to count pieces in")
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_fairseq_dict)
    return p


def main(argv=None) -> None:
    run_cli(build_parser(), argv)


if __name__ == "__main__":
    main()
