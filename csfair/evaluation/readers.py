"""Readers of the standard benchmark formats, and the reader registry of the tasks file.

Besides this repository's staging formats (:mod:`csfair.evaluation.corpora`), csfair reads the
benchmarks in the formats they are distributed in:

* MultiNLI: GLUE's ``MNLI/{train,dev_matched}.tsv`` and MultiNLI 1.0's ``multinli_1.0_*.txt``
  (tab-separated with a header: ``sentence1``, ``sentence2``, ``gold_label``; or ``label``), and
  ``multinli_1.0_*.jsonl`` (one object per line, the same keys);
* XNLI 1.0 (Conneau et al., 2018): ``xnli.dev.tsv`` / ``xnli.test.tsv`` (a header, then one row
  per pair and language: ``language``, ``gold_label``, ``sentence1``, ``sentence2``, ``promptID``,
  ...; 2,490 dev and 5,010 test pairs in each of 15 languages) and ``xnli.{dev,test}.jsonl``;
* PAN-X / WikiANN with the Rahimi et al. (2019) splits as XTREME uses them (Hu et al., 2020):
  ``lang:token<TAB>tag`` lines (``panx_dataset/<lang>/{train,dev,test}``) or XTREME's processed
  ``token<TAB>tag`` (``panx/{train,dev,test}-<lang>.tsv``), blank line between sentences;
* sentence-pair / single-text tables with named columns (``pairs``: a tsv with a header or a
  jsonl; PAWS-X, AfriXNLI, ...), token-per-line files with configurable columns (``columns``:
  LinCE, CoNLL-2003-style files), CoNLL-U treebanks (any field, e.g. UPOS or a MISC key);
* Hugging Face ``datasets``: by name (``load_dataset``), from local files in one of its packaged
  formats (``json``, ``csv``, ``parquet``, ...), or a dataset written by ``save_to_disk``.

Every reader rejects malformed input with :class:`~csfair.io.InputFormatError` (``path:line:
reason``; Hugging Face rows are ``hf:<dataset>[<split>]:<row>``). NLI rows without a gold label
(MultiNLI's ``-``, ``datasets``' ``-1``) are the only rows skipped: they are counted in a
:class:`~csfair.io.LineIssues` and reported on stderr.
"""
import json
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from csfair.evaluation.corpora import (
    XNLI_LABELS,
    TaggedSentence,
    TextExample,
    _normalised,
    _raw_lines,
    read_calcs,
    read_column_sentences,
    read_conllu,
    read_ner,
    read_sentimix,
    read_sick,
    read_udpos_tsv,
    read_xnli,
    split_columns,
)
from csfair.io import InputFormatError, LineIssues, PathLike

#: Labels of NLI rows that have no gold label (MultiNLI/XNLI ``-``): skipped and counted.
NO_GOLD = ("-",)


def _issues(issues: Optional[LineIssues], path: PathLike) -> LineIssues:
    return issues if issues is not None else LineIssues(str(path))


def _looks_like_data(cells: Sequence[str], label_names: Optional[Sequence[str]] = None) -> bool:
    """Whether a would-be header line is a data row: a number, a known label, a duplicate or a sentence among its cells."""
    cells = [c.strip() for c in cells]
    return (any(c.lstrip("-").replace(".", "", 1).isdigit() for c in cells)
            or bool(label_names and any(c in label_names for c in cells))
            or len(set(cells)) < len(cells) or any(len(c.split()) > 3 for c in cells))


