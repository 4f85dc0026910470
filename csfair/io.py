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
import gzip
import hashlib
import os
import shutil
import sys
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


def _open_binary(path: PathLike) -> IO[bytes]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a text file")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
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
        InputFormatError: a bad line when ``issues`` is strict.
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
            first and the first line number missing from it), or a bad line in strict mode.
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


def count_lines(path: PathLike) -> int:
    """Number of newline-terminated lines (plus a last unterminated one) of a (gz) file."""
    n, last = 0, b"\n"
    with _open_binary(path) as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                break
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: Optional[str] = "utf-8"):
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: final destination.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (ignored for binary mode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: PathLike):
    """Yield a temporary sibling directory; move it onto ``path`` when the block succeeds.

    An existing ``path`` is replaced only after the new directory is complete. On an exception
    the temporary directory is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
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
