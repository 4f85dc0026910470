"""On-disk format of substitution tables: one ``.npy`` file per array in a directory, plus
``meta.json``; written atomically, opened memory-mapped.

Storage: flat numpy arrays in CSR layout, one ``.npy`` file each in a directory, loaded with
``mmap_mode="r"`` so that DataLoader workers share one copy of the pages::

    key_hash        uint64 [n]      hash of each source word's token ids, sorted ascending
    key_offsets     int64  [n + 1]  source word e's tokens: key_tokens[key_offsets[e]:key_offsets[e+1]]
    key_tokens      int32  [K]
    cand_offsets    int64  [n + 1]  candidates of entry e: cand_offsets[e]:cand_offsets[e+1]
    cand_prob       float64[m]      raw p(candidate | source) (1/n for MUSE)
    cand_sampling   float64[m]      P(x_i) above, at the table's temperature
    cand_cdf        float64[m]      e + cumulative P within entry e: in (e, e + 1], last = e + 1
    cand_tok_offsets int64 [m + 1]  candidate c's tokens: cand_tokens[cand_tok_offsets[c]:...[c+1]]
    cand_tokens     int32  [T]
    source_words_utf8 uint8 [.]     the n source words, UTF-8, joined by newlines
    cand_words_utf8 uint8  [.]      the m candidate words, likewise (inspection and TSV export)
    meta.json       languages, filters, counts, checksums of the dictionary and of the arrays

``cand_cdf`` lets one ``np.searchsorted(cand_cdf, entries + u, side="right")`` draw a candidate
for any number of words at once (``u ~ U[0, 1)``).
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from csfair.io import PathLike, atomic_directory

FORMAT_VERSION = 1

#: The arrays of a table, in the order they are checksummed.
ARRAYS = (
    "key_hash", "key_offsets", "key_tokens", "cand_offsets", "cand_prob", "cand_sampling",
    "cand_cdf", "cand_tok_offsets", "cand_tokens", "source_words_utf8", "cand_words_utf8",
)


def array_checksum(arrays: Dict[str, np.ndarray]) -> str:
    """SHA-256 over all arrays (content, dtype and shape), independent of the directory."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(memoryview(a.reshape(-1)).cast("B"))  # the bytes in place (no copy of a memory-mapped array)
    return h.hexdigest()


class CorruptTableError(ValueError):
    """A substitution table whose arrays no longer match the checksum recorded when it was built."""


#: tables verified in this process: resolved directory -> (signature of its files, checksum)
_VERIFIED: Dict[str, Tuple[tuple, str]] = {}


def _signature(path: Path) -> tuple:
    """(name, size, mtime_ns, inode) of ``meta.json`` and every array file: a rewritten file changes it."""
    out = []
    for name in ("meta.json",) + tuple(f"{a}.npy" for a in ARRAYS):
        st = os.stat(path / name)
        out.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def verify_checksum(path: PathLike, arrays: Dict[str, np.ndarray], meta: dict) -> None:
    """Check the arrays of the table at ``path`` against ``meta["checksum"]``, once per process for
    the same files (cached by resolved path and each file's size, mtime and inode).

    Raises:
        CorruptTableError: the checksum differs (names the table and the array file changed last).
    """
    want = meta.get("checksum")
    if not want:
        return  # tables written before checksums existed: nothing to compare with
    path = Path(path)
    key = str(path.resolve())
    sig = _signature(path)
    if _VERIFIED.get(key) == (sig, want):
        return
    got = array_checksum(arrays)
    if got != want:
        newest = max(ARRAYS, key=lambda a: os.stat(path / f"{a}.npy").st_mtime_ns)
        raise CorruptTableError(
            f"{path}: substitution table is corrupted: its arrays' SHA-256 {got[:12]} is not the {want[:12]} "
            f"recorded in meta.json when it was built (last changed: {newest}.npy); rebuild it with "
            "csfair-lexicon table (the recipes rebuild a table whose directory is removed)"
        )
    _VERIFIED[key] = (sig, want)


def save_arrays(arrays: Dict[str, np.ndarray], meta: dict, path: PathLike) -> dict:
    """Write a table directory atomically (complete or not at all).

    Returns:
        the metadata as written (``meta`` plus the arrays' ``checksum``).
    """
    path = Path(path)
    meta = dict(meta, checksum=array_checksum(arrays))
    with atomic_directory(path) as tmp:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arrays[name]), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def load_arrays(path: PathLike, mmap: bool = True, verify: bool = True) -> Tuple[Dict[str, np.ndarray], dict]:
    """Open a table directory; arrays are memory-mapped read-only when ``mmap``.

    Args:
        path: the table directory.
        mmap: memory-map the arrays (read-only) instead of reading them.
        verify: check the arrays against the checksum in ``meta.json`` (:func:`verify_checksum`:
            once per process for unchanged files; one SHA-256 pass over the arrays).

    Returns:
        (arrays, meta).

    Raises:
        FileNotFoundError: the directory or one of its files is missing (named).
        ValueError: unsupported format version.
        CorruptTableError: ``verify`` and the arrays do not match their checksum.
    """
    path = Path(path)
    meta_path = path / "meta.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: substitution table not found")
    if not meta_path.exists():
        raise FileNotFoundError(f"{path}: not a csfair substitution table (no meta.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: table format {meta.get('format_version')} is not {FORMAT_VERSION}")
    arrays = {}
    for name in ARRAYS:
        f = path / f"{name}.npy"
        if not f.exists():
            raise FileNotFoundError(f"{f}: missing array of substitution table {path}")
        arrays[name] = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
    if verify:
        verify_checksum(path, arrays, meta)
    return arrays, meta


def pack_words(words: Sequence[str]) -> np.ndarray:
    """Words as one uint8 array of newline-joined UTF-8."""
    return np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8).copy()


def unpack_words(blob: np.ndarray) -> List[str]:
    text = bytes(np.asarray(blob)).decode("utf-8")
    return text.split("\n") if text else []
