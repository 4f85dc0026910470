"""Readers of the evaluation corpora in ``$CSFAIR_DATA`` (formats in its README.md).

Every reader returns plain examples and rejects malformed input with an
:class:`~csfair.io.InputFormatError` naming the file and line (evaluation data is never silently
repaired: a dropped token would shift every label after it). Files are read as ``utf-8-sig`` (a
byte-order mark is not part of the first token). The one repair is announced: trailing tabs (empty
columns past the format's last one) are removed, and the readers print how many lines had them.

* token-per-line files with blank lines between sentences: XTREME UD-POS (``word<TAB>UPOS``),
  WikiANN / WikiNEuRal (``idx<TAB>token<TAB>BIO-tag``);
* CoNLL-U treebanks through the ``conllu`` library (UPOS; multi-word token lines and empty nodes
  are skipped, as UD's word-level annotation requires);
* CALCS-2016 Spanish-English LID (``tweet_id<TAB>user_id<TAB>start<TAB>end<TAB>token<TAB>label``);
* SemEval-2020 SentiMix (``meta<TAB>id<TAB>sentiment`` header, then ``token<TAB>lid`` lines);
* XNLI (``premise<TAB>hypothesis<TAB>label``, rows aligned across languages) and SICK.
"""
import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from csfair.io import InputFormatError, LineIssues, PathLike, iter_lines


@dataclass
class TaggedSentence:
    """A sentence as gold words with one label each.

    Attributes:
        words: the tokens.
        labels: one label per token (UPOS, BIO tag, language tag).
        source: ``path:line`` of its first token.
        meta: extra fields (e.g. SentiMix sentiment).
    """

    words: List[str]
    labels: List[str]
    source: str = ""
    meta: Dict[str, str] = field(default_factory=dict)


@dataclass
class TextExample:
    """A text or text pair with a label (NLI, sentiment).

    Attributes:
        text_a: premise or text.
        text_b: hypothesis (None for single texts).
        label: class name.
        source: ``path:line``.
        group: grouping key (XNLI: the premise), used to split without leakage.
    """

    text_a: str
    text_b: Optional[str]
    label: str
    source: str = ""
    group: Optional[str] = None


def _raw_lines(path: PathLike):
    """``(lineno, text)`` of every line, blank ones included; invalid UTF-8 or NUL is an error."""
    issues = LineIssues(str(path), strict=True)
    yield from iter_lines(path, issues, skip_empty=False)


def _normalised(path: PathLike) -> LineIssues:
    """The counter of lines a reader repaired and kept (reported on stderr when it finishes)."""
    return LineIssues(str(path), action="normalised")


def split_columns(text: str, ncols: int, fixes: Optional[LineIssues], path: PathLike, lineno: int) -> List[str]:
    """Tab-separated columns of a line; empty columns past the ``ncols``-th (trailing tabs) are removed and counted.

    Spreadsheet exports and hand-edited files often end some lines with a tab; the column count
    of such a line is the format's plus empty ones, which carry nothing.

    Args:
        text: the line.
        ncols: the format's number of columns.
        fixes: counts the lines repaired (None: not counted).
        path, lineno: where the line is (for the count's examples).

    Returns:
        the columns (more than ``ncols`` only when a column past it holds text; the caller's count
        check then names the line).
    """
    cols = text.split("\t")
    if len(cols) > ncols and not any(c.strip() for c in cols[ncols:]):
        if fixes is not None:
            fixes.skip(path, lineno, "trailing tab(s) removed")
        cols = cols[:ncols]
    return cols


def read_column_sentences(
    path: PathLike, word_col: int, label_col: int, ncols: Optional[int] = None, comment: Optional[str] = None
) -> List[TaggedSentence]:
    """Token-per-line file, blank lines between sentences, tab-separated columns.

    Args:
        path: the file.
        word_col, label_col: 0-based columns of the token and its label.
        ncols: required number of columns (None: at least ``max(word_col, label_col) + 1``).
        comment: lines starting with it are ignored (e.g. ``"#"``).

    Raises:
        InputFormatError: a line with the wrong number of columns, an empty token or label.
    """
    need = max(word_col, label_col) + 1
    fixes = _normalised(path)
    out: List[TaggedSentence] = []
    words: List[str] = []
    labels: List[str] = []
    first = 0
    for lineno, text in _raw_lines(path):
        if not text.strip():
            if words:
                out.append(TaggedSentence(words, labels, f"{path}:{first}"))
                words, labels = [], []
            continue
        if comment and text.startswith(comment):
            continue
        cols = split_columns(text, ncols if ncols is not None else need, fixes, path, lineno)
        if (ncols is not None and len(cols) != ncols) or len(cols) < need:
            raise InputFormatError(path, lineno, f"expected {ncols or need} tab-separated columns, got {len(cols)}")
        word, label = cols[word_col].strip(), cols[label_col].strip()
        if not word or not label:
            raise InputFormatError(path, lineno, "empty token or label")
        if not words:
            first = lineno
        words.append(word)
        labels.append(label)
    if words:
        out.append(TaggedSentence(words, labels, f"{path}:{first}"))
    fixes.report()
    return out


