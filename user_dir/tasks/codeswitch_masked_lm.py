"""fairseq task ``codeswitch_masked_lm``: masked-LM pretraining with code-switched context.

Visser et al. (2025), Section 3.1: while pretraining an MLM from scratch on a bilingual corpus,
unmasked words are replaced by translations sampled from a substitution table (IBM-1
"multiview", MUSE, or none). Each language of the pair is read as its own dataset and
substituted with its own direction's table (English text gets French candidates and French text
English ones); the datasets are concatenated, optionally with temperature-based language
sampling (``q_l ∝ p_l ** alpha``, XLM/XLM-R style).

With ``--cs-mode none`` the task gives stock ``masked_lm``'s batches (same blocks, masks, shuffling
and sort order) and so its losses in epoch 1, and in every epoch with ``--num-workers 0``. With
DataLoader workers stock fairseq replays epoch 1's masks in every later epoch (its workers keep the
epoch-1 copy of the dataset; ``fresh_epoch_draws``), while this task draws each epoch's masks anew,
so from epoch 2 on the two differ (``scripts/check_epoch_draws.py``; docs/pretraining.md).

Instances grow when a candidate has more tokens than its source word; ``--cs-overflow truncate``
(default) cuts what passes ``--tokens-per-sample`` (or the model's positions) from the instance's end,
so full blocks (``--sample-break-mode none``) keep the paper's 3% word rate and the table's candidate
distribution (:mod:`csfair.pretraining.sampler`; ``drop``: the replacement is dropped instead).

Data layout (``fairseq-preprocess --only-source`` per language)::

    DATA/dict.txt? , DATA/<lang>/dict.txt, DATA/<lang>/<split>.{bin,idx}, DATA/tables/<name>.<lang>-<other>/

Without ``--langs`` ``DATA`` is read like stock ``masked_lm`` (``DATA/dict.txt``, ``DATA/<split>``).
"""
import json
import logging
import math
import os
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from fairseq import utils
from fairseq.data import (
    ConcatDataset,
    Dictionary,
    IdDataset,
    NestedDictionaryDataset,
    NumelDataset,
    NumSamplesDataset,
    PrependTokenDataset,
    ResamplingDataset,
    RightPadDataset,
    SortDataset,
    TokenBlockDataset,
    data_utils,
)
from fairseq.data.shorten_dataset import maybe_shorten_dataset
from fairseq.dataclass import ChoiceEnum
from fairseq.logging import metrics
from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask

from csfair import __version__ as csfair_version
from csfair.pretraining.sampler import (
    NUM_STATS,
    STAT_CHANGED_TOKENS,
    STAT_ELIGIBLE,
    STAT_INSTANCE,
    STAT_REPLACED,
    STAT_TOKENS,
    STAT_CUT_TOKENS,
    STAT_UNCHANGED,
    CodeSwitchConfig,
)
from csfair.io import sha256_file
from csfair.pretraining.masking import MaskConfig
from csfair.pretraining.substitution_table import SubstitutionTable

from ..bf16_support import Bf16AutocastMixin
from ..data.codeswitch_mask_tokens_dataset import CodeSwitchMaskTokensDataset
from ..models.checkpoint_provenance import CheckpointProvenance
from ..user_errors import DataNotFoundError, TaskConfigError
from .fresh_epoch_draws import FreshEpochDrawsMixin

logger = logging.getLogger(__name__)

CS_MODE_CHOICES = ChoiceEnum(["none", "static", "multiview"])
CS_OVERFLOW_CHOICES = ChoiceEnum(["truncate", "drop"])


