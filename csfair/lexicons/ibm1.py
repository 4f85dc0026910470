"""IBM Model 1 translation tables with fast_align (systran-align's Python bindings) or Thot (sil-thot).

Visser et al. (2025), Section 3.1 train IBM models on parallel text and use the translation
table ``p(target word | source word)`` as the candidate distribution for code-switching.
fast_align (Dyer et al., 2013) without its diagonal prior (``favor_diagonal=False``) *is* IBM
Model 1 (uniform alignment prior, plus a NULL word); ``iterations`` EM iterations (default 5).
One call estimates both directions: forward ``p(tgt | src)`` and backward ``p(src | tgt)``.

Two implementations (``aligner``), chosen by what is installed (``auto``: fast_align first):

* ``fast_align``: systran-align 3.5.0, the reference (README numbers). It has wheels for Python
  <= 3.11 only and no source package, so it is not installable on Python 3.12.
* ``thot``: SIL's Thot toolkit (sil-thot, maintained, wheels for Python 3.10-3.14),
  ``thot.alignment.Ibm1AlignmentModel``: the same model (uniform prior over the source words and
  NULL, plain EM, no smoothing). fast_align's last iteration only computes the likelihood (no
  M-step), so its ``iterations`` are ``iterations - 1`` Thot updates. Measured on 3,000 Multi30k
  en-fr pairs, one thread each: every probability within 6.3e-7 of fast_align's (float32 storage),
  the same candidates in every row (``tests/test_ibm1_lexicon.py`` checks it where both are
  installed). Thot's tables are written in fast_align's binary format below, with fast_align's
  export beam, so everything downstream is unchanged. fast_align's diagonal model
  (``favor_diagonal=True``, used by :mod:`csfair.lexicons.alignment` for word alignments) is not
  Thot's ``FastAlignModel`` (which re-estimates the tension; measured differences up to 0.7), so
  it needs systran-align.

Binary table format (written by ``systran_align.generate_alignment_probabilities``; all integers
little-endian int32, probabilities little-endian float32)::

    int32   format tag (2 in systran-align 3.5.0)
    int32   V, the vocabulary size (both languages share one vocabulary)
    V x     NUL-terminated UTF-8 word; the k-th word has id k + 1 (id 0 is reserved),
            id 1 is the NULL word "<eps>", id 2 the "|||" separator
    int32   R, one more than the largest source id with a row
    rows until end of file, each:
        int32   source word id
        int32   C, number of candidates
        C x     (int32 target word id, float32 p(target | source))

A row holds the candidates whose probability survived fast_align's export beam: it keeps
``p >= max_p ** (-beam_threshold)`` per source word. With fast_align's default ``-4`` a word whose
best translation has ``p = 0.7`` loses every candidate below 0.24, far stricter than the paper's
``p > 0.02`` filter. csfair therefore exports with ``beam_threshold=-1000``: since the candidates
other than the best sum to at most ``1 - max_p``, a candidate with ``p > 0.02`` exists only if
``max_p < 0.98``, and then ``max_p ** 1000 < 0.98 ** 1000 < 1e-8 < 0.02``: nothing the paper's
filter would keep is lost.
"""
import os
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from csfair.io import InputFormatError, LineIssues, PathLike, iter_parallel
from csfair.lexicons.lexicon import Lexicon
from csfair.text import moses_tokenize_lines