def read_udpos_tsv(path: PathLike) -> List[TaggedSentence]:
    """XTREME UD-POS: ``word<TAB>UPOS``."""
    return read_column_sentences(path, 0, 1, ncols=2)


def read_ner(path: PathLike) -> List[TaggedSentence]:
    """WikiANN / WikiNEuRal as staged: ``idx<TAB>token<TAB>BIO-tag``."""
    return read_column_sentences(path, 1, 2, ncols=3)


#: The ten CoNLL-U columns (https://universaldependencies.org/format.html).
CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")


def read_conllu(path: PathLike, field: str = "upos") -> List[TaggedSentence]:
    """One field of every word of a CoNLL-U treebank (``conllu`` library).

    Multi-word token ranges (``1-2``) and empty nodes (``1.1``) are skipped, as UD's word-level
    annotation requires; ``meta`` holds the sentence's comments (``sent_id``, ``text``, ...).
    Every token line must have the format's ten tab-separated columns (the ``conllu`` parser
    alone accepts fewer, and splits on runs of spaces: a 4- or 7-column line would be read with
    fields missing or shifted); trailing tabs are removed and counted.

    Args:
        path: the treebank file (``utf-8-sig``).
        field: ``upos`` (column 4), ``xpos``, ``deprel``, ... or ``misc:KEY`` (a MISC attribute,
            e.g. ``misc:LangID`` for the token language of SAGT).

    Raises:
        InputFormatError: at the offending line: a token line without 10 tab-separated columns, a
            column the parser rejects (an ID that is not an integer, a range or a decimal, a
            non-integer HEAD, ...), a word without a form or the field; at the sentence's first
            line: a sentence the parser rejects as a whole.
    """
    import conllu
    from conllu.parser import DEFAULT_FIELDS, ParseException, parse_line

    misc = field[5:] if field.startswith("misc:") else None
    if not misc and field not in CONLLU_COLUMNS:
        raise ValueError(f"field {field!r} is not a CoNLL-U column ({', '.join(CONLLU_COLUMNS)}) or misc:KEY")
    fixes = _normalised(path)
    out: List[TaggedSentence] = []

    def sentence(block):
        start = block[0][0]
        try:
            (sent,) = conllu.parse("\n".join(t for _, t in block) + "\n\n")
        except Exception as e:  # conllu raises ParseException and ValueError
            raise InputFormatError(path, start, f"CoNLL-U sentence not parsed: {e}") from None
        token_lines = [n for n, t in block if not t.startswith("#")]
        words, labels = [], []
        for n, tok in zip(token_lines, sent):
            if not isinstance(tok["id"], int):
                continue
            value = (tok["misc"] or {}).get(misc) if misc else tok[field]
            if not tok["form"] or not value:
                raise InputFormatError(path, n, f"token {tok['id']} has no form or {field}")
            words.append(tok["form"])
            labels.append(value)
        if words:
            out.append(TaggedSentence(words, labels, f"{path}:{start}", dict(sent.metadata)))

    block: List[Tuple[int, str]] = []
    for lineno, text in _raw_lines(path):
        if not text.strip():
            if block:
                sentence(block)
                block = []
            continue
        if not text.startswith("#"):
            cols = split_columns(text, 10, fixes, path, lineno)
            if len(cols) != 10:
                raise InputFormatError(path, lineno, f"expected the 10 tab-separated CoNLL-U columns "
                                                     f"({' '.join(c.upper() for c in CONLLU_COLUMNS)}), got {len(cols)}")
            text = "\t".join(cols)
            try:
                parse_line(text, DEFAULT_FIELDS)
            except ParseException as e:
                raise InputFormatError(path, lineno, f"CoNLL-U token line not parsed: {e}") from None
        block.append((lineno, text))
    if block:
        sentence(block)
    fixes.report()
    return out


