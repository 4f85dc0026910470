"""Token-level substitution tables for code-switched MLM pretraining.

A :class:`SubstitutionTable` maps a *source word*, as the token-id sequence it has in the
binarised corpus (its sentencepiece pieces looked up in the fairseq dictionary), to candidate
translations, each a token-id sequence with a raw probability and a sampling probability.

Method (Visser et al., 2025, Section 3.1; every filter is a :class:`TableConfig` flag with the
paper's default):

* source words shorter than ``min_word_len = 4`` characters or in the source stopword list are
  never replaced;
* candidates that are target-language stopwords are dropped. The paper excludes "frequent
  stop-words such as *a*, *le*, *des*"; ``csfair-lexicon table`` defaults to the same rule for
  every language, the 20 most frequent words of the language's own corpus
  (:func:`csfair.text.stopword_list`); the set's SHA-256 and provenance go into ``meta.json``;
* candidates equal to their source word (case-insensitively: ``paris -> paris``, numbers; 65% of
  the en-fr MUSE pairs) are dropped unless ``keep_identical``: replacing a word by itself changes
  nothing but would be counted as a replacement. Not a filter of the paper;
* for probabilistic (IBM-1) lexicons only candidates with raw ``p > min_prob = 0.02`` are kept;
  MUSE candidates are all kept ("we map each token with all its possible MUSE translations");
* the sampling distribution over the surviving candidates ``x_1..x_k`` of a word is the
  temperature renormalisation (the paper's equation in Section 3.1), ``T = 3``::

      P(x_i) = p_i ** (1 / T) / sum_j p_j ** (1 / T)

  Table 1's "NL" column is the numerator: ``0.3689 ** (1/3) = 0.717`` for *work -> travail*.

Casing. Lexicons are lower-cased. With a target-language corpus (:class:`csfair.text.CorpusCounts`)
each candidate takes its most frequent surface form outside sentence-initial positions there
(English -> German ``house -> Haus``, not ``haus``); without one it keeps the lexicon's form.
With ``case_variants`` the table also holds the Capitalised and UPPER forms of each source word,
whose candidates get the same casing, so "Work" at the start of a sentence becomes "Travail".
With a source-language corpus, a source word that is mostly capitalised there (more than
``name_min_capitalised`` of its non-initial occurrences: *John*, *Texas*, *County*) gets no
case variants, so names are not translated (a confound for NER); only its lower-case form, the
common noun, is a key. In languages that capitalise every noun (:data:`CAPITALISED_NOUN_LANGS`:
German, Luxembourgish) capitals do not mark names, so there the word keeps its usual capitalised
form and its UPPER form as keys, with candidates in their own casing (``Haus -> house``). Casing
follows the language (:func:`csfair.text.upper`): Turkish and Azerbaijani ``i -> İ``, ``ı -> I``.

Storage: flat numpy arrays in CSR layout, one ``.npy`` file each in a directory, loaded with
``mmap_mode="r"`` so that DataLoader workers share one copy of the pages::

    key_hash        uint64 [n]      hash of each source word's token ids, sorted ascending
    key_offsets     int64  [n + 1]  source word e's tokens: key_tokens[key_offsets[e]:key_offsets[e+1]]
    key_tokens      int32  [K]
    cand_offsets    int64  [n + 1]  candidates of entry e: cand_offsets[e]:cand_offsets[e+1]
    cand_prob       float64[m]      raw p(candidate | source) (1/n for MUSE)
    cand_sampling   float64[m]      P(x_i) above, at the table's temperature
    cand_cdf        float64[m]      e + cumulative P within entry e: in (e, e + 1], last = e + 1
    cand_tok_offsets int64 [m + 1]  candidate c's tokens: cand_tokens[cand_tok_offsets[c]:...[c+1]]
    cand_tokens     int32  [T]
    source_words_utf8 uint8 [.]     the n source words, UTF-8, joined by newlines
    cand_words_utf8 uint8  [.]      the m candidate words, likewise (inspection and TSV export)
    meta.json       languages, filters, counts, checksums of the dictionary and of the arrays

``cand_cdf`` lets one ``np.searchsorted(cand_cdf, entries + u, side="right")`` draw a candidate
for any number of words at once (``u ~ U[0, 1)``).
"""
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from . import __version__
from .io import PathLike, atomic_directory, atomic_write
from .lexicon import Lexicon
from .text import CorpusCounts, lower, stopword_sha256, title, upper