@dataclass
class CodeSwitchMaskedLMConfig(MaskedLMConfig):
    """Options of ``codeswitch_masked_lm``: fairseq's ``masked_lm`` options plus the ``--cs-*`` ones."""

    langs: str = field(
        default="",
        metadata={
            "help": "comma-separated languages, each a subdirectory of DATA made by fairseq-preprocess "
            "--only-source (e.g. 'en,fr' reads DATA/en and DATA/fr); empty: read DATA itself like masked_lm"
        },
    )
    lang_sampling_alpha: float = field(
        default=1.0,
        metadata={
            "help": "temperature-based language sampling of the training split: language l is drawn "
            "with probability proportional to p_l**alpha, p_l its share of the blocks "
            "(1.0: plain concatenation, no resampling; XLM-R uses 0.3)"
        },
    )
    cs_mode: CS_MODE_CHOICES = field(
        default="multiview",
        metadata={
            "help": "code-switching: 'none' (stock masked LM), 'static' (always the most probable "
            "candidate), 'multiview' (sample a candidate from the table's distribution; Visser et al. 2025)"
        },
    )
    cs_tables: str = field(
        default="",
        metadata={
            "help": "substitution tables: comma-separated LANG:PATH pairs (the table applied to text of "
            "LANG), or one PATH when there is a single language; relative paths are under DATA"
        },
    )
    cs_table_name: str = field(
        default="",
        metadata={
            "help": "with two --langs, use DATA/tables/NAME.<lang>-<other> for each language "
            "(as written by scripts/recipes); alternative to --cs-tables"
        },
    )
    cs_instance_prob: float = field(
        default=0.5,
        metadata={"help": "probability that an instance is code-switched (paper: 0.5)"},
    )
    cs_word_prob: float = field(
        default=0.03,
        metadata={"help": "probability that an eligible word of a code-switched instance is replaced (paper: 0.03)"},
    )
    cs_temperature: float = field(
        default=3.0,
        metadata={"help": "temperature T of the sampling distribution p**(1/T) / sum p**(1/T) (paper: 3)"},
    )
    cs_min_prob: float = field(
        default=0.02,
        metadata={
            "help": "keep IBM-1 candidates with raw probability above this (paper: 0.02); "
            "cannot be lower than the threshold the table was built with"
        },
    )
    cs_overflow: CS_OVERFLOW_CHOICES = field(
        default="truncate",
        metadata={
            "help": "when replacements make an instance longer than --tokens-per-sample (or the model's positions): "
            "'truncate' cuts the excess tokens from its end, before a final </s> (every drawn replacement is kept: the "
            "word rate and the candidate distribution stay the table's in full blocks); 'drop' drops the replacement "
            "that does not fit (nothing cut, but full blocks keep only candidates no longer than their word)"
        },
    )
    cs_valid: bool = field(
        default=False,
        metadata={
            "help": "also code-switch the validation splits (default: validation measures plain MLM "
            "on unmodified text)"
        },
    )
    cs_allow_table_change: bool = field(
        default=False,
        metadata={
            "help": "accept a checkpoint (resume or initialisation) trained with other substitution tables; "
            "by default loading it fails, naming both tables"
        },
    )
    data_trace_dir: str = field(
        default="",
        metadata={
            "help": "write DIR/trace.rank<R>.jsonl: one line per training step with the update number, epoch, "
            "item ids, a CRC32 and the length of each item's (masked, code-switched) input and the loss, to check what the "
            "model saw across resumes and numbers of processes"
        },
    )
    max_invalid_size_share: float = field(
        default=0.01,
        metadata={
            "help": "largest share of a split's samples that may be longer than the model's positions "
            "(--tokens-per-sample) and skipped by fairseq (always reported); more is an error unless this "
            "is raised (e.g. 0.9 to accept losing 90%% of the data)"
        },
    )


