"""Tokenisation for code-switching with a transformers *fast* tokenizer.

Words are the fast tokenizer's own words (``BatchEncoding.word_ids()``: its pre-tokenizer's
split), never a re-implementation of it: BERT's WordPiece (``##`` continuations, punctuation is
its own word), XLM-R's sentencepiece (``▁`` word starts, split on whitespace only) and RoBERTa's
byte-level BPE (``Ġ`` word starts). The substitution tables (``csfair-lexicon table
--hf-tokenizer``) encode each word *in context* with the same tokenizer (:func:`word_encoder`), so a
table key is exactly the token ids the word has in running text.

Examples for :class:`csfair_hf.collator.DataCollatorForCodeSwitchedLM` (from :func:`tokenize_lines`,
:func:`group_lines`, or ``datasets.Dataset.map`` with :func:`map_line_by_line` / :func:`map_tokenize_lines`
then :func:`map_group_texts`, as run_mlm.py maps) are dicts with
``input_ids``, ``attention_mask``, ``special_tokens_mask`` (lists of int, as the tokenizer returns
them) and ``word_ids``: int per token, the word index in the line, :data:`NO_WORD` for special
tokens and :data:`CUT_WORD` for the tokens of a word cut by truncation or by a block boundary
(a fragment must never match a shorter table key: the rule of :mod:`csfair.pretraining.sampler`).
The input is expected Moses-tokenised (as csfair's fairseq path and its tables): with
sentencepiece a word followed by attached punctuation ("hard,") is one word that matches no key.
"""
from typing import Callable, Dict, List, Optional, Sequence

#: ``word_ids`` value of special tokens (``[CLS]``, ``</s>``, ...).
NO_WORD = -1
#: ``word_ids`` value of the tokens of a word cut by truncation or a block boundary (never eligible).
CUT_WORD = -2

#: A one-word context put before a word when encoding it for a table, so that it gets the
#: tokens it has inside a sentence (byte-level BPE's ``Ġ``; WordPiece and sentencepiece do not
#: depend on it).
CONTEXT_WORD = "a"


def load_tokenizer(name_or_path: str):
    """``AutoTokenizer.from_pretrained(name_or_path)``, which must be a fast tokenizer.

    Raises:
        ValueError: the tokenizer is not fast (no ``word_ids()``).
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name_or_path)
    if not tok.is_fast:
        raise ValueError(f"{name_or_path}: a fast tokenizer is required (words come from its word_ids())")
    return tok


def _word_ids(enc, i: int) -> List[int]:
    return [NO_WORD if w is None else int(w) for w in enc.word_ids(i)]


def tokenize_lines(tokenizer, lines: Sequence[str], max_length: int, batch_size: int = 1000) -> List[Dict[str, List[int]]]:
    """Line-by-line examples (run_mlm.py's ``--line_by_line``): one example per non-empty line,
    truncated to ``max_length`` tokens (specials included) as the tokenizer truncates; the last
    word of a truncated line is marked :data:`CUT_WORD` when truncation cut it.

    Returns:
        a list of example dicts (see the module docstring).
    """
    out: List[Dict[str, List[int]]] = []
    lines = [ln for ln in lines if ln.strip()]
    for a in range(0, len(lines), batch_size):
        enc = tokenizer(list(lines[a:a + batch_size]), truncation=True, max_length=max_length,
                        return_special_tokens_mask=True, return_overflowing_tokens=True)
        rows = enc["overflow_to_sample_mapping"]
        for r, sample in enumerate(rows):
            if r > 0 and rows[r - 1] == sample:
                continue  # an overflow row: run_mlm.py keeps only the first (truncated) one
            wids = _word_ids(enc, r)
            if r + 1 < len(rows) and rows[r + 1] == sample:
                nxt = [w for w in _word_ids(enc, r + 1) if w >= 0]
                last = max(w for w in wids if w >= 0) if any(w >= 0 for w in wids) else None
                if nxt and last is not None and nxt[0] == last:
                    wids = [CUT_WORD if w == last else w for w in wids]
            out.append(dict(input_ids=list(enc["input_ids"][r]), attention_mask=list(enc["attention_mask"][r]),
                            special_tokens_mask=list(enc["special_tokens_mask"][r]), word_ids=wids))
    return out


def _lines(texts: Sequence[Optional[str]]) -> List[str]:
    return [t for t in texts if t is not None and t.strip()]


def tokenize_for_grouping(tokenizer, lines: Sequence[str], batch_size: int = 1000) -> Dict[str, List[List[int]]]:
    """Every non-empty line tokenised whole, with its special tokens (run_mlm.py's first step before
    ``group_texts``): columns ``input_ids``, ``attention_mask``, ``special_tokens_mask``, ``word_ids``
    (per line; :data:`NO_WORD` on specials)."""
    cols: Dict[str, List[List[int]]] = dict(input_ids=[], attention_mask=[], special_tokens_mask=[], word_ids=[])
    lines = _lines(lines)
    for a in range(0, len(lines), batch_size):
        enc = tokenizer(list(lines[a:a + batch_size]), return_special_tokens_mask=True)
        for r in range(len(enc["input_ids"])):
            cols["input_ids"].append(list(enc["input_ids"][r]))
            cols["attention_mask"].append(list(enc["attention_mask"][r]))
            cols["special_tokens_mask"].append(list(enc["special_tokens_mask"][r]))
            cols["word_ids"].append(_word_ids(enc, r))
    return cols


def group_texts(columns: Dict[str, Sequence[Sequence[int]]], block_size: int) -> Dict[str, List[List[int]]]:
    """run_mlm.py's ``group_texts`` with word ids: the rows of ``columns`` (from
    :func:`tokenize_for_grouping`) concatenated and cut into blocks of ``block_size`` tokens, the
    remainder dropped. Word ids are made unique across rows; a word cut by a block boundary is
    :data:`CUT_WORD` in both blocks (never substituted).

    Returns:
        columns ``input_ids``, ``attention_mask``, ``special_tokens_mask``, ``word_ids``, one row per block.
    """
    ids: List[int] = []
    special: List[int] = []
    wids: List[int] = []
    base = 0
    for row_ids, row_special, w in zip(columns["input_ids"], columns["special_tokens_mask"], columns["word_ids"]):
        ids += row_ids
        special += row_special
        wids += [x + base if x >= 0 else x for x in w]
        base += max(w) + 1 if any(x >= 0 for x in w) else 0
    n = (len(ids) // block_size) * block_size
    out: Dict[str, List[List[int]]] = dict(input_ids=[], attention_mask=[], special_tokens_mask=[], word_ids=[])
    for s in range(0, n, block_size):
        w = wids[s:s + block_size]
        cut = set()
        if s > 0 and w[0] >= 0 and wids[s - 1] == w[0]:
            cut.add(w[0])
        if s + block_size < len(wids) and w[-1] >= 0 and wids[s + block_size] == w[-1]:
            cut.add(w[-1])
        out["input_ids"].append(ids[s:s + block_size])
        out["attention_mask"].append([1] * block_size)
        out["special_tokens_mask"].append(special[s:s + block_size])
        out["word_ids"].append([CUT_WORD if x in cut else x for x in w])
    return out


def group_lines(tokenizer, lines: Sequence[str], block_size: int, batch_size: int = 1000) -> List[Dict[str, List[int]]]:
    """run_mlm.py's default: every line tokenised with its special tokens, concatenated, cut into
    blocks of ``block_size`` tokens (the remainder dropped, as ``group_texts``). Word ids are made
    unique across lines; a word cut by a block boundary is :data:`CUT_WORD` in both blocks."""
    cols = group_texts(tokenize_for_grouping(tokenizer, lines, batch_size), block_size)
    return [dict(zip(cols, row)) for row in zip(*cols.values())]


# ---------------------------------------------------------------- datasets.Dataset.map functions
# Module-level functions with keyword arguments (``fn_kwargs``), so that ``map`` can pickle them for
# ``num_proc`` workers and fingerprint them for its cache.

def map_line_by_line(batch: Dict[str, list], tokenizer, text_column: str, max_length: int) -> Dict[str, list]:
    """``Dataset.map(batched=True)`` function of ``--line_by_line``: :func:`tokenize_lines` of the
    batch's ``text_column`` (empty lines dropped: map with ``remove_columns`` = every input column)."""
    rows = tokenize_lines(tokenizer, _lines(batch[text_column]), max_length)
    keys = ("input_ids", "attention_mask", "special_tokens_mask", "word_ids")
    return {k: [r[k] for r in rows] for k in keys}