#: Languages whose orthography capitalises every noun: capitalisation does not mark names there.
CAPITALISED_NOUN_LANGS = frozenset({"de", "lb"})

#: Words longer than this many pieces never match (their hash is not defined).
MAX_WORD_PIECES = 32

FORMAT_VERSION = 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# Position multipliers of the word hash (odd, fixed forever: stored tables depend on them).
with np.errstate(over="ignore"):
    _POS_MULT = _splitmix64(np.arange(MAX_WORD_PIECES + 2, dtype=np.uint64)) | np.uint64(1)
_LEN_MULT = _POS_MULT[-1]


def word_hashes(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Hash each word (a run of token ids) to a uint64, vectorised over all words of a sequence.

    ``h = len * M_len + sum_j (tok_j + 1) * M_j  (mod 2**64)`` with fixed odd multipliers; words
    are compared exactly after a hash hit (:meth:`SubstitutionTable.verify`), so a collision can
    never cause a wrong substitution.

    Args:
        tokens: int ``[L]`` token ids.
        starts: int64 ``[W]`` ascending word starts with ``starts[0] == 0``.
        lengths: int64 ``[W]`` word lengths; ``starts + lengths`` tiles ``[0, L)``.

    Returns:
        uint64 ``[W]``. Words longer than ``MAX_WORD_PIECES`` get an arbitrary value; callers
        exclude them.
    """
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint64)
    pos = np.arange(len(tokens)) - np.repeat(starts, lengths)
    np.minimum(pos, MAX_WORD_PIECES, out=pos)
    with np.errstate(over="ignore"):
        contrib = (tokens.astype(np.uint64) + np.uint64(1)) * _POS_MULT[pos]
        h = np.add.reduceat(contrib, starts)
        h += lengths.astype(np.uint64) * _LEN_MULT
    return h


@dataclass
class TableConfig:
    """Filters and sampling of a substitution table (paper defaults).

    Attributes:
        min_prob: keep candidates with raw ``p > min_prob`` (probabilistic lexicons only).
        temperature: ``T`` of the renormalisation ``p**(1/T) / sum p**(1/T)``.
        min_word_len: source words with fewer characters are never replaced.
        src_stopwords: source words never replaced (lower-cased).
        tgt_stopwords: candidates dropped (lower-cased).
        case_variants: also add Capitalised and UPPER forms of each source word (not for names:
            see ``name_min_capitalised``).
        keep_identical: keep candidates equal to their source word (compared lower-cased with
            each language's rules). Dropped by default: they change nothing.
        name_min_capitalised: with a source corpus, a source word capitalised in more than this
            fraction of its non-sentence-initial occurrences is a name and gets no case variants
            (1.0: never; ignored in :data:`CAPITALISED_NOUN_LANGS`).
        src_stopwords_info: how ``src_stopwords`` was made (``csfair.text.stopword_list``), stored
            in ``meta.json`` next to its SHA-256.
        tgt_stopwords_info: likewise for ``tgt_stopwords``.
        drop_punct: drop source words and candidates with no letter or digit. Not a filter of
            the paper: with Moses tokenisation IBM-1 aligns words to punctuation tokens
            (``work -> "."``, p = 0.05 on Multi30k), which are not translations.
    """

    min_prob: float = 0.02
    temperature: float = 3.0
    min_word_len: int = 4
    src_stopwords: FrozenSet[str] = field(default_factory=frozenset)
    tgt_stopwords: FrozenSet[str] = field(default_factory=frozenset)
    case_variants: bool = True
    drop_punct: bool = True
    keep_identical: bool = False
    name_min_capitalised: float = 0.5
    src_stopwords_info: dict = field(default_factory=dict)
    tgt_stopwords_info: dict = field(default_factory=dict)


def _has_alnum(word: str) -> bool:
    return any(c.isalnum() for c in word)


def sampling_probs(probs: np.ndarray, groups: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature renormalisation within groups: ``p**(1/T) / sum_group p**(1/T)``.

    Visser et al. (2025), Section 3.1, equation for ``P(xw_i)``.

    Args:
        probs: float ``[m]`` raw probabilities (> 0).
        groups: int64 ``[m]`` group (entry) id of each probability, non-decreasing.
        temperature: ``T > 0``.

    Returns:
        float64 ``[m]``, summing to 1 within each group.

    Raises:
        ValueError: ``temperature <= 0``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = np.power(np.asarray(probs, dtype=np.float64), 1.0 / temperature)
    if len(q) == 0:
        return q
    n_groups = int(groups[-1]) + 1
    totals = np.bincount(groups, weights=q, minlength=n_groups)
    return q / totals[groups]


class SubstitutionTable:
    """Token-level substitution table (see the module docstring for the layout).

    Build with :meth:`build`, persist with :meth:`save`, open with :meth:`load` (memory-mapped).
    """

    ARRAYS = (
        "key_hash", "key_offsets", "key_tokens", "cand_offsets", "cand_prob", "cand_sampling",
        "cand_cdf", "cand_tok_offsets", "cand_tokens", "source_words_utf8", "cand_words_utf8",
    )

    def __init__(self, arrays: Dict[str, np.ndarray], meta: dict):
        missing = [a for a in self.ARRAYS if a not in arrays]
        if missing:
            raise ValueError(f"substitution table lacks arrays: {missing}")
        self.arrays = arrays
        self.meta = meta
        for name in self.ARRAYS:
            setattr(self, name, arrays[name])

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return len(self.key_hash)

    @property
    def num_candidates(self) -> int:
        return len(self.cand_prob)

    @property
    def max_token_id(self) -> int:
        """Largest token id used (-1 for an empty table)."""
        m = -1
        if len(self.key_tokens):
            m = max(m, int(self.key_tokens.max()))
        if len(self.cand_tokens):
            m = max(m, int(self.cand_tokens.max()))
        return m

    def nbytes(self) -> int:
        """Bytes of all arrays (the size on disk, less ``meta.json`` and .npy headers)."""
        return int(sum(self.arrays[a].nbytes for a in self.ARRAYS))

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        lexicon: Lexicon,
        encode: Callable[[str], Sequence[int]],
        unk_index: int,
        cfg: TableConfig,
        extra_meta: Optional[dict] = None,
        progress: bool = False,
        src_corpus: Optional[CorpusCounts] = None,
        tgt_corpus: Optional[CorpusCounts] = None,
    ) -> Tuple["SubstitutionTable", dict]:
        """Build the token-level table from a word lexicon.

        Args:
            lexicon: word-level lexicon (source words lower-cased).
            encode: maps a word to the token ids it has in running text (sentencepiece pieces
                with the word-start marker, looked up in the fairseq dictionary).
            unk_index: the dictionary's ``<unk>`` id: a word encoding to it is outside the
                vocabulary and is skipped (counted in the stats).
            cfg: filters and temperature.
            extra_meta: stored in ``meta.json`` (e.g. dictionary checksum, sentencepiece model).
            progress: show a tqdm bar.
            src_corpus: source-language word counts: names get no case variants, and the stats
                give the fraction of eligible source tokens the stopwords remove.
            tgt_corpus: target-language word counts: candidates take their most frequent
                surface form there.

        Returns:
            (table, stats) with counts of what each filter removed. A source word is *eligible*
            when it passes every word-level filter but the stopword one (length, punctuation, at
            least one candidate left); with ``src_corpus``, ``src_stopword_token_fraction`` is
            the share of the corpus tokens (any casing) of eligible words that are stopwords.
        """
        from tqdm import tqdm

        sl, tl = lexicon.src_lang, lexicon.tgt_lang
        stats = dict(
            lexicon_words=len(lexicon), lexicon_pairs=lexicon.num_pairs,
            src_short=0, src_stopword=0, src_punct=0, src_oov=0, src_too_long=0, src_no_candidate=0,
            src_only_identical=0, src_names=0, src_capitalised_nouns=0,
            cand_below_min_prob=0, cand_stopword=0, cand_punct=0, cand_identical=0, cand_oov=0,
            cand_recased=0, key_collisions=0,
        )
        eligible_tokens = stopword_tokens = 0
        cache: Dict[str, Tuple[int, ...]] = {}

        def enc(w: str) -> Tuple[int, ...]:
            t = cache.get(w)
            if t is None:
                t = tuple(int(x) for x in encode(w))
                cache[w] = t
            return t

        def keep(w: str) -> str:
            return w

        def to_title(w: str) -> str:
            return title(w, tl)

        def to_upper(w: str) -> str:
            return upper(w, tl)

        seen_keys: Dict[Tuple[int, ...], int] = {}
        key_toks: List[Tuple[int, ...]] = []
        src_strs: List[str] = []
        cand_strs: List[str] = []
        cand_toks: List[Tuple[int, ...]] = []
        cand_p: List[float] = []
        cand_entry: List[int] = []
        bar = tqdm(range(len(lexicon)), desc=f"table {sl}->{tl}", disable=not progress,
                   unit="word", mininterval=1.0)
        for i in bar:
            src = lexicon.src_words[i]
            if len(src) < cfg.min_word_len:
                stats["src_short"] += 1
                continue
            if cfg.drop_punct and not _has_alnum(src):
                stats["src_punct"] += 1
                continue
            src_low = lower(src, sl)
            a, b = lexicon.offsets[i], lexicon.offsets[i + 1]
            cands = []
            n_identical = 0
            for t, p in zip(lexicon.tgt_words[a:b], lexicon.probs[a:b]):
                if lexicon.probabilistic and not p > cfg.min_prob:
                    stats["cand_below_min_prob"] += 1
                elif lower(t, tl) in cfg.tgt_stopwords:
                    stats["cand_stopword"] += 1
                elif cfg.drop_punct and not _has_alnum(t):
                    stats["cand_punct"] += 1
                elif not cfg.keep_identical and lower(t, tl) == src_low:
                    stats["cand_identical"] += 1
                    n_identical += 1
                else:
                    cands.append((t, float(p)))
            if not cands:
                stats["src_no_candidate"] += 1
                stats["src_only_identical"] += int(n_identical > 0)
                continue
            # the stopword test comes last so that it counts eligible words only
            is_stop = src_low in cfg.src_stopwords
            if src_corpus is not None:
                n_tok = src_corpus.count(src)
                eligible_tokens += n_tok
                stopword_tokens += n_tok if is_stop else 0
            if is_stop:
                stats["src_stopword"] += 1
                continue
            if tgt_corpus is not None:
                cased = []
                for t, p in cands:
                    tc = tgt_corpus.truecase(t)
                    stats["cand_recased"] += int(tc is not None and tc != t)
                    cased.append((tc if tc is not None else t, p))
                cands = cased
            forms: List[Tuple[str, Callable[[str], str]]] = [(src, keep)]
            if cfg.case_variants:
                name_like = False
                if src_corpus is not None:
                    n_cap, n_all = src_corpus.capitalised(src)
                    name_like = n_all > 0 and n_cap > cfg.name_min_capitalised * n_all
                if not name_like:
                    forms += [(title(src, sl), to_title), (upper(src, sl), to_upper)]
                elif sl in CAPITALISED_NOUN_LANGS:
                    # German nouns: the usual (capitalised) spelling is a key; candidates keep their own case
                    stats["src_capitalised_nouns"] += 1
                    forms += [(src_corpus.truecase(src), keep), (upper(src, sl), to_upper)]
                else:
                    stats["src_names"] += 1  # a name: only the lower-case (common-noun) form is a key
            done = set()
            for src_form, fn in forms:
                if src_form in done:
                    continue  # e.g. "1999": no distinct casing
                done.add(src_form)
                key = enc(src_form)
                if not key or unk_index in key:
                    stats["src_oov"] += 1
                    continue
                if len(key) > MAX_WORD_PIECES:
                    stats["src_too_long"] += 1
                    continue
                if key in seen_keys:
                    stats["key_collisions"] += 1
                    continue
                kept = []
                for t, p in cands:
                    toks = enc(fn(t))
                    if not toks or unk_index in toks:
                        stats["cand_oov"] += 1
                        continue
                    kept.append((fn(t), toks, p))
                if not kept:
                    stats["src_no_candidate"] += 1
                    continue
                e = len(key_toks)
                seen_keys[key] = e
                key_toks.append(key)
                src_strs.append(src_form)
                for t, toks, p in kept:
                    cand_strs.append(t)
                    cand_toks.append(toks)
                    cand_p.append(p)
                    cand_entry.append(e)
        if src_corpus is not None:
            stats.update(src_eligible_tokens=eligible_tokens, src_stopword_tokens=stopword_tokens,
                         src_stopword_token_fraction=stopword_tokens / eligible_tokens if eligible_tokens else 0.0)

        n = len(key_toks)
        key_len = np.array([len(k) for k in key_toks], dtype=np.int64)
        key_offsets = np.concatenate([[0], np.cumsum(key_len)]).astype(np.int64)
        key_tokens = np.fromiter((t for k in key_toks for t in k), dtype=np.int32, count=int(key_offsets[-1]))
        hashes = word_hashes(key_tokens.astype(np.int64), key_offsets[:-1], key_len) if n else np.zeros(0, np.uint64)
        if len(np.unique(hashes)) != n:
            raise RuntimeError("64-bit word-hash collision between two table keys; rebuild with other case variants")
        order = np.argsort(hashes, kind="stable")  # entries sorted by hash for searchsorted

        cand_entry_arr = np.array(cand_entry, dtype=np.int64)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        new_entry = rank[cand_entry_arr]
        # stable: keeps each entry's candidates in decreasing-probability order
        corder = np.argsort(new_entry, kind="stable")
        cand_len = np.array([len(c) for c in cand_toks], dtype=np.int64)[corder]
        ctoks = [cand_toks[c] for c in corder]
        arrays = dict(
            key_hash=hashes[order],
            key_offsets=np.concatenate([[0], np.cumsum(key_len[order])]).astype(np.int64),
            key_tokens=np.fromiter((t for e in order for t in key_toks[e]), dtype=np.int32, count=int(key_len.sum())),
            cand_offsets=np.concatenate([[0], np.cumsum(np.bincount(new_entry, minlength=n))]).astype(np.int64),
            cand_prob=np.array(cand_p, dtype=np.float64)[corder],
            cand_tok_offsets=np.concatenate([[0], np.cumsum(cand_len)]).astype(np.int64),
            cand_tokens=np.fromiter((t for c in ctoks for t in c), dtype=np.int32, count=int(cand_len.sum())),
            source_words_utf8=_pack_words([src_strs[e] for e in order]),
            cand_words_utf8=_pack_words([cand_strs[c] for c in corder]),
        )
        groups = new_entry[corder]
        arrays["cand_sampling"] = sampling_probs(arrays["cand_prob"], groups, cfg.temperature)
        arrays["cand_cdf"] = _cdf(arrays["cand_sampling"], arrays["cand_offsets"])
        stats.update(entries=n, candidates=len(cand_p), source_words=len(set(lower(w, sl) for w in src_strs)))
        meta = dict(
            format_version=FORMAT_VERSION, csfair_version=__version__,
            src_lang=sl, tgt_lang=tl, lexicon_kind=lexicon.kind,
            probabilistic=lexicon.probabilistic, temperature=cfg.temperature, min_prob=cfg.min_prob,
            min_word_len=cfg.min_word_len, case_variants=cfg.case_variants, drop_punct=cfg.drop_punct,
            keep_identical=cfg.keep_identical, name_min_capitalised=cfg.name_min_capitalised,
            casing=dict(
                candidates="most frequent non-initial surface form in the target corpus" if tgt_corpus is not None
                else "lexicon form",
                names="no case variants for source words mostly capitalised in the source corpus"
                if src_corpus is not None and sl not in CAPITALISED_NOUN_LANGS else "not detected",
                src_corpus=src_corpus.describe() if src_corpus is not None else None,
                tgt_corpus=tgt_corpus.describe() if tgt_corpus is not None else None,
            ),
            n_src_stopwords=len(cfg.src_stopwords), n_tgt_stopwords=len(cfg.tgt_stopwords),
            src_stopwords=dict(cfg.src_stopwords_info, n_words=len(cfg.src_stopwords),
                               sha256=stopword_sha256(cfg.src_stopwords)),
            tgt_stopwords=dict(cfg.tgt_stopwords_info, n_words=len(cfg.tgt_stopwords),
                               sha256=stopword_sha256(cfg.tgt_stopwords)),
            stats=stats,
        )
        meta.update(extra_meta or {})
        return cls(arrays, meta), stats

    # ------------------------------------------------------------------ persistence
    def checksum(self) -> str:
        """SHA-256 over all arrays (content, dtype and shape), independent of the directory."""
        h = hashlib.sha256()
        for name in self.ARRAYS:
            a = np.ascontiguousarray(self.arrays[name])
            h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save(self, path: PathLike) -> Path:
        """Write the table directory atomically (complete or not at all) and return its path."""
        path = Path(path)
        meta = dict(self.meta, checksum=self.checksum())
        with atomic_directory(path) as tmp:
            for name in self.ARRAYS:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(self.arrays[name]), allow_pickle=False)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        self.meta = meta
        return path

    @classmethod
    def load(cls, path: PathLike, mmap: bool = True) -> "SubstitutionTable":
        """Open a table directory; arrays are memory-mapped read-only when ``mmap``.

        Raises:
            FileNotFoundError: the directory or one of its files is missing (named).
            ValueError: unsupported format version.
        """
        path = Path(path)
        meta_path = path / "meta.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: substitution table not found")
        if not meta_path.exists():
            raise FileNotFoundError(f"{path}: not a csfair substitution table (no meta.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: table format {meta.get('format_version')} is not {FORMAT_VERSION}")
        arrays = {}
        for name in cls.ARRAYS:
            f = path / f"{name}.npy"
            if not f.exists():
                raise FileNotFoundError(f"{f}: missing array of substitution table {path}")
            arrays[name] = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        table = cls(arrays, meta)
        table.path = str(path)
        return table

    # ------------------------------------------------------------------ resampling
    def with_sampling(self, temperature: float, min_prob: float) -> "SubstitutionTable":
        """The same table with another temperature and/or a stricter ``min_prob``.

        Returns ``self`` (sharing the memory-mapped arrays) when nothing changes. Token arrays are
        shared; only candidate-level arrays are rebuilt.

        Raises:
            ValueError: ``min_prob`` lower than the table's build threshold (pruned candidates
                cannot be restored: rebuild the table).
        """
        same_t = math.isclose(temperature, self.meta["temperature"])
        same_p = math.isclose(min_prob, self.meta["min_prob"])
        if same_t and (same_p or not self.meta["probabilistic"]):
            return self
        if self.meta["probabilistic"] and min_prob < self.meta["min_prob"] - 1e-12:
            raise ValueError(
                f"{getattr(self, 'path', 'table')}: min_prob {min_prob} is below the table's build "
                f"threshold {self.meta['min_prob']}; rebuild the table with --min-prob {min_prob}"
            )
        n = len(self)
        groups = np.repeat(np.arange(n), np.diff(self.cand_offsets))
        keep = np.ones(self.num_candidates, dtype=bool)
        if self.meta["probabilistic"]:
            keep = np.asarray(self.cand_prob) > min_prob
        counts = np.bincount(groups[keep], minlength=n)
        live = counts > 0
        cidx = np.flatnonzero(keep)
        # entries that lost every candidate are removed (keys stay sorted)
        ent = np.flatnonzero(live)
        key_len = np.diff(self.key_offsets)[ent]
        key_sel = _ranges(self.key_offsets[ent], key_len)
        cand_len = np.diff(self.cand_tok_offsets)[cidx]
        tok_sel = _ranges(self.cand_tok_offsets[cidx], cand_len)
        new_groups = np.cumsum(live)[groups[cidx]] - 1
        arrays = dict(
            key_hash=np.asarray(self.key_hash)[ent],
            key_offsets=np.concatenate([[0], np.cumsum(key_len)]).astype(np.int64),
            key_tokens=np.asarray(self.key_tokens)[key_sel],
            cand_offsets=np.concatenate([[0], np.cumsum(counts[live])]).astype(np.int64),
            cand_prob=np.asarray(self.cand_prob)[cidx],
            cand_tok_offsets=np.concatenate([[0], np.cumsum(cand_len)]).astype(np.int64),
            cand_tokens=np.asarray(self.cand_tokens)[tok_sel],
            source_words_utf8=_pack_words([self.source_words()[i] for i in ent]),
            cand_words_utf8=_pack_words([self.cand_words()[i] for i in cidx]),
        )
        arrays["cand_sampling"] = sampling_probs(arrays["cand_prob"], new_groups, temperature)
        arrays["cand_cdf"] = _cdf(arrays["cand_sampling"], arrays["cand_offsets"])
        meta = dict(self.meta, temperature=temperature, min_prob=max(min_prob, self.meta["min_prob"]))
        meta.pop("checksum", None)
        meta["derived_from"] = self.meta.get("checksum")
        out = SubstitutionTable(arrays, meta)
        out.path = getattr(self, "path", None)
        return out

    # ------------------------------------------------------------------ hot path
    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Entry index of each hash, or -1 (vectorised binary search).

        Args:
            hashes: uint64 ``[W]`` from :func:`word_hashes`.

        Returns:
            int64 ``[W]``.
        """
        n = len(self.key_hash)
        if n == 0 or len(hashes) == 0:
            return np.full(len(hashes), -1, dtype=np.int64)
        idx = np.searchsorted(self.key_hash, hashes)
        np.minimum(idx, n - 1, out=idx)
        return np.where(self.key_hash[idx] == hashes, idx, -1)

    def verify(self, entries: np.ndarray, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Exact check that ``tokens[starts[i]:starts[i]+lengths[i]]`` equals entry ``entries[i]``'s key.

        Returns:
            bool ``[len(entries)]``.
        """
        if len(entries) == 0:
            return np.zeros(0, dtype=bool)
        klen = self.key_offsets[entries + 1] - self.key_offsets[entries]
        ok = klen == lengths
        if not ok.any():
            return ok
        e, s, ln = entries[ok], starts[ok], lengths[ok]
        a = tokens[_ranges(s, ln)]
        b = self.key_tokens[_ranges(self.key_offsets[e], ln)]
        same = a == b
        word = np.repeat(np.arange(len(e)), ln)
        bad = np.bincount(word[~same], minlength=len(e)) > 0
        ok[np.flatnonzero(ok)[bad]] = False
        return ok

    def sample(self, entries: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Draw one candidate per entry from the sampling distribution ("multiview").

        Args:
            entries: int64 ``[k]`` entry indices.
            u: float64 ``[k]`` uniforms in ``[0, 1)``.

        Returns:
            int64 ``[k]`` candidate indices (into ``cand_*`` arrays).
        """
        c = np.searchsorted(self.cand_cdf, entries + u, side="right")
        # guard the float edge u -> 1: stay inside the entry's block
        return np.clip(c, self.cand_offsets[entries], self.cand_offsets[entries + 1] - 1)

    def top(self, entries: np.ndarray) -> np.ndarray:
        """The most probable candidate of each entry ("static"); ties keep lexicon order."""
        return np.asarray(self.cand_offsets[entries], dtype=np.int64)

    def candidate_tokens(self, cands: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Token ids of candidates, concatenated, and their lengths (int64 arrays)."""
        starts = self.cand_tok_offsets[cands]
        lens = self.cand_tok_offsets[cands + 1] - starts
        return self.cand_tokens[_ranges(starts, lens)].astype(np.int64), lens.astype(np.int64)

    def candidate_lengths(self, cands: np.ndarray) -> np.ndarray:
        """Number of tokens of each candidate (int64)."""
        return (self.cand_tok_offsets[cands + 1] - self.cand_tok_offsets[cands]).astype(np.int64)

    # ------------------------------------------------------------------ people
    def source_words(self) -> List[str]:
        """The ``n`` source words (entry order)."""
        if getattr(self, "_source_words", None) is None:
            self._source_words = _unpack_words(self.source_words_utf8)
        return self._source_words

    def cand_words(self) -> List[str]:
        """The ``m`` candidate words."""
        if getattr(self, "_cand_words", None) is None:
            self._cand_words = _unpack_words(self.cand_words_utf8)
        return self._cand_words

    def entries_for(self, word: str) -> List[int]:
        """Entry indices whose source word is ``word`` (exact, else case-insensitive)."""
        words = self.source_words()
        hits = [i for i, w in enumerate(words) if w == word]
        if not hits:
            hits = [i for i, w in enumerate(words) if w.lower() == word.lower()]
        return hits

    def rows(self, entry: int) -> List[Tuple[str, float, float]]:
        """``[(target, prob, sampling_prob), ...]`` of an entry, most probable first."""
        a, b = int(self.cand_offsets[entry]), int(self.cand_offsets[entry + 1])
        words = self.cand_words()
        return [(words[c], float(self.cand_prob[c]), float(self.cand_sampling[c])) for c in range(a, b)]

    def to_tsv(self, path: PathLike, decode: Optional[Callable[[Sequence[int]], str]] = None) -> None:
        """Export ``source, target, prob, sampling_prob[, source pieces, target pieces]`` rows."""
        with atomic_write(path) as fh:
            cols = ["source", "target", "prob", "sampling_prob"] + (["source_pieces", "target_pieces"] if decode else [])
            fh.write("\t".join(cols) + "\n")
            src_words, cand_words = self.source_words(), self.cand_words()
            for e in range(len(self)):
                src = src_words[e]
                kt = self.key_tokens[self.key_offsets[e]:self.key_offsets[e + 1]]
                for c in range(int(self.cand_offsets[e]), int(self.cand_offsets[e + 1])):
                    row = [src, cand_words[c], f"{self.cand_prob[c]:.6g}", f"{self.cand_sampling[c]:.6g}"]
                    if decode:
                        ct = self.cand_tokens[self.cand_tok_offsets[c]:self.cand_tok_offsets[c + 1]]
                        row += [decode(kt.tolist()), decode(ct.tolist())]
                    fh.write("\t".join(row) + "\n")


def _pack_words(words: Sequence[str]) -> np.ndarray:
    """Words as one uint8 array of newline-joined UTF-8."""
    return np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8).copy()


def _unpack_words(blob: np.ndarray) -> List[str]:
    text = bytes(np.asarray(blob)).decode("utf-8")
    return text.split("\n") if text else []


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each pair (vectorised)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(np.asarray(starts, dtype=np.int64) - firsts, lengths) + np.arange(total)


def _cdf(sampling: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``e + cumulative sampling probability`` within each entry ``e``; each block ends at ``e + 1``."""
    n = len(offsets) - 1
    if len(sampling) == 0:
        return np.zeros(0, dtype=np.float64)
    groups = np.repeat(np.arange(n), np.diff(offsets))
    cum = np.cumsum(sampling)
    base = np.concatenate([[0.0], cum])[offsets[:-1]]
    local = cum - base[groups]
    last = offsets[1:][np.diff(offsets) > 0] - 1
    local[last] = 1.0  # exact block ends, whatever the float error
    return groups + local
