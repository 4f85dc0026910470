"""A code-switching masked-LM data collator for transformers' ``Trainer``.

Visser et al. (2025), Section 3.1, on any Hugging Face encoder: each batch is first masked exactly
as ``transformers.DataCollatorForLanguageModeling`` masks it (this class *is* that collator for the
masking: the same torch generator, the same calls in the same order), then each instance is
code-switched by csfair's framework-free sampler (:func:`csfair.pretraining.sampler.code_switch`,
the same function the fairseq task runs) with a token-level substitution table built for the
tokenizer (``csfair-lexicon table --hf-tokenizer``):

* 50% of the instances are code-switched, 3% of their eligible words replaced (paper defaults);
* a word is one of the fast tokenizer's words (``word_ids``, :mod:`csfair_hf.tokenization`); it is
  eligible when its tokens are a table key and none of them is a prediction target or a special
  token: masked words are never substituted, labels stay the original tokens at masked positions
  (-100 elsewhere and on every substituted token);
* instances stay within ``max_seq_length`` tokens, by the fairseq sampler's rule (``cs_overflow``):
  ``truncate`` (default) cuts the tokens a longer candidate pushes past the limit from the instance's
  end, before its final special token, so full (grouped) blocks keep the word rate and the candidate
  distribution; ``drop`` drops a replacement that would overflow (later shorter ones still apply);
* the code-switching draws come from their own numpy generator, so the masks are the same with
  code-switching on and off, and with it off (``cs_mode="none"`` or no table) the batches are
  exactly those of ``DataCollatorForLanguageModeling`` under the same seed.

The collator counts what the fairseq task logs (``cs_inst``, ``cs_word``, ``cs_tok``;
:meth:`DataCollatorForCodeSwitchedLM.cs_rates`).
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling

from csfair.pretraining.sampler import (
    NUM_STATS,
    STAT_CHANGED_TOKENS,
    STAT_CUT_TOKENS,
    STAT_ELIGIBLE,
    STAT_INSTANCE,
    STAT_REPLACED,
    STAT_TOKENS,
    STAT_UNCHANGED,
    CodeSwitchConfig,
    code_switch,
)
from csfair.pretraining.substitution_table import SubstitutionTable
from csfair_hf.tokenization import special_ids

#: Extra entropy word that separates the code-switching stream (as the fairseq dataset's).
CS_STREAM = 0xC0DE5
#: Keys of an example that the collator reads itself and does not hand to ``tokenizer.pad``.
CS_KEYS = ("word_ids", "cs_table")
#: Label of positions that are not prediction targets (transformers' convention).
IGNORE = -100


@dataclass
class DataCollatorForCodeSwitchedLM(DataCollatorForLanguageModeling):
    """``DataCollatorForLanguageModeling`` masking, then code-switching of unmasked whole words.

    Examples are dicts from :func:`csfair_hf.tokenization.tokenize_lines` / ``group_lines``
    (``input_ids``, ``attention_mask``, ``special_tokens_mask``, ``word_ids``; optional int
    ``cs_table``: index into ``cs_tables``, default 0). Returns the stock batch: int64
    ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the tokenizer makes them)
    ``[batch, T]`` and ``labels`` ``[batch, T]`` (original id at masked positions, -100
    elsewhere), ``T <= max_seq_length`` (up to ``pad_to_multiple_of``).

    Attributes (besides the stock ones, e.g. ``mlm_probability``, ``seed``):
        cs_tables: substitution tables (or None) for this tokenizer; None or empty: no code-switching.
        cs_mode: ``none``, ``static`` or ``multiview`` (paper: multiview).
        cs_instance_prob: probability that an instance is code-switched (paper 0.5).
        cs_word_prob: probability that an eligible word of such an instance is replaced (paper 0.03).
        max_seq_length: bound on an instance's length after substitution, in tokens.
        cs_overflow: ``truncate`` (default) or ``drop``: what a replacement that passes
            ``max_seq_length`` does (:mod:`csfair.pretraining.sampler`).
        cs_seed: seed of the code-switching generator (default: ``seed``, else ``torch.initial_seed()``).

    Raises:
        ValueError: whole-word masking or ``return_tensors`` other than ``pt`` with code-switching,
            a table built for another vocabulary size, or examples without ``word_ids`` while
            code-switching.
    """

    cs_tables: Optional[Sequence[Optional[SubstitutionTable]]] = None
    cs_mode: str = "multiview"
    cs_instance_prob: float = 0.5
    cs_word_prob: float = 0.03
    max_seq_length: int = 512
    cs_overflow: str = "truncate"
    cs_seed: Optional[int] = None
    cs_counts: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.zeros(NUM_STATS + 1, dtype=np.int64))

    def __post_init__(self):
        super().__post_init__()
        self.cs_cfg = CodeSwitchConfig(self.cs_mode, self.cs_instance_prob, self.cs_word_prob, self.max_seq_length,
                                       self.cs_overflow)
        self.cs_tables = list(self.cs_tables or [])
        V = len(self.tokenizer)
        for t in self.cs_tables:
            if t is not None and t.max_token_id >= V:
                raise ValueError(f"{getattr(t, 'path', 'table')}: token id {t.max_token_id} >= vocabulary size {V}: "
                                 "a table built for another tokenizer")
            if t is not None and t.meta.get("hf_vocab_size") not in (None, V):
                raise ValueError(f"{getattr(t, 'path', 'table')}: built for a vocabulary of {t.meta['hf_vocab_size']} "
                                 f"tokens, this tokenizer has {V}")
        if self.code_switching and self.whole_word_mask:
            raise ValueError("whole_word_mask with code-switching is not supported")
        if self.code_switching and self.return_tensors != "pt":
            raise ValueError("code-switching returns torch tensors only (return_tensors='pt')")
        self.special = np.zeros(V, dtype=bool)
        self.special[special_ids(self.tokenizer)] = True
        self._cs_rng = None

    @property
    def code_switching(self) -> bool:
        """True when batches are code-switched (a mode other than none and at least one table)."""
        return self.cs_cfg.mode != "none" and any(t is not None for t in self.cs_tables)

    # ------------------------------------------------------------------ rates
    def cs_rates(self) -> Dict[str, float]:
        """Rates since the last :meth:`reset_counts`, as the fairseq task logs them: ``cs_inst``
        (instances code-switched / instances), ``cs_word`` (replaced / eligible words of those
        instances, identical candidates included), ``cs_same`` (replaced words left unchanged: an
        identical candidate / replaced), ``cs_tok`` (input tokens holding a translation / input
        tokens), ``cs_cut`` (tokens cut from instance ends / input tokens), plus the counts."""
        c = self.cs_counts
        n = int(c[NUM_STATS])
        out = dict(instances=n, eligible=int(c[STAT_ELIGIBLE]), replaced=int(c[STAT_REPLACED]),
                   tokens=int(c[STAT_TOKENS]), changed_tokens=int(c[STAT_CHANGED_TOKENS]),
                   unchanged=int(c[STAT_UNCHANGED]), cut_tokens=int(c[STAT_CUT_TOKENS]))
        out["cs_inst"] = c[STAT_INSTANCE] / n if n else 0.0
        out["cs_word"] = c[STAT_REPLACED] / c[STAT_ELIGIBLE] if c[STAT_ELIGIBLE] else 0.0
        out["cs_same"] = c[STAT_UNCHANGED] / c[STAT_REPLACED] if c[STAT_REPLACED] else 0.0
        out["cs_tok"] = c[STAT_CHANGED_TOKENS] / c[STAT_TOKENS] if c[STAT_TOKENS] else 0.0
        out["cs_cut"] = c[STAT_CUT_TOKENS] / c[STAT_TOKENS] if c[STAT_TOKENS] else 0.0
        return out

    def reset_counts(self) -> None:
        self.cs_counts = np.zeros(NUM_STATS + 1, dtype=np.int64)

    # ------------------------------------------------------------------ rng
    def _cs_generator(self) -> np.random.Generator:
        if self._cs_rng is None:
            seed = self.cs_seed if self.cs_seed is not None else self.seed
            if seed is None:
                seed = torch.initial_seed()  # Trainer's set_seed; reading it draws nothing
            info = torch.utils.data.get_worker_info()
            self._cs_rng = np.random.default_rng([int(seed), info.id if info is not None else 0, CS_STREAM])
        return self._cs_rng

    # ------------------------------------------------------------------ collate
    def torch_call(self, examples: List[Any]) -> Dict[str, Any]:
        if not examples or not isinstance(examples[0], dict):
            return super().torch_call(examples)
        stock = [{k: v for k, v in ex.items() if k not in CS_KEYS} for ex in examples]
        batch = super().torch_call(stock)  # pads and masks exactly as DataCollatorForLanguageModeling
        if not (self.mlm and self.code_switching):
            return batch
        if self.tokenizer.padding_side != "right":
            raise ValueError("code-switching needs right padding (tokenizer.padding_side='right')")
        if "token_type_ids" in batch and bool(batch["token_type_ids"].any()):
            raise ValueError("code-switching supports single-segment inputs only (token_type_ids all 0)")
        rng = self._cs_generator()
        pad = self.tokenizer.pad_token_id
        rows_in, rows_lab = [], []
        for i, ex in enumerate(examples):
            if "word_ids" not in ex:
                raise ValueError("examples need 'word_ids' (csfair_hf.tokenization.tokenize_lines / group_lines)")
            original = np.asarray(ex["input_ids"], dtype=np.int64)
            L = len(original)
            wids = np.asarray(ex["word_ids"], dtype=np.int64)
            if len(wids) != L:
                raise ValueError(f"example {i}: {len(wids)} word ids for {L} tokens")
            source = batch["input_ids"][i, :L].numpy()
            target = batch["labels"][i, :L].numpy()
            starts = np.ones(L, dtype=bool)
            starts[1:] = (wids[1:] != wids[:-1]) | (wids[1:] < 0)
            table = self.cs_tables[int(ex.get("cs_table", 0))]
            stats = np.zeros(NUM_STATS, dtype=np.int64)
            stats[STAT_TOKENS] = L
            if table is not None:
                source, target, stats = code_switch(
                    source, target, original, IGNORE, None, self.special, table, rng, self.cs_cfg,
                    pos_word_start=starts, pos_blocked=wids == -2,
                )
            self.cs_counts[:NUM_STATS] += stats
            self.cs_counts[NUM_STATS] += 1
            rows_in.append(source)
            rows_lab.append(target)
        T = max(len(r) for r in rows_in)
        if self.pad_to_multiple_of:
            T = -(-T // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(rows_in), T), pad, dtype=batch["input_ids"].dtype)
        labels = torch.full((len(rows_in), T), IGNORE, dtype=batch["labels"].dtype)
        att = torch.zeros((len(rows_in), T), dtype=batch["attention_mask"].dtype)
        for i, (s, t) in enumerate(zip(rows_in, rows_lab)):
            ids[i, :len(s)] = torch.from_numpy(s)
            labels[i, :len(t)] = torch.from_numpy(t)
            att[i, :len(s)] = 1
        batch["input_ids"], batch["labels"], batch["attention_mask"] = ids, labels, att
        if "token_type_ids" in batch:
            batch["token_type_ids"] = torch.zeros_like(ids)
        return batch
