"""Function-word stopwords for substitution tables, from Universal Dependencies treebanks.

Visser et al. (2025), Sec. 3.1, exclude "frequent stop-words such as *a*, *le*, *des*" from the
substitution table: function words, never replaced and never inserted. csfair's default list
(``function``) is, per language, the closed-class words of the language's UD treebank: the surface
forms (lower-cased with :func:`csfair.text.lower`) whose most frequent UPOS is one of
:data:`FUNCTION_UPOS` (``ADP AUX CCONJ DET PART PRON SCONJ``) and that occur at least
:data:`MIN_COUNT` times. A multi-word token (French *du* = *de le*, German *zum* = *zu dem*) is one
surface form, as in running text, labelled with the UPOS of its words (``ADP+DET``); it is a function
word when all its words are. Being a frequency-thresholded treebank reading, the list holds the
frequent function words and not the content words that a frequency cut-off also catches (*man*,
*two*, *homme*, *deux* in the demo's top-20 list) or that published lists carry (stopwords-iso: 27-57%
of its en/fr/de words are content words by the measure below).

The list is built from one split of the treebanks and measured on the others (held out), so the
measure is not circular: the *train* split when there is one (``csfair-data get --what ud``: UD v2.5,
train/dev/test), else *test* (the staged French and German GSD have dev and test only), measured on
the remaining splits. Dev splits are never used to build: XTREME's UD-POS test sets (csfair's zero-shot
POS evaluation, ``pos/udpos-xtreme/dev-*.tsv``) are the UD dev files. :func:`measure_list` gives, for
any list, the share of its words whose majority UPOS in the held-out split is a content tag
(:data:`CONTENT_UPOS`: ``NOUN VERB ADJ PROPN NUM``) and the share of the held-out function-word tokens
the list covers.

Languages without a UD treebank in csfair's sources (:data:`UD_LANGS`; of the paper's pairs Swahili
and Xhosa) get a named fallback (:func:`fallback`): the stopwords-iso list where it has one (Swahili:
74 words), else the frequency rule ``top:20`` (Xhosa). Neither can be measured here; which one was used
is recorded in ``meta.json`` and printed by the build. A language of :data:`UD_LANGS` whose treebank is
missing is an error (fetch it), not a fallback.
"""
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

from csfair.io import InputFormatError, PathLike, sha256_file
from csfair.paths import data_root
from csfair.text import CorpusCounts, lower, stopword_list, stopword_sha256

#: Closed-class UPOS tags: words whose majority tag is one of these are function words.
FUNCTION_UPOS = frozenset({"ADP", "AUX", "CCONJ", "DET", "PART", "PRON", "SCONJ"})
#: Content tags of the measure (a list word whose held-out majority tag is one of these is a content word).
CONTENT_UPOS = frozenset({"NOUN", "VERB", "ADJ", "PROPN", "NUM"})
#: A surface form must occur this often in the build split (one occurrence can be a tagging slip).
MIN_COUNT = 2
#: The default stopword spec of ``csfair-lexicon table`` and ``scripts/recipes/pair.sh``.
DEFAULT_SPEC = "function"
#: Languages with a UD treebank in ``csfair/cli/data_sources.toml`` (``csfair-data get --what ud``; a test
#: keeps the two equal): for them ``function`` needs the treebank.
UD_LANGS = frozenset({"en", "fr", "de", "pt", "tr", "hu", "fi"})
#: The frequency rule of the fallback (languages with neither a treebank nor a stopwords-iso list).
FALLBACK_FREQUENCY = "top:20"


def fallback(lang: str) -> str:
    """The stopword spec ``function`` falls back to for a language without a UD treebank: ``iso`` where
    stopwords-iso has a list for ``lang`` (Swahili), else :data:`FALLBACK_FREQUENCY` (Xhosa).

    Raises:
        FileNotFoundError: the stopwords-iso file is missing (``csfair-data get --what stopwords``).
    """
    from csfair.text import load_stopwords

    try:
        load_stopwords("iso", lang)
    except KeyError:
        return FALLBACK_FREQUENCY
    return "iso"


def ud_files(lang: str, root: Optional[PathLike] = None) -> Tuple[List[Path], List[Path]]:
    """The CoNLL-U files of ``lang`` under ``ROOT/ud/*/`` (``{lang}_*-ud-{split}.conllu``): (build, held-out).

    Build: the train files when there are any, else the test files; held out: the other splits.

    Args:
        lang: ISO 639-1 code (the UD file prefix: ``en_gum``, ``fr_gsd``).
        root: data root (default ``$CSFAIR_DATA``).

    Returns:
        (build, held_out): sorted paths; both empty when the language has no treebank there.
    """
    base = Path(root) if root is not None else data_root()
    files = sorted((base / "ud").glob(f"*/{lang}_*-ud-*.conllu"))
    split = {p: p.name.rsplit("-ud-", 1)[1][: -len(".conllu")] for p in files}
    train = [p for p in files if split[p] == "train"]
    build = train or [p for p in files if split[p] == "test"]
    return build, [p for p in files if p not in build]


