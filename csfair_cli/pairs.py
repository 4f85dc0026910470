"""The paper's eight language pairs, one declarative table (``csfair_cli/pairs.toml``), and its queries.

``scripts/recipes/pair.sh`` reads its rows through this module (bash cannot read TOML), ``csfair-data``
takes its pair names from it, and ``hydra`` prints the overrides that point the pretraining configs
(``configs/pretrain/*.yaml``) at a pair::

    python -m csfair_cli.pairs names                  # en-fr en-de en-pt en-tr en-hu en-fi en-sw en-xh
    python -m csfair_cli.pairs row en-xh              # the recipe's variables for the pair (bash assignments)
    python -m csfair_cli.pairs hydra en-de            # task.data=data-bin/en-de task.langs='en,de' checkpoint...
    fairseq-hydra-train --config-dir configs/pretrain --config-name demo $(python -m csfair_cli.pairs hydra en-de)

``row`` exits 1 (printing nothing) for a pair that is not in the table; a table that is not valid
exits 2 naming the file and the entry (:class:`csfair.io.InputFormatError`).
"""
import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from csfair.io import InputFormatError, read_toml

#: the table shipped with the package
PAIRS_FILE = Path(__file__).with_name("pairs.toml")
LEXICONS = ("ibm1", "muse")
EVAL_SETS = ("xnli", "afrixnli", "panx")


@dataclass(frozen=True)
class Pair:
    """One row of the table (see the header of ``pairs.toml`` for each field)."""

    name: str
    src: str
    tgt: str
    language: str
    lexicons: Tuple[str, ...]
    eval: Tuple[str, ...]
    iso: bool
    staged: Optional[str] = None  # "PARALLEL_PREFIX:MONO_DIR"
    ud: Optional[str] = None  # "UD_NAME:prefix"
    src_ud: Optional[str] = None


def _check(cond: bool, path: Path, where: str, what: str) -> None:
    if not cond:
        raise InputFormatError(path, 0, f"{where}: {what}")


def load_pairs(path: Optional[Path] = None) -> Dict[str, Pair]:
    """The table, in file order (the paper's): ``{"en-fr": Pair(...), ...}``.

    Raises:
        FileNotFoundError: no such file.
        InputFormatError: not valid TOML, or an entry with a missing or wrong field (names the entry).
    """
    path = Path(path or PAIRS_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pairs table not found")
    data = read_toml(path)
    source = data.get("source") or {}
    _check(isinstance(source.get("lang"), str), path, "[source]", "needs lang = \"en\"")
    src = source["lang"]
    rows = data.get("pairs")
    _check(isinstance(rows, dict) and bool(rows), path, "[pairs]", "no [pairs.\"en-XX\"] tables")
    out = {}
    for name, row in rows.items():
        where = f"[pairs.{name}]"
        tgt = row.get("tgt")
        _check(name == f"{src}-{tgt}", path, where, f"tgt = {tgt!r} does not match the pair's name ({src}-XX)")
        _check(isinstance(row.get("language"), str), path, where, "needs language = \"English name\"")
        lex, ev = row.get("lexicons"), row.get("eval")
        _check(isinstance(lex, list) and "ibm1" in lex and set(lex) <= set(LEXICONS), path, where,
               f"lexicons must list ibm1 and may add muse, not {lex!r}")
        _check(isinstance(ev, list) and bool(ev) and set(ev) <= set(EVAL_SETS), path, where,
               f"eval must list some of {', '.join(EVAL_SETS)}, not {ev!r}")
        _check(isinstance(row.get("iso"), bool), path, where, "needs iso = true or false")
        staged = row.get("staged")
        _check(staged is None or (isinstance(staged, str) and staged.count(":") == 1), path, where,
               f"staged must be \"PARALLEL_PREFIX:MONO_DIR\", not {staged!r}")
        for key in ("ud",):
            _check(row.get(key) is None or (isinstance(row[key], str) and row[key].count(":") == 1), path, where,
                   f"{key} must be \"UD_NAME:prefix\", not {row.get(key)!r}")
        unknown = set(row) - {"tgt", "language", "lexicons", "eval", "iso", "staged", "ud"}
        _check(not unknown, path, where, f"unknown field(s) {', '.join(sorted(unknown))}")
        out[name] = Pair(name=name, src=src, tgt=tgt, language=row["language"], lexicons=tuple(lex), eval=tuple(ev),
                         iso=row["iso"], staged=staged, ud=row.get("ud"), src_ud=source.get("ud"))
    return out


def shell_row(pair: Pair) -> str:
    """The recipe's variables for ``pair`` as bash assignments (``SRC TGT NAME STAGED LEX EVAL ISO UD SRC_UD``;
    ``-`` for an absent value, as the recipe spells it)."""
    values = {"SRC": pair.src, "TGT": pair.tgt, "NAME": pair.language, "STAGED": pair.staged or "-",
              "LEX": " ".join(pair.lexicons), "EVAL": " ".join(pair.eval), "ISO": "yes" if pair.iso else "no",
              "UD": pair.ud or "-", "SRC_UD": pair.src_ud or "-"}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def hydra_overrides(pair: Pair, run: str = "ibm1", data_bin: str = "data-bin", save_root: str = "checkpoints") -> List[str]:
    """Overrides of ``configs/pretrain/*.yaml`` for ``pair``: its data-bin, languages and run folder, the
    recipe's defaults (``data-bin/PAIR``, ``checkpoints/PAIR/RUN``). The languages are quoted (hydra's
    override grammar reads an unquoted ``en,de`` as a list or a sweep)."""
    return [f"task.data={data_bin}/{pair.name}", f"task.langs='{pair.src},{pair.tgt}'",
            f"checkpoint.save_dir={save_root}/{pair.name}/{run}"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csfair_cli.pairs", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("names", help="the pairs, space-separated, in the paper's order")
    s = sub.add_parser("row", help="a pair's row as bash assignments (exit 1: no such pair)")
    s.add_argument("pair")
    s = sub.add_parser("hydra", help="overrides of configs/pretrain/*.yaml for a pair")
    s.add_argument("pair")
    s.add_argument("--run", default="ibm1", help="run folder under checkpoints/PAIR (default ibm1)")
    s.add_argument("--data-bin", default="data-bin")
    s.add_argument("--save-root", default="checkpoints")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pairs = load_pairs()
    except (InputFormatError, FileNotFoundError) as e:
        print(f"python -m csfair_cli.pairs: error: {e}", file=sys.stderr)
        return 2
    if args.cmd == "names":
        print(" ".join(pairs))
        return 0
    if args.pair not in pairs:
        if args.cmd == "hydra":
            print(f"python -m csfair_cli.pairs: error: unknown pair {args.pair!r} (one of: {' '.join(pairs)})",
                  file=sys.stderr)
        return 1
    pair = pairs[args.pair]
    if args.cmd == "row":
        print(shell_row(pair))
    else:
        print(" ".join(hydra_overrides(pair, args.run, args.data_bin, args.save_root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
