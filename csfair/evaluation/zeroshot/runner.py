"""The zero-shot runner's one loop: columns x tasks x seeds, planned, run or tabulated.

:func:`main` parses the command line (:func:`csfair.evaluation.zeroshot.options.build_parser`) and either
hands the grid to a launcher (``--launcher local|slurm``: :func:`csfair.evaluation.zeroshot.sweep.launch_zeroshot`,
which calls :func:`main` back to plan, and runs one unit of it per job with ``--sweep-unit``) or runs it
here (:class:`Runner`), then writes the tables (:mod:`csfair.evaluation.zeroshot.tables`). There is no
second loop: what the launcher plans, what a job runs and what the tables show are this loop's, so the
three cannot drift apart. New zero-shot logic goes here (or into the backends, for what depends on the
framework).

The framework-dependent steps go through a :class:`csfair.evaluation.zeroshot.backend.ZeroShotBackend`
per column kind, passed in by the caller (``backends``): this package imports neither fairseq nor
transformers.
"""
import json
import os
import sys
import time

from csfair.evaluation.results import (
    append_result,
    failure_flags,
    load_results,
    majority_predictions,
    protocol_key,
)
from csfair.evaluation.tasks import TASKS, add_tasks_file, paper_task
from csfair.evaluation.zeroshot import protocol as P
from csfair.evaluation.zeroshot.backend import backend_of
from csfair.evaluation.zeroshot.columns import Column, column_key, member_dir, number_members, unit
from csfair.evaluation.zeroshot.options import build_parser
from csfair.evaluation.zeroshot.protocol import GRID_EPOCHS, GRID_LR, majority_vote, protocol_of, run_record, score


def log(msg):
    print(f"[zeroshot] {msg}", flush=True)


