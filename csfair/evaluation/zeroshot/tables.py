"""The runner's tables: per task, the test table (with the significance test against ``--reference``,
a forest plot and a manifest) and the training language's dev table, printed and written to
``<out>/tables/<task>.{md,csv,json}``; only this command's protocols and seeds enter a cell."""
import json
import os
import sys
import time

from csfair.evaluation.forest import forest_plot
from csfair.evaluation.results import add_significance, aggregate, load_items, load_results, to_markdown, write_tables
from csfair.paths import REPO_ROOT

ROOT = str(REPO_ROOT)


def log(msg):
    print(f"[zeroshot] {msg}", flush=True)


def write_all_tables(runner, argv):
    """Print and write every task's tables for the runs of ``runner`` (a finished
    :class:`csfair.evaluation.zeroshot.runner.Runner`), with a manifest next to each test table."""
    args = runner.args
    records = load_results(runner.results_path)
    items = load_items(runner.items_path) if args.reference else {}
    params_of = {}
    protocols = {task: {proto for _, proto in cols} for task, cols in runner.current.items()}
    for r in records:  # counted by this code (count_parameters: tied weights once): older records may count twice
        if "params" in r and r.get("protocol") in protocols.get(r.get("task"), ()):
            params_of[r["model"]] = r["params"]
    os.makedirs(os.path.join(args.out, "tables"), exist_ok=True)
    for spec in runner.tasks:
        # the columns of this command's runs only (its protocols and seeds; 0: the taggers' ensembles): older
        # results (other code, other checkpoint bytes, other hyperparameters) stay in results.jsonl, never in a cell
        seeds_ok = set(runner.task_seeds[spec.name]) | {0}
        written = {}
        for split, langs in (("test", None), ("valid", [spec.source_lang])):
            table = aggregate(records, spec.name, spec.metric, split=split, langs=langs, seeds=seeds_ok,
                              columns=runner.current[spec.name])
            if not table or not next(iter(table.values())):
                continue
            reference = None
            if args.reference and split == "test":
                cols = next(iter(table.values()))
                reference = args.reference if args.reference in cols else args.reference + runner.suffix
                if reference not in cols:
                    raise SystemExit(f"--reference {args.reference!r} is not a column of {spec.name} ({', '.join(cols)})")
                add_significance(table, items, reference, n_boot=args.n_boot, seed=args.boot_seed, metric=spec.metric)
            headers = {m: (f"{m} ({params_of[m.split('@')[0]] / 1e6:.1f}M)" if m.split("@")[0] in params_of else m)
                       for m in next(iter(table.values()))}
            table = {lg: {headers[m]: v for m, v in row.items()} for lg, row in table.items()}
            title = table_title(spec, split, runner.task_seeds[spec.name])
            md = to_markdown(table, title, reference=headers.get(reference) if reference else None, n_boot=args.n_boot,
                             train_lang=spec.source_lang)
            print("\n" + md)
            if split == "test":
                base = os.path.join(args.out, "tables", spec.name)
                write_tables(base, table, md)
                written["tables"] = [base + ext for ext in (".md", ".csv", ".json")]
                if reference:
                    try:
                        forest_plot(table, headers[reference], base + ".forest.png", title.split("; mean")[0],
                                    spec.metric)
                        written["forest_plot"] = base + ".forest.png"
                    except ValueError as e:
                        log(f"{spec.name}: no forest plot ({e})")
                else:
                    log(f"{spec.name}: no forest plot without --reference (it shows differences to the reference)")
                written["title"], written["reference"] = title, headers.get(reference) if reference else None
        if written:
            path = write_manifest(spec, args, argv, runner.columns_of[spec.name], runner.current[spec.name], seeds_ok,
                                  records, runner.items_path, written, runner.code, time.time() - runner.t_start)
            log(f"{spec.name}: tables, {'forest plot, ' if 'forest_plot' in written else ''}manifest {path}")
    log(f"wall time {time.time() - runner.t_start:.0f} s; results in {runner.results_path}")