def surface_labels(paths: Sequence[PathLike], lang: str) -> Dict[str, Counter]:
    """Counts of each lower-cased surface token's label in CoNLL-U files.

    A surface token is a multi-word token (its range line, labelled with its words' UPOS joined by
    ``+``) or a word outside any range; empty nodes are skipped.

    Args:
        paths: CoNLL-U files.
        lang: casing rules (:func:`csfair.text.lower`).

    Returns:
        ``{form: Counter({label: count})}`` (cached per process: do not modify it).

    Raises:
        InputFormatError: a sentence the parser rejects, a word without form or UPOS, or a file
            without any token (the location is the sentence's first line).
    """
    stamps = tuple((str(p), Path(p).stat().st_mtime_ns, Path(p).stat().st_size) for p in paths)
    return _surface_labels(stamps, lang)


@lru_cache(maxsize=16)
def _surface_labels(stamps: Tuple[Tuple[str, int, int], ...], lang: str) -> Dict[str, Counter]:
    # one parse per process and file version: a table build reads a language's treebank for its list and its measure
    import conllu

    out: Dict[str, Counter] = {}
    for path, _, _ in stamps:
        n_tokens, lineno = 0, 1
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for block in text.split("\n\n"):
            start = lineno
            lineno += block.count("\n") + 2
            if not block.strip():
                continue
            try:
                (sent,) = conllu.parse(block + "\n\n")
            except Exception as e:  # conllu raises ParseException and ValueError
                raise InputFormatError(path, start, f"CoNLL-U sentence not parsed: {e}") from None
            words = {t["id"]: t for t in sent if isinstance(t["id"], int)}
            covered = set()
            tokens: List[Tuple[str, str]] = []
            for t in sent:
                i = t["id"]
                if isinstance(i, tuple) and len(i) == 3 and i[1] == "-":
                    parts = [words.get(k) for k in range(i[0], i[2] + 1)]
                    if any(w is None or not w["upos"] for w in parts) or not t["form"]:
                        raise InputFormatError(path, start, f"multi-word token {i[0]}-{i[2]} without its words' UPOS")
                    covered.update(range(i[0], i[2] + 1))
                    tokens.append((t["form"], "+".join(w["upos"] for w in parts)))
            for i, t in words.items():
                if i in covered:
                    continue
                if not t["form"] or not t["upos"]:
                    raise InputFormatError(path, start, f"token {i} has no form or UPOS")
                tokens.append((t["form"], t["upos"]))
            for form, label in tokens:
                out.setdefault(lower(form, lang), Counter())[label] += 1
            n_tokens += len(tokens)
        if n_tokens == 0:
            raise InputFormatError(path, 0, "no tokens: an empty or truncated treebank")
    return out


def _is_function(label: str) -> bool:
    return all(p in FUNCTION_UPOS for p in label.split("+"))


def _is_content(label: str) -> bool:
    return any(p in CONTENT_UPOS for p in label.split("+"))


def _majority(c: Counter) -> str:
    """The most frequent label (ties: alphabetical, so the result does not depend on file order)."""
    return min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def function_word_list(lang: str, min_count: int = MIN_COUNT, root: Optional[PathLike] = None
                       ) -> Tuple[FrozenSet[str], dict]:
    """The UD function words of ``lang`` (module docstring) and how they were made.

    Args:
        lang: ISO 639-1 code.
        min_count: occurrences needed in the build split.
        root: data root (default ``$CSFAIR_DATA``).

    Returns:
        (words, meta): lower-cased frozenset; meta with ``how``, the build files and their SHA-256,
        ``min_count``, ``n_words`` and (when there is a held-out split) ``heldout``: :func:`measure_list`.

    Raises:
        FileNotFoundError: no treebank of ``lang`` under ``ud/`` (the message says how to get one).
        InputFormatError: a malformed treebank; ValueError: a treebank that yields no function word.
    """
    build, held = ud_files(lang, root)
    if not build:
        base = Path(root) if root is not None else data_root()
        raise FileNotFoundError(
            f"no UD treebank for {lang!r} under {base / 'ud'} (looked for */{lang}_*-ud-{{train,test}}.conllu): "
            f"fetch one with `csfair-data get --pair en-{lang} --what ud`, or choose another stopword list "
            f"('iso', 'top:N', a .txt/.json file, 'none')")
    counts = surface_labels(build, lang)
    words = frozenset(w for w, c in counts.items()
                      if sum(c.values()) >= min_count and _is_function(_majority(c)) and any(ch.isalnum() for ch in w))
    if not words:
        raise ValueError(f"{', '.join(map(str, build))}: no word of {lang!r} has a closed-class majority UPOS "
                         f"({' '.join(sorted(FUNCTION_UPOS))}) and {min_count}+ occurrences")
    meta = dict(
        how=f"UD closed-class words: surface forms whose majority UPOS is one of {' '.join(sorted(FUNCTION_UPOS))} "
            f"(multi-word tokens: all their words), {min_count}+ occurrences in the build split",
        ud_build=[str(p) for p in build], ud_build_sha256=[sha256_file(p) for p in build], min_count=min_count,
    )
    if held:
        meta["heldout"] = measure_list(words, lang, held)
    return words, meta


