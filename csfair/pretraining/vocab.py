"""Shared vocabulary: a balanced sentencepiece model and its fairseq dictionary.

Visser et al. (2025), Section 3.2: "To avoid biasing the shared vocabulary towards English, we
constructed the vocabulary using only 100MB of each language" — :func:`train_sentencepiece`
samples the *same number of characters* from every language before training.

The fairseq dictionary (``dict.txt``: ``symbol count`` per line) lists every sentencepiece piece
except ``<unk>``, ``<s>`` and ``</s>`` (fairseq adds its own specials ``<s> <pad> </s> <unk>`` at
ids 0-3), with counts of the pieces in the sentencepiece training text. :class:`FairseqVocab`
reads that format with fairseq's id assignment without importing fairseq.
"""
import random
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from csfair.io import InputFormatError, LineIssues, PathLike, atomic_write, iter_lines, sha256_file

FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
SPM_RESERVED = ("<unk>", "<s>", "</s>")


class FairseqVocab:
    """A fairseq ``dict.txt`` read with fairseq's ids (specials 0-3, then file order).

    Args:
        path: the ``dict.txt``.

    Raises:
        InputFormatError-like ``ValueError``: a line without a trailing integer count or a
        duplicate symbol (naming file and line).
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.symbols: List[str] = list(FAIRSEQ_SPECIALS)
        self.counts: List[int] = [1, 1, 1, 1]
        self.index_of: Dict[str, int] = {s: i for i, s in enumerate(self.symbols)}
        issues = LineIssues(str(path), strict=True)
        for lineno, text in iter_lines(path, issues, skip_empty=True):
            line = text.rstrip()
            overwrite = False
            try:
                word, count = line.rsplit(" ", 1)
                if count == "#fairseq:overwrite":
                    overwrite = True
                    word, count = word.rsplit(" ", 1)
                n = int(count)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: expected '<symbol> <count>', got {line!r}") from None
            if word in self.index_of and not overwrite:
                raise ValueError(f"{path}:{lineno}: duplicate symbol {word!r} in dictionary")
            if word not in self.index_of:
                self.index_of[word] = len(self.symbols)
                self.symbols.append(word)
                self.counts.append(n)
        self.unk = self.index_of["<unk>"]

    def __len__(self) -> int:
        return len(self.symbols)

    def index(self, symbol: str) -> int:
        """Id of ``symbol`` or the ``<unk>`` id."""
        return self.index_of.get(symbol, self.unk)

    def sha256(self) -> str:
        """Checksum of the dictionary file (recorded in substitution tables)."""
        return sha256_file(self.path)


class WordEncoder:
    """Maps text to fairseq dictionary ids through sentencepiece pieces (as fairseq-preprocess sees them).

    Args:
        spm_model: sentencepiece ``.model`` file.
        dict_path: fairseq ``dict.txt`` built from it.
    """

    def __init__(self, spm_model: PathLike, dict_path: PathLike):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(spm_model))
        self.vocab = FairseqVocab(dict_path)

    def pieces(self, text: str) -> List[str]:
        return self.sp.encode(text, out_type=str)

    def __call__(self, text: str) -> List[int]:
        """Dictionary ids of ``text``'s pieces (a word gets its word-start piece ``▁``)."""
        return [self.vocab.index(p) for p in self.sp.encode(text, out_type=str)]

    def decode(self, ids: Sequence[int]) -> str:
        """Pieces joined by spaces (for inspection)."""
        return " ".join(self.vocab.symbols[i] for i in ids)


def balanced_sample(
    inputs: Dict[str, PathLike], max_chars_per_lang: Optional[int] = None, seed: int = 1
) -> Tuple[Dict[str, List[str]], Dict[str, int]]:
    """The same number of characters of text from every language.

    Lines of each language are shuffled (``seed``) and taken until the budget
    ``min(total characters of the smallest language, max_chars_per_lang)`` is reached.

    Returns:
        (lines per language, characters per language)

    Raises:
        InputFormatError: a language's file has no usable line (names the file).
    """
    texts = {}
    for lang, path in inputs.items():
        issues = LineIssues(str(path))
        texts[lang] = [t for _, t in iter_lines(path, issues)]
        issues.report()
        if not texts[lang]:
            what = f"all {issues.total} lines were skipped" if issues.total else "the file is empty"
            raise InputFormatError(path, 0, f"no {lang} text for the shared vocabulary ({what})")
    totals = {lang: sum(len(t) for t in lines) for lang, lines in texts.items()}
    budget = min(totals.values())
    if max_chars_per_lang:
        budget = min(budget, max_chars_per_lang)
    out, chars = {}, {}
    for lang, lines in texts.items():
        order = list(range(len(lines)))
        random.Random(seed).shuffle(order)
        taken, n = [], 0
        for i in order:
            if n >= budget:
                break
            taken.append(lines[i])
            n += len(lines[i])
        out[lang], chars[lang] = taken, n
    return out, chars


