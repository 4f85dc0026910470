"""Text for masked-LM training through ``datasets``, as transformers' ``run_mlm.py`` reads it, with the
word ids csfair's collator needs.

* :func:`load_raw_datasets`: ``--train_file``/``--validation_file`` (``.json``/``.jsonl`` -> the
  ``json`` builder, ``.csv`` -> ``csv``, anything else, e.g. Moses-tokenised ``.tok``, -> ``text``: one
  example per line) or ``--dataset_name`` (hub id or local directory, ``cache_dir``); without a
  validation split, the first ``validation_split_percentage`` % of the training rows become it (as
  run_mlm.py), minus the rows that have a near-copy among the remaining training rows
  (:func:`held_out_rows`): held out means held out of the training text, near-copies included.
* :func:`tokenize_datasets`: ``Dataset.map`` with the map functions of :mod:`csfair_hf.tokenization`
  (``--line_by_line``: one example per line, truncated; else run_mlm.py's ``group_texts`` blocks),
  ``num_proc`` workers, the ``datasets`` cache. Every example carries ``word_ids``.
* :func:`download_command`, :func:`hub_error`: the command of the *installed* ``huggingface_hub``
  that fetches an id that is neither a directory nor in the local cache (offline runs).
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

#: file extension -> ``datasets`` builder (everything else: ``text``)
BUILDERS = {"json": "json", "jsonl": "json", "csv": "csv"}


def download_command(repo_id: str, repo_type: str = "model") -> str:
    """The shell command that downloads ``repo_id`` into the local Hugging Face cache, spelled for the
    installed ``huggingface_hub``: ``hf download`` where its ``hf`` entry point exists (>= 0.34; the
    only one from 1.0), else ``huggingface-cli download``.

    Args:
        repo_id: hub id, optionally ``id@revision``.
        repo_type: ``model`` or ``dataset``.
    """
    from importlib import metadata

    try:
        names = {ep.name for ep in metadata.distribution("huggingface_hub").entry_points}
    except metadata.PackageNotFoundError:
        names = set()
    tool = "hf download" if "hf" in names or not names else "huggingface-cli download"
    repo, _, revision = repo_id.partition("@")
    cmd = f"{tool} {repo}"
    if repo_type != "model":
        cmd += f" --repo-type {repo_type}"
    if revision:
        cmd += f" --revision {revision}"
    return cmd


def hub_error(name: str, err: BaseException, repo_type: str = "model") -> str:
    """The message for a ``from_pretrained``/``load_dataset`` failure on ``name``: a missing path, or a hub
    id that could not be loaded (offline and not cached), with the command that fetches it."""
    if os.path.exists(name) or name.startswith((".", "/", "~")):
        return f"{name}: cannot load it as a {repo_type} ({type(err).__name__}: {err})"
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return (f"{name}: neither a local {repo_type} directory nor a {repo_type} in the local Hugging Face cache"
            f"{' (offline mode)' if offline else ''}, and it could not be downloaded ({type(err).__name__}). "
            f"Fetch it where there is network with `{download_command(name, repo_type)}` (into the cache of "
            f"HF_HOME={os.environ.get('HF_HOME', '~/.cache/huggingface')}), or give a local directory")


def builder_for(path: str) -> str:
    """``datasets`` builder of a data file: ``json`` (.json/.jsonl), ``csv`` (.csv), else ``text``."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in os.path.basename(path) else ""
    return BUILDERS.get(ext, "text")


def _text(t) -> str:
    return "" if t is None else str(t).replace("\n", " ")


def held_out_rows(valid_texts, train_texts):
    """Indices of the validation texts that have no near-copy among the training texts.

    A near-copy is any hit of :class:`csfair.evaluation.nearcopy.NearCopyIndex` (the held-out audit's
    rule: an exact or tokenisation-insensitive copy, containment in a training line, or >= 70% of the
    item's word 8-grams in one training line).

    Returns:
        sorted list of int.
    """
    from csfair.evaluation.nearcopy import NearCopyIndex, TextTable

    index = NearCopyIndex(valid_texts)
    hits = index.match(TextTable.build(train_texts, index.n))
    leaked = set(hits.item.tolist())
    return [i for i in range(len(valid_texts)) if i not in leaked]