def map_tokenize_lines(batch: Dict[str, list], tokenizer, text_column: str) -> Dict[str, list]:
    """``Dataset.map(batched=True)`` function of the first grouping step: :func:`tokenize_for_grouping`."""
    return tokenize_for_grouping(tokenizer, batch[text_column])


def map_group_texts(batch: Dict[str, list], block_size: int) -> Dict[str, list]:
    """``Dataset.map(batched=True)`` function of the second grouping step: :func:`group_texts` of the
    map batch (as run_mlm.py, each map batch drops its own remainder)."""
    return group_texts(batch, block_size)


def word_encoder(tokenizer, context: str = CONTEXT_WORD) -> Callable[[str], List[int]]:
    """``encode(text) -> token ids`` of ``text`` as it appears inside a sentence (after ``context``
    and a space), special tokens excluded: ``##`` continuations, ``▁`` and ``Ġ`` word starts come
    out as in running text. For :func:`csfair.pretraining.table_build.build_table` (candidates may be
    several words)."""
    backend = tokenizer.backend_tokenizer  # the same Rust tokenizer, without the per-call Python overhead

    def encode(text: str) -> List[int]:
        enc = backend.encode(f"{context} {text}", add_special_tokens=False)
        return [t for t, w in zip(enc.ids, enc.word_ids) if w is not None and w > 0]

    return encode


def word_key_encoder(tokenizer, context: str = CONTEXT_WORD) -> Callable[[str], List[int]]:
    """Like :func:`word_encoder` for a table *key*: ``[]`` (not a key) when the tokenizer splits the
    text into several words (``l'homme`` for BERT), which no single word of running text can match."""
    backend = tokenizer.backend_tokenizer

    def encode(text: str) -> List[int]:
        enc = backend.encode(f"{context} {text}", add_special_tokens=False)
        pairs = [(t, w) for t, w in zip(enc.ids, enc.word_ids) if w is not None and w > 0]
        return [t for t, _ in pairs] if len({w for _, w in pairs}) == 1 else []

    return encode


def special_ids(tokenizer) -> List[int]:
    """Ids of the tokenizer's special tokens (never substituted)."""
    return sorted(set(int(i) for i in tokenizer.all_special_ids))


def read_lines(path: str, limit: Optional[int] = None) -> List[str]:
    """Non-empty lines of a UTF-8 text file (the first ``limit`` of them; a byte-order mark removed)."""
    out = []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(line)
                if limit is not None and len(out) >= limit:
                    break
    return out


def describe(tokenizer) -> Dict[str, object]:
    """What a table records about the tokenizer it was built for (class, size, vocabulary digest)."""
    import hashlib
    import json

    vocab = tokenizer.get_vocab()
    digest = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8")).hexdigest()
    return dict(hf_tokenizer_class=type(tokenizer).__name__, hf_vocab_size=len(tokenizer), hf_vocab_sha256=digest)

