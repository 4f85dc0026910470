"""``csfair-lexicon``: build translation lexicons and token-level substitution tables, and look inside them.

Subcommands:
  ibm1     IBM Model 1 lexicons (both directions) from two line-aligned files (fast_align, or Thot
           where systran-align is not installable, e.g. Python 3.12: same tables)
  muse     a MUSE dictionary as a lexicon (uniform probabilities)
  table    the token-level substitution table for a sentencepiece model and fairseq dictionary,
           or for a transformers fast tokenizer (--hf-tokenizer DIR_OR_HUB_ID)
  align    word alignments of parallel text (IBM-1 or fast_align, symmetrised) as Pharaoh ``i-j`` lines;
           with --gold, their alignment error rate against gold alignments
  inspect  print ``target<TAB>prob<TAB>sampling_prob`` rows of a word in a table
  export   a table as TSV
"""
import argparse
import json
import sys
from pathlib import Path

from csfair_cli import run_cli
from csfair.io import LineIssues
from csfair.pretraining.function_words import DEFAULT_SPEC as DEFAULT_STOPWORDS


def cmd_ibm1(args) -> None:
    from csfair.lexicons.ibm1 import build_ibm1_lexicons, resolve_aligner

    try:  # a missing aligner package is the user's to install: one line, before any work
        resolve_aligner(args.aligner)
    except RuntimeError as e:
        print(f"csfair-lexicon ibm1: error: {e}", file=sys.stderr)
        sys.exit(2)
    issues = LineIssues(f"{args.src_file} ||| {args.tgt_file}", strict=args.strict)
    fwd, bwd, stats = build_ibm1_lexicons(
        args.src_file, args.tgt_file, args.src_lang, args.tgt_lang, lowercase=not args.no_lowercase,
        iterations=args.iterations, workers=args.workers, max_pairs=args.max_pairs, min_prob=args.min_store_prob,
        issues=issues, progress=not args.quiet, threads=args.threads, aligner=args.aligner,
    )
    issues.report()
    for lex in (fwd, bwd):
        if not len(lex):
            raise ValueError(f"{args.src_file} ||| {args.tgt_file}: the IBM-1 lexicon {lex.src_lang}-{lex.tgt_lang} "
                             f"has no entries above --min-store-prob {args.min_store_prob} ({stats['pairs_used']} pairs used)")
    out = Path(args.out_dir)
    f_path = out / f"ibm1.{args.src_lang}-{args.tgt_lang}.tsv"
    b_path = out / f"ibm1.{args.tgt_lang}-{args.src_lang}.tsv"
    fwd.save_tsv(f_path)
    bwd.save_tsv(b_path)
    print(json.dumps({
        **stats,
        f"{args.src_lang}-{args.tgt_lang}": {"path": str(f_path), "words": len(fwd), "pairs": fwd.num_pairs},
        f"{args.tgt_lang}-{args.src_lang}": {"path": str(b_path), "words": len(bwd), "pairs": bwd.num_pairs},
    }))


def cmd_muse(args) -> None:
    from csfair.lexicons.lexicon import Lexicon

    path = args.muse_dict
    if args.dict_deprecated is not None:
        print("csfair-lexicon muse: --dict is deprecated, use --muse-dict (table --dict is the fairseq dict.txt)",
              file=sys.stderr)
        path = args.dict_deprecated
    issues = LineIssues(path, strict=args.strict)
    lex = Lexicon.read_muse(path, args.src_lang, args.tgt_lang, lowercase=not args.no_lowercase, issues=issues)
    issues.report()
    if not len(lex):
        raise ValueError(f"{path}: no dictionary entries (the file is empty, or all {issues.total} lines were skipped)")
    lex.save_tsv(args.out)
    print(json.dumps({"input": path, "output": args.out, "words": len(lex), "pairs": lex.num_pairs,
                      "skipped": issues.total}))


