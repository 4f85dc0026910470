"""The zero-shot grid through a launcher (``scripts/zeroshot.py ... --launcher local|slurm``), in rounds until
nothing is left:

1. plan: the serial runner's loop in a planning pass (``main(argv, plan=[...])``) writes the task data of
   every column (a cache shared by the jobs, written here once, never by two jobs at a time) and lists the
   runs whose protocol key has no results yet: the serial runner's own skip rule.
2. run: one job per run: the runner's command restricted to that run (``--sweep-unit``) writes its
   records to its own shard ``<sweep-dir>/<run>/{results,items}.jsonl`` and ``DONE`` when complete.
3. merge: this process appends every complete shard to ``<out>/results.jsonl`` and ``items.jsonl``
   under a file lock (:func:`csfair.evaluation.launch.merge_shard`), leaving out lines that are already
   there (a merge cut short is redone without duplicates). No two processes ever append to one file at
   the same time; a failed job's shard is never merged. Complete shards left by an interrupted sweep
   are merged at the start of the next.
4. ``--grid``: a column's lr x epochs grid is one job of the first round, its seeds the next round.
5. tables: the serial runner over the same command, which finds every run done: the tables it prints
   and writes are the serial runner's.
"""
import json
import os
import shutil
import time

from csfair.evaluation.launch import Launcher, log, merge_shard, unit_id


def _without(argv, options):
    """``argv`` without the given options (and their values): the launcher's own, set again per job."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in options:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def launch_zeroshot(argv, args, main, command):
    """Run the zero-shot grid through the launcher (see the module docstring); returns ``main``'s result.

    Args:
        argv: the command's arguments (as given to the runner).
        args: their parsed namespace (the launcher options).
        main: the serial runner, ``main(argv, plan=None)``: plans when given a list, else runs and tabulates.
        command: the argv prefix that runs the serial runner in a job's process (``[python, scripts/zeroshot.py]``).
    """
    t0 = time.time()
    out = args.out
    folder = os.path.abspath(args.sweep_dir or os.path.join(out, "sweep"))
    launcher = Launcher(args, folder)
    base = _without(argv, {"--launcher", "--sweep-unit", "--sweep-shard"}) + ["--launcher", "serial"]
    shards = os.path.join(folder, "shards")
    if os.path.isdir(shards):  # complete shards of an interrupted sweep
        for d in sorted(os.listdir(shards)):
            n = merge_shard(os.path.join(shards, d), out)
            if n is not None:
                log(f"merged {n} record(s) of an earlier sweep's finished run {d}")
    ran = set()
    for round_ in range(1, 4):  # a grid round, then its seeds; a third round only if results went missing
        plan = []
        main(base, plan=plan)
        if not plan:
            break
        names = [unit_id(u) for u in plan]
        again = sorted(set(names) & ran)
        if again:
            raise SystemExit(f"runs finished but their results do not match this command's protocol (was the code "
                             f"changed during the sweep?): {', '.join(again)}")
        log(f"round {round_}: {len(plan)} run(s) to do with --launcher {args.launcher}"
            + (f", {launcher.jobs} at once" if launcher.jobs else ""))
        jobs = []
        for u, name in zip(plan, names):
            shard = os.path.join(shards, name)
            if os.path.exists(shard):  # a failed job's partial records: never merged
                shutil.rmtree(shard)
            cmd = [*command, *base, "--sweep-unit", json.dumps(u, sort_keys=True), "--sweep-shard", shard]
            jobs.append((name, cmd, lambda n, s=shard: log(f"merged {merge_shard(s, out)} record(s) of {n}")))
        failed = launcher.run(jobs)
        ran.update(names)
        if failed:
            raise SystemExit(f"{len(failed)} of {len(jobs)} run(s) failed: {', '.join(failed)}; the others are in "
                             f"{os.path.join(out, 'results.jsonl')}; the same command again runs only what is left")
    else:
        raise SystemExit("runs are still missing after 3 rounds")
    log(f"every run done ({time.time() - t0:.0f} s); tables by the serial runner:")
    result = main(base)
    log(f"sweep wall time {time.time() - t0:.1f} s")
    return result
