"""``Trainer`` for code-switched MLM with the fairseq path's guarantees (csfair issue 23).

:class:`CodeSwitchMLMTrainer` is transformers' ``Trainer`` with four changes, each for a property
csfair's fairseq path has:

* **Keyed draws.** The training set is wrapped in :class:`KeyedExamples` and sampled by
  :class:`EpochKeyedSampler`, which yields ``(epoch, index)`` keys from the main process; every
  example reaches the collator with its ``draw_key``, so :class:`csfair_hf.collator.DataCollatorForCodeSwitchedLM`
  draws its masks and code-switching from (seed, epoch, index). The draws are new every epoch, the
  same with 0, 2 or 8 DataLoader workers (persistent or not: the epoch travels with each index,
  never in a worker's copy of the dataset), and the same in a run resumed from a checkpoint as in the
  uninterrupted run (``Trainer`` skips the trained batches of the resumed epoch at the sampler
  level; a key does not depend on how many batches were drawn before it). The order is the one
  ``accelerate``'s ``SeedableRandomSampler`` gives ``Trainer`` by default: ``torch.randperm`` under
  ``data_seed + epoch`` (``data_seed`` defaults to ``seed``).
* **Rates from the batches.** Each batch carries its code-switching counts (``cs_stats``), which
  :meth:`CodeSwitchMLMTrainer.training_step` pops before the forward pass and adds up in the main
  process (:class:`CodeSwitchRates`): the logged ``cs_inst``, ``cs_word``, ``cs_same``, ``cs_tok`` and
  ``cs_cut`` count what the workers did, and the totals are saved in every checkpoint
  (``trainer_state.json``) and restored on resume.
* **The collator's columns survive** ``remove_unused_columns=True``: ``word_ids``,
  ``special_tokens_mask``, ``cs_table`` and ``draw_key`` count as signature columns.
* **Held-out MLM metric.** ``evaluate()`` (and ``--eval_strategy``) scores the model with the metric
  the fairseq path uses (``held_out_eval``: fixed masks, special tokens never scored;
  :func:`csfair_hf.mlm_eval.score_mlm`) instead of ``eval_loss`` under random masks.

With ``draw_log``, every trained example's draw is recorded (``step``, ``epoch``, ``index`` and
CRC-32s of its input and labels, tab-separated, appended): the evidence for the properties above.
"""
import logging
import os
import zlib
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState

from csfair.pretraining.sampler import NUM_STATS
from csfair_hf.collator import DRAW_KEY, STATS_KEY, DataCollatorForCodeSwitchedLM, cs_rates_from_counts

logger = logging.getLogger(__name__)

#: Example columns the collator reads besides the model's inputs (kept by ``remove_unused_columns``).
COLLATOR_COLUMNS = ("word_ids", "special_tokens_mask", "cs_table", DRAW_KEY)
#: The logged rates (``cs_rates_from_counts`` keys) and the header of a ``draw_log`` file.
LOGGED_RATES = ("cs_inst", "cs_word", "cs_same", "cs_tok", "cs_cut")
DRAW_LOG_HEADER = "step\tepoch\tindex\tinput_crc32\tlabels_crc32\n"