def cmd_table(args) -> None:
    from csfair.io import sha256_file
    from csfair.lexicons.lexicon import Lexicon
    from csfair.io import InputFormatError
    from csfair.pretraining.function_words import table_stopwords
    from csfair.pretraining.table_build import TableConfig, build_table, filter_report
    from csfair.text import CorpusCounts
    from csfair.pretraining.vocab import WordEncoder

    lex = Lexicon.load_tsv(args.lexicon)
    if not len(lex):
        raise ValueError(f"{args.lexicon}: the lexicon has no entries: a table from it could not code-switch anything")
    src_lang = args.src_lang or lex.src_lang
    tgt_lang = args.tgt_lang or lex.tgt_lang
    if lex.probabilistic and args.min_prob < lex.probs.min(initial=1.0) - 1e-12 and len(lex):
        print(f"note: {args.lexicon} keeps only p >= {lex.probs.min():.2g}; --min-prob {args.min_prob} "
              "cannot restore smaller candidates", file=sys.stderr)
    src_corpus = CorpusCounts.from_files(args.src_corpus, src_lang) if args.src_corpus else None
    tgt_corpus = CorpusCounts.from_files(args.tgt_corpus, tgt_lang) if args.tgt_corpus else None
    try:
        src_stop, src_info = table_stopwords(args.src_stopwords, src_lang, src_corpus)
        tgt_stop, tgt_info = table_stopwords(args.tgt_stopwords, tgt_lang, tgt_corpus)
    except (ValueError, FileNotFoundError, KeyError) as e:
        if isinstance(e, InputFormatError):
            raise
        sys.exit(f"csfair-lexicon table: {e.args[0] if isinstance(e, KeyError) else e}")
    cfg = TableConfig(
        min_prob=args.min_prob, temperature=args.temperature, min_word_len=args.min_word_len,
        src_stopwords=src_stop, tgt_stopwords=tgt_stop, src_stopwords_info=src_info, tgt_stopwords_info=tgt_info,
        case_variants=not args.no_case_variants, drop_punct=not args.keep_punct,
        keep_identical=not args.drop_identical, name_min_capitalised=args.name_min_capitalised,
    )
    lex.src_lang, lex.tgt_lang = src_lang, tgt_lang
    excluded = None
    if args.exclude_words:
        from csfair.lexicons.lexicon import filter_lexicon, read_word_list

        words = read_word_list(args.exclude_words)
        unknown = sorted(set(words) - {src_lang, tgt_lang})
        if unknown:
            raise ValueError(f"{args.exclude_words}: words of language(s) {', '.join(unknown)}; this table is "
                             f"{src_lang}-{tgt_lang}")
        lex, excluded = filter_lexicon(lex, words.get(src_lang, set()), words.get(tgt_lang, set()))
        excluded.update(file=str(args.exclude_words), sha256=sha256_file(args.exclude_words),
                        words={k: len(v) for k, v in sorted(words.items())})
        print(f"excluded words ({args.exclude_words}): {excluded['rows_removed']:,} source words and "
              f"{excluded['candidates_removed']:,} candidates removed from the lexicon", file=sys.stderr)
    if args.hf_tokenizer:
        # transformers stays out of csfair/: the encoders come from the csfair_hf glue (imported here only)
        from csfair_hf.tokenization import describe, load_tokenizer, word_encoder, word_key_encoder

        try:
            tok = load_tokenizer(args.hf_tokenizer)
        except (OSError, ValueError) as e:
            sys.exit(f"csfair-lexicon table: --hf-tokenizer {args.hf_tokenizer}: {e}")
        encode, encode_key = word_encoder(tok), word_key_encoder(tok)
        unk = tok.unk_token_id if tok.unk_token_id is not None else -1
        extra = dict(lexicon=str(args.lexicon), hf_tokenizer=str(args.hf_tokenizer), **describe(tok))

        def decode(ids):
            return " ".join(tok.convert_ids_to_tokens(list(ids)))
    else:
        if not (args.spm_model and args.dict):
            sys.exit("csfair-lexicon table: give --spm-model and --dict (fairseq), or --hf-tokenizer (transformers)")
        enc = WordEncoder(args.spm_model, args.dict)
        encode, encode_key, unk, decode = enc, None, enc.vocab.unk, enc.decode
        extra = dict(
            lexicon=str(args.lexicon), spm_model=str(args.spm_model), spm_sha256=sha256_file(args.spm_model),
            dict_path=str(args.dict), dict_sha256=enc.vocab.sha256(), dict_size=len(enc.vocab),
        )
    if excluded is not None:
        extra["excluded_words"] = excluded
    table, stats = build_table(lex, encode, unk, cfg, extra_meta=extra, progress=not args.quiet,
                               src_corpus=src_corpus, tgt_corpus=tgt_corpus, encode_key=encode_key)
    if not len(table):
        raise ValueError(f"{args.lexicon}: no entry of its {len(lex):,} source words survived the table's filters "
                         f"(stopwords, --min-prob {args.min_prob}, --min-word-len {args.min_word_len}, the vocabulary): "
                         f"an empty table would code-switch nothing; counts: {json.dumps(stats)}")
    table.save(args.out)
    if args.tsv:
        table.to_tsv(args.tsv, decode=decode)
    size = sum(f.stat().st_size for f in Path(args.out).iterdir())
    for line in filter_report(table.meta):
        print(f"{src_lang}->{tgt_lang}: {line}", file=sys.stderr)
    print(json.dumps({"output": args.out, "bytes_on_disk": size, **stats}))


