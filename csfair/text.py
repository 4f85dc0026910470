"""Text utilities: Moses pre-tokenisation and stopword lists.

csfair's text pipeline is the XLM one: Moses tokenisation (sacremoses, no XML escaping), then
sentencepiece. Pre-tokenising before sentencepiece makes a sentencepiece "word" (the pieces from
one word start ``▁`` to the next) coincide with a Moses token, which is the unit the IBM-1 and
MUSE lexicons are built on, so punctuation glued to a word ("dog.") does not hide it from the
substitution table.
"""
import json
import multiprocessing
from pathlib import Path
from typing import FrozenSet, Iterable, Iterator, List, Optional

from .io import LineIssues, iter_lines
from .paths import data_file

_TOKENIZER = None
_LOWER = False


def _init_worker(lang: str, lowercase: bool) -> None:
    global _TOKENIZER, _LOWER
    from sacremoses import MosesTokenizer

    _TOKENIZER = MosesTokenizer(lang=lang)
    _LOWER = lowercase


def _tokenize_one(text: str) -> str:
    # split() first: tabs, NBSPs and runs of spaces inside a line become single separators.
    text = " ".join(text.split())
    out = _TOKENIZER.tokenize(text, escape=False, return_str=True, aggressive_dash_splits=False)
    out = " ".join(out.split())
    return out.lower() if _LOWER else out


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


def load_stopwords(spec: Optional[str], lang: str) -> FrozenSet[str]:
    """Load a lower-cased stopword set.

    Args:
        spec: ``None``/``"none"``/``""``: no stopwords; ``"iso"``: the stopwords-iso list for
            ``lang`` from ``$CSFAIR_DATA/stopwords/stopwords-iso/stopwords-iso.json``; a path to
            a ``.json`` file (``{lang: [words]}``) or to a text file with one word per line
            (``#`` starts a comment).
        lang: ISO 639-1 code (used for ``"iso"`` and ``.json`` files).

    Returns:
        frozenset of lower-cased words.

    Raises:
        FileNotFoundError: the list does not exist.
        KeyError: the JSON list has no entry for ``lang`` (the message lists the languages).
    """
    if spec is None or spec in ("", "none"):
        return frozenset()
    path = data_file("stopwords/stopwords-iso/stopwords-iso.json") if spec == "iso" else Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{path}: stopword list not found")
    if path.suffix == ".json":
        with open(path, encoding="utf-8") as fh:
            table = json.load(fh)
        if lang not in table:
            raise KeyError(f"{path}: no stopword list for language {lang!r} (has: {', '.join(sorted(table))})")
        return frozenset(w.strip().lower() for w in table[lang] if w.strip())
    words: List[str] = []
    for _, text in iter_lines(path, LineIssues(str(path))):
        text = text.split("#", 1)[0].strip()
        if text:
            words.append(text.lower())
    return frozenset(words)