class KeyedExamples(torch.utils.data.Dataset):
    """A map-style dataset whose items, fetched by ``(epoch, index)``, carry ``draw_key``.

    Args:
        dataset: any map-style dataset of example dicts (a ``datasets.Dataset``, a list, ...).

    ``dataset_obj[(epoch, index)]`` is ``dict(dataset[index], draw_key=(epoch, index))``; a plain
    int index gives the example without a key (the stock, unkeyed draws).
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    @staticmethod
    def _split(key):
        if isinstance(key, (tuple, list)) and len(key) == 2:
            return int(key[0]), int(key[1])
        return None, int(key)

    def __getitem__(self, key) -> dict:
        epoch, index = self._split(key)
        ex = dict(self.dataset[index])
        if epoch is not None:
            ex[DRAW_KEY] = (epoch, index)
        return ex

    def __getitems__(self, keys) -> list:
        split = [self._split(k) for k in keys]
        getitems = getattr(self.dataset, "__getitems__", None)
        rows = getitems([i for _, i in split]) if getitems is not None else [self.dataset[i] for _, i in split]
        out = []
        for (epoch, index), row in zip(split, rows):
            ex = dict(row)
            if epoch is not None:
                ex[DRAW_KEY] = (epoch, index)
            out.append(ex)
        return out


class EpochKeyedSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index)`` for every index of a dataset of ``n`` examples, in a seeded order.

    Args:
        n: dataset size.
        seed: the order of epoch ``e`` is ``torch.randperm(n)`` under ``torch.Generator().manual_seed(seed + e)``
            (accelerate's ``SeedableRandomSampler``, which ``Trainer`` uses by default).
        shuffle: False: indices in order (``train_sampling_strategy="sequential"``).

    ``set_epoch`` (called by ``Trainer`` through accelerate's ``DataLoaderShard.set_epoch`` before each
    epoch's iterator is created) sets the epoch; it runs in the main process, and the keys go to the
    workers with the indices.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch = self.epoch
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = range(self.n)
        for i in order:
            yield epoch, i


class CodeSwitchRates(TrainerCallback, ExportableState):
    """Code-switching counts of the trained batches, added up in the main process.

    ``total`` and ``window`` are int64 ``[NUM_STATS + 1]`` (``cs_rates_from_counts`` layout): all the
    training so far, and since the last logged loss. Saved in every checkpoint's ``trainer_state.json``
    (``ExportableState``) and restored from it when training resumes.
    """

    def __init__(self, total=None, window=None):
        self.total = np.asarray(total if total is not None else np.zeros(NUM_STATS + 1), dtype=np.int64)
        self.window = np.asarray(window if window is not None else np.zeros(NUM_STATS + 1), dtype=np.int64)

    def add(self, counts) -> None:
        c = np.asarray(counts, dtype=np.int64)
        self.total = np.asarray(self.total, dtype=np.int64) + c
        self.window = np.asarray(self.window, dtype=np.int64) + c

    def pop_window(self) -> Dict[str, float]:
        """The rates since the last call (``LOGGED_RATES``), rounded to 4 digits; the window restarts."""
        r = cs_rates_from_counts(self.window)
        self.window = np.zeros(NUM_STATS + 1, dtype=np.int64)
        return {k: round(r[k], 4) for k in LOGGED_RATES}

    def rates(self) -> Dict[str, float]:
        """:func:`cs_rates_from_counts` of everything trained (resumed runs included)."""
        return cs_rates_from_counts(self.total)

    def state(self) -> dict:
        return {"args": {}, "attributes": {"total": [int(x) for x in self.total], "window": [int(x) for x in self.window]}}

    def on_train_begin(self, args, state, control, **kwargs):
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[-1] if saved else None
        if state.global_step > 0 and saved:  # resumed: the counts of the steps already trained
            att = saved.get("attributes", {})
            self.total = np.asarray(att.get("total", self.total), dtype=np.int64)
            self.window = np.asarray(att.get("window", self.window), dtype=np.int64)


class CodeSwitchMLMTrainer(Trainer):
    """``Trainer`` for :class:`csfair_hf.collator.DataCollatorForCodeSwitchedLM` (see the module docstring).

    Args:
        *args, **kwargs: ``Trainer``'s; ``data_collator`` must be a ``DataCollatorForCodeSwitchedLM``
            (its ``seed`` defaults to ``args.seed``; ``stats_in_batch`` is switched on).
        held_out_eval: ``model -> dict`` of metrics (e.g. ``summarize(score_mlm(model, ...))``); when
            given, ``evaluate()`` logs and returns its scalar entries prefixed ``eval_``.
        draw_log: append every trained example's draw to this TSV file (``DRAW_LOG_HEADER``).

    Raises:
        TypeError: another collator.
        ValueError: ``train_sampling_strategy`` other than ``random`` or ``sequential``.
    """

    def __init__(self, *args, held_out_eval: Optional[Callable[[torch.nn.Module], dict]] = None,
                 draw_log: Optional[str] = None, **kwargs):
        collator = kwargs.get("data_collator")
        if not isinstance(collator, DataCollatorForCodeSwitchedLM):
            raise TypeError(f"CodeSwitchMLMTrainer needs a DataCollatorForCodeSwitchedLM, got {type(collator).__name__}")
        train = kwargs.get("train_dataset")
        if train is not None and not isinstance(train, KeyedExamples):
            kwargs["train_dataset"] = KeyedExamples(train)
        super().__init__(*args, **kwargs)
        if self.args.train_sampling_strategy not in ("random", "sequential"):
            raise ValueError(f"train_sampling_strategy={self.args.train_sampling_strategy!r}: keyed draws support "
                             "'random' and 'sequential'")
        if collator.seed is None:
            collator.seed = self.args.seed
        collator.stats_in_batch = True
        self.held_out_eval = held_out_eval
        self.draw_log = draw_log
        self.add_callback(CodeSwitchRates())

    # ------------------------------------------------------------------ data
    @property
    def cs_rates(self) -> CodeSwitchRates:
        """The :class:`CodeSwitchRates` callback (looked up: ``restore_callback_states_from_checkpoint`` replaces it)."""
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, CodeSwitchRates))

    def get_train_dataloader(self):
        dl = super().get_train_dataloader()
        # torch's DataLoader draws every new iterator's worker base seed from its `generator`, else from
        # torch's global generator; persistent workers reuse the iterator (no draw in later epochs), so
        # the global stream, i.e. dropout, would depend on the worker settings. A generator of its own
        # keeps the global stream the model's alone (the keyed draws never use the base seed).
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        base = getattr(dl, "base_dataloader", dl)  # accelerate's DataLoaderShard wraps the torch DataLoader
        base.generator = torch.Generator().manual_seed(int(seed))
        return dl

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochKeyedSampler(len(dataset), seed, shuffle=self.args.train_sampling_strategy == "random")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        self._signature_columns += [c for c in COLLATOR_COLUMNS if c not in self._signature_columns]

    # ------------------------------------------------------------------ steps
    def training_step(self, model, inputs, num_items_in_batch=None):
        stats = inputs.pop(STATS_KEY, None)
        keys = inputs.pop(DRAW_KEY, None)
        if stats is not None:
            self.cs_rates.add(stats.cpu().numpy())
        if self.draw_log and keys is not None:
            self._log_draws(inputs, keys)
        return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs.pop(STATS_KEY, None)
        inputs.pop(DRAW_KEY, None)
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def _log_draws(self, inputs, keys) -> None:
        ids = inputs["input_ids"].cpu().numpy().astype(np.int64)
        labels = inputs["labels"].cpu().numpy().astype(np.int64)
        lengths = inputs["attention_mask"].sum(1).cpu().numpy()
        step = self.state.global_step + 1  # the optimizer step this batch belongs to
        new = not os.path.exists(self.draw_log)
        with open(self.draw_log, "a", encoding="utf-8") as fh:
            if new:
                fh.write(DRAW_LOG_HEADER)
            for r, (epoch, index) in enumerate(keys.cpu().tolist()):
                L = int(lengths[r])
                fh.write(f"{step}\t{epoch}\t{index}\t{zlib.crc32(ids[r, :L].tobytes())}\t"
                         f"{zlib.crc32(labels[r, :L].tobytes())}\n")

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs and self.data_collator.code_switching:
            logs.update(self.cs_rates.pop_window())
        super().log(logs, start_time)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> Dict[str, float]:
        """The held-out MLM metric (``held_out_eval``) when given, else ``Trainer.evaluate``."""
        if self.held_out_eval is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        was_training = self.model.training
        res = self.held_out_eval(self.model)
        if was_training:
            self.model.train()
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in res.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
