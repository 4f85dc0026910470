"""Per-item code-switching of a masked MLM instance (the draws; word scan and replacement: word_scan).

Visser et al. (2025), Section 3.1: "Each instance has a 50% probability of containing
replacements, and if selected, each word has a 3% probability of being replaced"; replacements
are sampled from the substitution table and applied only to *unmasked* words, so that "source
words are predicted in the presence of a code-mixed context window" and code-switched tokens are
never prediction targets.

Definitions used here (csfair issue #2):

* a **word** is the run of tokens from one word start (a sentencepiece piece beginning with
  ``▁``, or a special symbol) up to the next word start;
* a word is **eligible** when its token sequence is a key of the substitution table, it has at
  most ``MAX_WORD_PIECES`` tokens, none of its positions is a prediction target (masked,
  randomised or kept-but-predicted) and it contains no special symbol;
* in a code-switched instance each eligible word is replaced with probability ``word_prob`` by
  a candidate's tokens: sampled from the table's distribution (``multiview``) or the most
  probable candidate (``static``);
* a word cut by a block boundary (fairseq's ``--sample-break-mode none`` cuts blocks anywhere) is
  never eligible: a fragment must not match a shorter table key. The first word is a fragment when
  the item does not begin at a word start, the last one when the item does not end with a special
  symbol (``</s>``); for blocks that end mid-sentence this also excludes a last word that happens
  to be complete, which costs at most one word per block;
* an instance stays within ``max_len`` tokens (``overflow``, csfair issues 10 and 20). Default
  ``truncate``: replacements are applied left to right, and the tokens that the instance grows past
  ``max_len`` are cut from its end (before a final special symbol such as ``</s>``, which stays last;
  a replacement straddling the limit is cut with it, one pushed wholly past it is not counted). This is
  code-switching the text, then cutting it to the model's length (the paper pretrains on 128-token
  sequences, Sec. 3.3), so the word rate and the candidate distribution are the table's also in full
  blocks (``--sample-break-mode none``). ``drop``: a replacement that would make the instance longer than
  ``max_len`` is dropped and later, shorter ones are still applied; nothing is cut, but in full blocks
  only candidates no longer than their source word fit (the rate falls from .029 to .023-.025 and the
  applied candidates lean short);
* a drawn candidate identical to its source word (a cognate, a name, a number that the lexicon
  translates by itself; Visser et al. keep it in the normalisation) is a replacement that changes no
  token: counted in ``STAT_REPLACED`` and ``STAT_UNCHANGED``, not in ``STAT_CHANGED_TOKENS``;
* the target is carried along: original tokens at masked positions, padding elsewhere, padding
  on every substituted token.

All draws come from the generator passed in; the caller seeds it from (seed, epoch, index) on a
stream separate from the masking draws.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from csfair.pretraining.substitution_table import SubstitutionTable
from csfair.pretraining.word_scan import replace_words, scan_words

MODES = ("none", "static", "multiview")
#: What happens when replacements make an instance longer than ``max_len`` (see the module docstring).
OVERFLOWS = ("truncate", "drop")

#: Index of each statistic in the array returned by :func:`code_switch`: the instance was chosen
#: for code-switching (0/1), its eligible words, its replaced words (identical candidates included),
#: the input tokens that now hold a translation (tokens of replaced words whose pieces differ from the
#: source word's), the instance's input tokens after substitution, the replaced words whose pieces did
#: not change (an identical candidate was drawn), and the tokens cut from the instance's end to keep
#: it within ``max_len`` (``overflow="truncate"``).
STAT_INSTANCE, STAT_ELIGIBLE, STAT_REPLACED, STAT_CHANGED_TOKENS, STAT_TOKENS = 0, 1, 2, 3, 4
STAT_UNCHANGED, STAT_CUT_TOKENS = 5, 6
NUM_STATS = 7


@dataclass
class CodeSwitchConfig:
    """Code-switching options (paper defaults).

    Attributes:
        mode: ``none`` (no code-switching), ``static`` (top candidate) or ``multiview``
            (sample candidates; the paper's IBM-1 method, and uniform sampling for MUSE).
        instance_prob: probability that an instance is code-switched (0.5).
        word_prob: probability that an eligible word of such an instance is replaced (0.03).
        max_len: upper bound on the instance length after substitution, in tokens.
        overflow: ``truncate`` (default: cut the tokens past ``max_len`` from the instance's end) or
            ``drop`` (drop a replacement that would make the instance longer); see the module docstring.
    """

    mode: str = "multiview"
    instance_prob: float = 0.5
    word_prob: float = 0.03
    max_len: int = 512
    overflow: str = "truncate"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"cs mode must be one of {MODES}, got {self.mode!r}")
        if not (0.0 <= self.instance_prob <= 1.0 and 0.0 <= self.word_prob <= 1.0):
            raise ValueError("instance_prob and word_prob must be probabilities")
        if self.max_len < 1:
            raise ValueError("max_len must be >= 1")
        if self.overflow not in OVERFLOWS:
            raise ValueError(f"overflow must be one of {OVERFLOWS}, got {self.overflow!r}")


def code_switch(
    source: np.ndarray,
    target: np.ndarray,
    original: np.ndarray,
    pad_idx: int,
    word_start: np.ndarray,
    special: np.ndarray,
    table: SubstitutionTable,
    rng: np.random.Generator,
    cfg: CodeSwitchConfig,
    pos_word_start: Optional[np.ndarray] = None,
    pos_blocked: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code-switch one masked instance.

    Args:
        source: int64 ``[L]`` masked input.
        target: int64 ``[L]`` original token at prediction positions, ``pad_idx`` elsewhere.
        original: int64 ``[L]`` the unmasked tokens (words are found and looked up on these).
        pad_idx: padding id.
        word_start: bool ``[V]``: token id starts a word.
        special: bool ``[V]``: token id is a special symbol (never substituted).
        table: the substitution table for this instance's language.
        rng: generator for the code-switching draws.
        cfg: options.
        pos_word_start: optional bool ``[L]``: word starts given per position instead of by
            ``word_start[original]`` (a transformers fast tokenizer's ``word_ids()``, whose words
            are not a property of the token id alone: csfair_hf's collator).
        pos_blocked: optional bool ``[L]``: positions whose word is never eligible (e.g. a word
            cut by truncation), in addition to targets and special symbols.

    Returns:
        (source, target, stats): the new int64 arrays (length ``<= max(L, cfg.max_len)``;
        the inputs are returned unchanged if nothing is replaced) and int64 ``[NUM_STATS]`` stats
        (see ``STAT_*``: code-switched instance 0/1, eligible words, replaced words, changed input
        tokens, input tokens, unchanged replaced words, tokens cut).
    """
    stats = np.zeros(NUM_STATS, dtype=np.int64)
    stats[STAT_TOKENS] = len(source)
    if cfg.mode == "none" or rng.random() >= cfg.instance_prob:
        return source, target, stats
    stats[STAT_INSTANCE] = 1
    L = len(original)
    if L == 0:
        return source, target, stats
    starts, lengths, entry, eligible = scan_words(original, target, pad_idx, word_start, special, table,
                                                 pos_word_start, pos_blocked)
    n_eligible = int(np.count_nonzero(eligible))
    stats[STAT_ELIGIBLE] = n_eligible

    u = rng.random(len(starts))
    chosen = np.flatnonzero(eligible & (u < cfg.word_prob)) if n_eligible else starts[:0]
    if len(chosen) == 0:
        return source, target, stats
    u_cand = rng.random(len(chosen)) if cfg.mode == "multiview" else np.zeros(0)
    new_source, new_target, replaced, changed, unchanged, cut = replace_words(
        source, target, original, pad_idx, starts, lengths, chosen, entry, u_cand, cfg.mode == "multiview", table,
        max(cfg.max_len, L) - L, cfg.overflow == "truncate", bool(special[original[L - 1]]),
    )
    if replaced == 0:
        return source, target, stats
    stats[STAT_REPLACED] = replaced
    stats[STAT_CHANGED_TOKENS] = changed
    stats[STAT_TOKENS] = len(new_source)
    stats[STAT_UNCHANGED] = unchanged
    stats[STAT_CUT_TOKENS] = cut
    return new_source, new_target, stats