def _tsv_rows(path: PathLike, columns: Optional[Sequence[str]] = None, need: Sequence[str] = (),
              label_names: Optional[Sequence[str]] = None, fixes: Optional[LineIssues] = None):
    """``(lineno, {column: value})`` of a tab-separated file with a header line (or the declared ``columns``).

    Quotes are data (GLUE/XNLI files are not CSV-quoted); blank lines are errors. Trailing tabs
    (empty columns past the header's) are removed and counted in ``fixes``.

    Args:
        path: the file.
        columns: the column names of a file without a header line (XTREME-style TSV): every line
            is a row.
        need: columns the caller reads: a header without one of them is an error at line 1 (which
            says "no header" when the line looks like data).
        label_names: the label set (a header cell that is a label marks a data row).
        fixes: counts the normalised lines.

    Raises:
        InputFormatError: no header, a header without a needed column, a row whose column count
            differs from the header's.
    """
    header = list(columns) if columns else None
    for lineno, text in _raw_lines(path):
        if header is None:
            header = text.split("\t")
            while len(header) > 1 and not header[-1].strip():
                header.pop()  # a trailing tab on the header line
            missing = [c for c in need if c not in header]
            if missing:
                if _looks_like_data(header, label_names):
                    raise InputFormatError(
                        path, lineno, f"no header: the first line looks like data ({text[:80]!r}) and there is no "
                        f"{missing[0]!r} column; for a file without a header line, declare its columns in order "
                        f"(tasks file: options = {{ columns = [\"...\", ...] }}, naming {', '.join(map(repr, need))})")
                raise InputFormatError(path, lineno, f"the header has no {', '.join(map(repr, missing))} column "
                                                     f"(has: {', '.join(header)})")
            continue
        if not text.strip():
            raise InputFormatError(path, lineno, "empty line inside the rows")
        cols = split_columns(text, len(header), fixes, path, lineno)
        if len(cols) != len(header):
            raise InputFormatError(path, lineno, f"expected {len(header)} tab-separated columns "
                                                 f"({'as declared' if columns else 'as the header'}), got {len(cols)}")
        yield lineno, dict(zip(header, cols))
    if header is None:
        raise InputFormatError(path, 0, "empty file (expected a header line)")


