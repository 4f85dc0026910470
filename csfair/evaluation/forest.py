"""Forest plot of a results table: per language, each column's difference to the reference column.

The picture next to every zero-shot table (csfair issue 19, section 4): one row per (language,
column), a dot at the difference of the cell's mean to the reference cell's mean and a bar for its
95% interval (:func:`csfair.evaluation.stats.hierarchical_bootstrap`, filled in by
:func:`csfair.evaluation.results.add_significance`), a vertical line at 0. A filled dot is an
interval that excludes 0 (the table's ``*``), a hollow one an interval that does not; a cell
without an interval is listed with the reason.
"""
from typing import Dict, List, Tuple

from csfair.io import PathLike, atomic_write


def forest_rows(table: Dict[str, Dict[str, object]], reference: str) -> List[Tuple[str, str, dict]]:
    """``[(lang, column, sig)]`` of every non-reference, non-empty cell, in table order (``sig`` may be
    ``{"error": why}``; cells with no ``sig`` at all are left out)."""
    rows = []
    for lang, row in table.items():
        for name, cell in row.items():
            if name != reference and not cell.empty and cell.sig is not None:
                rows.append((lang, name, cell.sig))
    return rows


def forest_plot(table: Dict[str, Dict[str, object]], reference: str, path: PathLike, title: str = "",
                metric: str = "score") -> int:
    """Write the forest plot of ``table`` against column ``reference`` as a PNG (atomic write).

    Args:
        table: :func:`csfair.evaluation.results.aggregate`'s table after
            :func:`csfair.evaluation.results.add_significance` against ``reference``.
        reference: the reference column's name.
        path: the PNG to write.
        title: the figure's title (the table's).
        metric: the x axis's unit (the table's metric).

    Returns:
        the number of intervals drawn.

    Raises:
        ValueError: no cell has a comparison with ``reference`` (nothing to draw).
    """
    import textwrap

    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows = forest_rows(table, reference)
    if not rows:
        raise ValueError(f"forest plot: no cell was compared with {reference!r}")
    columns = list(dict.fromkeys(name for _, name, _ in rows))
    colours = {c: f"C{i % 10}" for i, c in enumerate(columns)}
    langs = list(dict.fromkeys(lang for lang, _, _ in rows))
    title_lines = textwrap.wrap(title, 90) if title else []
    fig = Figure(figsize=(8.0, 1.3 + 0.32 * (len(rows) + len(langs)) + 0.18 * len(title_lines)))
    ax = fig.add_subplot(1, 1, 1)
    y, ticks, labels, drawn, missing = 0.0, [], [], 0, []
    for lang in langs:
        for _, name, sig in [r for r in rows if r[0] == lang]:
            y -= 1
            if "error" in sig:
                missing.append(f"{lang} / {name}")
                ax.text(0.0, y, "  not computed", va="center", fontsize=8, color="0.4")
            else:
                c = colours[name]
                ax.plot([sig["lo"], sig["hi"]], [y, y], color=c, lw=2)
                ax.plot([sig["diff"]], [y], "o", color=c, markersize=7,
                        markerfacecolor=c if sig.get("significant") else "white")
                drawn += 1
            ticks.append(y)
            labels.append(f"{lang}  {name}")
        y -= 0.6  # a gap between languages
    ax.axvline(0.0, color="0.3", lw=1, ls="--")
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(f"difference to {reference} ({metric}), 95% interval")
    handles = [Line2D([], [], color="0.2", marker="o", ls="", markerfacecolor="0.2", label="interval excludes 0"),
               Line2D([], [], color="0.2", marker="o", ls="", markerfacecolor="white", label="interval includes 0")]
    ax.legend(handles=handles, fontsize=7, loc="best")
    if title_lines:
        ax.set_title("\n".join(title_lines), fontsize=8)
    if missing:
        fig.text(0.01, 0.005, "not computed (see the table's notes): " + ", ".join(missing), fontsize=6, color="0.4")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    return drawn