class Runner:
    """One command's grid: its columns, tasks and seeds, where results go, and what the tables show.

    Args:
        args: the parsed options (:func:`csfair.evaluation.zeroshot.options.build_parser`).
        backends: ``{"fairseq": factory, "hf": factory}``; each factory returns a ``ZeroShotBackend``.
        plan: the launcher's planning pass: runs left to do are appended here instead of run.

    Attributes:
        current: per task, ``{(column label, protocol): table column}``: this command's runs, what the tables show.
        columns_of: per task, each column's checkpoint, digest, protocol and run folder (for the manifests).
    """

    def __init__(self, args, backends, plan=None):
        if not backends:
            raise ValueError("the runner needs its backends: {\"fairseq\": factory, \"hf\": factory} "
                             "(csfair.evaluation.zeroshot.backend; scripts/zeroshot.py passes them)")
        self.args, self.plan = args, plan
        self.unit = json.loads(args.sweep_unit) if args.sweep_unit else None  # a launcher's job: one run of the grid
        self._backends, self._built = backends, {}
        self.columns = []
        for x in args.checkpoint:
            column = Column(x)
            self.backend(column).resolve(column)
            self.columns.append(column)
        number_members(self.columns)
        for path in args.tasks_file:
            log(f"tasks from {path}: {', '.join(add_tasks_file(path))}")
        self.tasks = []
        for name in args.tasks.split(","):
            if name not in TASKS:
                raise SystemExit(f"unknown task {name!r} (declared: {', '.join(TASKS)})")
            spec, note = paper_task(name) if args.paper else (TASKS[name], None)
            if note:
                log(note)
            missing = spec.missing_message()
            if missing:
                raise SystemExit(missing)
            if spec.name not in [t.name for t in self.tasks]:
                self.tasks.append(spec)
        self.task_seeds = {spec.name: [int(s) for s in args.seeds.split(",")] if args.seeds else
                           list(range(1, spec.paper_seeds + 1)) if args.paper else [1, 2, 3] for spec in self.tasks}
        self.results_path = os.path.join(args.out, "results.jsonl")
        self.items_path = os.path.join(args.out, "items.jsonl")
        # finished runs are looked up in results_path; a launcher's job writes to its shard
        self.new_results = self.results_path
        if args.sweep_shard:
            self.new_results, self.items_path = (os.path.join(args.sweep_shard, f) for f in ("results.jsonl", "items.jsonl"))
        self.suffix = ("/frozen" if args.freeze_encoder else "") + ("/crf" if args.crf else "") + \
            (f"/{args.class_weighting}" if args.class_weighting != "none" else "") + \
            (f"/focal{args.focal_gamma:g}" if args.focal_gamma else "")
        names = {m.name + x for m in self.columns for x in ("", self.suffix, "-ensemble")}
        if args.reference and args.reference not in names:
            raise SystemExit(f"--reference {args.reference!r} is none of the columns "
                             f"({', '.join(m.name for m in self.columns)})")
        self.code = P.code_version()
        # (model label, protocol) -> table column, per task: this command's runs (what the tables show); the
        # checkpoints of a repeated column name share a column (pretraining seeds)
        self.current = {spec.name: {} for spec in self.tasks}
        self.columns_of = {spec.name: [] for spec in self.tasks}  # for the manifests
        self.t_start = time.time()

    def backend(self, column):
        return backend_of(column, self._backends, self._built)

    def label(self, column):
        """The column's name in results and tables (``name/frozen/crf...`` for pretrained and hf columns)."""
        return column.name + (self.suffix if column.kind in ("pretrained", "hf") else "")

    def run(self):
        """Every (column, task) of the grid, skipping what another launcher unit does."""
        u = self.unit
        for column in self.columns:
            if u and (column.name != u["model"] or u.get("member") != column.member):
                continue
            for spec in self.tasks:
                if u and spec.name != u["task"]:
                    continue
                self.column_task(column, spec)
        if self.plan is not None or u:
            if self.args.sweep_shard:  # the launcher merges a shard only once its job has written everything
                os.makedirs(self.args.sweep_shard, exist_ok=True)
                open(os.path.join(self.args.sweep_shard, "DONE"), "w").close()
            return False
        return True

    def protocol(self, spec, column, prepared, lr, epochs):
        digest = self.backend(column).column_digest(column, self.args)
        return protocol_key(protocol_of(spec, column, self.args, prepared.arch, prepared.max_positions,
                                        prepared.stats, lr, epochs, self.code, digest))

    def column_task(self, column, spec):
        """One column on one task: its data, the lr x epochs grid if asked, every seed, the taggers' ensemble."""
        args, label, be = self.args, self.label(column), self.backend(column)
        seeds = self.task_seeds[spec.name]
        if column.kind == "tagger" and spec.kind != "tagging":
            log(f"{label}: meta-embedding taggers do tagging only; {spec.name} skipped")
            return
        langs = [lg for lg in spec.test_langs if not args.langs or lg in args.langs.split(",")]
        prepared = be.prepare(spec, column, args, args.out)
        stats = prepared.stats
        log(f"{spec.name} examples: " + ", ".join(f"{k} {v['examples']}" for k, v in stats.items()))
        for k, v in stats.items():
            if v.get("unk_word_rate") is not None and v["unk_word_rate"] > 0.5:
                log(f"{spec.name} {k}: {100 * v['unk_word_rate']:.0f}% of the words are entirely <unk> for {label} "
                    f"({100 * (v.get('unk_rate') or 0):.0f}% of the pieces)")
        base_lr = args.lr if column.kind in ("pretrained", "hf") else args.scratch_lr
        configs = [(base_lr, args.epochs or spec.epochs)]
        if args.grid:
            configs = [(lr, ep) for lr in GRID_LR for ep in GRID_EPOCHS]
        base = dict(model=label, task=spec.name, max_train=args.max_train, max_eval=args.max_eval,
                    checkpoint=column.path or column_key(column), code=self.code)
        if len(configs) > 1:
            selected = self.select_grid(column, spec, prepared, configs, base, seeds[0])
            if selected is None:  # the grid is one job; the seeds wait for its selection
                self.plan.append(unit(column, spec, "grid"))
                return
            configs = [selected]
            if self.unit and self.unit["seed"] == "grid":
                return
        lr, epochs = configs[0]
        proto = self.protocol(spec, column, prepared, lr, epochs)
        self.current[spec.name][(label, proto)] = label
        self.columns_of[spec.name].append(dict(
            column=label, checkpoint_number=column.member, kind=column.kind, protocol=proto,
            checkpoint=column.path or column_key(column),
            sha256=be.column_digest(column, args) if column.kind in ("pretrained", "hf") else None,
            run_prefix=os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, member_dir(column))))
        predictions = []  # per seed, for the ensemble of the taggers
        params = 0
        for seed in seeds:
            if self.unit and self.unit["seed"] != seed:
                continue
            got = self.run_seed(column, spec, prepared, langs, proto, base, seed, lr, epochs)
            if got is not None:
                kept, params = got
                if kept is not None:
                    predictions.append(kept)
        if column.kind == "tagger" and len(predictions) > 1 and self.plan is None:
            self.ensemble(spec, prepared, label, proto, base, predictions, lr, epochs, params)
        if column.kind == "tagger" and len(seeds) > 1:
            self.current[spec.name][(f"{label}-ensemble", proto)] = f"{label}-ensemble"

    def finetune_and_select(self, spec, column, prepared, run_dir, seed, lr, epochs):
        """Fine-tune, keep the best epoch on dev, check the run on dev: ``(Finetuned, run flags, majority)``.

        The run's flags (dev evidence only, before any test set is read): the best epoch's dev score not
        above the majority-class baseline's, or its dev predictions collapsed to one label.
        """
        ft = self.backend(column).finetune(spec, column, prepared, run_dir, seed, lr, epochs, self.args,
                                           lambda pairs: score(spec, pairs)[spec.metric])
        gold = [g for g, _ in ft.dev_pairs]
        train = self.backend(column).train_labels(spec, prepared)
        majority = score(spec, list(zip(gold, majority_predictions(train, gold))))[spec.metric]
        flags = failure_flags(ft.dev_by_epoch[ft.best_epoch - 1], majority, gold, [p for _, p in ft.dev_pairs])
        return ft, flags, majority

    def select_grid(self, column, spec, prepared, configs, base, seed):
        """``--grid``: lr x epochs selected on dev with the first seed; ``(lr, epochs)``, or None when the
        planning pass found grid runs left to do."""
        args, label, be = self.args, self.label(column), self.backend(column)
        best = None
        for lr, ep in configs:
            proto = self.protocol(spec, column, prepared, lr, ep)
            got = [r for r in load_results(self.results_path) if r.get("protocol") == proto and r["split"] == "grid"
                   and r["seed"] == seed]
            if not got and self.plan is not None:
                return None
            if not got:
                run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name,
                                       member_dir(column) + f"grid-lr{lr:g}-ep{ep}")
                t0 = time.time()
                ft, flags, maj = self.finetune_and_select(spec, column, prepared, run_dir, seed, lr, ep)
                rec = dict(base, **run_record(spec, ft.dev_pairs, prepared.stats, spec.source_lang, "grid", proto, seed,
                                              self.items_path, flags, maj),
                           protocol=proto, seed=seed, lr=lr, epochs=ep, best_epoch=ft.best_epoch,
                           dev_by_epoch=ft.dev_by_epoch, seconds=round(time.time() - t0, 1))
                append_result(self.new_results, rec)
                got = [rec]
                if not args.keep_checkpoints:
                    be.discard(ft.handle)
            value = got[-1]["metrics"][spec.metric]
            failed = bool(got[-1].get("flags"))
            log(f"{spec.name} grid lr={lr:g} epochs={ep}: dev {spec.metric} {value:.4f}"
                + (f" (failed: {', '.join(got[-1]['flags'])})" if failed else ""))
            if not failed and (best is None or value > best[0]):
                best = (value, lr, ep)
        if best is None:
            log(f"{spec.name}: every grid run failed; the first configuration is kept and its runs are flagged")
            best = (None,) + configs[0]
        log(f"{spec.name}: selected lr={best[1]:g} epochs={best[2]} on {spec.source_lang} dev")
        return best[1:]

    def run_seed(self, column, spec, prepared, langs, proto, base, seed, lr, epochs):
        """One fine-tuning seed: skipped when done before under this protocol, planned, or run and recorded.

        Returns:
            None when planned; else ``(predictions, parameters)``: the run's (gold, predicted) pairs per
            ``(lang, split)`` (None when done before without saved predictions) and its parameter count.
        """
        args, label, be = self.args, self.label(column), self.backend(column)
        have = [r for r in load_results(self.results_path) if r.get("protocol") == proto and r["seed"] == seed
                and r["split"] == "test" and r["model"] == label]
        run_dir = os.path.join(args.out, "runs", label.replace("/", "_"), spec.name, member_dir(column) + f"seed{seed}")
        pred_file = os.path.join(run_dir, f"predictions-{proto}.json")
        if {r["lang"] for r in have} >= set(langs):
            log(f"{label} {spec.name} seed {seed}: done before (protocol {proto}), skipped")
            kept = None
            if os.path.exists(pred_file):
                saved = json.load(open(pred_file))
                kept = {tuple(k.split("|")): v for k, v in saved.items()}
            return kept, have[-1].get("params", 0)
        if self.plan is not None:
            self.plan.append(unit(column, spec, seed))
            return None
        t0 = time.time()
        ft, run_flags, maj = self.finetune_and_select(spec, column, prepared, run_dir, seed, lr, epochs)
        t_train = time.time() - t0
        params = be.count_parameters(ft.handle)
        kept = {(spec.source_lang, "valid"): ft.dev_pairs}
        for lang in langs:
            kept[(lang, "test")] = be.predict(spec, ft.handle, prepared, lang, "test")
        os.makedirs(run_dir, exist_ok=True)
        with open(pred_file, "w") as fh:  # for ensembles and error analysis
            json.dump({f"{lg}|{sp}": v for (lg, sp), v in kept.items()}, fh)
        run_info = dict(base, protocol=proto, seed=seed, lr=lr, epochs=epochs, best_epoch=ft.best_epoch,
                        dev_by_epoch=ft.dev_by_epoch, updates=ft.updates, params=params,
                        train_seconds=round(t_train, 1), seconds=round(time.time() - t0, 1))
        stats = prepared.stats
        recs = [dict(run_info, **run_record(spec, ft.dev_pairs, stats, spec.source_lang, "valid", proto, seed,
                                            self.items_path, run_flags, maj))]
        recs += [dict(run_info, **run_record(spec, kept[key], stats, key[0], key[1], proto, seed, self.items_path,
                                             run_flags)) for key in kept if key[1] == "test"]
        for rec in recs:
            append_result(self.new_results, rec)
        log(f"{label} {spec.name} seed {seed}: best epoch {ft.best_epoch} (dev {spec.metric} by epoch {ft.dev_by_epoch}); "
            + ", ".join(f"{r['lang']}/{r['split']} {r['metrics'][spec.metric]:.4f}"
                        + (f" [{','.join(r['flags'])}]" if r["flags"] else "") for r in recs)
            + f" ({time.time() - t0:.0f} s, {params / 1e6:.2f}M parameters)")
        if not args.keep_checkpoints:
            be.discard(ft.handle)
        return kept, params

    def ensemble(self, spec, prepared, label, proto, base, predictions, lr, epochs, params):
        """HME-Ensemble (Winata et al., 2021): majority vote of the seeds, per word."""
        for key in predictions[0]:
            voted = majority_vote([pr[key] for pr in predictions])
            rec = run_record(spec, voted, prepared.stats, key[0], key[1], proto, 0, self.items_path)
            append_result(self.new_results, dict(base, **rec, model=f"{label}-ensemble", protocol=proto, seed=0,
                                                 lr=lr, epochs=epochs, params=params * len(predictions)))
        log(f"{label}-ensemble {spec.name}: majority vote of {len(predictions)} seeds recorded")


