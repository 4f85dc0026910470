"""Where csfair finds the shared real datasets.

The project never ships data: it reads the layout documented in ``$CSFAIR_DATA/README.md``
(parallel text, MUSE dictionaries, monolingual text, stopwords, ...).
"""
import os
from pathlib import Path

#: Repository root (the folder holding ``csfair/``, ``user_dir/`` and ``scripts/``).
REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The real-data root: ``$CSFAIR_DATA`` if set, else ``<repo>/../shared/data``.

    Returns:
        Path: an absolute path (it may not exist; :func:`data_file` checks).
    """
    env = os.environ.get("CSFAIR_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT / ".." / "shared" / "data").resolve()


def data_file(relative: str) -> Path:
    """Resolve a path inside the data root and check that it exists.

    Args:
        relative: a path relative to the data root, e.g. ``"dict/muse/en-fr.txt"``.

    Returns:
        Path: the absolute path.

    Raises:
        FileNotFoundError: naming the missing path and how the root was chosen.
    """
    path = data_root() / relative
    if not path.exists():
        how = "CSFAIR_DATA" if os.environ.get("CSFAIR_DATA") else "default ../shared/data (set CSFAIR_DATA)"
        raise FileNotFoundError(f"{path}: not found under the data root {data_root()} ({how})")
    return path


def find_upwards(start: str, name: str, levels: int) -> "str | None":
    """``start/name``, or ``name`` in one of ``start``'s ``levels - 1`` nearest parents (e.g. the
    vocabulary of a checkpoint copied with its data folder); None when none of them has it."""
    cur = os.path.abspath(start)
    for _ in range(levels):
        if os.path.exists(os.path.join(cur, name)):
            return os.path.join(cur, name)
        cur = os.path.dirname(cur)
    return None
