"""Text utilities: Moses pre-tokenisation, language-aware casing, corpus word counts, stopword lists.

csfair's text pipeline is the XLM one: Moses tokenisation (sacremoses, no XML escaping), then
sentencepiece. Pre-tokenising before sentencepiece makes a sentencepiece "word" (the pieces from
one word start ``▁`` to the next) coincide with a Moses token, which is the unit the IBM-1 and
MUSE lexicons are built on, so punctuation glued to a word ("dog.") does not hide it from the
substitution table.

Casing is language-aware (:func:`lower`, :func:`upper`, :func:`title`): Python's ``str.lower``
maps Turkish/Azerbaijani ``I`` to ``i`` (should be ``ı``) and ``İ`` to ``i`` + U+0307, and
``str.upper`` maps ``i`` to ``I`` (should be ``İ``).
"""
import hashlib
import json
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from csfair.io import LineIssues, PathLike, iter_lines, sha256_file
from csfair.paths import data_file

_TOKENIZER = None
_LOWER = False
_LANG = None

#: Languages with the Turkic dotted/dotless i pairs ``İ/i`` and ``I/ı``.
DOTTED_I_LANGS = frozenset({"tr", "az"})


def lower(word: str, lang: Optional[str] = None) -> str:
    """Lower-case ``word`` with the rules of ``lang`` (Turkish/Azerbaijani: ``I -> ı``, ``İ -> i``)."""
    if lang in DOTTED_I_LANGS:
        word = word.replace("I", "ı").replace("İ", "i")
    return word.lower()


def upper(word: str, lang: Optional[str] = None) -> str:
    """Upper-case ``word`` with the rules of ``lang`` (Turkish/Azerbaijani: ``i -> İ``, ``ı -> I``)."""
    if lang in DOTTED_I_LANGS:
        word = word.replace("i", "İ")
    return word.upper()


def title(word: str, lang: Optional[str] = None) -> str:
    """``word`` with its first character upper-cased (language-aware), the rest unchanged."""
    return upper(word[:1], lang) + word[1:]


def is_capitalised(word: str) -> bool:
    """True when the first letter of ``word`` is upper-case (``"Paris"``, ``"NASA"``, ``"l'Europe"`` no)."""
    for c in word:
        if c.isalpha():
            return c.isupper()
    return False


def _has_letter(word: str) -> bool:
    return any(c.isalpha() for c in word)


def _init_worker(lang: str, lowercase: bool) -> None:
    global _TOKENIZER, _LOWER, _LANG
    from sacremoses import MosesTokenizer

    _TOKENIZER = MosesTokenizer(lang=lang)
    _LOWER = lowercase
    _LANG = lang


def _tokenize_one(text: str) -> str:
    # split() first: tabs, NBSPs and runs of spaces inside a line become single separators.
    text = " ".join(text.split())
    out = _TOKENIZER.tokenize(text, escape=False, return_str=True, aggressive_dash_splits=False)
    out = " ".join(out.split())
    return lower(out, _LANG) if _LOWER else out


def moses_tokenize(text: str, lang: str, lowercase: bool = False) -> str:
    """Moses-tokenise one line (sacremoses, no escaping), optionally lower-cased.

    Args:
        text: raw text (one sentence or line).
        lang: ISO 639-1 code selecting Moses' language rules (e.g. French elision ``l'``).
        lowercase: lower-case the result.

    Returns:
        str: space-separated tokens, no leading/trailing/double spaces.
    """
    global _TOKENIZER
    if _TOKENIZER is None or getattr(_TOKENIZER, "lang", None) != lang or _LOWER != lowercase:
        _init_worker(lang, lowercase)
    return _tokenize_one(text)


def moses_tokenize_lines(
    lines: Iterable[str], lang: str, lowercase: bool = False, workers: int = 1, chunksize: int = 512
) -> Iterator[str]:
    """Moses-tokenise many lines, in order, with ``workers`` processes.

    Args:
        lines: raw lines.
        lang: ISO 639-1 code.
        lowercase: lower-case the output.
        workers: processes (sacremoses is pure Python: ~5k lines/s per core).
        chunksize: lines per task sent to a worker.

    Yields:
        str: tokenised lines, same order and count as ``lines``.
    """
    if workers <= 1:
        _init_worker(lang, lowercase)
        for line in lines:
            yield _tokenize_one(line)
        return
    with multiprocessing.get_context("fork").Pool(workers, _init_worker, (lang, lowercase)) as pool:
        yield from pool.imap(_tokenize_one, lines, chunksize=chunksize)


#: Tokens after which the next token starts a sentence: its capital says nothing about the word.
_SENTENCE_END = frozenset({".", "!", "?", "…", "...", "¿", "¡"})