def measure_list(words: Iterable[str], lang: str, heldout: Sequence[PathLike]) -> dict:
    """How much of a stopword list is content words, and how many function-word tokens it covers.

    Args:
        words: lower-cased stopword list.
        lang: casing rules.
        heldout: CoNLL-U files the list was not built from.

    Returns:
        dict: ``content_share`` (list words whose majority UPOS in ``heldout`` is a content tag, over
        the list words that occur there), ``content_words`` (those words, most frequent first, at most
        20), ``words_seen`` (list words occurring in ``heldout``), ``function_token_coverage`` (share of
        the function-word tokens of ``heldout`` whose form is in the list), ``function_tokens`` and
        ``files``.
    """
    words = frozenset(words)
    counts = surface_labels(heldout, lang)
    seen = [w for w in words if w in counts]
    content = sorted((w for w in seen if _is_content(_majority(counts[w]))), key=lambda w: -sum(counts[w].values()))
    f_tok = covered = 0
    for w, c in counts.items():
        n = sum(k for label, k in c.items() if _is_function(label))
        f_tok += n
        covered += n if w in words else 0
    return dict(content_share=len(content) / len(seen) if seen else 0.0, content_words=content[:20],
                n_content=len(content), words_seen=len(seen), function_token_coverage=covered / f_tok if f_tok else 0.0,
                function_tokens=f_tok, files=[str(p) for p in heldout])


def table_stopwords(spec: Optional[str], lang: str, corpus: Optional[CorpusCounts] = None,
                    root: Optional[PathLike] = None) -> Tuple[FrozenSet[str], dict]:
    """A substitution table's stopword list (``csfair-lexicon table --src-stopwords/--tgt-stopwords``).

    Args:
        spec: ``"function"`` (the default: :func:`function_word_list`, or :func:`fallback` for a
            language without a treebank); otherwise as :func:`csfair.text.stopword_list` (``top:N``, ``iso``, a
            ``.json``/``.txt`` list, ``none``).
        lang: ISO 639-1 code.
        corpus: the language's word counts (``top:N``, also as a fallback).
        root: data root (default ``$CSFAIR_DATA``).

    Returns:
        (words, meta): ``meta`` as :func:`csfair.text.stopword_list`'s, plus ``heldout``
        (:func:`measure_list` on the language's held-out UD split) whenever the language has a
        treebank, whatever the list, and ``fallback`` (the spec used) when ``function`` fell back.

    Raises:
        FileNotFoundError: ``function`` for a language of :data:`UD_LANGS` whose treebank is missing,
            or a missing list file; ValueError, KeyError: see :func:`csfair.text.stopword_list`.
    """
    spec = "none" if spec in (None, "") else spec
    if spec == "function":
        build, _ = ud_files(lang, root)
        if build or lang in UD_LANGS:
            words, how = function_word_list(lang, root=root)
            meta = dict(spec=spec, lang=lang, **how)
            meta.update(n_words=len(words), sha256=stopword_sha256(words))
            return words, meta
        rule = fallback(lang)
        words, meta = stopword_list(rule, lang, corpus)
        meta.update(spec=spec, fallback=rule, how=f"no UD treebank for {lang}: fallback {rule} ({meta.get('how', '')})")
        return words, meta
    words, meta = stopword_list(spec, lang, corpus)
    build, held = ud_files(lang, root)
    if words and (build or held):
        # measured on the splits a function list would not be built from, so the numbers compare
        meta["heldout"] = measure_list(words, lang, held or build)
    return words, meta


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m csfair.pretraining.function_words [--spec S] [--corpus LANG=FILE] LANG ...``: each language's
    list (``function`` by default) with its held-out UD measure."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("langs", nargs="+")
    ap.add_argument("--spec", default=DEFAULT_SPEC, help="function (default), top:N, iso, a file, none")
    ap.add_argument("--corpus", action="append", default=[], help="LANG=FILE: Moses-tokenised text for top:N")
    ap.add_argument("--words", action="store_true", help="also print the words")
    args = ap.parse_args(argv)
    corpora = dict(c.split("=", 1) for c in args.corpus)
    for lang in args.langs:
        corpus = CorpusCounts.from_files(corpora[lang], lang) if lang in corpora else None
        words, meta = table_stopwords(args.spec, lang, corpus)
        h = meta.get("heldout")
        line = dict(lang=lang, spec=args.spec, n_words=len(words), how=meta.get("how"))
        if h:
            line.update(content_share=round(h["content_share"], 4), content_words=h["content_words"],
                        function_token_coverage=round(h["function_token_coverage"], 4), heldout=h["files"])
        if args.words:
            line["words"] = sorted(words)
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