def read_calcs(path: PathLike) -> List[TaggedSentence]:
    """CALCS-2016 LID: consecutive rows of one tweet id form a sentence; labels ``en/es/other``."""
    out: List[TaggedSentence] = []
    fixes = _normalised(path)
    cur_id, words, labels, first = None, [], [], 0
    for lineno, text in _raw_lines(path):
        if not text.strip():
            continue
        cols = split_columns(text, 6, fixes, path, lineno)
        if len(cols) != 6:
            raise InputFormatError(path, lineno, f"expected 6 tab-separated columns, got {len(cols)}")
        if cols[0] != cur_id and words:
            out.append(TaggedSentence(words, labels, f"{path}:{first}"))
            words, labels = [], []
        if not words:
            first = lineno
        cur_id = cols[0]
        if not cols[4].strip() or not cols[5].strip():
            raise InputFormatError(path, lineno, "empty token or label")
        words.append(cols[4].strip())
        labels.append(cols[5].strip())
    if words:
        out.append(TaggedSentence(words, labels, f"{path}:{first}"))
    fixes.report()
    return out


def read_sentimix(path: PathLike) -> List[TaggedSentence]:
    """SentiMix: ``meta<TAB>id<TAB>sentiment`` then ``token<TAB>lid`` lines; ``meta["sentiment"]``."""
    out: List[TaggedSentence] = []
    fixes = _normalised(path)
    cur: Optional[TaggedSentence] = None
    for lineno, text in _raw_lines(path):
        if not text.strip():
            continue
        cols = text.split("\t")
        if cols[0] != "meta":
            cols = split_columns(text, 2, fixes, path, lineno)
        # a header is "meta<TAB>id<TAB>sentiment"; "meta<TAB>lang2" is the Spanish word "meta"
        if cols[0] == "meta" and len(cols) == 3:
            if cur is not None and cur.words:
                out.append(cur)
            cur = TaggedSentence([], [], f"{path}:{lineno}", {"id": cols[1], "sentiment": cols[2].strip()})
            continue
        if cur is None:
            raise InputFormatError(path, lineno, "token line before the first 'meta' line")
        if len(cols) != 2:
            raise InputFormatError(path, lineno, f"expected 'token<TAB>lid', got {len(cols)} columns")
        if not cols[0].strip() or not cols[1].strip():
            raise InputFormatError(path, lineno, "empty token or language tag")
        cur.words.append(cols[0].strip())
        cur.labels.append(cols[1].strip())
    if cur is not None and cur.words:
        out.append(cur)
    fixes.report()
    return out


XNLI_LABELS = ("entailment", "neutral", "contradiction")


def read_xnli(path: PathLike) -> List[TextExample]:
    """XTREME XNLI: ``premise<TAB>hypothesis<TAB>label``; ``group`` is the premise text."""
    out = []
    fixes = _normalised(path)
    for lineno, text in _raw_lines(path):
        if not text.strip():
            raise InputFormatError(path, lineno, "empty line inside the XNLI rows")
        cols = split_columns(text, 3, fixes, path, lineno)
        if len(cols) != 3:
            raise InputFormatError(path, lineno, f"expected premise, hypothesis, label; got {len(cols)} columns")
        if cols[2] not in XNLI_LABELS:
            raise InputFormatError(path, lineno, f"unknown label {cols[2]!r} (expected one of {XNLI_LABELS})")
        out.append(TextExample(cols[0], cols[1], cols[2], f"{path}:{lineno}", group=cols[0]))
    fixes.report()
    return out


def read_sick(path: PathLike) -> List[TextExample]:
    """SICK: ``pair_ID<TAB>sentence_A<TAB>sentence_B<TAB>relatedness<TAB>LABEL`` (header line skipped)."""
    out = []
    fixes = _normalised(path)
    for lineno, text in _raw_lines(path):
        cols = split_columns(text, 5, fixes, path, lineno)
        if lineno == 1 and not cols[0].isdigit():
            continue
        if len(cols) != 5:
            raise InputFormatError(path, lineno, f"expected 5 tab-separated columns, got {len(cols)}")
        label = cols[4].strip().lower()
        if label not in XNLI_LABELS:
            raise InputFormatError(path, lineno, f"unknown label {cols[4]!r}")
        out.append(TextExample(cols[1], cols[2], label, f"{path}:{lineno}", group=f"sick{cols[0]}"))
    fixes.report()
    return out


