"""Multi-seed results: JSON lines per run, aggregated into tables of mean ± std.

One record per (model, task, seed, language, split)::

    {"model": "ibm1", "task": "pos", "lang": "fr", "split": "test", "seed": 2,
     "metrics": {"accuracy": 0.61, ...}, "n": 1000, "lr": 5e-05, "epochs": 3, ...}

:func:`aggregate` turns them into the shape of Visser et al. (2025), Tables 4 and 5: rows are
languages, columns are models, cells ``mean ± std`` over seeds.
"""
import csv
import io
import json
import os
from typing import Dict, Iterable, List, Optional, Sequence

from csfair.io import PathLike
from csfair.evaluation.metrics import mean_std


def append_result(path: PathLike, record: dict) -> None:
    """Append one JSON line (flushed and fsynced: a crash never leaves half a line behind it)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def load_results(path: PathLike) -> List[dict]:
    """All complete records of a JSON-lines file (a truncated last line is ignored)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def aggregate(
    records: Iterable[dict],
    task: str,
    metric: str,
    split: str = "test",
    models: Optional[Sequence[str]] = None,
    langs: Optional[Sequence[str]] = None,
) -> Dict[str, Dict[str, tuple]]:
    """``{lang: {model: (mean, std, n_seeds)}}`` of ``metric`` for one task and split.

    If a (model, lang, seed) appears more than once the last record wins (a re-run replaces).
    """
    latest: Dict[tuple, float] = {}
    for r in records:
        if r.get("task") != task or r.get("split") != split or metric not in r.get("metrics", {}):
            continue
        latest[(r["model"], r["lang"], r["seed"])] = float(r["metrics"][metric])
    models = list(models) if models else list(dict.fromkeys(m for m, _, _ in latest))
    langs = list(langs) if langs else list(dict.fromkeys(lg for _, lg, _ in latest))
    table: Dict[str, Dict[str, tuple]] = {}
    for lang in langs:
        row = {}
        for model in models:
            vals = [v for (m, lg, _), v in latest.items() if m == model and lg == lang]
            row[model] = mean_std(vals)
        table[lang] = row
    return table


def to_markdown(table: Dict[str, Dict[str, tuple]], title: str = "", digits: int = 4) -> str:
    """A Markdown table: languages down, models across, ``mean ± std`` cells (``-`` if missing)."""
    models = list(next(iter(table.values())).keys()) if table else []
    lines = ([f"**{title}**", ""] if title else []) + [
        "| Language | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for lang, row in table.items():
        cells = []
        for m in models:
            mean, std, n = row[m]
            cells.append("-" if n == 0 else f"{mean:.{digits}f} ± {std:.{digits}f}")
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_csv(table: Dict[str, Dict[str, tuple]]) -> str:
    """CSV with columns ``lang, <model>_mean, <model>_std, <model>_n, ...``."""
    models = list(next(iter(table.values())).keys()) if table else []
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["lang"] + [f"{m}_{k}" for m in models for k in ("mean", "std", "n")])
    for lang, row in table.items():
        w.writerow([lang] + [x for m in models for x in (f"{row[m][0]:.6f}", f"{row[m][1]:.6f}", row[m][2])])
    return buf.getvalue()