def _jsonl_rows(path: PathLike):
    """``(lineno, object)`` of a JSON-lines file; blank lines are skipped."""
    for lineno, text in _raw_lines(path):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputFormatError(path, lineno, f"not JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict):
            raise InputFormatError(path, lineno, f"expected a JSON object, got {type(row).__name__}")
        yield lineno, row


def _rows(path: PathLike, columns: Optional[Sequence[str]] = None, need: Sequence[str] = (),
          label_names: Optional[Sequence[str]] = None, fixes: Optional[LineIssues] = None):
    if str(path).endswith((".jsonl", ".jsonl.gz")):
        return _jsonl_rows(path)
    return _tsv_rows(path, columns, need, label_names, fixes)


def _nli_label(row: dict, path, lineno, names: Sequence[str] = XNLI_LABELS) -> Optional[str]:
    """The gold label of an NLI row (``gold_label``, else ``label``; integers index ``names``); None: no gold."""
    key = "gold_label" if "gold_label" in row else "label" if "label" in row else None
    if key is None:
        raise InputFormatError(path, lineno, "no 'gold_label' or 'label' field")
    value = row[key]
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value == -1:
            return None
        if not 0 <= value < len(names):
            raise InputFormatError(path, lineno, f"label {value} out of range (0..{len(names) - 1}: {', '.join(names)})")
        return names[value]
    if value in NO_GOLD:
        return None
    if value not in names:
        raise InputFormatError(path, lineno, f"unknown label {value!r} (expected one of {tuple(names)})")
    return value


def _text_field(row: dict, key: str, path, lineno) -> str:
    if key not in row:
        raise InputFormatError(path, lineno, f"no {key!r} field (has: {', '.join(map(str, row))})")
    value = row[key]
    if not isinstance(value, str):
        raise InputFormatError(path, lineno, f"field {key!r} is {type(value).__name__}, expected text")
    return value


def read_mnli(path: PathLike, issues: Optional[LineIssues] = None) -> List[TextExample]:
    """MultiNLI pairs: GLUE tsv, MultiNLI 1.0 txt (tsv) or jsonl (by the ``.jsonl`` suffix).

    Columns are found by name (``sentence1``, ``sentence2``, ``gold_label`` or ``label``), so GLUE's
    layout (``index``, ``promptID``, ...) and MultiNLI 1.0's (``gold_label`` first) both work.
    ``group`` is the premise text, as :func:`~csfair.evaluation.corpora.read_xnli`.

    Args:
        path: the file.
        issues: receives the rows without a gold label (``-``); default: a new one, reported on stderr.

    Returns:
        one example per labelled row, in file order.

    Raises:
        InputFormatError: a missing column, a row with another column count than the header, an
            unknown label, invalid JSON.
    """
    own = issues is None
    issues = _issues(issues, path)
    out = []
    fixes = _normalised(path)
    for lineno, row in _rows(path, need=("sentence1", "sentence2"), label_names=XNLI_LABELS, fixes=fixes):
        label = _nli_label(row, path, lineno)
        if label is None:
            issues.skip(path, lineno, "no gold label ('-')")
            continue
        a, b = _text_field(row, "sentence1", path, lineno), _text_field(row, "sentence2", path, lineno)
        out.append(TextExample(a, b, label, f"{path}:{lineno}", group=a))
    if own:
        issues.report()
    fixes.report()
    return out


def read_xnli_official(
    path: PathLike, langs: Optional[Iterable[str]] = None, issues: Optional[LineIssues] = None
) -> Dict[str, List[TextExample]]:
    """XNLI 1.0's ``xnli.{dev,test}.tsv`` (or ``.jsonl``): every language's rows of one file.

    ``group`` is ``xnli:<promptID>`` (the premise's id, shared by its translations).

    Args:
        path: the file.
        langs: keep only these languages (default: all in the file).
        issues: receives the rows without a gold label; default: a new one, reported on stderr.

    Returns:
        ``{language: examples}`` in file order.

    Raises:
        InputFormatError: as :func:`read_mnli`, plus a row without ``language``.
    """
    want = set(langs) if langs is not None else None
    own = issues is None
    issues = _issues(issues, path)
    out: Dict[str, List[TextExample]] = {}
    fixes = _normalised(path)
    for lineno, row in _rows(path, need=("language", "sentence1", "sentence2"), label_names=XNLI_LABELS, fixes=fixes):
        lang = row.get("language")
        if not isinstance(lang, str) or not lang:
            raise InputFormatError(path, lineno, "no 'language' field")
        if want is not None and lang not in want:
            continue
        label = _nli_label(row, path, lineno)
        if label is None:
            issues.skip(path, lineno, "no gold label ('-')")
            continue
        a, b = _text_field(row, "sentence1", path, lineno), _text_field(row, "sentence2", path, lineno)
        group = f"xnli:{row['promptID']}" if row.get("promptID") not in (None, "") else a
        out.setdefault(lang, []).append(TextExample(a, b, label, f"{path}:{lineno}", group=group))
    if own:
        issues.report()
    fixes.report()
    return out


def _panx_lang(path: PathLike) -> Optional[str]:
    """``train-en.tsv`` -> ``en``; ``en/train`` -> ``en``; else None."""
    p = Path(path)
    m = re.search(r"-([a-z]{2,3})\.tsv$", p.name)
    if m:
        return m.group(1)
    if p.name in ("train", "dev", "test", "extra") and re.fullmatch(r"[a-z]{2,3}", p.parent.name):
        return p.parent.name
    return None


def read_panx(path: PathLike, lang: Optional[str] = None) -> List[TaggedSentence]:
    """PAN-X (WikiANN, Rahimi splits) in XTREME's layout: ``[lang:]token<TAB>BIO-tag``, blank line between sentences.

    The raw ``panx_dataset/<lang>/<split>`` files prefix every token with ``<lang>:``; XTREME's
    processed ``panx/<split>-<lang>.tsv`` do not. The first token line decides which: when it has
    a ``xx:`` prefix, every line must have it, and it is removed. A prefix of another language than
    the file's (``en:`` tokens in ``de/train``) is an error, not a prefix kept on every token.

    Args:
        path: the file.
        lang: the file's language (default: from the file name, ``train-en.tsv`` or ``en/train``;
            else from the first line's prefix).

    Raises:
        InputFormatError: a line without exactly 2 columns (a single column is a test file whose
            labels XTREME removed; trailing tabs are removed and counted), an empty token or tag, a
            missing prefix in a prefixed file, a prefix of another language.
    """
    lang = lang or _panx_lang(path)
    prefix: Optional[str] = None  # decided by the first token line
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
        cols = split_columns(text, 2, fixes, path, lineno)
        if len(cols) == 1:
            raise InputFormatError(path, lineno, "no tag (XTREME's processed test files have their labels removed: "
                                                 "use the labelled panx_dataset/<lang>/test)")
        if len(cols) != 2:
            raise InputFormatError(path, lineno, f"expected 'token<TAB>tag', got {len(cols)} columns")
        word, label = cols[0].strip(), cols[1].strip()
        if prefix is None:
            m = re.match(r"([a-z]{2,3}):.", word)
            if m and lang is not None and m.group(1) != lang:
                raise InputFormatError(
                    path, lineno, f"token {word!r} has the language prefix {m.group(1) + ':'!r}, but this file is "
                    f"{lang!r} (from its {'name' if _panx_lang(path) == lang else 'declaration'}): a file of another "
                    f"language, or a wrong path")
            prefix = f"{m.group(1)}:" if m else ""
        if prefix:
            if not word.startswith(prefix):
                raise InputFormatError(path, lineno, f"token {word!r} lacks the {prefix!r} prefix of the file's other lines")
            word = word[len(prefix):]
        if not word or not label:
            raise InputFormatError(path, lineno, "empty token or tag")
        if not words:
            first = lineno
        words.append(word)
        labels.append(label)
    if words:
        out.append(TaggedSentence(words, labels, f"{path}:{first}"))
    fixes.report()
    return out


def read_pairs(
    path: PathLike,
    text_a: str = "sentence1",
    text_b: Optional[str] = "sentence2",
    label: str = "label",
    group: Optional[str] = None,
    label_names: Optional[Sequence[str]] = None,
    skip_labels: Sequence[str] = (),
    issues: Optional[LineIssues] = None,
    columns: Optional[Sequence[str]] = None,
) -> List[TextExample]:
    """A labelled text or text-pair table with named columns: a tsv with a header, or a jsonl.

    For PAWS-X (``id sentence1 sentence2 label``), AfriXNLI (``premise hypothesis label``),
    SentiMix-style single texts (``text_b = None``), ...

    Args:
        path: the file (``.jsonl``: JSON lines; anything else: tab-separated with a header).
        text_a, text_b: column names of the texts (``text_b`` None: single texts).
        label: the label column; its values are kept as text unless ``label_names`` is given,
            in which case integer values index it (``0`` -> ``label_names[0]``).
        group: column whose value groups rows (default: the ``text_a`` text).
        label_names: the label set; a value outside it is an error.
        skip_labels: values that mean "no label": counted in ``issues`` and skipped.
        issues: default: a new one, reported on stderr.
        columns: the column names, in order, of a tsv without a header line (XTREME's PAWS-X and
            XNLI files): every line is a row. Without it a tsv's first line is its header, and a
            first line that looks like data is reported as "no header".

    Raises:
        InputFormatError: a missing column (at line 1 for a tsv header, "no header" when the
            header is a data row), a bad column count (trailing tabs are removed and counted) or
            JSON line, a label outside ``label_names``, an empty label.
    """
    own = issues is None
    issues = _issues(issues, path)
    fixes = _normalised(path)
    need = [c for c in (text_a, text_b, label) if c]
    if columns is not None:
        missing = [c for c in need if c not in columns]
        if missing:
            raise InputFormatError(path, 0, f"declared columns {list(columns)} lack {', '.join(map(repr, missing))}")
    out = []
    for lineno, row in _rows(path, columns, need, label_names, fixes):
        if label not in row:
            raise InputFormatError(path, lineno, f"no {label!r} field (has: {', '.join(map(str, row))})")
        value = row[label]
        if isinstance(value, bool) or value is None:
            raise InputFormatError(path, lineno, f"label {value!r} is not a class")
        value = str(value).strip()
        if value in skip_labels:
            issues.skip(path, lineno, f"no label ({value!r})")
            continue
        if not value:
            raise InputFormatError(path, lineno, "empty label")
        if label_names is not None:
            if value.lstrip("-").isdigit() and value not in label_names:
                i = int(value)
                if not 0 <= i < len(label_names):
                    raise InputFormatError(path, lineno, f"label {i} out of range (0..{len(label_names) - 1})")
                value = label_names[i]
            elif value not in label_names:
                raise InputFormatError(path, lineno, f"unknown label {value!r} (expected one of {tuple(label_names)})")
        a = _text_field(row, text_a, path, lineno)
        b = _text_field(row, text_b, path, lineno) if text_b else None
        g = str(row[group]) if group and group in row else a
        out.append(TextExample(a, b, value, f"{path}:{lineno}", group=g))
    if own:
        issues.report()
    fixes.report()
    return out


def read_columns(path: PathLike, word: int = 0, label: int = 1, ncols: Optional[int] = None,
                 comment: Optional[str] = None) -> List[TaggedSentence]:
    """Token-per-line file with tab-separated columns (LinCE ``token<TAB>label`` with ``# sent_enum`` lines, ...).

    Args:
        word, label: 0-based columns; ncols: required column count; comment: prefix of ignored lines
            (give the full marker, e.g. ``"# sent_enum"``: a bare ``"#"`` would drop a ``#`` token).

    Raises:
        InputFormatError: see :func:`csfair.evaluation.corpora.read_column_sentences`.
    """
    return read_column_sentences(path, word, label, ncols=ncols, comment=comment)


def read_sentimix_sentiment(path: PathLike) -> List[TextExample]:
    """SentiMix tweets as single texts labelled with their sentiment (the words joined by spaces)."""
    return [TextExample(" ".join(s.words), None, s.meta["sentiment"], s.source) for s in read_sentimix(path)]


def read_hf(
    kind: str,
    columns: Dict[str, str],
    dataset: Optional[str] = None,
    config: Optional[str] = None,
    split: str = "train",
    data_files=None,
    disk: Optional[PathLike] = None,
    revision: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    label_names: Optional[Sequence[str]] = None,
    issues: Optional[LineIssues] = None,
) -> list:
    """Examples of a Hugging Face ``datasets`` split.

    Loads ``load_from_disk(disk)`` (a ``save_to_disk`` folder: a Dataset, or a DatasetDict and its
    ``split``), else ``load_dataset(dataset, config, split=split, data_files=..., revision=...)``:
    a hub name, or a packaged builder (``json``, ``csv``, ``parquet``, ``text``) with local
    ``data_files``. Integer labels of a ``ClassLabel`` feature become its names (else
    ``label_names``, else the integer as text); ``-1`` (no label) is skipped and counted.

    Args:
        kind: ``classification`` (columns ``text_a``, optional ``text_b``, ``label``) or
            ``tagging`` (columns ``tokens``, ``tags``).
        columns: our field -> the dataset's column, e.g. ``{"text_a": "premise", "text_b":
            "hypothesis", "label": "label"}`` or ``{"tokens": "tokens", "tags": "ner_tags"}``.
        dataset, config, split, data_files, revision, cache_dir: as ``datasets.load_dataset``.
        disk: a ``save_to_disk`` folder (instead of ``dataset``).
        label_names: names of integer labels when the feature is not a ``ClassLabel``.
        issues: default: a new one, reported on stderr.

    Returns:
        TextExample (classification) or TaggedSentence (tagging) list; ``source`` is
        ``hf:<dataset>[/<config>][<split>]:<row>`` (row 1-based).

    Raises:
        FileNotFoundError: the dataset could not be loaded (the message has ``datasets``' reason).
        InputFormatError: a missing column, a row with a missing value or unequal tokens/tags.
    """
    import datasets

    where = f"hf:{disk}" if disk is not None else f"hf:{dataset}" + (f"/{config}" if config else "")
    where += f"[{split}]"
    try:
        if disk is not None:
            ds = datasets.load_from_disk(str(disk))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise InputFormatError(where, 0, f"no split {split!r} (has: {', '.join(ds)})")
                ds = ds[split]
        else:
            kw = dict(split=split, data_files=data_files, revision=revision,
                      cache_dir=str(cache_dir) if cache_dir else None)
            ds = datasets.load_dataset(dataset, config, **{k: v for k, v in kw.items() if v is not None})
    except InputFormatError:
        raise
    except Exception as e:  # datasets raises many types (DatasetNotFoundError, ConnectionError, ValueError, ...)
        raise FileNotFoundError(f"{where}: could not be loaded: {type(e).__name__}: {e}") from None
    need = ("tokens", "tags") if kind == "tagging" else ("text_a", "label")
    for k in need:
        if k not in columns:
            raise ValueError(f"{where}: columns must name {k!r} for a {kind} task (got {columns})")
    for k, col in columns.items():
        if col and col not in ds.column_names:
            raise InputFormatError(where, 0, f"no column {col!r} for {k} (has: {', '.join(ds.column_names)})")

    def names_of(col):
        feat = ds.features[col]
        feat = getattr(feat, "feature", feat)  # Sequence / List of ClassLabel
        return list(feat.names) if isinstance(feat, datasets.ClassLabel) else label_names

    def as_label(value, names, row):
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                return None
            if names is None:
                return str(value)
            if value >= len(names):
                raise InputFormatError(where, row, f"label {value} out of range (0..{len(names) - 1})")
            return names[value]
        if not isinstance(value, str) or not value:
            raise InputFormatError(where, row, f"label {value!r} is not a class")
        return value

    own = issues is None
    issues = _issues(issues, where)
    out: list = []
    if kind == "tagging":
        tc, gc = columns["tokens"], columns["tags"]
        names = names_of(gc)
        for i, r in enumerate(ds, 1):
            toks, tags = r[tc], r[gc]
            if not isinstance(toks, list) or not isinstance(tags, list) or len(toks) != len(tags):
                raise InputFormatError(where, i, f"{tc!r} and {gc!r} must be lists of equal length")
            labs = [as_label(t, names, i) for t in tags]
            if any(x is None for x in labs) or any(not isinstance(w, str) or not w.strip() for w in toks):
                raise InputFormatError(where, i, "empty token or tag")
            if toks:
                out.append(TaggedSentence([w.strip() for w in toks], labs, f"{where}:{i}"))
    else:
        ac, bc, lc = columns["text_a"], columns.get("text_b"), columns["label"]
        names = names_of(lc)
        for i, r in enumerate(ds, 1):
            lab = as_label(r[lc], names, i)
            if lab is None:
                issues.skip(where, i, "no label (-1)")
                continue
            a, b = r[ac], (r[bc] if bc else None)
            if not isinstance(a, str) or (bc and not isinstance(b, str)):
                raise InputFormatError(where, i, "text is missing")
            out.append(TextExample(a, b, lab, f"{where}:{i}", group=a))
    if own:
        issues.report()
    return out


#: Reader name (the tasks file's ``reader``) -> ``(function, multilingual)``. A multilingual
#: reader takes ``langs=`` and returns ``{lang: items}`` for one file holding every language.
READERS: Dict[str, tuple] = {
    "udpos": (read_udpos_tsv, False),  # XTREME UD-POS: token<TAB>UPOS
    "ner-idx": (read_ner, False),  # WikiANN / WikiNEuRal as staged: idx<TAB>token<TAB>tag
    "panx": (read_panx, False),  # XTREME PAN-X: [lang:]token<TAB>tag
    "conllu": (read_conllu, False),  # any CoNLL-U treebank (option field: upos, xpos, misc:KEY)
    "columns": (read_columns, False),  # token-per-line, configurable columns (LinCE, CoNLL)
    "calcs": (read_calcs, False),
    "sentimix": (read_sentimix, False),
    "sentimix-sentiment": (read_sentimix_sentiment, False),
    "xnli-xtreme": (read_xnli, False),  # premise<TAB>hypothesis<TAB>label, one file per language
    "sick": (read_sick, False),
    "mnli": (read_mnli, False),  # GLUE tsv / MultiNLI 1.0 txt or jsonl
    "xnli": (read_xnli_official, True),  # XNLI 1.0 xnli.{dev,test}.{tsv,jsonl}
    "pairs": (read_pairs, False),  # named-column tsv/jsonl (PAWS-X, AfriXNLI, ...)
}


def reader(name: str) -> Callable:
    """The function of a registered reader.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    if name not in READERS and name != "hf":
        raise KeyError(f"unknown reader {name!r} (known: {', '.join(sorted(READERS) + ['hf'])})")
    return read_hf if name == "hf" else READERS[name][0]