def _read_side(path: str, lang: str, tokenised: bool, lowercase: bool):
    from csfair.io import read_text
    from csfair.text import moses_tokenize_lines

    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not tokenised:
        lines = list(moses_tokenize_lines(lines, lang, lowercase))
    elif lowercase:
        lines = [ln.lower() for ln in lines]
    return [ln.split() for ln in lines]


def cmd_align(args) -> None:
    from csfair.io import atomic_write
    from csfair.lexicons.alignment import (
        align_corpus,
        alignment_error_rate,
        diagonal_alignment,
        format_pharaoh,
        read_gold_alignments,
    )

    lc = not args.no_lowercase
    src = _read_side(args.src_file, args.src_lang, args.tokenised, lc)
    tgt = _read_side(args.tgt_file, args.tgt_lang, args.tokenised, lc)
    if len(src) != len(tgt):
        raise ValueError(f"{args.src_file} has {len(src)} lines but {args.tgt_file} has {len(tgt)}: not line-aligned")
    if not src:
        raise ValueError(f"{args.src_file}: no sentence pairs to align")
    extra = []
    if args.train_src or args.train_tgt:
        if not (args.train_src and args.train_tgt):
            raise ValueError("--train-src and --train-tgt go together")
        ts = _read_side(args.train_src, args.src_lang, args.tokenised, lc)
        tt = _read_side(args.train_tgt, args.tgt_lang, args.tokenised, lc)
        if len(ts) != len(tt):
            raise ValueError(f"{args.train_src} and {args.train_tgt} differ in length ({len(ts)} vs {len(tt)})")
        extra = list(zip(ts, tt))
    if args.model == "diagonal":
        links = [diagonal_alignment(len(s), len(t)) for s, t in zip(src, tgt)]
        stats = dict(pairs=len(src), links=sum(map(len, links)), training_pairs=0)
    else:
        links, stats = align_corpus(list(zip(src, tgt)), iterations=args.iterations, threads=args.threads,
                                    favor_diagonal=args.model == "fast_align", symmetrise=args.symmetrise,
                                    extra_pairs=extra)
    if args.out:
        with atomic_write(args.out) as fh:
            fh.writelines(format_pharaoh(a) + "\n" for a in links)
    res = dict(model=args.model, symmetrise=None if args.model == "diagonal" else args.symmetrise, **stats,
               output=args.out)
    if args.gold:
        gold = read_gold_alignments(args.gold, n_pairs=len(src), fmt=args.gold_format, reverse=args.gold_reverse)
        if len(gold) != len(src):
            raise ValueError(f"{args.gold} has {len(gold)} sentences, {args.src_file} {len(src)}")
        res.update(alignment_error_rate(links, gold), gold=args.gold)
    print(json.dumps(res))


def cmd_inspect(args) -> None:
    from csfair.pretraining.substitution_table import SubstitutionTable

    table = SubstitutionTable.load(args.table)
    if args.temperature is not None or args.min_prob is not None:
        table = table.with_sampling(
            args.temperature if args.temperature is not None else table.meta["temperature"],
            args.min_prob if args.min_prob is not None else table.meta["min_prob"],
        )
    entries = table.entries_for(args.word)
    if not entries:
        print(f"{args.word!r} is not in {args.table} (filtered out, or not in the lexicon)", file=sys.stderr)
        sys.exit(1)
    for e in entries[:1] if not args.all_forms else entries:
        if args.all_forms:
            print(f"# {table.source_words()[e]}")
        for tgt, p, q in table.rows(e)[: args.limit]:
            print(f"{tgt}\t{p:.4f}\t{q:.4f}")