@register_task("codeswitch_masked_lm", dataclass=CodeSwitchMaskedLMConfig)
class CodeSwitchMaskedLMTask(FreshEpochDrawsMixin, Bf16AutocastMixin, MaskedLMTask):
    """Masked LM over one or more languages with per-language code-switching (see module docstring)."""

    cfg: CodeSwitchMaskedLMConfig

    def __init__(self, cfg: CodeSwitchMaskedLMConfig, dictionary: Optional[Dictionary] = None):
        for unsupported in ("d2v2_multi", "skip_masking", "include_target_tokens"):
            if getattr(cfg, unsupported, False):
                raise TaskConfigError(f"codeswitch_masked_lm does not support --{unsupported.replace('_', '-')}")
        super().__init__(cfg, dictionary)
        self.langs: List[Optional[str]] = [x for x in cfg.langs.split(",") if x] or [None]
        self.tables: Dict[Optional[str], SubstitutionTable] = self._load_tables()
        self.max_len = cfg.tokens_per_sample
        self._wrappers: List[CodeSwitchMaskTokensDataset] = []
        self._epoch = 0
        self._trace_file = None

    # ------------------------------------------------------------------ setup
    @classmethod
    def _dict_path(cls, cfg) -> str:
        """DATA/<first lang>/dict.txt (or DATA/dict.txt) with --langs; DATA/dict.txt without."""
        root = utils.split_paths(cfg.data)[0]
        langs = [x for x in getattr(cfg, "langs", "").split(",") if x]
        candidates = [os.path.join(root, lang, "dict.txt") for lang in langs] + [os.path.join(root, "dict.txt")]
        for path in candidates:
            if os.path.exists(path):
                return path
        which = f" for --langs {','.join(langs)}" if langs else ""
        raise DataNotFoundError(f"no dictionary found{which}: looked for {', '.join(candidates)}; "
                                f"{root} has data for {', '.join(cls.data_langs(root)) or 'no language'}")

    @staticmethod
    def data_langs(root: str) -> List[str]:
        """The languages binarised under ``root``: subdirectories holding a ``dict.txt`` or an ``.idx`` file."""
        if not os.path.isdir(root):
            return []
        out = []
        for name in sorted(os.listdir(root)):
            sub = os.path.join(root, name)
            if os.path.isdir(sub) and any(f == "dict.txt" or f.endswith(".idx") for f in os.listdir(sub)):
                out.append(name)
        return out

    def check_langs(self, root: str) -> None:
        """Every ``--langs`` language has a directory under ``root``, checked before its tables or splits are read.

        Raises:
            DataNotFoundError: names the missing languages, the directory and the languages it has.
        """
        missing = [lang for lang in self.langs if lang is not None and not os.path.isdir(os.path.join(root, lang))]
        if missing:
            have = self.data_langs(root)
            raise DataNotFoundError(
                f"--langs {self.cfg.langs}: no data for {', '.join(missing)} in {root} (no directory "
                f"{os.path.join(root, missing[0])}); it has data for {', '.join(have) or 'no language'}: choose "
                f"--langs among those, or binarise the missing language there (fairseq-preprocess --only-source "
                f"--srcdict ... --destdir {os.path.join(root, missing[0])})"
            )

    @classmethod
    def load_dict(cls, cfg):
        path = cls._dict_path(cfg)
        dictionary = Dictionary.load(path)
        root = utils.split_paths(cfg.data)[0]
        for lang in [x for x in getattr(cfg, "langs", "").split(",") if x]:
            other = os.path.join(root, lang, "dict.txt")
            if os.path.exists(other) and sha256_file(other) != sha256_file(path):
                raise TaskConfigError(f"{other} differs from {path}: all languages must share one dictionary")
        logger.info("dictionary: {} types ({})".format(len(dictionary), path))
        return dictionary

    def _table_paths(self) -> Dict[Optional[str], str]:
        cfg = self.cfg
        root = utils.split_paths(cfg.data)[0]
        if cfg.cs_table_name:
            if len(self.langs) != 2 or None in self.langs:
                raise TaskConfigError("--cs-table-name needs exactly two --langs (e.g. en,fr)")
            a, b = self.langs
            return {
                a: os.path.join(root, "tables", f"{cfg.cs_table_name}.{a}-{b}"),
                b: os.path.join(root, "tables", f"{cfg.cs_table_name}.{b}-{a}"),
            }
        if not cfg.cs_tables:
            return {}
        out: Dict[Optional[str], str] = {}
        for part in cfg.cs_tables.split(","):
            if ":" in part:
                lang, path = part.split(":", 1)
            else:
                if len(self.langs) != 1:
                    raise TaskConfigError("--cs-tables without LANG: prefixes needs a single language")
                lang, path = self.langs[0], part
            if lang not in self.langs:
                raise TaskConfigError(f"--cs-tables names language {lang!r} which is not in --langs {cfg.langs!r}")
            out[lang] = path if os.path.isabs(path) else os.path.join(root, path)
        return out

    def _load_tables(self) -> Dict[Optional[str], SubstitutionTable]:
        if self.cfg.cs_mode == "none":
            return {}
        self.check_langs(utils.split_paths(self.cfg.data)[0])  # "no data for de" before "table ibm1.en-de not found"
        paths = self._table_paths()
        if not paths:
            raise TaskConfigError(
                f"--cs-mode {self.cfg.cs_mode} needs substitution tables (--cs-tables or --cs-table-name); "
                "use --cs-mode none for a model without code-switching"
            )
        dict_path = self._dict_path(self.cfg)
        dict_sha = sha256_file(dict_path)
        tables = {}
        self.table_record = {}
        for lang, path in paths.items():
            table = SubstitutionTable.load(path)
            want = table.meta.get("dict_sha256")
            if want is not None and want != dict_sha:
                raise TaskConfigError(
                    f"substitution table {path} was built for another dictionary "
                    f"({table.meta.get('dict_path', '?')}, sha256 {want[:12]}, {table.meta.get('dict_size', '?')} "
                    f"symbols) than the task's {dict_path} (sha256 {dict_sha[:12]}, "
                    f"{len(self.dictionary) - 1} symbols): rebuild it with `csfair-lexicon table --dict {dict_path}`"
                )
            if table.max_token_id >= len(self.dictionary):
                raise TaskConfigError(f"substitution table {path} uses token ids beyond the dictionary ({len(self.dictionary)})")
            if lang is not None and table.meta.get("src_lang") not in (None, lang):
                raise TaskConfigError(
                    f"substitution table {path} translates from {table.meta.get('src_lang')!r} "
                    f"but is applied to {lang!r} text"
                )
            self.table_record[lang or ""] = {"path": os.path.abspath(path), "checksum": table.meta.get("checksum")}
            table = table.with_sampling(self.cfg.cs_temperature, self.cfg.cs_min_prob)
            if len(table) == 0:  # a run without code-switching that would look like one with it
                raise TaskConfigError(f"substitution table {path} has no entries (min_prob {self.cfg.cs_min_prob}): "
                                 f"--cs-mode {self.cfg.cs_mode} would code-switch nothing; rebuild it from a "
                                 "non-empty lexicon, or train with --cs-mode none")
            logger.info(
                f"substitution table for {lang or 'data'}: {path} ({len(table)} source words, "
                f"{table.num_candidates} candidates, T={self.cfg.cs_temperature}, min_prob={self.cfg.cs_min_prob})"
            )
            tables[lang] = table
        return tables

    # ------------------------------------------------------------------ data
    def has_sharded_data(self, split):
        # Resampled languages change every epoch: fairseq then reloads the split per epoch.
        return super().has_sharded_data(split) or self._resampling()

    def _resampling(self) -> bool:
        return len(self.langs) > 1 and not math.isclose(self.cfg.lang_sampling_alpha, 1.0)

    def _load_blocks(self, split_path: str, split: str, combine: bool):
        """The stock masked_lm pipeline up to masking: blocks of tokens with <s> prepended."""
        dataset = data_utils.load_indexed_dataset(split_path, self.source_dictionary, combine=combine)
        if dataset is None:
            raise FileNotFoundError("Dataset not found: {} ({})".format(split, split_path))
        dataset = maybe_shorten_dataset(
            dataset, split, self.cfg.shorten_data_split_list, self.cfg.shorten_method,
            self.cfg.tokens_per_sample, self.cfg.seed,
        )
        dataset = TokenBlockDataset(
            dataset, dataset.sizes, self.cfg.tokens_per_sample - 1,  # one less for <s>
            pad=self.source_dictionary.pad(), eos=self.source_dictionary.eos(),
            break_mode=self.cfg.sample_break_mode,
        )
        logger.info("loaded {} blocks from: {}".format(len(dataset), split_path))
        return PrependTokenDataset(dataset, self.source_dictionary.bos())

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        """Load a split of every language, code-switch it (train; valid with --cs-valid), batch it.

        Args:
            split (str): name of the split (e.g. train, valid, test)
        """
        paths = utils.split_paths(self.cfg.data)
        data_path = paths[(epoch - 1) % len(paths)]
        self.check_langs(data_path)
        datasets = []
        for lang in self.langs:
            root = data_path if lang is None else os.path.join(data_path, lang)
            datasets.append(self._load_blocks(os.path.join(root, split), split, combine))

        is_train = split.startswith("train")
        if is_train and self._resampling():
            sizes = np.array([len(d) for d in datasets], dtype=float)
            p = sizes / sizes.sum()
            q = p ** self.cfg.lang_sampling_alpha
            q /= q.sum()
            ratios = q * sizes.sum() / sizes
            logger.info("language sampling (alpha={}): {}".format(
                self.cfg.lang_sampling_alpha,
                {lang: f"p={pi:.3f} q={qi:.3f} x{r:.2f}" for lang, pi, qi, r in zip(self.langs, p, q, ratios)},
            ))
            datasets = [
                ResamplingDataset(d, size_ratio=r, seed=self.cfg.seed, epoch=epoch, replace=r >= 1.0)
                for d, r in zip(datasets, ratios)
            ]
        dataset = datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in datasets])])

        code_switch = self.cfg.cs_mode != "none" and (is_train or self.cfg.cs_valid)
        tables = [self.tables.get(lang) for lang in self.langs] if code_switch else [None] * len(self.langs)
        wrapper = CodeSwitchMaskTokensDataset(
            dataset,
            self.source_dictionary,
            pad_idx=self.source_dictionary.pad(),
            mask_idx=self.mask_idx,
            seed=self.cfg.seed,
            mask_cfg=MaskConfig(
                mask_prob=self.cfg.mask_prob,
                leave_unmasked_prob=self.cfg.leave_unmasked_prob,
                random_token_prob=self.cfg.random_token_prob,
                mask_multiple_length=self.cfg.mask_multiple_length,
                mask_stdev=self.cfg.mask_stdev,
            ),
            freq_weighted_replacement=self.cfg.freq_weighted_replacement,
            mask_whole_words=self.cfg.mask_whole_words,
            cs_cfg=CodeSwitchConfig(
                mode=self.cfg.cs_mode if code_switch else "none",
                instance_prob=self.cfg.cs_instance_prob,
                word_prob=self.cfg.cs_word_prob,
                max_len=self.max_len,
                overflow=str(self.cfg.cs_overflow),
            ),
            tables=tables,
            segment_offsets=offsets,
        )
        self._wrappers.append(wrapper)
        src_dataset, tgt_dataset = wrapper.field("source"), wrapper.field("target")

        # same shuffle and sort order as stock masked_lm
        with data_utils.numpy_seed(self.cfg.seed):
            shuffle = np.random.permutation(len(src_dataset))
        target_dataset = RightPadDataset(tgt_dataset, pad_idx=self.source_dictionary.pad())
        net_input = {
            "src_tokens": RightPadDataset(src_dataset, pad_idx=self.source_dictionary.pad()),
            "src_lengths": NumelDataset(src_dataset, reduce=False),
        }
        if self.cfg.include_index:
            net_input["src_id"] = IdDataset()
        fields = {
            "id": IdDataset(),
            "net_input": net_input,
            "target": target_dataset,
            "nsentences": NumSamplesDataset(),
            "ntokens": NumelDataset(src_dataset, reduce=True),
            "draw_epoch": wrapper.field("draw_epoch"),
        }
        if wrapper.code_switching:
            fields["cs_stats"] = wrapper.field("cs_stats")
        self.datasets[split] = SortDataset(
            NestedDictionaryDataset(fields, sizes=[src_dataset.sizes]), sort_order=[shuffle, src_dataset.sizes]
        )

    def filter_indices_by_size(self, indices, dataset, max_positions=None, ignore_invalid_inputs=False):
        """fairseq's filter of samples longer than ``max_positions``, reported and bounded: fairseq
        skips them from training with a warning that consoles filter out (``--tokens-per-sample 16``
        silently dropped 83% of the demo's training data; with nothing left fairseq failed with an
        ``IndexError``).

        Raises:
            TaskConfigError (a ValueError): every sample is too long, or more than ``--max-invalid-size-share`` of them
                (one line: the count, the share, the longest sample and the options to change).
        """
        total = len(indices)
        kept = super().filter_indices_by_size(indices, dataset, max_positions, ignore_invalid_inputs)
        skipped = total - len(kept)
        if skipped == 0:
            return kept
        split = next((k for k, v in self.datasets.items() if v is dataset), "the")
        share = skipped / total
        longest = int(np.max(dataset.sizes)) if hasattr(dataset, "sizes") and len(dataset.sizes) else "?"
        what = (f"{skipped:,} of {total:,} {split} samples ({share:.1%}) are longer than max_positions={max_positions} "
                f"(--tokens-per-sample {self.cfg.tokens_per_sample}; the longest has {longest} tokens)")
        if skipped == total:
            raise TaskConfigError(f"{what}: no sample is left to train on; raise --tokens-per-sample")
        if share > self.cfg.max_invalid_size_share:
            raise TaskConfigError(f"{what} and would be skipped: more than --max-invalid-size-share "
                             f"{self.cfg.max_invalid_size_share:g}; raise --tokens-per-sample, or accept the loss "
                             f"with --max-invalid-size-share {math.ceil(share * 100) / 100:g}")
        logger.warning(f"{what}: skipped (at most --max-invalid-size-share {self.cfg.max_invalid_size_share:g})")
        return kept

    # ------------------------------------------------------------------ model
    def provenance_record(self) -> dict:
        """What checkpoints of this run record: csfair version, dictionary and table checksums."""
        return {
            "csfair_version": csfair_version,
            "dict_sha256": sha256_file(self._dict_path(self.cfg)),
            "cs_mode": str(self.cfg.cs_mode),  # a plain str: fairseq enum values do not pickle
            "tables": dict(getattr(self, "table_record", {})),
        }

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        model_max = model.max_positions()
        if isinstance(model_max, int) and model_max < self.max_len:
            # substitutions must never grow an item beyond what the model can embed
            self.max_len = model_max
            for w in self._wrappers:
                w.set_max_len(model_max)
        # recorded in every checkpoint, checked whenever one is loaded into this model
        model.add_module(
            "csfair_provenance", CheckpointProvenance(self.provenance_record(), self.cfg.cs_allow_table_change)
        )
        return model

    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        self._epoch = epoch

    def _trace(self, sample, update_num, logging_output, ignore_grad):
        if self._trace_file is None:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            os.makedirs(self.cfg.data_trace_dir, exist_ok=True)
            path = os.path.join(self.cfg.data_trace_dir, f"trace.rank{rank}.jsonl")
            self._trace_file = open(path, "a", buffering=1, encoding="utf-8")
        tokens, lengths = sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"]
        digests = [
            zlib.crc32(tokens[i, : int(lengths[i])].cpu().numpy().astype(np.int64).tobytes())
            for i in range(tokens.size(0))
        ]
        line = {
            "update": int(update_num), "epoch": self._epoch, "dummy": bool(ignore_grad),
            "ids": sample["id"].tolist(), "crc32": digests, "lengths": [int(x) for x in lengths.tolist()],
            "loss": float(logging_output.get("loss", 0.0)), "sample_size": int(logging_output.get("sample_size", 0)),
        }
        self._trace_file.write(json.dumps(line) + "\n")

    # ------------------------------------------------------------------ metrics
    def cs_directions(self) -> List[Optional[str]]:
        """Per language segment, the name of its code-switching direction (``en-fr``: English text
        with French insertions), or None for a language without a table."""
        out = []
        for lang in self.langs:
            table = self.tables.get(lang)
            if table is None:
                out.append(None)
                continue
            out.append(f"{table.meta.get('src_lang') or lang or 'data'}-{table.meta.get('tgt_lang') or '?'}")
        return out

    def _add_cs_stats(self, sample, logging_output):
        stats = sample.get("cs_stats") if isinstance(sample, dict) else None
        if stats is not None:
            s = stats.sum(0).tolist() if stats.numel() else [0] * (NUM_STATS + 1)
            logging_output["cs_instances"] = s[STAT_INSTANCE]
            logging_output["cs_eligible"] = s[STAT_ELIGIBLE]
            logging_output["cs_replaced"] = s[STAT_REPLACED]
            logging_output["cs_unchanged"] = s[STAT_UNCHANGED]
            logging_output["cs_cut"] = s[STAT_CUT_TOKENS]
            logging_output["cs_nsentences"] = stats.size(0)
            # every direction in every logging output (zeros included): fairseq sums logging
            # outputs across ranks by key, so all ranks must report the same keys
            seg = stats[:, NUM_STATS] if stats.numel() else stats.new_zeros(0)
            for k, name in enumerate(self.cs_directions()):
                if name is None:
                    continue
                rows = stats[seg == k]
                logging_output[f"cs_changed_tokens:{name}"] = int(rows[:, STAT_CHANGED_TOKENS].sum())
                logging_output[f"cs_tokens:{name}"] = int(rows[:, STAT_TOKENS].sum())
        return logging_output

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if not ignore_grad:  # fairseq's dummy batches are drawn once, before training
            self.check_draw_epoch(sample, self._epoch)
        loss, sample_size, logging_output = super().train_step(
            sample, model, criterion, optimizer, update_num, ignore_grad
        )
        if self.cfg.data_trace_dir:
            self._trace(sample, update_num, logging_output, ignore_grad)
        return loss, sample_size, self._add_cs_stats(sample, logging_output)

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        return loss, sample_size, self._add_cs_stats(sample, logging_output)

    def reduce_metrics(self, logging_outputs, criterion):
        """Adds ``cs_inst`` (fraction of instances code-switched), ``cs_word`` (fraction of
        eligible words replaced in them, identical candidates included), ``cs_same`` (fraction of the
        replaced words whose drawn candidate was the word itself: no token changed), ``cs_cut``
        (tokens cut from instance ends per input token, ``--cs-overflow truncate``) and, per
        direction, ``cs_tok_<src>-<tgt>`` (fraction of the input tokens that hold a translation, i.e.
        changed by code-switching), aggregated over the interval and the epoch."""
        super().reduce_metrics(logging_outputs, criterion)
        nsent = sum(log.get("cs_nsentences", 0) for log in logging_outputs)
        if nsent > 0:
            inst = sum(log.get("cs_instances", 0) for log in logging_outputs)
            elig = sum(log.get("cs_eligible", 0) for log in logging_outputs)
            repl = sum(log.get("cs_replaced", 0) for log in logging_outputs)
            metrics.log_scalar("cs_inst", inst / nsent, nsent, round=4)
            if elig > 0:
                metrics.log_scalar("cs_word", repl / elig, elig, round=4)
            if repl > 0:
                same = sum(log.get("cs_unchanged", 0) for log in logging_outputs)
                metrics.log_scalar("cs_same", same / repl, repl, round=4)
            all_tokens = sum(log.get(f"cs_tokens:{name}", 0) for log in logging_outputs
                             for name in filter(None, self.cs_directions()))
            if all_tokens > 0:
                cut = sum(log.get("cs_cut", 0) for log in logging_outputs)
                metrics.log_scalar("cs_cut", cut / all_tokens, all_tokens, round=5)
            # the dose that reaches the model: fraction of input tokens holding a translation
            for name in filter(None, self.cs_directions()):
                tokens = sum(log.get(f"cs_tokens:{name}", 0) for log in logging_outputs)
                changed = sum(log.get(f"cs_changed_tokens:{name}", 0) for log in logging_outputs)
                if tokens > 0:
                    metrics.log_scalar(f"cs_tok_{name}", changed / tokens, tokens, round=4)