NULL_WORD = "<eps>"
SEPARATOR = "|||"
ALIGNERS = ("fast_align", "thot")
#: the importable module and the package that provides it, per aligner
_ALIGNER_MODULES = {"fast_align": ("systran_align", "systran-align==3.5.0 (Python <= 3.11)"),
                    "thot": ("thot", "sil-thot==3.5.3")}


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_aligner(aligner: str = "auto", favor_diagonal: bool = False) -> str:
    """The IBM-1 implementation to use.

    Args:
        aligner: ``"auto"`` (fast_align where systran-align is installed, else Thot), ``"fast_align"``
            or ``"thot"``.
        favor_diagonal: fast_align's diagonal model is wanted (only ``fast_align`` has it).

    Returns:
        ``"fast_align"`` or ``"thot"``.

    Raises:
        ValueError: unknown name.
        RuntimeError: the chosen (or, for ``auto``, every) implementation is not installed; the message
            says which package to install for this Python.
    """
    import platform

    if aligner not in ("auto",) + ALIGNERS:
        raise ValueError(f"aligner must be auto, fast_align or thot; got {aligner!r}")
    py = platform.python_version()
    if favor_diagonal:
        if aligner == "thot":
            raise RuntimeError("fast_align's diagonal model (favor_diagonal=True) needs aligner='fast_align': "
                               "Thot's FastAlignModel re-estimates the tension and gives other tables")
        aligner = "fast_align"
    if aligner == "auto":
        for name in ALIGNERS:
            if _importable(_ALIGNER_MODULES[name][0]):
                return name
        raise RuntimeError(
            f"IBM-1 needs an aligner and none is installed in this Python ({py}, {sys.executable}): install "
            f"{_ALIGNER_MODULES['fast_align'][1]} or {_ALIGNER_MODULES['thot'][1]} (requirements/runtime.txt; "
            "scripts/setup.sh installs the one that exists for this Python)")
    module, package = _ALIGNER_MODULES[aligner]
    if not _importable(module):
        hint = ""
        if aligner == "fast_align" and sys.version_info >= (3, 12):
            hint = (" (systran-align has no package for Python 3.12 and later: use Python 3.11)" if favor_diagonal
                    else " (systran-align has no package for Python 3.12 and later: use aligner 'thot', which gives "
                    "the same IBM-1 tables)")
        what = "fast_align's diagonal model (word alignments)" if favor_diagonal else f"aligner {aligner!r}"
        raise RuntimeError(f"{what} needs {package}, which is not installed in this Python ({py}, "
                           f"{sys.executable}){hint}")
    return aligner


@dataclass
class FastAlignTable:
    """A parsed fast_align translation table (one direction).

    Attributes:
        vocab: list of words indexed by fast_align id (``vocab[0]`` is a placeholder).
        src_ids: int32 ``[R']`` source word ids that have a row, in file order.
        row_offsets: int64 ``[R' + 1]``: candidates of row ``r`` are ``row_offsets[r]:row_offsets[r+1]``.
        tgt_ids: int32 ``[M]`` candidate word ids.
        probs: float32 ``[M]`` ``p(target | source)``.
    """

    vocab: List[str]
    src_ids: np.ndarray
    row_offsets: np.ndarray
    tgt_ids: np.ndarray
    probs: np.ndarray

    def row(self, word: str) -> Dict[str, float]:
        """``{target: p}`` for a source word (empty if it has no row)."""
        try:
            wid = self.vocab.index(word)
        except ValueError:
            return {}
        hits = np.flatnonzero(self.src_ids == wid)
        if len(hits) == 0:
            return {}
        a, b = self.row_offsets[hits[0]], self.row_offsets[hits[0] + 1]
        return {self.vocab[t]: float(p) for t, p in zip(self.tgt_ids[a:b], self.probs[a:b])}


def read_fast_align_table(path: PathLike) -> FastAlignTable:
    """Parse a binary translation table written by systran-align (format in the module docstring).

    Args:
        path: the ``forward_probs_path`` or ``backward_probs_path`` file.

    Returns:
        FastAlignTable

    Raises:
        FileNotFoundError: no such file.
        InputFormatError: truncated or inconsistent file (the message gives the byte offset).
    """
    data = Path(path).read_bytes()
    n = len(data)

    def fail(off: int, why: str):
        raise InputFormatError(path, 0, f"malformed fast_align table at byte {off}: {why}")

    if n < 8:
        fail(0, "file shorter than its 8-byte header")
    _tag, vsize = struct.unpack_from("<ii", data, 0)
    if vsize < 0:
        fail(4, f"negative vocabulary size {vsize}")
    off = 8
    parts = data[off:].split(b"\0", vsize)
    if len(parts) <= vsize:
        fail(off, f"vocabulary truncated: expected {vsize} NUL-terminated words, found {len(parts) - 1}")
    try:
        words = [p.decode("utf-8") for p in parts[:vsize]]
    except UnicodeDecodeError as e:
        fail(off, f"vocabulary word is not UTF-8 ({e})")
    off += sum(len(p) for p in parts[:vsize]) + vsize
    vocab = ["<bad0>"] + words
    if off + 4 > n:
        fail(off, "missing row count")
    (_nrows,) = struct.unpack_from("<i", data, off)
    off += 4

    src_ids, counts, chunks = [], [], []
    pair = np.dtype([("t", "<i4"), ("p", "<f4")])
    while off < n:
        if off + 8 > n:
            fail(off, "truncated row header")
        sid, cnt = struct.unpack_from("<ii", data, off)
        off += 8
        if cnt < 0 or off + 8 * cnt > n:
            fail(off - 8, f"row of source id {sid} claims {cnt} candidates beyond the end of the file")
        if not (0 < sid <= vsize):
            fail(off - 8, f"source id {sid} outside the vocabulary (size {vsize})")
        chunks.append(np.frombuffer(data, dtype=pair, count=cnt, offset=off))
        src_ids.append(sid)
        counts.append(cnt)
        off += 8 * cnt
    cat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=pair)
    tgt_ids = cat["t"].astype(np.int32)
    if len(tgt_ids) and (tgt_ids.min() <= 0 or tgt_ids.max() > vsize):
        fail(off, "a candidate id is outside the vocabulary")
    return FastAlignTable(
        vocab=vocab,
        src_ids=np.asarray(src_ids, dtype=np.int32),
        row_offsets=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        tgt_ids=tgt_ids,
        probs=cat["p"].astype(np.float32),
    )