def split_by_premise(
    rows: Dict[str, List[TextExample]], source_lang: str = "en", dev: float = 0.1, test: float = 0.3, seed: int = 1
) -> Tuple[List[TextExample], List[TextExample], Dict[str, List[TextExample]]]:
    """Split row-aligned XNLI files by premise: no premise appears in two of train, dev, test.

    Premises are the groups of the ``source_lang`` rows; a seeded shuffle assigns ``test`` of them
    to the test part, ``dev`` to the dev part and the rest to training. Training and dev rows are
    in ``source_lang``; the test rows are taken from every language, same row indices.
    (:func:`split_by_group` with ``align="rows"``.)

    Args:
        rows: ``{lang: rows}`` with the same number of rows, aligned (same labels row by row).
        source_lang: the training language.
        dev, test: fractions of the premises.
        seed: shuffling seed.

    Returns:
        (train rows, dev rows, {lang: test rows}) — test rows for every language but also for
        ``source_lang`` (its in-language test).

    Raises:
        ValueError: the languages are not row-aligned (different counts or labels).
    """
    return split_by_group(rows, source_lang, dev, test, seed, align="rows", name="XNLI")


def split_by_group(
    rows: Dict[str, list], source_lang: str = "en", dev: float = 0.1, test: float = 0.3, seed: int = 1,
    align: str = "rows", name: str = "",
) -> Tuple[list, list, Dict[str, list]]:
    """Split one multilingual set into train/dev (``source_lang``) and test (every language) by group.

    No group has rows in two of train, dev and test (XNLI: the three hypotheses of a premise stay
    together, and a test row's translation is never trained on). A seeded shuffle of the
    ``source_lang`` groups assigns ``test`` of them to the test part, ``dev`` to dev, the rest to
    training.

    Args:
        rows: ``{lang: items}`` (TextExample: ``group`` is the key; TaggedSentence: each sentence is
            its own group).
        source_lang: the training language.
        dev, test: fractions of the groups.
        seed: shuffling seed.
        align: ``"rows"``: the languages are translations row by row (same count; same labels for
            classification) and the test rows of every language are those at the test rows'
            indices (XNLI-style files, whose premise text differs by language); ``"group"``: each
            language's rows carry the shared group key (PAWS-X ``id``, XNLI 1.0 ``promptID``) and
            its test rows are those of the test groups (rows of groups the training language lacks
            are in no part).
        name: what the rows are (error messages): the task's name.

    Returns:
        (train items, dev items, {lang: test items}), ``source_lang`` included in the tests.

    Raises:
        ValueError: ``align="rows"`` and the languages differ in count or in a row's label;
            ``align="group"`` and an item has no group.
    """
    what = f"{name} " if name else ""
    base = rows[source_lang]
    if align == "rows":
        for lang, r in rows.items():
            if len(r) != len(base):
                raise ValueError(f"{what}{lang} has {len(r)} rows, {source_lang} has {len(base)}: not row-aligned")
            bad = next((i for i, (a, b) in enumerate(zip(base, r))
                        if getattr(a, "label", None) != getattr(b, "label", None)), None)
            if bad is not None:
                raise ValueError(f"{what}{lang} row {bad + 1} ({r[bad].source}) has label {r[bad].label!r}, "
                                 f"{source_lang} has {base[bad].label!r}: not row-aligned")
        keys = [getattr(x, "group", None) or i for i, x in enumerate(base)]
    elif align == "group":
        for lang, r in rows.items():
            x = next((x for x in r if getattr(x, "group", None) in (None, "")), None)
            if x is not None:
                raise ValueError(f"{what}{lang}: {x.source} has no group key (align = \"group\" needs one per row)")
        keys = [x.group for x in base]
    else:
        raise ValueError(f"align must be 'rows' or 'group', got {align!r}")
    order = list(dict.fromkeys(keys))
    random.Random(seed).shuffle(order)
    n_test, n_dev = round(len(order) * test), round(len(order) * dev)
    test_g, dev_g = set(order[:n_test]), set(order[n_test:n_test + n_dev])

    def part(key):
        return "test" if key in test_g else "dev" if key in dev_g else "train"

    parts = [part(k) for k in keys]
    train = [x for x, p in zip(base, parts) if p == "train"]
    devs = [x for x, p in zip(base, parts) if p == "dev"]
    if align == "rows":
        tests = {lang: [x for x, p in zip(r, parts) if p == "test"] for lang, r in rows.items()}
    else:
        tests = {lang: [x for x in r if x.group in test_g] for lang, r in rows.items()}
    return train, devs, tests


def subsample(items: Sequence, n: Optional[int], seed: int = 1) -> list:
    """At most ``n`` items, a seeded random subset in the original order (all if ``n`` is None)."""
    items = list(items)
    if n is None or n >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]
