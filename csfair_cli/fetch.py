"""Resumable, checksummed HTTP downloads for ``csfair-data`` (standard library only: urllib).

A download goes to a stable partial name next to its destination (``.NAME.part``); an interrupted
transfer (dropped connection, timeout, Ctrl-C) leaves that file behind and the next attempt asks
the server for the rest with an HTTP ``Range: bytes=N-`` request. A server that ignores the range
(answers 200) is read again from the start. Only a complete file whose SHA-256 matches the pinned
checksum (when one is known) is renamed onto the destination, so a destination that exists is
always a whole file.
"""
import errno
import hashlib
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from csfair.io import PathLike

#: what ``csfair-data`` sends as its User-Agent (some hosts refuse urllib's default)
USER_AGENT = "csfair-data (+https://github.com/; urllib)"


class SourceUnreachable(OSError):
    """A source URL could not be fetched (network error, HTTP error, interrupted transfer).

    The message names the URL, the reason, and what to do.
    """


class ChecksumMismatch(ValueError):
    """A downloaded file's SHA-256 differs from the pinned checksum (the file is removed)."""


@dataclass
class FetchResult:
    """What :func:`fetch` did.

    Attributes:
        path: the destination.
        url: the URL actually read (the mirror's, when one is used).
        bytes: the file's size in bytes.
        sha256: its hex SHA-256.
        resumed_from: byte offset the transfer resumed from (0: from the start).
    """

    path: Path
    url: str
    bytes: int
    sha256: str
    resumed_from: int


def mirrored(url: str, mirror: Optional[str]) -> str:
    """The URL to read: ``url`` itself, or ``MIRROR/HOST/PATH`` (``wget -x`` layout; query dropped).

    Args:
        url: the canonical source URL (``https://HOST/PATH[?QUERY]``).
        mirror: a base URL (``http://...``, ``file:///...``) or None/empty for no mirror.
    """
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def part_path(dest: PathLike) -> Path:
    """The stable partial-download name of ``dest`` (``.NAME.part`` in the same folder)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


def _advice(url: str, dest: Path) -> str:
    return (f"check the network (or proxy: https_proxy), or download {url} by hand to {dest} "
            f"(the next run uses it, checking a pinned SHA-256), or point --mirror / CSFAIR_DATA_MIRROR "
            f"at a copy laid out as MIRROR/HOST/PATH")


def _sha256_prefix(path: Path) -> "hashlib._Hash":
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h


def fetch(url: str, dest: PathLike, sha256: Optional[str] = None, mirror: Optional[str] = None,
          timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
          progress: Optional[Callable[[int, Optional[int]], None]] = None) -> FetchResult:
    """Download ``url`` to ``dest``, resuming a partial download, checking a pinned SHA-256.

    Args:
        url: canonical source URL (http, https or file).
        dest: destination path (its folder is created).
        sha256: pinned hex SHA-256 of the file, or None when unknown (then only recorded).
        mirror: base URL of a mirror (see :func:`mirrored`).
        timeout: seconds without data before a read fails (the partial file is kept).
        retries: further attempts after a failed or interrupted transfer, each resuming.
        backoff: seconds to wait before the first retry (doubled each time).
        progress: called as ``progress(bytes_so_far, total_or_None)`` after each block.

    Returns:
        FetchResult.

    Raises:
        SourceUnreachable: the URL could not be read completely after all attempts (message: URL,
            reason, what to do; a partial file is kept for the next run to resume).
        ChecksumMismatch: the complete file's SHA-256 differs from ``sha256`` (file removed).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = mirrored(url, mirror)
    part = part_path(dest)
    last_error = None
    start = part.stat().st_size if part.exists() else 0
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            start = _transfer(src, part, timeout, progress)
            last_error = None
            break
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code not in (408, 429):
                what = "not found (the source moved? update csfair_cli/data_sources.toml)" if e.code == 404 \
                    else f"HTTP {e.code} {e.reason}"
                raise SourceUnreachable(f"{src}: {what}; {_advice(url, dest)}") from None
            last_error = f"HTTP {e.code} {e.reason}"
        except (PermissionError, IsADirectoryError, NotADirectoryError):
            raise  # the destination cannot be written: not a source problem
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise
            # http.client.IncompleteRead is an HTTPException, handled below
            last_error = getattr(e, "reason", None) or e
        except Exception as e:  # http.client.IncompleteRead / RemoteDisconnected and friends
            if type(e).__module__ != "http.client":
                raise
            last_error = f"transfer interrupted ({type(e).__name__})"
    if last_error is not None:
        have = part.stat().st_size if part.exists() else 0
        keep = f" ({have} bytes kept in {part}; running again resumes)" if have else ""
        raise SourceUnreachable(f"{src}: {last_error}{keep}; {_advice(url, dest)}")
    digest = _sha256_prefix(part).hexdigest()
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise ChecksumMismatch(
            f"{src}: SHA-256 {digest} differs from the pinned {sha256} (csfair_cli/data_sources.toml); "
            f"the download was removed. The source changed or the transfer was corrupted: run again, "
            f"or if the source legitimately changed, update the pin")
    size = part.stat().st_size
    os.replace(part, dest)
    return FetchResult(dest, src, size, digest, start)


def _transfer(src: str, part: Path, timeout: float, progress) -> int:
    """One attempt: append the missing bytes of ``src`` to ``part``. Returns the resume offset."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(src, headers={"User-Agent": USER_AGENT})
    if have and not src.startswith("file:"):
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # Range not satisfiable: either the partial file is already complete or it is longer
            # than the source (a different file): decide from Content-Range "bytes */TOTAL".
            total = (e.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == have:
                return have
            part.unlink()
            return _transfer(src, part, timeout, progress)
        raise
    with resp:
        status = getattr(resp, "status", 200)
        if status == 206:
            first = (resp.headers.get("Content-Range") or "").split(" ")[-1].split("-")[0]
            if not first.isdigit() or int(first) != have:
                raise ConnectionError(f"server resumed at byte {first}, expected {have}")
            mode, offset = "ab", have
        else:  # 200: the server sends the whole file (no range support, or no partial file)
            mode, offset = "wb", 0
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        done = offset
        with open(part, mode) as fh:
            while True:
                block = resp.read(1 << 16)
                if not block:
                    break
                fh.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        if total is not None and done < total:
            raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return offset
