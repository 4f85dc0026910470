"""Robust text input and atomic output.

Every reader here reports bad input by file and line: either a hard :class:`InputFormatError`
(``path:line: reason``) or a counted, reported skip through :class:`LineIssues`. Text is read as
``utf-8-sig``: a byte-order mark at the start of a file (Windows editors, Excel exports) is an
encoding marker, never data (it would otherwise become part of the first token). Every writer
writes to a temporary name next to the destination and renames it into place only when the
output is complete, so an interrupted or failed step never leaves a partial file that a later
(idempotent) step would mistake for a finished one.
"""
import contextlib
import errno
import gzip
import hashlib
import os
import re
import shutil
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import IO, Iterator, Optional, Tuple, Union

PathLike = Union[str, os.PathLike]


class InputFormatError(ValueError):
    """Bad input, located by file and (1-based) line number.

    Args:
        path: the offending file.
        lineno: 1-based line number (0 when the problem is not tied to one line).
        reason: what is wrong, in words.
    """

    def __init__(self, path: PathLike, lineno: int, reason: str):
        self.path = str(path)
        self.lineno = int(lineno)
        self.reason = reason
        where = f"{self.path}:{self.lineno}" if self.lineno > 0 else self.path
        super().__init__(f"{where}: {reason}")


class LineIssues:
    """Counts input lines skipped for a reason, remembers where, and reports them.

    In strict mode the first problem raises :class:`InputFormatError` instead of being skipped.

    Args:
        name: what is being read (used in the summary).
        strict: raise on the first problem instead of skipping.
        max_examples: how many ``path:line: reason`` locations to keep for the report.
        action: the summary's verb (``"skipped"``; ``"normalised"`` for lines repaired and kept, e.g.
            a trailing tab).
    """

    def __init__(self, name: str = "input", strict: bool = False, max_examples: int = 5, action: str = "skipped"):
        self.name = name
        self.strict = strict
        self.action = action
        self.max_examples = max_examples
        self.counts: Counter = Counter()
        self.examples = []

    def skip(self, path: PathLike, lineno: int, reason: str) -> None:
        """Record one skipped line (or raise in strict mode).

        Raises:
            InputFormatError: in strict mode.
        """
        if self.strict:
            raise InputFormatError(path, lineno, reason)
        self.counts[reason.split(" (")[0]] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{path}:{lineno}: {reason}")

    @property
    def total(self) -> int:
        """Number of skipped lines."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """One-paragraph report: totals per reason and the first locations."""
        if not self.counts:
            return f"{self.name}: no lines {self.action}"
        parts = ", ".join(f"{n} {r}" for r, n in self.counts.most_common())
        lines = [f"{self.name}: {self.action} {self.total} line(s): {parts}"]
        lines += [f"  e.g. {e}" for e in self.examples]
        return "\n".join(lines)

    def report(self, stream: Optional[IO] = None) -> None:
        """Print :meth:`summary` if anything was skipped (default: to the current ``sys.stderr``)."""
        if self.counts:
            print(self.summary(), file=stream if stream is not None else sys.stderr)


class DiskFullError(OSError):
    """Writing a file failed because its file system is full (``ENOSPC``); names the file.

    numpy's ``tofile`` (used by ``np.save``) reports a full disk only as ``"N requested and M
    written"`` and Python's ``write`` as ``[Errno 28]`` without a file name; the atomic writers of
    this module (and csfair's checkpoint saving, ``user_dir/checkpoint_loading.py``) turn both into
    this error, whose message gives the destination, the cause, the free space left and the fix.

    Args:
        path: the destination that could not be written (nothing there was replaced).
        detail: what failed (the original error's text).
        free: bytes free on the destination's file system after the failure (None: unknown).
    """

    def __init__(self, path: PathLike, detail: str, free: Optional[int] = None):
        super().__init__(errno.ENOSPC, "disk full (ENOSPC)", str(path))
        self.path, self.detail, self.free = str(path), detail, free

    def __str__(self) -> str:
        free = f"{self.free:,} bytes free" if self.free is not None else "free space unknown"
        return (f"{self.path}: disk full (ENOSPC) while writing it ({self.detail}; {free} on its file system); "
                "nothing there was replaced: free some space (or write elsewhere) and rerun")


#: numpy's ``ndarray.tofile`` short-write message (no errno): ``"56949 requested and 26096 written"``
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def free_bytes(path: PathLike) -> Optional[int]:
    """Bytes available on the file system holding ``path`` (or its nearest existing parent); None if unknown."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_disk_full(exc: BaseException, path: Optional[PathLike] = None, slack: int = 1 << 20) -> bool:
    """Whether a write error (or one in its ``__cause__``/``__context__`` chain) means a full disk.

    True for ``ENOSPC``/``EDQUOT`` errors, and for short writes that carry no errno (numpy's
    ``"N requested and M written"``, PyTorch's ``PytorchStreamWriter ... file write failed`` /
    ``unexpected pos``) when ``path``'s file system has less than ``slack`` bytes free.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        text = str(exc)
        if path is not None and (_SHORT_WRITE.search(text) or "file write failed" in text or "unexpected pos" in text):
            free = free_bytes(path)
            if free is not None and free < slack:
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def _gzip_reason(exc: BaseException, lines_read: int) -> Optional[str]:
    """A one-line cause and fix for a failed read of a ``.gz`` file (None: not a gzip problem)."""
    if isinstance(exc, EOFError):
        return (f"truncated gzip file: the compressed stream ends after {lines_read} line(s), before its end "
                "marker (an interrupted download or copy); fetch or copy the file again")
    if isinstance(exc, gzip.BadGzipFile):
        return f"not a gzip file although its name ends in .gz ({exc}); decompress or rename it"
    if isinstance(exc, zlib.error):
        return f"corrupted gzip data after {lines_read} line(s) ({exc}); fetch or copy the file again"
    return None


_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class _CheckedGzip:
    """A ``.gz`` file read as bytes whose gzip/zlib failures become :class:`InputFormatError`.

    Python says only ``EOFError: Compressed file ended before the end-of-stream marker was
    reached`` for a truncated file; this reader names the file and the first line it could not
    read (it counts the lines it has returned). Supports what the readers of this module use:
    iteration over lines, ``readline``, ``read`` and the context manager protocol.
    """

    def __init__(self, path: PathLike):
        self.path = path
        self.lines = 0
        self._fh = gzip.open(path, "rb")

    def _fail(self, exc: BaseException):
        raise InputFormatError(self.path, self.lines + 1, _gzip_reason(exc, self.lines)) from exc

    def readline(self, size: int = -1) -> bytes:
        try:
            line = self._fh.readline(size)
        except _GZIP_ERRORS as e:
            self._fail(e)
        self.lines += line.endswith(b"\n")
        return line

    def read(self, size: int = -1) -> bytes:
        try:
            block = self._fh.read(size)
        except _GZIP_ERRORS as e:
            self._fail(e)
        self.lines += block.count(b"\n")
        return block

    def __iter__(self):
        # iterate in C (gzip's buffered reader); only a failure costs Python work
        try:
            for line in self._fh:
                self.lines += 1
                yield line
        except _GZIP_ERRORS as e:
            self._fail(e)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_binary(path: PathLike) -> IO[bytes]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a text file")
    if path.suffix == ".gz":
        return _CheckedGzip(path)  # a truncated or corrupted file names itself and the line
    return open(path, "rb")


BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark


def decode_line(raw: bytes) -> Tuple[Optional[str], Optional[str]]:
    """Decode one raw line (without its newline) as strict UTF-8.

    Returns:
        (text, None) on success, (None, reason) for a line that must be skipped.
    """
    if b"\x00" in raw:
        return None, "NUL byte in line"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8 (byte {e.start})"


def iter_lines(
    path: PathLike,
    issues: Optional[LineIssues] = None,
    skip_empty: bool = True,
    max_chars: Optional[int] = None,
) -> Iterator[Tuple[int, str]]:
    """Yield ``(lineno, text)`` for each usable line of a text file (``.gz`` allowed).

    Line endings ``\\n`` and ``\\r\\n`` are removed, and a UTF-8 byte-order mark at the start of the
    file (``utf-8-sig``). Lines with invalid UTF-8 or NUL bytes,
    empty lines (if ``skip_empty``) and lines over ``max_chars`` characters are skipped and
    recorded in ``issues``.

    Args:
        path: the file.
        issues: collector for skipped lines (a fresh non-strict one if None).
        skip_empty: skip lines that are empty or whitespace only.
        max_chars: skip lines longer than this many characters (None: no limit).

    Raises:
        FileNotFoundError: the file does not exist.
        InputFormatError: a bad line when ``issues`` is strict; a truncated or corrupted ``.gz`` file.
    """
    issues = issues if issues is not None else LineIssues(str(path))
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            text, why = decode_line(raw)
            if text is None:
                issues.skip(path, lineno, why)
                continue
            if skip_empty and not text.strip():
                issues.skip(path, lineno, "empty line")
                continue
            if max_chars is not None and len(text) > max_chars:
                issues.skip(path, lineno, f"line longer than {max_chars} characters ({len(text)})")
                continue
            yield lineno, text


def iter_parallel(
    src_path: PathLike,
    tgt_path: PathLike,
    issues: Optional[LineIssues] = None,
    max_chars: Optional[int] = None,
) -> Iterator[Tuple[int, str, str]]:
    """Yield ``(lineno, src, tgt)`` for line-aligned parallel files.

    A pair is skipped (and recorded) when either side is empty, not valid UTF-8, contains a
    NUL byte or is longer than ``max_chars``. A byte-order mark at the start of either file is removed.

    Raises:
        FileNotFoundError: a file does not exist.
        InputFormatError: the files have different numbers of lines (names the file that ends
            first and the first line number missing from it), a truncated or corrupted ``.gz``
            file, or a bad line in strict mode.
    """
    issues = issues if issues is not None else LineIssues(f"{src_path} ||| {tgt_path}")
    with _open_binary(src_path) as fs, _open_binary(tgt_path) as ft:
        lineno = 0
        while True:
            rs, rt = fs.readline(), ft.readline()
            if not rs and not rt:
                return
            lineno += 1
            if lineno == 1:
                rs, rt = (r[len(BOM):] if r.startswith(BOM) else r for r in (rs, rt))
            if not rs or not rt:
                short, long_ = (src_path, tgt_path) if not rs else (tgt_path, src_path)
                raise InputFormatError(
                    short, lineno,
                    f"parallel files differ in length: {short} ends after {lineno - 1} lines "
                    f"but {long_} continues",
                )
            s, why_s = decode_line(rs.rstrip(b"\n").rstrip(b"\r"))
            t, why_t = decode_line(rt.rstrip(b"\n").rstrip(b"\r"))
            if s is None or t is None:
                bad, why = (src_path, why_s) if s is None else (tgt_path, why_t)
                issues.skip(bad, lineno, why)
                continue
            if not s.strip() or not t.strip():
                issues.skip(src_path if not s.strip() else tgt_path, lineno, "empty line")
                continue
            if max_chars is not None and max(len(s), len(t)) > max_chars:
                issues.skip(src_path, lineno, f"line longer than {max_chars} characters")
                continue
            yield lineno, s, t


def read_text(path: PathLike) -> str:
    """A whole (``.gz``) text file as ``utf-8-sig`` (a leading byte-order mark removed), newlines kept.

    Raises:
        FileNotFoundError, IsADirectoryError: as :func:`iter_lines`.
        InputFormatError: invalid UTF-8 (the line and byte of the first bad byte).
    """
    with _open_binary(path) as fh:
        data = fh.read()
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise InputFormatError(path, data.count(b"\n", 0, e.start) + 1,
                               f"invalid UTF-8 (byte {e.start - line_start})") from None


def read_toml(path: PathLike) -> dict:
    """A TOML file as a dict, read as every text file is (``utf-8-sig``: a byte-order mark is no error).

    Raises:
        FileNotFoundError: no such file.
        InputFormatError: not valid TOML, at the line ``tomllib`` names.
    """
    import tomllib

    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise InputFormatError(path, int(m.group(1)) if m else 0, f"not valid TOML: {e}") from None


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _raise_if_disk_full(exc: BaseException, dest: Path, tmp: Path) -> None:
    """Re-raise a write failure that means a full disk as :class:`DiskFullError` naming ``dest``.

    Call it before removing ``tmp``: the free space is measured while the partial file still holds
    its bytes, so it says how full the disk really was.
    """
    if isinstance(exc, OSError | RuntimeError) and not isinstance(exc, DiskFullError) and is_disk_full(exc, tmp):
        raise DiskFullError(dest, f"{type(exc).__name__}: {exc}", free_bytes(tmp)) from exc


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: Optional[str] = "utf-8"):
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: final destination.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (ignored for binary mode).

    Raises:
        DiskFullError: the file system filled up while writing (names ``path``; ``path`` is untouched).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
    try:
        try:
            with open(tmp, mode, **kwargs) as fh:
                yield fh
            os.replace(tmp, path)
        except BaseException as e:
            _raise_if_disk_full(e, path, tmp)
            raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: PathLike):
    """Yield a temporary sibling directory; move it onto ``path`` when the block succeeds.

    An existing ``path`` is replaced only after the new directory is complete. On an exception
    the temporary directory is removed and ``path`` is untouched.

    Raises:
        DiskFullError: the file system filled up while the block wrote into the directory (names
            ``path``; ``path`` is untouched).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        try:
            yield tmp
        except BaseException as e:
            _raise_if_disk_full(e, path, tmp)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()
