"""Folder locks: never two writers in one work/data-bin/run folder, and no stale leftovers.

A lock is ``fcntl.flock`` on ``FOLDER/.csfair-lock``. flock locks belong to the open file
description, not to a process: a shell opens the file once (``exec 9<>FOLDER/.csfair-lock``), this
module locks that descriptor (``python -m csfair.locks acquire --fd 9 ...``), and the lock is held
until the shell *and every child that inherited the descriptor* have exited (a recipe killed while
its ``fairseq-train`` still runs keeps the folder locked, as it should). The kernel releases it on
any exit, kill -9 included: there is no stale lock to clean up by hand.

* ``exclusive``: the one writer (a recipe's data steps, a training run into its folder);
* ``shared``: readers that must not see a writer (training runs reading a finished data-bin).

Who holds a lock is written into the lock file, one JSON line per holder (pid, host, command,
since, mode): an exclusive holder replaces the file's content, a shared one appends its line. A
refused lock names the holders still alive (same host) or all of them (another host).

On taking an exclusive lock, the temporary files of killed steps (``.NAME.tmp-PID`` and
``.NAME.old-PID`` of :func:`csfair.io.atomic_write`/``atomic_directory`` whose process is gone,
``checkpoint*.pt.tmp`` of fairseq, ``*.tmp-PID`` of the recipes' shell redirections, and the
``.NAME.tmp`` of sentencepiece and fairseq-preprocess) are removed and listed.
"""
import argparse
import datetime
import fcntl
import json
import os
import re
import shutil
import socket
import sys
from pathlib import Path
from typing import List, Optional

LOCK_NAME = ".csfair-lock"
#: temporary names whose PID says who wrote them (atomic_write, atomic_directory, recipe redirections)
_PID_TMP = re.compile(r"(?:^\..+\.(?:tmp|old)-|\.tmp-)(\d+)$")
#: fairseq's temporary checkpoint (written, then renamed: a leftover is a killed save)
_CKPT_TMP = re.compile(r"^checkpoint.*\.pt\.tmp$")
#: temporaries without a PID (sentencepiece's ``.spm.tmp.model``, the recipe's ``.en.tmp`` preprocess folder)
_NOPID_TMP = re.compile(r"^\..+\.tmp(?:\.model|\.vocab)?$")


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock (the message names it)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holders(lock_path: os.PathLike) -> List[dict]:
    """The holder records in a lock file (unreadable lines are left out)."""
    out = []
    try:
        text = Path(lock_path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def describe_holders(lock_path: os.PathLike) -> str:
    """``pid 123 on host (command) since 2025-01-01 12:00:00, exclusive; ...`` for the holders still alive."""
    host = socket.gethostname()
    recs = holders(lock_path)
    live = [r for r in recs if r.get("host") != host or _alive(int(r.get("pid", 0)))]
    if not live and recs:
        # the recorded shell has exited: a child that inherited the lock (e.g. fairseq-train) runs on
        r = recs[-1]
        return (f"processes started by pid {r.get('pid')} on {r.get('host')} ({r.get('command')}, since "
                f"{r.get('since')}; that process has exited, a child of it still holds the lock)")
    if not live:
        return "another process (it has not written its name yet)"
    return "; ".join(f"pid {r.get('pid')} on {r.get('host')} ({r.get('command')}) since {r.get('since')}, "
                     f"{r.get('mode')}" for r in live)


def acquire(fd: int, folder: os.PathLike, mode: str = "exclusive", pid: Optional[int] = None,
            command: str = "", downgrade: bool = False) -> None:
    """Lock ``folder`` through the open descriptor ``fd`` of ``folder/.csfair-lock`` without waiting.

    Args:
        fd: a descriptor of the lock file opened read-write (it carries the lock).
        folder: the locked folder (for messages).
        mode: ``exclusive`` or ``shared``.
        pid: the process named as holder (default: this one; the recipes pass their shell's).
        command: what the holder runs (for messages).
        downgrade: ``fd`` holds the exclusive lock: turn it into a shared one (the holder record is
            rewritten first, while no one else can write the file).

    Raises:
        FolderBusy: another process holds the lock in a conflicting mode (names it: pid, host,
            command, since when).
        ValueError: unknown mode.
    """
    if mode not in ("exclusive", "shared"):
        raise ValueError(f"lock mode must be exclusive or shared, got {mode!r}")
    lock_path = Path(folder) / LOCK_NAME
    rec = json.dumps({"pid": pid or os.getpid(), "host": socket.gethostname(), "command": command, "mode": mode,
                      "since": datetime.datetime.now().isoformat(sep=" ", timespec="seconds")})
    if downgrade:
        if mode != "shared":
            raise ValueError("downgrade goes from exclusive to shared")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (rec + "\n").encode("utf-8"), 0)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FolderBusy(f"{folder} is in use by {describe_holders(lock_path)}: two runs must not write one "
                         "folder; wait for it, or use another --data-bin/--work/--run") from None
    if mode == "exclusive":
        os.ftruncate(fd, 0)
        os.pwrite(fd, (rec + "\n").encode("utf-8"), 0)
    else:
        with open(lock_path, "a", encoding="utf-8") as fh:
            fh.write(rec + "\n")


def clean_stale(folder: os.PathLike, recursive: bool = True) -> List[str]:
    """Remove the temporary files and directories that killed steps left in ``folder``.

    Only call it while holding the folder's exclusive lock: then no other writer is in it. A
    ``.tmp-PID``/``.old-PID`` name is removed only when process PID is gone (on this host).

    Returns:
        the removed paths.
    """
    removed = []
    folder = Path(folder)
    walker = os.walk(folder) if recursive else [(str(folder), [d.name for d in folder.iterdir() if d.is_dir()],
                                                  [f.name for f in folder.iterdir() if not f.is_dir()])]
    for root, dirs, files in walker:
        for name in list(dirs) + list(files):
            m = _PID_TMP.search(name)
            stale = ((m is not None and not _alive(int(m.group(1)))) or bool(_NOPID_TMP.match(name))
                     or (name in files and bool(_CKPT_TMP.match(name))))
            if not stale:
                continue
            path = Path(root) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                if name in dirs:
                    dirs.remove(name)
            else:
                path.unlink(missing_ok=True)
            removed.append(str(path))
    return removed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m csfair.locks", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("acquire", help="lock a folder through an inherited descriptor of FOLDER/.csfair-lock")
    s.add_argument("--fd", type=int, required=True, help="descriptor of FOLDER/.csfair-lock, opened read-write")
    s.add_argument("--dir", required=True, help="the folder")
    s.add_argument("--mode", default="exclusive", choices=("exclusive", "shared"))
    s.add_argument("--pid", type=int, default=None, help="holder to record (default: the parent process)")
    s.add_argument("--command", default="", help="what the holder runs (recorded for messages)")
    s.add_argument("--clean", action="store_true", help="with exclusive: remove the leftovers of killed steps")
    s.add_argument("--downgrade", action="store_true", help="FD holds the exclusive lock: make it shared")
    args = p.parse_args(argv)
    try:
        acquire(args.fd, args.dir, args.mode, args.pid or os.getppid(), args.command, args.downgrade)
    except FolderBusy as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    if args.clean and args.mode == "exclusive":
        removed = clean_stale(args.dir)
        if removed:
            print(f"   removed {len(removed)} leftover(s) of killed steps in {args.dir}: "
                  + ", ".join(os.path.relpath(r, args.dir) for r in removed[:8]) + (" ..." if len(removed) > 8 else ""))


if __name__ == "__main__":
    main()