def table_to_lexicon(
    table: FastAlignTable, src_lang: str, tgt_lang: str, min_prob: float = 1e-3
) -> Lexicon:
    """Convert a :class:`FastAlignTable` to a :class:`Lexicon`, dropping the NULL word's row.

    Args:
        min_prob: candidates with ``p < min_prob`` are not kept (the table's own ``p > 0.02``
            filter is applied later; this only bounds the file size).
    """
    keep_rows = np.array([table.vocab[s] not in (NULL_WORD, SEPARATOR) for s in table.src_ids], dtype=bool)
    offsets = table.row_offsets
    counts = np.diff(offsets)
    sel = np.repeat(keep_rows, counts)
    new_offsets = np.concatenate([[0], np.cumsum(counts[keep_rows])])
    src_words = [table.vocab[s] for s in table.src_ids[keep_rows]]
    tgt_words = [table.vocab[t] for t in table.tgt_ids[sel]]
    return Lexicon.from_arrays(
        src_lang, tgt_lang, "ibm1", True, src_words, new_offsets, tgt_words, table.probs[sel], min_prob=min_prob
    )


def train_ibm1(
    pairs: Iterable[Tuple[str, str]],
    iterations: int = 5,
    beam_threshold: float = -1000.0,
    work_dir: Optional[PathLike] = None,
    verbose: bool = False,
    threads: int = 1,
    favor_diagonal: bool = False,
    aligner: str = "auto",
) -> Tuple[FastAlignTable, FastAlignTable]:
    """Estimate IBM Model 1 (or, with ``favor_diagonal``, fast_align's model) in both directions.

    Args:
        pairs: ``(source, target)`` tokenised lines (space-separated tokens, non-empty).
        iterations: EM iterations (5, as fast_align's default).
        beam_threshold: export beam (see the module docstring; -1000 keeps every candidate the
            ``p > 0.02`` filter could keep).
        work_dir: where to write the temporary input and tables (a temp dir if None).
        verbose: let fast_align print its EM log.
        threads: OpenMP threads of fast_align. With more than one, the EM sums are reduced in a
            run-dependent order and the tables differ in the last digits between runs; 1 (the
            default) makes them bit-identical (measured on Multi30k en-fr: ~12 s either way on 2
            cores).
        favor_diagonal: fast_align's diagonal prior (its default; used for word alignment); False
            is IBM Model 1 (used for the translation lexicons).
        aligner: ``"auto"``, ``"fast_align"`` or ``"thot"`` (:func:`resolve_aligner`; the module
            docstring says how they compare).

    Returns:
        (forward, backward): ``p(tgt | src)`` and ``p(src | tgt)`` tables.

    Raises:
        RuntimeError: the aligner is not installed (the message says what to install), or it failed (its
            stderr is included).
    """
    aligner = resolve_aligner(aligner, favor_diagonal)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1; got {iterations}")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        inp, fw, bw = (os.path.join(tmp, n) for n in ("input.txt", "fw.bin", "bw.bin"))
        with open(inp, "w", encoding="utf-8") as fh:
            for s, t in pairs:
                fh.write(f"{s} {SEPARATOR} {t}\n")
        # A child process, so that OMP_NUM_THREADS takes effect whatever this process has loaded.
        if aligner == "fast_align":
            code = (
                "import sys, systran_align; systran_align.generate_alignment_probabilities("
                "sys.argv[1], sys.argv[2], sys.argv[3], verbose=sys.argv[4] == '1', iterations=int(sys.argv[5]), "
                "favor_diagonal=sys.argv[7] == '1', beam_threshold=float(sys.argv[6]))"
            )
        else:
            code = ("import sys; from csfair.lexicons.ibm1 import _thot_tables; _thot_tables(sys.argv[1], sys.argv[2], "
                    "sys.argv[3], verbose=sys.argv[4] == '1', iterations=int(sys.argv[5]), "
                    "beam_threshold=float(sys.argv[6]))")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        # the child imports this csfair (the Thot path), wherever it was imported from
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join([pkg_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        proc = subprocess.run(
            [sys.executable, "-c", code, inp, fw, bw, "1" if verbose else "0", str(iterations), str(beam_threshold),
             "1" if favor_diagonal else "0"],
            env=env, stdout=None if verbose else subprocess.DEVNULL, stderr=None if verbose else subprocess.PIPE,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{aligner} failed ({proc.returncode}): {(proc.stderr or '')[-2000:]}")
        return read_fast_align_table(fw), read_fast_align_table(bw)


def _thot_tables(inp: str, fw_path: str, bw_path: str, verbose: bool = False, iterations: int = 5,
                 beam_threshold: float = -1000.0) -> None:
    """Thot's IBM Model 1 in both directions, written as fast_align's binary tables (run in a child process
    by :func:`train_ibm1`).

    Args:
        inp: ``source ||| target`` lines (what fast_align reads).
        fw_path, bw_path: output tables ``p(tgt | src)`` and ``p(src | tgt)`` (format in the module docstring).
        iterations: fast_align's count; Thot runs ``iterations - 1`` EM updates (fast_align's last
            iteration only computes the likelihood).
        beam_threshold: fast_align's export beam: a candidate is kept if
            ``log p >= -log(max_p) * beam_threshold`` (``ttable.h``'s ``ExportToFile``).
    """
    import thot.alignment as ta

    src_lines, tgt_lines = [], []
    with open(inp, encoding="utf-8") as fh:
        for line in fh:
            s, t = line.rstrip("\n").split(f" {SEPARATOR} ", 1)
            src_lines.append(s.split())
            tgt_lines.append(t.split())
    # one shared vocabulary, as fast_align's: id 1 the NULL word, id 2 the separator, then words by first use
    ids = {NULL_WORD: 1, SEPARATOR: 2}
    for sent in src_lines + tgt_lines:
        for w in sent:
            if w not in ids:
                ids[w] = len(ids) + 1
    for (src, tgt), path in (((src_lines, tgt_lines), fw_path), ((tgt_lines, src_lines), bw_path)):
        t0 = time.time()
        model = ta.Ibm1AlignmentModel()
        for s, t in zip(src, tgt):
            model.add_sentence_pair(s, t)
        model.start_training()
        for _ in range(iterations - 1):
            model.train()
        model.end_training()
        rows = []
        # Thot's ids: 0 the NULL word, 1 and 2 reserved, words from 3 on
        src_ids = [0] + list(range(3, model.src_vocab_size))
        tgt_map = np.full(model.trg_vocab_size, -1, dtype=np.int64)
        for k in range(3, model.trg_vocab_size):
            tgt_map[k] = ids[model.get_trg_word(k)]
        for k in src_ids:
            cands = model.get_translations(k, 0.0)
            if not cands:
                continue
            tid = np.array([c[0] for c in cands], dtype=np.int64)
            p = np.array([c[1] for c in cands], dtype=np.float64)
            keep = (tid >= 3) & (p > 0)
            tid, p = tid[keep], p[keep]
            if not len(p):
                continue
            keep = np.log(p) >= -np.log(p.max()) * beam_threshold
            sid = 1 if k == 0 else ids[model.get_src_word(k)]
            rows.append((sid, tgt_map[tid[keep]], p[keep]))
        _write_fast_align_table(path, list(ids), rows)
        if verbose:
            print(f"thot IBM-1: {len(src)} pairs, {iterations - 1} EM updates, {len(rows)} rows, "
                  f"{time.time() - t0:.1f} s", file=sys.stderr)


def _write_fast_align_table(path: str, words: List[str], rows) -> None:
    """Write fast_align's binary table (module docstring) for ``words`` (id k+1 is ``words[k]``) and
    ``rows`` of ``(source id, int target ids, float probabilities)``."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<ii", 2, len(words)))
        fh.write(b"".join(w.encode("utf-8") + b"\0" for w in words))
        fh.write(struct.pack("<i", max((r[0] for r in rows), default=0) + 1))
        pair = np.dtype([("t", "<i4"), ("p", "<f4")])
        for sid, tid, p in sorted(rows, key=lambda r: r[0]):
            fh.write(struct.pack("<ii", sid, len(tid)))
            rec = np.empty(len(tid), dtype=pair)
            rec["t"], rec["p"] = tid, p
            fh.write(rec.tobytes())


def build_ibm1_lexicons(
    src_path: PathLike,
    tgt_path: PathLike,
    src_lang: str,
    tgt_lang: str,
    lowercase: bool = True,
    iterations: int = 5,
    workers: int = 1,
    max_pairs: Optional[int] = None,
    min_prob: float = 1e-3,
    issues: Optional[LineIssues] = None,
    progress: bool = True,
    threads: int = 1,
    max_chars: Optional[int] = 10000,
    aligner: str = "auto",
) -> Tuple[Lexicon, Lexicon, dict]:
    """IBM-1 lexicons in both directions from two line-aligned raw text files.

    Steps: read pairs (skipping empty/invalid lines, counted), Moses-tokenise both sides
    (sacremoses; lower-cased by default), run fast_align in IBM-1 mode, convert the tables.

    Args:
        src_path, tgt_path: line-aligned files (``.gz`` allowed).
        src_lang, tgt_lang: ISO codes (select Moses rules, label the lexicons).
        lowercase: lower-case before estimation.
        iterations: EM iterations.
        workers: tokenisation processes.
        max_pairs: use only the first ``max_pairs`` usable pairs.
        min_prob: smallest probability kept in the lexicons.
        issues: collector for skipped lines.
        progress: show tqdm progress bars.
        threads: fast_align OpenMP threads (1: bit-reproducible tables; see :func:`train_ibm1`).
        max_chars: pairs with a side longer than this are skipped and counted (None: no limit).
        aligner: IBM-1 implementation (:func:`resolve_aligner`: ``auto`` takes fast_align where
            systran-align is installed, else Thot).

    Returns:
        (forward, backward, stats): lexicons ``src->tgt`` and ``tgt->src`` and counts
        (``pairs_read``, ``pairs_used``, ``pairs_skipped``, ``seconds``, ``aligner``).

    Raises:
        InputFormatError: the files differ in length (names the shorter file and line), or hold no
            usable pair (empty files, or every line skipped).
        RuntimeError: no IBM-1 implementation is installed (before any file is read).
    """
    from tqdm import tqdm

    aligner = resolve_aligner(aligner)  # fail before the (long) tokenisation

    issues = issues if issues is not None else LineIssues(f"{src_path} ||| {tgt_path}")
    t0 = time.time()
    linenos, src_lines, tgt_lines = [], [], []
    for lineno, s, t in iter_parallel(src_path, tgt_path, issues, max_chars=max_chars):
        linenos.append(lineno)
        src_lines.append(s)
        tgt_lines.append(t)
        if max_pairs is not None and len(src_lines) >= max_pairs:
            break
    read = len(src_lines)
    bar = dict(disable=not progress, total=read, unit="line", mininterval=1.0)
    src_tok = list(tqdm(moses_tokenize_lines(src_lines, src_lang, lowercase, workers), desc=f"tokenise {src_lang}", **bar))
    tgt_tok = list(tqdm(moses_tokenize_lines(tgt_lines, tgt_lang, lowercase, workers), desc=f"tokenise {tgt_lang}", **bar))
    pairs = []
    for lineno, s, t in zip(linenos, src_tok, tgt_tok):
        if not s or not t:
            issues.skip(src_path, lineno, "empty after tokenisation")
            continue
        if SEPARATOR in s or SEPARATOR in t:
            issues.skip(src_path, lineno, "contains fast_align's '|||' separator")
            continue
        pairs.append((s, t))
    if not pairs:
        # a lexicon from nothing would make a run without code-switching that looks like one with it
        why = f"all {read} pair(s) read were skipped ({issues.total} skipped lines in all)" if read or issues.total \
            else "the files are empty"
        raise InputFormatError(src_path, 0, f"no usable sentence pairs in {src_path} ||| {tgt_path}: {why}")
    fw, bw = train_ibm1(pairs, iterations=iterations, threads=threads, aligner=aligner)
    fwd = table_to_lexicon(fw, src_lang, tgt_lang, min_prob=min_prob)
    bwd = table_to_lexicon(bw, tgt_lang, src_lang, min_prob=min_prob)
    stats = dict(
        pairs_read=read, pairs_used=len(pairs), pairs_skipped=issues.total,
        seconds=round(time.time() - t0, 2), iterations=iterations, aligner=aligner,
    )
    return fwd, bwd, stats