def main(argv=None, backends=None, command=None, plan=None):
    """The serial runner; with ``--launcher local|slurm`` it hands the grid to the launcher.

    Args:
        argv: the command line (default ``sys.argv[1:]``).
        backends: ``{"fairseq": factory, "hf": factory}`` (:mod:`csfair.evaluation.zeroshot.backend`).
        command: the argv prefix that runs this runner in a launcher's job (``[python, scripts/zeroshot.py]``);
            needed with ``--launcher local|slurm`` only.
        plan: (a list) the launcher's planning pass: the data of every column and task is written, and the
            runs left to do (``{"model", "task", "seed"}``; seed ``"grid"``: a column's lr x epochs grid) are
            appended to ``plan`` instead of being run; no results, no tables.
    """
    from csfair.evaluation.zeroshot.sweep import launch_zeroshot
    from csfair.evaluation.zeroshot.tables import write_all_tables

    args = build_parser().parse_args(argv)
    if args.launcher != "serial":
        if command is None:
            raise ValueError("--launcher local|slurm needs the command that runs one unit of the grid (command=...)")
        return launch_zeroshot(sys.argv[1:] if argv is None else list(argv), args,
                               lambda a, plan=None: main(a, backends, command, plan), command)
    runner = Runner(args, backends, plan)
    if runner.run():
        write_all_tables(runner, argv)


def cli(argv=None, backends=None, command=None):
    """``main`` for a person at a terminal: a user error (bad or missing input data, a tasks file that cannot be
    used) is one line naming the file (and line) on stderr, exit status 2; a bug keeps its traceback."""
    from csfair.evaluation.tasks import MissingDataError, TaskError
    from csfair.io import InputFormatError

    try:
        return main(argv, backends, command)
    except (InputFormatError, TaskError, MissingDataError) as e:
        print(f"[zeroshot] error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
