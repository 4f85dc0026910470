"""A code-switching masked-LM data collator for transformers' ``Trainer``.

Visser et al. (2025), Section 3.1, on any Hugging Face encoder: each instance is first masked by
``transformers.DataCollatorForLanguageModeling``'s own masking (``torch_mask_tokens``: the same
calls in the same order), then code-switched by csfair's framework-free sampler
(:func:`csfair.pretraining.sampler.code_switch`, the function the fairseq task runs) with a
token-level substitution table built for the tokenizer (``csfair-lexicon table --hf-tokenizer``):

* 50% of the instances are code-switched, 3% of their eligible words replaced (paper defaults);
* a word is one of the fast tokenizer's words (``word_ids``, :mod:`csfair_hf.tokenization`); it is
  eligible when its tokens are a table key and none of them is a prediction target or a special
  token: masked words are never substituted, labels stay the original tokens at masked positions
  (-100 elsewhere and on every substituted token);
* instances stay within ``max_seq_length`` tokens (default: the tokenizer's ``model_max_length``), by
  the fairseq sampler's rule (``cs_overflow``): ``truncate`` (default) cuts the tokens a longer
  candidate pushes past the limit from the instance's end, before its final special token, so full
  (grouped) blocks keep the word rate and the candidate distribution; ``drop`` drops a replacement
  that would overflow (later shorter ones still apply).

Where the draws come from. An example that carries ``draw_key = (epoch, index)`` (the training
dataset of :class:`csfair_hf.trainer.CodeSwitchMLMTrainer` adds it; :class:`csfair_hf.trainer.KeyedExamples`)
is drawn from generators keyed on (seed, epoch, index), as csfair's fairseq datasets draw (csfair
issues 2 and 23): its masks from a ``torch.Generator`` seeded with :func:`mask_seed`, its
code-switching from ``np.random.default_rng([seed, epoch, index, CS_STREAM])``
(:class:`csfair.pretraining.keyed_rng.KeyedGenerator`, the fairseq dataset's key). The draws are
then a function of the example alone: new every epoch, the same whatever the number of DataLoader
workers (and whether they are persistent), the batch size or the order, and the same in a resumed
run as in the uninterrupted one. Examples without ``draw_key`` are drawn as the stock collator
draws: from its stateful generator (``seed``) or torch's global one, code-switching from a stateful
numpy generator; with DataLoader workers those draws depend on the number of workers and, with a
``seed``, repeat every epoch (every worker copy is re-seeded identically).

When code-switching is off (``cs_mode="none"`` or no table) the collator *is* the stock one:

* unkeyed examples: the batch equals ``DataCollatorForLanguageModeling(tokenizer, seed=S)``'s on the
  same examples, exactly (same generator, same calls, same order);
* keyed examples: row ``r`` equals the stock collator's batch of that one example under the seed of
  its key, ``DataCollatorForLanguageModeling(tokenizer, seed=mask_seed(S, epoch, index))([example])``
  (that collator without ``pad_to_multiple_of``: padding a one-example batch would change its draws),
  right-padded to the batch's length.

With code-switching on, the masks are exactly those with it off (the code-switching draws use their
own generator), and a row differs only where words were replaced (and, with ``cs_overflow="truncate"``,
in the tail cut to keep ``max_seq_length``).

Counts. With ``stats_in_batch`` (set by :class:`csfair_hf.trainer.CodeSwitchMLMTrainer`) every batch
carries ``cs_stats``, int64 ``[NUM_STATS + 1]`` (the sampler's ``STAT_*`` sums and the number of
instances, last) and ``draw_key``, int64 ``[batch, 2]``, for the main process to aggregate
(:func:`cs_rates_from_counts`) and to pop before the model's forward: counts made inside DataLoader
worker processes reach the trainer this way. :meth:`DataCollatorForCodeSwitchedLM.cs_rates` counts the
collations of *this* process only (workers=0, benchmarks).
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling
from transformers.data.data_collator import pad_without_fast_tokenizer_warning

from csfair.pretraining.keyed_rng import KeyedGenerator, seed_sequence_state
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
#: Extra entropy word of the masking stream of keyed examples (:func:`mask_seed`).
MASK_STREAM = 0x3A5C
#: Example field (and batch entry) holding the example's ``(epoch, index)`` key.
DRAW_KEY = "draw_key"
#: Batch entry holding the code-switching counts of the batch (``stats_in_batch``).
STATS_KEY = "cs_stats"
#: Keys of an example that the collator reads itself and does not hand to ``tokenizer.pad``.
CS_KEYS = ("word_ids", "cs_table", DRAW_KEY)
#: Label of positions that are not prediction targets (transformers' convention).
IGNORE = -100
#: ``tokenizer.model_max_length`` of tokenizers saved without a limit (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = int(1e20)


def mask_seed(seed: int, epoch: int, index: int) -> int:
    """The ``torch.Generator`` seed of the masks of example ``index`` in epoch ``epoch``.

    The first 64 bits of ``np.random.SeedSequence([seed, epoch, index, MASK_STREAM])``'s state
    (:func:`csfair.pretraining.keyed_rng.seed_sequence_state`): well mixed, so neighbouring keys give
    unrelated streams (``seed + index`` would make example ``i`` of epoch ``e + 1`` replay example
    ``i + 1`` of epoch ``e`` under some schemes).

    Returns:
        int in ``[0, 2**64)``.

    Raises:
        ValueError: a negative seed, epoch or index.
    """
    w = seed_sequence_state([int(seed), int(epoch), int(index), MASK_STREAM])
    return w[0] | (w[1] << 32)


def cs_rates_from_counts(counts: Sequence[int]) -> Dict[str, float]:
    """Rates as the fairseq task logs them, from int ``[NUM_STATS + 1]`` counts (``STAT_*`` sums, then
    the number of instances).

    Returns:
        dict: ``cs_inst`` (instances code-switched / instances), ``cs_word`` (replaced / eligible
        words of those instances, identical candidates included), ``cs_same`` (replaced words left
        unchanged: an identical candidate / replaced), ``cs_tok`` (input tokens holding a translation /
        input tokens), ``cs_cut`` (tokens cut from instance ends / input tokens), plus the counts
        ``instances``, ``eligible``, ``replaced``, ``tokens``, ``changed_tokens``, ``unchanged``,
        ``cut_tokens``. A rate with a zero denominator is 0.0.
    """
    c = np.asarray(counts, dtype=np.int64)
    if c.shape != (NUM_STATS + 1,):
        raise ValueError(f"counts must have {NUM_STATS + 1} entries, got shape {c.shape}")
    n = int(c[NUM_STATS])
    out = dict(instances=n, eligible=int(c[STAT_ELIGIBLE]), replaced=int(c[STAT_REPLACED]),
               tokens=int(c[STAT_TOKENS]), changed_tokens=int(c[STAT_CHANGED_TOKENS]),
               unchanged=int(c[STAT_UNCHANGED]), cut_tokens=int(c[STAT_CUT_TOKENS]))
    out["cs_inst"] = float(c[STAT_INSTANCE] / n) if n else 0.0
    out["cs_word"] = float(c[STAT_REPLACED] / c[STAT_ELIGIBLE]) if c[STAT_ELIGIBLE] else 0.0
    out["cs_same"] = float(c[STAT_UNCHANGED] / c[STAT_REPLACED]) if c[STAT_REPLACED] else 0.0
    out["cs_tok"] = float(c[STAT_CHANGED_TOKENS] / c[STAT_TOKENS]) if c[STAT_TOKENS] else 0.0
    out["cs_cut"] = float(c[STAT_CUT_TOKENS] / c[STAT_TOKENS]) if c[STAT_TOKENS] else 0.0
    return out


@dataclass
class DataCollatorForCodeSwitchedLM(DataCollatorForLanguageModeling):
    """``DataCollatorForLanguageModeling`` masking, then code-switching of unmasked whole words.

    Examples are dicts from :func:`csfair_hf.tokenization.tokenize_lines` / ``group_lines`` or the
    ``datasets`` map functions there (``input_ids``, ``attention_mask``, ``special_tokens_mask``,
    ``word_ids``; optional int ``cs_table``: index into ``cs_tables``, default 0; optional
    ``draw_key``: ``(epoch, index)``, see the module docstring). Returns the stock batch: int64
    ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the tokenizer makes them)
    ``[batch, T]`` and ``labels`` ``[batch, T]`` (original id at masked positions, -100
    elsewhere), ``T <= max_seq_length`` (up to ``pad_to_multiple_of``); with ``stats_in_batch`` also
    ``cs_stats`` int64 ``[NUM_STATS + 1]`` and ``draw_key`` int64 ``[batch, 2]`` (-1 for unkeyed rows).

    Attributes (besides the stock ones, e.g. ``mlm_probability``, ``seed``):
        cs_tables: substitution tables (or None) for this tokenizer; None or empty: no code-switching.
        cs_mode: ``none``, ``static`` or ``multiview`` (paper: multiview).
        cs_instance_prob: probability that an instance is code-switched (paper 0.5).
        cs_word_prob: probability that an eligible word of such an instance is replaced (paper 0.03).
        max_seq_length: bound on an instance's length after substitution, in tokens (default: the
            tokenizer's ``model_max_length``; give the model's position limit when it is smaller).
        cs_overflow: ``truncate`` (default) or ``drop``: what a replacement that passes
            ``max_seq_length`` does (:mod:`csfair.pretraining.sampler`).
        cs_seed: seed of the code-switching draws (default: ``seed``; unkeyed examples without any
            seed: ``torch.initial_seed()``).
        stats_in_batch: put ``cs_stats`` and ``draw_key`` into every batch (for a trainer that pops them).

    Raises:
        ValueError: whole-word masking or ``return_tensors`` other than ``pt`` with code-switching,
            a table built for another vocabulary size, no ``max_seq_length`` and a tokenizer without
            a length limit, keyed examples without a ``seed``, a batch mixing keyed and unkeyed
            examples, or examples without ``word_ids`` while code-switching (the message names
            ``remove_unused_columns``, the usual cause).
    """

    cs_tables: Optional[Sequence[Optional[SubstitutionTable]]] = None
    cs_mode: str = "multiview"
    cs_instance_prob: float = 0.5
    cs_word_prob: float = 0.03
    max_seq_length: Optional[int] = None
    cs_overflow: str = "truncate"
    cs_seed: Optional[int] = None
    stats_in_batch: bool = False
    cs_counts: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.zeros(NUM_STATS + 1, dtype=np.int64))

    def __post_init__(self):
        super().__post_init__()
        if self.max_seq_length is None:
            limit = getattr(self.tokenizer, "model_max_length", None)
            if limit is None or limit >= _NO_LIMIT:
                raise ValueError(f"{type(self.tokenizer).__name__} has no model_max_length: give max_seq_length "
                                 "(the model's position limit)")
            self.max_seq_length = int(limit)
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
        self._cs_rng = None  # stateful generator of unkeyed examples
        self._mask_gen = None  # keyed examples: one torch.Generator, re-seeded per example
        self._cs_keyed = None  # keyed examples: KeyedGenerator, re-keyed per example

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_mask_gen"] = state["_cs_keyed"] = None  # caches (a spawned worker builds its own)
        return state

    @property
    def code_switching(self) -> bool:
        """True when batches are code-switched (a mode other than none and at least one table)."""
        return self.cs_cfg.mode != "none" and any(t is not None for t in self.cs_tables)

    # ------------------------------------------------------------------ rates
    def cs_rates(self) -> Dict[str, float]:
        """:func:`cs_rates_from_counts` of the collations made in this process since the last
        :meth:`reset_counts` (not those made in DataLoader worker processes: see ``stats_in_batch``)."""
        return cs_rates_from_counts(self.cs_counts)

    def reset_counts(self) -> None:
        self.cs_counts = np.zeros(NUM_STATS + 1, dtype=np.int64)

    # ------------------------------------------------------------------ rng
    def _key_seed(self) -> int:
        if self.seed is None:
            raise ValueError("examples with a draw_key need the collator's seed (DataCollatorForCodeSwitchedLM(seed=...)): "
                             "their draws are keyed on (seed, epoch, index)")
        return int(self.seed)

    def _cs_generator(self) -> np.random.Generator:
        if self._cs_rng is None:
            seed = self.cs_seed if self.cs_seed is not None else self.seed
            if seed is None:
                seed = torch.initial_seed()  # Trainer's set_seed; reading it draws nothing
            info = torch.utils.data.get_worker_info()
            self._cs_rng = np.random.default_rng([int(seed), info.id if info is not None else 0, CS_STREAM])
        return self._cs_rng

    def _keyed_cs_generator(self, epoch: int, index: int) -> np.random.Generator:
        if self._cs_keyed is None:
            self._cs_keyed = KeyedGenerator()
        seed = self.cs_seed if self.cs_seed is not None else self._key_seed()
        return self._cs_keyed([int(seed), int(epoch), int(index), CS_STREAM])

    # ------------------------------------------------------------------ masking
    def _keyed_stock_batch(self, stock: List[dict], keys: List[Tuple[int, int]]) -> Dict[str, Any]:
        """Pad as the stock collator, then mask each row by the stock ``torch_mask_tokens`` on that
        example alone, with the generator seeded by :func:`mask_seed` of its key."""
        if self.whole_word_mask:
            raise ValueError("whole_word_mask with keyed examples is not supported")
        seed = self._key_seed()
        batch = pad_without_fast_tokenizer_warning(self.tokenizer, stock, return_tensors="pt",
                                                   pad_to_multiple_of=self.pad_to_multiple_of)
        special = batch.pop("special_tokens_mask", None)
        batch.pop("offset_mapping", None)
        ids = batch["input_ids"]
        if not self.mlm:
            labels = ids.clone()
            if self.tokenizer.pad_token_id is not None:
                labels[labels == self.tokenizer.pad_token_id] = IGNORE
            batch["labels"] = labels
            return batch
        labels = torch.full_like(ids, IGNORE)
        if self._mask_gen is None:
            self._mask_gen = torch.Generator()
        saved = self.generator
        try:
            self.generator = self._mask_gen
            for r, (ex, (epoch, index)) in enumerate(zip(stock, keys)):
                L = len(ex["input_ids"])
                self._mask_gen.manual_seed(mask_seed(seed, epoch, index))
                row_in, row_lab = self.torch_mask_tokens(
                    ids[r:r + 1, :L].clone(), special_tokens_mask=special[r:r + 1, :L] if special is not None else None)
                ids[r, :L] = row_in[0]
                labels[r, :L] = row_lab[0]
        finally:
            self.generator = saved
        batch["labels"] = labels
        return batch

    # ------------------------------------------------------------------ collate
    def torch_call(self, examples: List[Any]) -> Dict[str, Any]:
        if not examples or not isinstance(examples[0], Mapping):
            return super().torch_call(examples)
        keys = [ex.get(DRAW_KEY) for ex in examples]
        keyed = keys[0] is not None
        if any((k is not None) != keyed for k in keys):
            raise ValueError("a batch mixes examples with and without a draw_key")
        if keyed:
            keys = [(int(k[0]), int(k[1])) for k in keys]
        stock = [{k: v for k, v in ex.items() if k not in CS_KEYS} for ex in examples]
        # pads and masks exactly as DataCollatorForLanguageModeling (per example for keyed examples)
        batch = self._keyed_stock_batch(stock, keys) if keyed else super().torch_call(stock)
        if not (self.mlm and self.code_switching):
            if self.stats_in_batch:
                self._add_batch_stats(batch, keys if keyed else None, [len(ex["input_ids"]) for ex in examples], None)
            return batch
        if self.tokenizer.padding_side != "right":
            raise ValueError("code-switching needs right padding (tokenizer.padding_side='right')")
        if "token_type_ids" in batch and bool(batch["token_type_ids"].any()):
            raise ValueError("code-switching supports single-segment inputs only (token_type_ids all 0)")
        rng = None if keyed else self._cs_generator()
        pad = self.tokenizer.pad_token_id
        rows_in, rows_lab = [], []
        counts = np.zeros(NUM_STATS + 1, dtype=np.int64)
        for i, ex in enumerate(examples):
            if "word_ids" not in ex:
                raise ValueError(
                    "examples need 'word_ids' to be code-switched (csfair_hf.tokenization: tokenize_lines, group_lines "
                    "or the datasets map functions); with transformers' Trainer, remove_unused_columns=True drops them "
                    "(a column the model's forward does not take): use csfair_hf.trainer.CodeSwitchMLMTrainer, or set "
                    "TrainingArguments(remove_unused_columns=False) (--remove_unused_columns false)")
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
                g = self._keyed_cs_generator(*keys[i]) if keyed else rng
                source, target, stats = code_switch(
                    source, target, original, IGNORE, None, self.special, table, g, self.cs_cfg,
                    pos_word_start=starts, pos_blocked=wids == -2,
                )
            counts[:NUM_STATS] += stats
            counts[NUM_STATS] += 1
            rows_in.append(source)
            rows_lab.append(target)
        self.cs_counts += counts
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
        if self.stats_in_batch:
            self._add_batch_stats(batch, keys if keyed else None, None, counts)
        return batch

    @staticmethod
    def _add_batch_stats(batch: Dict[str, Any], keys, lengths, counts) -> None:
        if counts is None:  # code-switching off: instances and tokens only
            counts = np.zeros(NUM_STATS + 1, dtype=np.int64)
            counts[STAT_TOKENS] = sum(lengths)
            counts[NUM_STATS] = len(lengths)
        n = len(batch["input_ids"])
        batch[STATS_KEY] = torch.from_numpy(counts.copy())
        batch[DRAW_KEY] = torch.tensor(keys, dtype=torch.int64) if keys is not None else torch.full((n, 2), -1)
