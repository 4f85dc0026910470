"""The interface between the zero-shot runner and a framework that fine-tunes and predicts.

The runner (:mod:`csfair.evaluation.zeroshot.runner`) owns everything that must be the same for every
column: the grid of columns, tasks and seeds, protocol keys and the skip rule, the selection metric, the
majority-class baseline and the dev-only exclusion flags, scoring, per-item scores, ensembles and tables.
A backend owns what depends on the framework: the task's data in the model's vocabulary, fine-tuning with
the best epoch kept, predictions, the parameter count and the digest of a column's starting point.

Two implementations: ``user_dir.zeroshot_backend.FairseqBackend`` (pretrained fairseq checkpoints,
scratch models and the meta-embedding taggers, through ``fairseq-train``) and
``csfair_hf.zeroshot.TransformersBackend`` (``hf:`` columns, ``AutoModelFor*Classification``). The
runner never imports them: its caller (scripts/zeroshot.py) passes ``{"fairseq": factory, "hf": factory}``
and a backend is built when a column of its kind is first met (:func:`backend_of`).
"""
from typing import Callable, Dict, List, NamedTuple, Protocol, Sequence, Tuple, runtime_checkable

#: (gold, predicted) labels of one item: a label each (classification) or a list per word (tagging)
Pair = Tuple[object, object]


class Prepared(NamedTuple):
    """A task's data for one column (``prepare``'s result).

    Attributes:
        data: the backend's handle on the encoded data (a directory, or data in memory).
        arch: the architecture entries of the protocol (fairseq: the ``--arch`` flags; absolute paths
            are left out of the protocol).
        max_positions: the fine-tuning length in positions.
        stats: per ``<lang>.<split>``: ``examples``, ``unk_rate``, ``unk_word_rate``, ``unseen_labels``, ...
    """

    data: object
    arch: List[str]
    max_positions: int
    stats: Dict[str, dict]


class Finetuned(NamedTuple):
    """One fine-tuning run with its best epoch kept (``finetune``'s result).

    Attributes:
        handle: what ``predict``, ``count_parameters`` and ``discard`` take (a checkpoint path, or a
            model kept in memory under a name).
        updates: optimiser updates of the whole run.
        best_epoch: 1-based epoch of the highest dev score (the earliest on ties).
        dev_by_epoch: the dev score after each epoch (rounded to 6 digits by the fairseq backend).
        dev_pairs: the best epoch's (gold, predicted) pairs on the training language's dev set.
    """

    handle: object
    updates: int
    best_epoch: int
    dev_by_epoch: List[float]
    dev_pairs: List[Pair]


@runtime_checkable
class ZeroShotBackend(Protocol):
    """What the runner asks of a framework (every method takes the runner's parsed options ``args`` where
    it needs a setting: ``--batch-size``, ``--weight-decay``, ``--warmup-ratio``, ``--freeze-encoder``,
    ``--crf``, ``--class-weighting``, ``--focal-gamma``, ``--max-train``/``--max-eval``, ``--unseen-labels``,
    ``--keep-checkpoints``, the vocabulary and fastText options)."""

    def resolve(self, column) -> None:
        """Check a column when it is named (before anything runs); raise ``SystemExit`` naming it if unusable."""

    def column_digest(self, column, args) -> str:
        """What identifies the column's starting point in the protocol key (a checkpoint's SHA-256, a
        model directory's digest, or the column's key for models without pretrained weights)."""

    def prepare(self, spec, column, args, out: str) -> Prepared:
        """The task's data for the column's vocabulary (cached under ``out`` where written to disk)."""

    def finetune(self, spec, column, prepared: Prepared, run_dir: str, seed: int, lr: float, epochs: int, args,
                 dev_score: Callable[[Sequence[Pair]], float]) -> Finetuned:
        """Fine-tune on the training language for ``epochs`` epochs (Visser et al., 2025, Table 2: AdamW
        (0.9, 0.999, 1e-8), linear warmup for ``ceil(warmup_ratio * updates)`` then linear decay to 0),
        score the training language's dev set after every epoch with ``dev_score`` and keep the best
        epoch (the earliest on ties, as Hugging Face's ``load_best_model_at_end``)."""

    def train_labels(self, spec, prepared: Prepared) -> list:
        """The training language's training labels (a list per sentence for tagging): the majority baseline's."""

    def predict(self, spec, handle, prepared: Prepared, lang: str, split: str) -> List[Pair]:
        """(gold, predicted) labels of every item of ``<lang>.<split>``, in data order."""

    def count_parameters(self, handle) -> int:
        """Parameters of the fine-tuned model (tied weights once; buffers excluded)."""

    def discard(self, handle) -> None:
        """Free the fine-tuned model and delete what it wrote (not called with ``--keep-checkpoints``)."""


def backend_of(column, backends: Dict[str, Callable[[], ZeroShotBackend]], cache: dict) -> ZeroShotBackend:
    """The backend of a column: ``backends["hf"]`` for an ``hf:`` column, ``backends["fairseq"]`` otherwise,
    built once per runner (``cache``).

    Raises:
        TypeError: the factory's object lacks a method of :class:`ZeroShotBackend`.
    """
    key = "hf" if column.kind == "hf" else "fairseq"
    if key not in cache:
        be = backends[key]()
        if not isinstance(be, ZeroShotBackend):
            missing = [m for m in ("resolve", "column_digest", "prepare", "finetune", "train_labels", "predict",
                                   "count_parameters", "discard") if not callable(getattr(be, m, None))]
            raise TypeError(f"the {key} backend {type(be).__name__} lacks {', '.join(missing)}")
        cache[key] = be
    return cache[key]