class CorpusCounts:
    """Word counts of a Moses-tokenised corpus (one sentence per line, tokens separated by spaces).

    Used by the substitution-table build (Visser et al. 2025, Sec. 3.1 filters) for the default
    frequency stopwords and for casing: each word (lower-cased with :func:`lower`) keeps the
    counts of its surface forms, separately for sentence-initial positions (the first token of a
    line and tokens after ``. ! ? …``), whose capital letter is orthographic, and all other
    positions, whose casing is the word's own (the truecasing convention of the Moses truecaser).

    Attributes:
        lang: ISO 639-1 code of the corpus (casing rules).
        paths: the files counted.
        sha256: SHA-256 of each file (recorded in table metadata).
        n_lines: lines read.
        n_tokens: tokens counted.
    """

    def __init__(self, lang: str, inner: Counter, initial: Counter, paths: Sequence[str] = (),
                 sha256: Sequence[str] = (), n_lines: int = 0):
        self.lang = lang
        self.paths = [str(p) for p in paths]
        self.sha256 = list(sha256)
        self.n_lines = n_lines
        self.n_tokens = int(sum(inner.values()) + sum(initial.values()))
        self._inner: Dict[str, Dict[str, int]] = {}
        self._initial: Dict[str, Dict[str, int]] = {}
        for src, dst in ((inner, self._inner), (initial, self._initial)):
            for surface, n in src.items():
                dst.setdefault(lower(surface, lang), {})[surface] = n

    @classmethod
    def from_lines(cls, lines: Iterable[str], lang: str, **kw) -> "CorpusCounts":
        """Count tokenised lines (see the class docstring for what counts as sentence-initial)."""
        inner: Counter = Counter()
        initial: Counter = Counter()
        n_lines = 0
        for line in lines:
            n_lines += 1
            toks = line.split()
            if not toks:
                continue
            inner.update(toks)
            initial[toks[0]] += 1
            if _SENTENCE_END.intersection(toks[:-1]):
                for a, b in zip(toks[:-1], toks[1:]):
                    if a in _SENTENCE_END:
                        initial[b] += 1
        inner.subtract(initial)
        inner = Counter({w: n for w, n in inner.items() if n > 0})
        return cls(lang, inner, initial, n_lines=n_lines, **kw)

    @classmethod
    def from_files(cls, paths: Union[PathLike, Sequence[PathLike]], lang: str,
                   max_lines: Optional[int] = None) -> "CorpusCounts":
        """Count one or more tokenised text files (``.gz`` allowed; bad lines skipped and reported).

        Args:
            paths: a file or a list of files.
            lang: ISO 639-1 code.
            max_lines: read at most this many lines in all.

        Raises:
            FileNotFoundError: a file does not exist (named).
        """
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        for p in paths:
            if not Path(p).exists():
                raise FileNotFoundError(f"{p}: corpus for word counts not found")

        def lines():
            left = max_lines
            for p in paths:
                issues = LineIssues(str(p))
                for _, text in iter_lines(p, issues):
                    if left is not None:
                        if left <= 0:
                            return
                        left -= 1
                    yield text
                issues.report()

        return cls.from_lines(lines(), lang, paths=paths, sha256=[sha256_file(p) for p in paths])

    def count(self, word: str) -> int:
        """Occurrences of ``word`` in any casing and position."""
        w = lower(word, self.lang)
        return sum(self._inner.get(w, {}).values()) + sum(self._initial.get(w, {}).values())

    def count_form(self, form: str) -> int:
        """Occurrences of exactly this surface form, in any position."""
        w = lower(form, self.lang)
        return self._inner.get(w, {}).get(form, 0) + self._initial.get(w, {}).get(form, 0)

    def truecase(self, word: str) -> Optional[str]:
        """The most frequent surface form of ``word`` outside sentence-initial positions.

        Ties prefer the lower-case form, then the lexicographically smallest. ``None`` when the
        word never occurs outside sentence-initial positions (its casing is unknown).
        """
        forms = self._inner.get(lower(word, self.lang))
        if not forms:
            return None
        low = lower(word, self.lang)
        return min(forms.items(), key=lambda kv: (-kv[1], kv[0] != low, kv[0]))[0]

    def capitalised(self, word: str) -> Tuple[int, int]:
        """``(capitalised, total)`` occurrences of ``word`` outside sentence-initial positions."""
        forms = self._inner.get(lower(word, self.lang), {})
        return sum(n for f, n in forms.items() if is_capitalised(f)), sum(forms.values())

    def most_frequent(self, n: int) -> List[str]:
        """The ``n`` most frequent words containing a letter, lower-cased (ties: alphabetical)."""
        totals: Counter = Counter()
        for table in (self._inner, self._initial):
            for w, forms in table.items():
                if _has_letter(w):
                    totals[w] += sum(forms.values())
        return [w for w, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

    def describe(self) -> dict:
        """Provenance for table metadata: files, checksums, line and token counts."""
        return dict(lang=self.lang, paths=self.paths, sha256=self.sha256, lines=self.n_lines, tokens=self.n_tokens)


#: The frequency rule: the N most frequent words of the language's own corpus, N the same for every
#: language. csfair's default stopwords are function words (csfair.pretraining.function_words); this
#: rule is an option and the fallback for a language with neither a UD treebank nor a stopwords-iso list.
FREQUENCY_STOPWORDS = "top:20"


def stopword_sha256(words: Iterable[str]) -> str:
    """SHA-256 of a stopword set: its sorted words joined by newlines, UTF-8."""
    return hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()


def stopword_list(spec: Optional[str], lang: str, corpus: Optional[CorpusCounts] = None
                  ) -> Tuple[FrozenSet[str], dict]:
    """A stopword set and how it was made (for table metadata).

    Visser et al. (2025), Sec. 3.1, exclude "frequent stop-words such as *a*, *le*, *des*". The
    substitution tables' default is the function words of a UD treebank
    (:func:`csfair.pretraining.function_words.table_stopwords`, which calls this function for the
    other specs). ``"top:N"`` takes "frequent" literally and the same way for every language: the
    ``N`` most frequent words (tokens with a letter, lower-cased) of ``corpus``, the language's own
    pretraining text; it needs no published list but also catches frequent content words (*man*,
    *two*). Named lists (stopwords-iso) vary wildly in size (en 1,298 words, fr 691, sw 74, none for
    xh) and hold many content words.

    Args:
        spec: ``"top:N"`` (e.g. :data:`FREQUENCY_STOPWORDS`); ``"iso"`` (stopwords-iso);
            ``None``/``"none"``/``""`` (no stopwords); or a ``.json``/``.txt`` list (see
            :func:`load_stopwords`).
        lang: ISO 639-1 code.
        corpus: word counts of the language's corpus (required for ``"top:N"``).

    Returns:
        (words, meta): lower-cased frozenset and ``{"spec", "how", "n_words", "sha256", ...}``
        (``"corpus"`` provenance for ``top:N``, ``"path"`` for lists).

    Raises:
        ValueError: ``top:N`` without a corpus, or a bad ``N``.
        FileNotFoundError, KeyError: see :func:`load_stopwords`.
    """
    spec = "none" if spec in (None, "") else spec
    meta: dict = dict(spec=spec, lang=lang)
    if spec.startswith("top:"):
        try:
            n = int(spec[4:])
        except ValueError:
            n = -1
        if n < 0:
            raise ValueError(f"stopwords {spec!r}: expected top:N with N a non-negative integer")
        if corpus is None:
            raise ValueError(
                f"stopwords {spec!r} ({lang}) are the {n} most frequent words of the language's corpus: "
                f"give the {lang} corpus (csfair-lexicon table --src-corpus/--tgt-corpus), or choose "
                "a named list ('iso', a .json/.txt file) or 'none'")
        words = frozenset(corpus.most_frequent(n))
        meta.update(how=f"the {n} most frequent lower-cased words (tokens with a letter) of the corpus",
                    corpus=corpus.describe())
    else:
        words = load_stopwords(spec, lang)
        if spec == "none":
            meta.update(how="no stopwords")
        else:
            path = data_file("stopwords/stopwords-iso/stopwords-iso.json") if spec == "iso" else Path(spec)
            meta.update(how="stopwords-iso list" if spec == "iso" else "word list", path=str(path),
                        file_sha256=sha256_file(path))
    meta.update(n_words=len(words), sha256=stopword_sha256(words))
    return words, meta


def load_stopwords(spec: Optional[str], lang: str, corpus: Optional[CorpusCounts] = None) -> FrozenSet[str]:
    """Load a lower-cased stopword set (:func:`stopword_list` also says how it was made).

    Args:
        spec: ``None``/``"none"``/``""``: no stopwords; ``"top:N"``: the ``N`` most frequent
            words of ``corpus``; ``"iso"``: the
            stopwords-iso list for ``lang`` from
            ``$CSFAIR_DATA/stopwords/stopwords-iso/stopwords-iso.json``; a path to
            a ``.json`` file (``{lang: [words]}``) or to a text file with one word per line
            (``#`` starts a comment).
        lang: ISO 639-1 code (used for ``"iso"`` and ``.json`` files, and for casing).
        corpus: word counts of the language's corpus (``"top:N"`` only).

    Returns:
        frozenset of lower-cased words.

    Raises:
        FileNotFoundError: the list does not exist.
        ValueError: ``"top:N"`` without a corpus.
        KeyError: the JSON list has no entry for ``lang`` (the message lists the languages).
    """
    if spec is None or spec in ("", "none"):
        return frozenset()
    if spec.startswith("top:"):
        return stopword_list(spec, lang, corpus)[0]
    path = data_file("stopwords/stopwords-iso/stopwords-iso.json") if spec == "iso" else Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{path}: stopword list not found")
    if path.suffix == ".json":
        with open(path, encoding="utf-8-sig") as fh:  # a byte-order mark is not JSON
            table = json.load(fh)
        if lang not in table:
            raise KeyError(f"{path}: no stopword list for language {lang!r} (has: {', '.join(sorted(table))})")
        return frozenset(lower(w.strip(), lang) for w in table[lang] if w.strip())
    words: List[str] = []
    for _, text in iter_lines(path, LineIssues(str(path))):
        text = text.split("#", 1)[0].strip()
        if text:
            words.append(lower(text, lang))
    return frozenset(words)