def train_sentencepiece(
    inputs: Dict[str, PathLike],
    model_prefix: PathLike,
    vocab_size: int = 8000,
    max_chars_per_lang: Optional[int] = None,
    model_type: str = "unigram",
    character_coverage: float = 0.9999,
    seed: int = 1,
    threads: int = 2,
) -> dict:
    """Train a shared sentencepiece model on a language-balanced sample.

    Args:
        inputs: ``{lang: path}`` of (pre-tokenised) training text.
        model_prefix: writes ``<prefix>.model`` and ``<prefix>.vocab`` (atomically).
        vocab_size: number of pieces.
        max_chars_per_lang: cap on the characters taken from each language.
        model_type: ``unigram`` or ``bpe``.
        character_coverage: sentencepiece's coverage of the character set.
        seed: shuffling seed of the sample.
        threads: sentencepiece trainer threads.

    Returns:
        stats: lines and characters per language, seconds.
    """
    import sentencepiece as spm

    t0 = time.time()
    sample, chars = balanced_sample(inputs, max_chars_per_lang, seed)
    lines = [line for lang in sorted(sample) for line in sample[lang]]
    random.Random(seed).shuffle(lines)
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp_prefix = prefix.with_name(f".{prefix.name}.tmp")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(tmp_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=threads,
        max_sentence_length=1 << 14,
        minloglevel=2,
    )
    _drop_build_paths(Path(f"{tmp_prefix}.model"), prefix.name)
    for ext in (".vocab", ".model"):  # .model last: its presence marks a finished step
        Path(f"{tmp_prefix}{ext}").replace(f"{prefix}{ext}")
    return dict(
        lines={k: len(v) for k, v in sample.items()}, chars=chars, vocab_size=vocab_size,
        seconds=round(time.time() - t0, 2),
    )


def _drop_build_paths(model_path: Path, name: str) -> None:
    """Replace the temporary path that sentencepiece stores in ``trainer_spec.model_prefix`` by
    the model's bare name, so that the same data gives a byte-identical model wherever it is built
    (the path is informational; encoding does not read it)."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_path.read_bytes())
    proto.trainer_spec.model_prefix = name
    model_path.write_bytes(proto.SerializeToString())


def encode_file(spm_model: PathLike, in_path: PathLike, out_path: PathLike, issues: Optional[LineIssues] = None) -> dict:
    """Sentencepiece-encode a text file to space-separated pieces (fairseq-preprocess input).

    Empty and undecodable lines are skipped and counted (``issues``).

    Returns:
        stats: lines written and pieces.
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    issues = issues if issues is not None else LineIssues(str(in_path))
    n_lines = n_pieces = 0
    with atomic_write(out_path) as out:
        batch: List[str] = []

        def flush():
            nonlocal n_lines, n_pieces
            for pieces in sp.encode(batch, out_type=str):
                out.write(" ".join(pieces) + "\n")
                n_lines += 1
                n_pieces += len(pieces)
            batch.clear()

        for _, text in iter_lines(in_path, issues):
            batch.append(text)
            if len(batch) >= 4096:
                flush()
        flush()
    issues.report()
    return dict(lines=n_lines, pieces=n_pieces)


def write_fairseq_dict(spm_model: PathLike, count_files: Iterable[PathLike], out_path: PathLike) -> dict:
    """Write fairseq's ``dict.txt`` for a sentencepiece model.

    Every piece except ``<unk> <s> </s>`` is listed in sentencepiece id order with its count in
    ``count_files`` (space-separated pieces, as written by :func:`encode_file`); pieces never
    seen keep count 0 so that any text encodes without ``<unk>``.

    Returns:
        stats: symbols written, pieces counted.
    """
    import sentencepiece as spm
    from collections import Counter

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    counts: Counter = Counter()
    for f in count_files:
        for _, text in iter_lines(f, LineIssues(str(f))):
            counts.update(text.split())
    n = 0
    with atomic_write(out_path) as fh:
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if piece in SPM_RESERVED or sp.is_control(i):
                continue
            if any(c.isspace() for c in piece):
                continue  # cannot be a fairseq symbol (never produced for whitespace-split text)
            fh.write(f"{piece} {counts.get(piece, 0)}\n")
            n += 1
    return dict(symbols=n, counted_pieces=sum(counts.values()))