def load_raw_datasets(train_file: Optional[str] = None, validation_file: Optional[str] = None,
                      dataset_name: Optional[str] = None, dataset_config_name: Optional[str] = None,
                      validation_split_percentage: int = 5, cache_dir: Optional[str] = None,
                      text_column: Optional[str] = None) -> Tuple["datasets.DatasetDict", str, Dict[str, int]]:
    """The raw ``train``/``validation`` rows, as run_mlm.py loads them (see the module docstring).

    Returns:
        ``(raw, text_column, info)``: a ``DatasetDict`` (``train`` and/or ``validation``), the text
        column (``text`` if present, else the first column, unless given), and ``info`` with
        ``validation_split_percentage`` (0 when a validation set was given) and
        ``validation_copies_dropped``.

    Raises:
        FileNotFoundError: a data file that does not exist.
        ValueError: no data given, a dataset that cannot be loaded (the message gives the download
            command), a missing text column, or an empty training set.
    """
    import datasets

    info = dict(validation_split_percentage=0, validation_copies_dropped=0)
    if dataset_name:
        try:
            raw = datasets.load_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir)
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
            raise ValueError(hub_error(dataset_name, err, "dataset")) from err
        if not isinstance(raw, datasets.DatasetDict):
            raw = datasets.DatasetDict(train=raw)
    else:
        files = {k: v for k, v in (("train", train_file), ("validation", validation_file)) if v}
        if not files:
            raise ValueError("give --train_file/--validation_file or --dataset_name")
        for path in files.values():
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no such file")
            if os.path.getsize(path) == 0:
                raise ValueError(f"{path}: empty file")
        builders = {builder_for(p) for p in files.values()}
        if len(builders) > 1:
            raise ValueError(f"--train_file and --validation_file have different formats ({sorted(builders)})")
        builder = builders.pop()
        kw = {"keep_linebreaks": False} if builder == "text" else {}
        try:
            raw = datasets.load_dataset(builder, data_files=files, cache_dir=cache_dir, **kw)
        except Exception as err:  # datasets' parsers raise many types (ArrowInvalid, DatasetGenerationError, ...)
            raise ValueError(f"{', '.join(files.values())}: cannot read as {builder} ({type(err).__name__}: {err})") from err
    splits = list(raw.keys())
    cols = raw[splits[0]].column_names
    column = text_column or ("text" if "text" in cols else cols[0])
    for s in splits:
        if column not in raw[s].column_names:
            raise ValueError(f"{s} split: no column {column!r} (columns: {raw[s].column_names})")
    if "train" in raw and "validation" not in raw and validation_split_percentage > 0:
        p = int(validation_split_percentage)
        n = len(raw["train"])
        k = n * p // 100  # datasets' train[:p%] slice rounds the same way
        valid, train = raw["train"].select(range(k)), raw["train"].select(range(k, n))
        keep = held_out_rows([_text(t) for t in valid[column]], [_text(t) for t in train[column]])
        info.update(validation_split_percentage=p, validation_copies_dropped=len(valid) - len(keep))
        raw = datasets.DatasetDict(train=train, validation=valid.select(keep))
    if "train" in raw and len(raw["train"]) == 0:
        raise ValueError(f"{train_file or dataset_name}: no training rows")
    return raw, column, info


def tokenize_datasets(raw, tokenizer, text_column: str, max_seq_length: int, line_by_line: bool,
                      num_proc: Optional[int] = None, overwrite_cache: bool = False):
    """Examples with ``word_ids`` for every split of ``raw`` (``Dataset.map``; run_mlm.py's two modes).

    Args:
        raw: ``DatasetDict`` of rows with a text column.
        tokenizer: a fast tokenizer.
        text_column: the column holding the text.
        max_seq_length: tokens per line (``line_by_line``, truncated) or per block.
        line_by_line: one example per non-empty line; else lines concatenated and cut into blocks
            (each map batch of 1,000 lines drops its remainder, as run_mlm.py).
        num_proc: ``map`` worker processes (``--preprocessing_num_workers``).
        overwrite_cache: recompute instead of reading ``datasets``' cache files.

    Returns:
        ``DatasetDict`` with columns ``input_ids``, ``attention_mask``, ``special_tokens_mask``, ``word_ids``.
    """
    from csfair_hf.tokenization import map_group_texts, map_line_by_line, map_tokenize_lines

    common = dict(batched=True, num_proc=num_proc, load_from_cache_file=not overwrite_cache)
    out = {}
    for split, ds in raw.items():
        if line_by_line:
            out[split] = ds.map(map_line_by_line, remove_columns=ds.column_names, desc=f"{split}: tokenising lines",
                                fn_kwargs=dict(tokenizer=tokenizer, text_column=text_column, max_length=max_seq_length),
                                **common)
        else:
            tok = ds.map(map_tokenize_lines, remove_columns=ds.column_names, desc=f"{split}: tokenising lines",
                         fn_kwargs=dict(tokenizer=tokenizer, text_column=text_column), **common)
            out[split] = tok.map(map_group_texts, desc=f"{split}: grouping into blocks of {max_seq_length} tokens",
                                 fn_kwargs=dict(block_size=max_seq_length), **common)
    return type(raw)(out)


def load_tables(paths: Sequence[str], temperature: Optional[float] = None, min_prob: Optional[float] = None) -> List:
    """The substitution tables of ``--cs_table`` (``csfair-lexicon table --hf-tokenizer`` directories),
    verified on load, with ``temperature``/``min_prob`` re-applied when given (None: the table's own).

    Raises:
        FileNotFoundError: a table directory is missing.
        csfair.pretraining.substitution_table.CorruptTableError: a table's arrays differ from the
            checksum recorded when it was built (csfair issue 21).
    """
    from csfair.pretraining.substitution_table import SubstitutionTable

    tables = []
    for path in paths:
        t = SubstitutionTable.load(path)
        if temperature is not None or min_prob is not None:
            t = t.with_sampling(temperature if temperature is not None else t.meta["temperature"],
                                min_prob if min_prob is not None else t.meta["min_prob"])
        tables.append(t)
    return tables