def cmd_export(args) -> None:
    from csfair.pretraining.substitution_table import SubstitutionTable

    table = SubstitutionTable.load(args.table)
    table.to_tsv(args.out)
    print(json.dumps({"table": args.table, "output": args.out, "entries": len(table), "candidates": table.num_candidates}))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csfair-lexicon", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("ibm1", help="IBM Model 1 lexicons in both directions (fast_align, favor_diagonal=False)")
    s.add_argument("--src-file", required=True, help="source side, one sentence per line (.gz allowed)")
    s.add_argument("--tgt-file", required=True, help="target side, line-aligned with --src-file")
    s.add_argument("--src-lang", required=True)
    s.add_argument("--tgt-lang", required=True)
    s.add_argument("--out-dir", required=True, help="writes ibm1.SRC-TGT.tsv and ibm1.TGT-SRC.tsv")
    s.add_argument("--iterations", type=int, default=5, help="EM iterations (default 5)")
    s.add_argument("--no-lowercase", action="store_true", help="keep case (default: lower-case both sides)")
    s.add_argument("--max-pairs", type=int, default=None, help="use only the first N usable pairs")
    s.add_argument("--min-store-prob", type=float, default=1e-3, help="smallest p(t|s) written to the lexicon")
    s.add_argument("--workers", type=int, default=2, help="tokenisation processes")
    s.add_argument("--threads", type=int, default=1,
                   help="fast_align OpenMP threads (1: bit-identical tables across runs; more: faster, not reproducible)")
    s.add_argument("--aligner", choices=("auto", "fast_align", "thot"), default="auto",
                   help="IBM-1 implementation: fast_align (systran-align, Python <= 3.11) or thot (sil-thot; the same "
                        "tables within 1e-6); auto (default) takes fast_align where installed")
    s.add_argument("--strict", action="store_true", help="fail on the first bad line instead of skipping it")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_ibm1)

    s = sub.add_parser("muse", help="a MUSE dictionary ('src tgt' per line) as a lexicon")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--muse-dict", default=None, help="the MUSE bilingual dictionary file ('src tgt' per line)")
    which.add_argument("--dict", dest="dict_deprecated", default=None,
                       help="deprecated spelling of --muse-dict (a warning is printed; `table --dict` is fairseq's dict.txt)")
    s.add_argument("--src-lang", required=True)
    s.add_argument("--tgt-lang", required=True)
    s.add_argument("--out", required=True, help="lexicon TSV")
    s.add_argument("--no-lowercase", action="store_true")
    s.add_argument("--strict", action="store_true", help="fail on the first malformed line instead of skipping it")
    s.set_defaults(func=cmd_muse)

    s = sub.add_parser("table", help="token-level substitution table (Visser et al. 2025, Sec. 3.1 filters)")
    s.add_argument("--lexicon", required=True, help="lexicon TSV (from the ibm1 or muse subcommand)")
    s.add_argument("--spm-model", default=None, help="sentencepiece model of the corpus (fairseq models)")
    s.add_argument("--dict", default=None, help="fairseq dict.txt of the binarised corpus (fairseq models)")
    s.add_argument("--hf-tokenizer", default=None,
                   help="instead of --spm-model/--dict: a transformers fast tokenizer (directory or hub id); "
                   "keys and candidates are its token ids for each word in running text (WordPiece ##, "
                   "sentencepiece ▁, byte-level Ġ conventions), for csfair_hf's collator")
    s.add_argument("--out", required=True, help="table directory")
    s.add_argument("--src-lang", default=None, help="default: from the lexicon")
    s.add_argument("--tgt-lang", default=None, help="default: from the lexicon")
    s.add_argument("--min-prob", type=float, default=0.02, help="keep IBM-1 candidates with p > this (paper: 0.02)")
    s.add_argument("--temperature", type=float, default=3.0, help="T of p**(1/T) / sum p**(1/T) (paper: 3)")
    s.add_argument("--min-word-len", type=int, default=4, help="never replace shorter source words (paper: 4)")
    s.add_argument("--src-corpus", default=None,
                   help="Moses-tokenised source-language text (e.g. the pretraining train split): word counts "
                   "for the default stopwords, for name detection (mostly capitalised words get no case "
                   "variants) and for the stopword report")
    s.add_argument("--tgt-corpus", default=None,
                   help="Moses-tokenised target-language text: word counts for the default stopwords and for "
                   "the candidates' surface forms (their most frequent non-sentence-initial casing)")
    s.add_argument("--src-stopwords", default=DEFAULT_STOPWORDS,
                   help=f"source words never replaced: '{DEFAULT_STOPWORDS}' (default: the closed-class words of the "
                   "language's UD treebank under $CSFAIR_DATA/ud/, csfair.pretraining.function_words; Swahili: "
                   "stopwords-iso, Xhosa: top:20), 'top:N' (the N most frequent words of --src-corpus), 'iso' "
                   "(stopwords-iso), a .json/.txt list, or 'none'")
    s.add_argument("--tgt-stopwords", default=DEFAULT_STOPWORDS,
                   help=f"candidates dropped: '{DEFAULT_STOPWORDS}' (default, as --src-stopwords), 'top:N' (of "
                   "--tgt-corpus), 'iso', a list, or 'none'")
    ident = s.add_mutually_exclusive_group()
    ident.add_argument("--drop-identical", action="store_true",
                       help="drop candidates equal to their source word, case-insensitively, before renormalising "
                       "(not the paper's: cognates, names and numbers are then always replaced by their other, often "
                       "noise, candidates; by default they stay in p**(1/T) / sum p**(1/T) and a draw of one is a "
                       "no-change)")
    ident.add_argument("--keep-identical", action="store_true",
                       help="keep them (the default since csfair issue 20; accepted for older command lines)")
    s.add_argument("--name-min-capitalised", type=float, default=0.5,
                   help="with --src-corpus: source words capitalised in more than this fraction of their "
                   "non-sentence-initial occurrences are names and get no case variants (1.0: off; not "
                   "applied to German/Luxembourgish, which capitalise every noun)")
    s.add_argument("--no-case-variants", action="store_true", help="do not add Capitalised/UPPER forms")
    s.add_argument("--keep-punct", action="store_true",
                   help="keep candidates/source words without any letter or digit (dropped by default: "
                   "Moses tokenisation makes IBM-1 align words to punctuation; not a paper filter)")
    s.add_argument("--exclude-words", default=None,
                   help="LANG<TAB>word lines: words held out of the table, as keys (source language) and as "
                   "candidates (target language), in any casing (their Title/UPPER variants too); e.g. the "
                   "word-translation test words of docs/experiments.md. Recorded in meta.json (SHA-256, counts)")
    s.add_argument("--tsv", default=None, help="also export the table as TSV here")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_table)

    s = sub.add_parser("align", help="word alignments (Pharaoh i-j lines); with --gold, the alignment error rate")
    s.add_argument("--src-file", required=True, help="source side, one sentence per line")
    s.add_argument("--tgt-file", required=True, help="target side, line-aligned with --src-file")
    s.add_argument("--src-lang", required=True)
    s.add_argument("--tgt-lang", required=True)
    s.add_argument("--model", default="ibm1", choices=["ibm1", "fast_align", "diagonal"],
                   help="ibm1: IBM Model 1 (the lexicons' model, uniform alignment prior); fast_align: with its "
                   "diagonal prior; diagonal: no model, each target word linked to the source word at the same "
                   "relative position (the baseline)")
    s.add_argument("--symmetrise", default="grow-diag-final-and",
                   choices=["grow-diag-final-and", "intersect", "union", "forward", "backward"])
    s.add_argument("--tokenised", action="store_true",
                   help="the files are tokenised already (positions are whitespace tokens; default: Moses first)")
    s.add_argument("--no-lowercase", action="store_true", help="keep case (default: lower-case both sides)")
    s.add_argument("--train-src", default=None, help="more parallel text to estimate the model on (not aligned)")
    s.add_argument("--train-tgt", default=None)
    s.add_argument("--iterations", type=int, default=5)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--out", default=None, help="write the alignments here (one line per pair, 0-based i-j)")
    s.add_argument("--gold", default=None, help="gold alignments: Pharaoh (i-j sure, i?j possible) or NAACL lines")
    s.add_argument("--gold-format", default="auto", choices=["auto", "pharaoh", "naacl"])
    s.add_argument("--gold-reverse", action="store_true", help="the gold file lists target-source links")
    s.set_defaults(func=cmd_align)

    s = sub.add_parser("inspect", help="print target<TAB>prob<TAB>sampling_prob rows of a word")
    s.add_argument("table")
    s.add_argument("word")
    s.add_argument("--temperature", type=float, default=None, help="re-normalise with another T")
    s.add_argument("--min-prob", type=float, default=None, help="apply a stricter p threshold")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--all-forms", action="store_true", help="also the Capitalised/UPPER entries")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("export", help="a table as TSV")
    s.add_argument("table")
    s.add_argument("out")
    s.set_defaults(func=cmd_export)
    return p


def main(argv=None) -> None:
    run_cli(build_parser(), argv)


if __name__ == "__main__":
    main()
