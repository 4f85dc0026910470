"""Building a substitution table from a word lexicon: the paper's filters, casing, and the
token-level CSR arrays of :class:`csfair.pretraining.substitution_table.SubstitutionTable`.

Token-level substitution tables for code-switched MLM pretraining.

A :class:`SubstitutionTable` maps a *source word*, as the token-id sequence it has in the
binarised corpus (its sentencepiece pieces looked up in the fairseq dictionary), to candidate
translations, each a token-id sequence with a raw probability and a sampling probability.

Method (Visser et al., 2025, Section 3.1; every filter is a :class:`TableConfig` flag with the
paper's default):

* source words shorter than ``min_word_len = 4`` characters or in the source stopword list are
  never replaced;
* candidates that are target-language stopwords are dropped. The paper excludes "frequent
  stop-words such as *a*, *le*, *des*": function words. ``csfair-lexicon table`` defaults to the
  closed-class words of each language's Universal Dependencies treebank, on both sides
  (:mod:`csfair.pretraining.function_words`; ``top:N``, ``iso``, a file or ``none`` are options); the
  set's SHA-256, provenance and held-out measure go into ``meta.json``;
* candidates equal to their source word (case-insensitively: cognates, names, numbers; 65% of the
  en-fr MUSE pairs) stay in the normalisation, as the paper's formula has them (``keep_identical``,
  default): fr->en *club* over {club .749, hip .0245, inside .0242} keeps *club* in 61% of the draws,
  a replacement that changes nothing (the sampler counts it as unchanged). ``keep_identical=False``
  (``--drop-identical``) drops them before renormalising: every draw then changes the word, but
  cognates, names and numbers are replaced by their leftover candidates at the full rate (*club* ->
  *hip* .50 / *inside* .50), mostly alignment noise;
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
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from csfair import __version__
from csfair.lexicons.lexicon import Lexicon
from csfair.pretraining.substitution_table import (
    MAX_WORD_PIECES,
    SubstitutionTable,
    candidate_cdf,
    sampling_probs,
    word_hashes,
)
from csfair.pretraining.table_format import FORMAT_VERSION, pack_words
from csfair.text import CorpusCounts, lower, stopword_sha256, title, upper

#: Languages whose orthography capitalises every noun: capitalisation does not mark names there.
CAPITALISED_NOUN_LANGS = frozenset({"de", "lb"})


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
            each language's rules) in the normalisation, as the paper's formula does (default); a draw
            of one is a replacement that changes nothing (counted as unchanged by the sampler). False
            drops them before renormalising: cognates, names and numbers are then always replaced,
            by their other (often noise) candidates.
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
    keep_identical: bool = True
    name_min_capitalised: float = 0.5
    src_stopwords_info: dict = field(default_factory=dict)
    tgt_stopwords_info: dict = field(default_factory=dict)


def _has_alnum(word: str) -> bool:
    return any(c.isalnum() for c in word)


#: The source-word filters in the order they are applied; a word is counted by the first that removes it
#: (a stopword is a stopword, not a word without candidates), then ``table``: at least one key made. In the
#: token report a table word's tokens in a casing that is not a key (a name's capitals) are ``other_casing``.
FILTER_ORDER = ("short", "punct", "stopword", "no_candidate", "not_encodable", "table")
_FILTER_NAMES = dict(
    table="in the table", short="shorter than min_word_len", punct="no letter or digit", stopword="stopword",
    no_candidate="no candidate left", not_encodable="not encodable", other_casing="casing not a key (names)",
    not_in_lexicon="not in the lexicon",
)


def _token_report(fate: Dict[str, str], forms: Dict[str, List[str]], identity: Dict[str, Tuple[float, bool]],
                  corpus: CorpusCounts) -> dict:
    """Token-weighted effect of the filters on the source corpus (see :func:`build_table`'s Returns)."""
    tokens = dict.fromkeys(FILTER_ORDER + ("other_casing",), 0)
    keyed: Dict[str, int] = {}
    for w, what in fate.items():
        n = corpus.count(w)
        if what == "table":
            keyed[w] = min(n, sum(corpus.count_form(f) for f in forms[w]))
            tokens["table"] += keyed[w]
            tokens["other_casing"] += n - keyed[w]
        else:
            tokens[what] += n
    tokens["not_in_lexicon"] = max(0, corpus.n_tokens - sum(tokens.values()))
    total = corpus.n_tokens
    eligible = sum(n for k, n in tokens.items() if k not in ("short", "punct", "not_in_lexicon"))
    in_table = tokens["table"]
    id_draws = id_top = id_tokens = 0.0
    for w, (share, top) in identity.items():
        if fate.get(w) == "table":
            n = keyed[w]
            id_tokens += n
            id_draws += n * share
            id_top += n * top
    return dict(
        src_corpus_tokens=total, src_tokens=tokens,
        src_token_shares={k: n / total if total else 0.0 for k, n in tokens.items()},
        src_eligible_tokens=eligible, src_stopword_tokens=tokens["stopword"],
        src_stopword_token_fraction=tokens["stopword"] / eligible if eligible else 0.0,
        identity_tokens=int(id_tokens),
        identity_draw_share=id_draws / in_table if in_table else 0.0,
        identity_top_share=id_top / in_table if in_table else 0.0,
    )


def filter_report(meta: dict) -> List[str]:
    """The build's printout: every filter's share (tokens of the source corpus, candidates), the
    identical candidates, and the stopword lists with their held-out UD measure (``table.meta``)."""
    st, sl, tl = meta["stats"], meta["src_lang"], meta["tgt_lang"]
    out = []
    if "src_tokens" in st:
        shares = st["src_token_shares"]
        parts = " | ".join(f"{_FILTER_NAMES[k]} {shares[k]:.2%}"
                           for k in ("table",) + FILTER_ORDER[:-1] + ("other_casing", "not_in_lexicon"))
        corpus = (meta.get("casing") or {}).get("src_corpus") or {}
        out.append(f"{sl} tokens of {', '.join(corpus.get('paths', [])) or 'the source corpus'} "
                   f"({st['src_corpus_tokens']:,}), by the first filter that removes them: {parts}")
        out.append(f"stopwords remove {st['src_stopword_token_fraction']:.2%} of the {sl} tokens that pass the length "
                   f"and punctuation filters ({st['src_stopword_tokens']:,} of {st['src_eligible_tokens']:,})")
    cand = (f"candidates ({st['lexicon_pairs']:,} lexicon pairs): below p {meta['min_prob']} {st['cand_below_min_prob']:,}"
            if meta.get("probabilistic") else f"candidates ({st['lexicon_pairs']:,} lexicon pairs, all kept: MUSE)")
    out.append(f"{cand} | {tl} stopwords {st['cand_stopword']:,} | no letter or digit {st['cand_punct']:,} | "
               f"identical to the source word {st['cand_identical']:,} "
               f"({'kept' if meta.get('keep_identical') else 'dropped'}) | not encodable {st['cand_oov']:,}; "
               f"table: {st.get('entries', 0):,} keys, {st.get('candidates', 0):,} candidates")
    if meta.get("keep_identical") and "identity_draw_share" in st:
        out.append(f"identical candidates kept (paper): {st['identity_draw_share']:.2%} of the draws for the table's "
                   f"{sl} tokens keep the word (no change; for {st['identity_top_share']:.2%} of these tokens the "
                   f"identity is the most probable candidate); {st['src_only_identical']:,} source words have no other")
    elif not meta.get("keep_identical"):
        out.append(f"identical candidates dropped (--drop-identical): {st['src_only_identical']:,} source words had "
                   "no other candidate")
    for side, lang in (("src", sl), ("tgt", tl)):
        info = meta.get(f"{side}_stopwords") or {}
        line = (f"{side} stopwords {info.get('spec', '?')} ({lang}, {info.get('n_words', 0)} words, "
                f"sha256 {str(info.get('sha256', ''))[:12]}): {info.get('how', '')}")
        h = info.get("heldout")
        if h:
            ex = ", ".join(h["content_words"][:8])
            line += (f"; held-out UD ({', '.join(Path(f).name for f in h['files'])}): {h['content_share']:.1%} of its "
                     f"{h['words_seen']} words seen there are content words (majority UPOS NOUN VERB ADJ PROPN NUM"
                     f"{': ' + ex if ex else ''}), it covers {h['function_token_coverage']:.1%} of the "
                     f"{h['function_tokens']:,} function-word tokens")
        elif info.get("spec") not in (None, "none"):
            line += "; not measured (no UD treebank for the language)"
        out.append(line)
    return out


def build_table(
    lexicon: Lexicon,
    encode: Callable[[str], Sequence[int]],
    unk_index: int,
    cfg: TableConfig,
    extra_meta: Optional[dict] = None,
    progress: bool = False,
    src_corpus: Optional[CorpusCounts] = None,
    tgt_corpus: Optional[CorpusCounts] = None,
    encode_key: Optional[Callable[[str], Sequence[int]]] = None,
) -> Tuple[SubstitutionTable, dict]:
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
        encode_key: encodes source words (table keys) when they need another rule than
            candidates; an empty result means "not a key" (counted as ``src_oov``). Default
            ``encode``. A transformers tokenizer passes one that rejects words it splits into
            several words (csfair_hf.tokenization.word_key_encoder): running text never holds
            them as one word.

    Returns:
        (table, stats) with counts of what each filter removed. Source words go through the filters
        in :data:`FILTER_ORDER` and are counted by the first that removes them (``src_short``,
        ``src_punct``, ``src_stopword``, ``src_no_candidate``: every candidate removed by the
        candidate filters ``cand_*``). ``cand_identical`` counts the candidates equal to their source
        word that passed the other filters (``cand_identical_dropped`` those dropped);
        ``src_only_identical`` the words whose candidates are all themselves. With ``src_corpus``:
        ``src_tokens``/``src_token_shares`` weight each word's fate by its corpus tokens (any casing; a
        table word's tokens in a casing that is not a key, a name's capitals, are ``other_casing``;
        ``not_in_lexicon`` the rest of the corpus), ``src_stopword_token_fraction`` is the share of
        the tokens passing the length and punctuation filters that are stopwords, and (identical
        candidates kept) ``identity_draw_share`` the expected share of draws, over the table words'
        tokens, that are the word itself (``identity_top_share``: the identity is the top candidate).
    """
    from tqdm import tqdm

    sl, tl = lexicon.src_lang, lexicon.tgt_lang
    stats = dict(
        lexicon_words=len(lexicon), lexicon_pairs=lexicon.num_pairs,
        src_short=0, src_stopword=0, src_punct=0, src_oov=0, src_too_long=0, src_no_candidate=0,
        src_only_identical=0, src_names=0, src_capitalised_nouns=0,
        cand_below_min_prob=0, cand_stopword=0, cand_punct=0, cand_identical=0, cand_identical_dropped=0,
        cand_oov=0, cand_recased=0, key_collisions=0,
    )
    # what became of each lower-cased source word, for the token-weighted report (FILTER_ORDER)
    fate: Dict[str, str] = {}
    key_forms: Dict[str, List[str]] = {}  # the surface forms of each table word that are keys
    # words in the table: (sampling probability of the identical candidate, it is the most probable one)
    identity: Dict[str, Tuple[float, bool]] = {}
    cache: Dict[str, Tuple[int, ...]] = {}
    key_cache: Dict[str, Tuple[int, ...]] = {}

    def enc(w: str) -> Tuple[int, ...]:
        t = cache.get(w)
        if t is None:
            t = tuple(int(x) for x in encode(w))
            cache[w] = t
        return t

    def enc_key(w: str) -> Tuple[int, ...]:
        if encode_key is None:
            return enc(w)
        t = key_cache.get(w)
        if t is None:
            t = tuple(int(x) for x in encode_key(w))
            key_cache[w] = t
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
        src_low = lower(src, sl)
        # word-level filters first, in FILTER_ORDER: a word is counted by the first one that removes it
        if len(src) < cfg.min_word_len:
            stats["src_short"] += 1
            fate[src_low] = "short"
            continue
        if cfg.drop_punct and not _has_alnum(src):
            stats["src_punct"] += 1
            fate[src_low] = "punct"
            continue
        if src_low in cfg.src_stopwords:
            stats["src_stopword"] += 1
            fate[src_low] = "stopword"
            continue
        a, b = lexicon.offsets[i], lexicon.offsets[i + 1]
        cands = []
        n_identical = 0
        for t, p in zip(lexicon.tgt_words[a:b], lexicon.probs[a:b]):
            t_low = lower(t, tl)
            if lexicon.probabilistic and not p > cfg.min_prob:
                stats["cand_below_min_prob"] += 1
            elif t_low in cfg.tgt_stopwords:
                stats["cand_stopword"] += 1
            elif cfg.drop_punct and not _has_alnum(t):
                stats["cand_punct"] += 1
            elif t_low == src_low:
                stats["cand_identical"] += 1
                n_identical += 1
                if cfg.keep_identical:
                    cands.append((t, float(p)))
                else:
                    stats["cand_identical_dropped"] += 1
            else:
                cands.append((t, float(p)))
        # a word whose candidates (after the other filters) are all itself: never changed (kept) or gone (dropped)
        n_other = len(cands) - (n_identical if cfg.keep_identical else 0)
        stats["src_only_identical"] += int(n_identical > 0 and n_other == 0)
        if not cands:
            stats["src_no_candidate"] += 1
            fate[src_low] = "no_candidate"
            continue
        if n_identical and cfg.keep_identical:
            # the paper's normalisation p**(1/T) / sum p**(1/T) over every candidate, the identical one included
            q = np.power([p for _, p in cands], 1.0 / cfg.temperature)
            is_id = np.array([lower(t, tl) == src_low for t, _ in cands])
            # "top": more probable than every other candidate (MUSE's uniform ties are not)
            top = not (~is_id).any() or q[is_id].max() > q[~is_id].max()
            identity[src_low] = (float(q[is_id].sum() / q.sum()), bool(top))
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
        fate[src_low] = "not_encodable"  # until one of its forms becomes a key
        for src_form, fn in forms:
            if src_form in done:
                continue  # e.g. "1999": no distinct casing
            done.add(src_form)
            key = enc_key(src_form)
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
            fate[src_low] = "table"
            key_forms.setdefault(src_low, []).append(src_form)
            seen_keys[key] = e
            key_toks.append(key)
            src_strs.append(src_form)
            for t, toks, p in kept:
                cand_strs.append(t)
                cand_toks.append(toks)
                cand_p.append(p)
                cand_entry.append(e)
    if src_corpus is not None:
        stats.update(_token_report(fate, key_forms, identity, src_corpus))

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
        source_words_utf8=pack_words([src_strs[e] for e in order]),
        cand_words_utf8=pack_words([cand_strs[c] for c in corder]),
    )
    groups = new_entry[corder]
    arrays["cand_sampling"] = sampling_probs(arrays["cand_prob"], groups, cfg.temperature)
    arrays["cand_cdf"] = candidate_cdf(arrays["cand_sampling"], arrays["cand_offsets"])
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
    return SubstitutionTable(arrays, meta), stats