def table_title(spec, split, seeds):
    """A table's title: the task, the metric exactly (span F1: seqeval's default, conlleval-compatible mode,
    not strict IOB2), what the rows were scored on, and what a cell holds."""
    if spec.metric_fn == "span_f1":
        what = {"macro_f1": "macro-averaged span F1", "micro_f1": "micro-averaged span F1",
                "precision": "span precision (micro)", "recall": "span recall (micro)"}.get(spec.metric, spec.metric)
        metric = f"{what} (seqeval default mode, conlleval-compatible spans; not strict IOB2)"
    elif spec.metric_fn == "token_accuracy":
        metric = "word-level accuracy (each word scored at its first piece)"
    else:
        metric = {"accuracy": "accuracy", "macro_f1": "macro-F1 over the labels"}.get(spec.metric, spec.metric)
    on = "test sets" if split == "test" else f"{spec.source_lang} dev set (model selection)"
    return (f"{spec.title}: {metric} on the {on}; mean ± std over the kept fine-tuning seeds of "
            f"{','.join(map(str, seeds))} (n = runs in the mean, items = evaluated items per run); runs excluded on "
            f"{spec.source_lang} dev only; best epoch on {spec.source_lang} dev; parameters in brackets")


def write_manifest(spec, args, argv, columns, current, seeds, records, items_path, written, code, seconds):
    """``tables/<task>.manifest.json`` next to the tables: what made them and where their evidence is.

    The commit (``code_version``: with a digest of uncommitted changes), the command (and the recipe's,
    ``$CSFAIR_RECIPE_COMMAND``), every column's checkpoint with its SHA-256 (transformers models: the digest of
    their weights, config and tokenizer files) and protocol keys, the seeds, the significance test and its
    settings, and the files a reader needs to recompute the table or a comparison: results, per-item scores,
    and each run's saved predictions (paths relative to ``--out``).
    """
    import platform
    import shlex
    from datetime import datetime, timezone

    import numpy
    import scipy

    import csfair
    from csfair.evaluation.stats import HIERARCHICAL_TEST
    from csfair.io import atomic_write

    out = os.path.abspath(args.out)
    rel = lambda p: os.path.relpath(os.path.abspath(p), out)  # noqa: E731
    runs = []
    for r in records:
        if (r.get("task") == spec.name and r.get("split") == "test" and (r["model"], r.get("protocol")) in current
                and r["seed"] in seeds):
            key = (r["model"], r["protocol"], r["seed"])
            if key not in [(x["column"], x["protocol"], x["seed"]) for x in runs]:
                run = next((c for c in columns if c["protocol"] == r["protocol"]), {})
                pred = os.path.join(run.get("run_prefix", "") + f"seed{r['seed']}", f"predictions-{r['protocol']}.json")
                runs.append(dict(column=r["model"], protocol=r["protocol"], seed=r["seed"], flags=r.get("flags", []),
                                 predictions=rel(pred) if run and os.path.exists(pred) else None))
    manifest = dict(
        task=spec.name, title=written.get("title"), metric=spec.metric, metric_fn=spec.metric_fn,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), commit=code,
        command=shlex.join(["python", "scripts/zeroshot.py", *(sys.argv[1:] if argv is None else argv)]),
        recipe_command=os.environ.get("CSFAIR_RECIPE_COMMAND"), out=out,
        data=dict(csfair_data=os.path.abspath(os.environ.get("CSFAIR_DATA", os.path.join(ROOT, "..", "shared", "data"))),
                  task_declaration=spec.digest, task_origin=spec.origin),
        columns=[{k: v for k, v in c.items() if k != "run_prefix"} for c in columns],
        seeds=sorted(s for s in seeds if s), reference=written.get("reference"),
        significance=dict(test=HIERARCHICAL_TEST, function="csfair.evaluation.stats.hierarchical_bootstrap",
                          n_boot=args.n_boot, seed=args.boot_seed, alpha=0.05) if written.get("reference") else None,
        files=dict(tables=[rel(p) for p in written["tables"]],
                   forest_plot=rel(written["forest_plot"]) if "forest_plot" in written else None,
                   results=rel(os.path.join(args.out, "results.jsonl")), items=rel(items_path)),
        runs=runs, wall_seconds=round(seconds, 1),
        versions=dict(python=platform.python_version(), numpy=numpy.__version__, scipy=scipy.__version__,
                      csfair=csfair.__version__),
    )
    path = os.path.join(args.out, "tables", f"{spec.name}.manifest.json")
    with atomic_write(path) as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    return path
