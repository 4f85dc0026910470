#!/usr/bin/env python
"""Sweeps through submitit: the zero-shot grid and multi-seed pretraining, one job per run.

Launchers (``--launcher``):

* ``serial``: one run after another in this process (scripts/zeroshot.py's own loop; the default).
* ``local``: submitit's ``LocalExecutor`` on this machine, at most ``--jobs`` runs at once. With GPUs,
  each run gets ``--gpus-per-job`` of them through ``CUDA_VISIBLE_DEVICES`` (``--jobs`` defaults to
  GPUs // gpus-per-job); on CPU each job gets ``OMP_NUM_THREADS`` = cores // jobs unless it is set.
* ``slurm``: submitit's ``SlurmExecutor``, one SLURM job per run (one job array per round;
  ``--jobs`` caps how many run at once, ``--slurm-*`` set partition, time, CPUs, memory).

Zero-shot (``python scripts/zeroshot.py ... --launcher local|slurm``), in rounds until nothing is left:

1. plan: the serial runner's loop in a planning pass (``zeroshot.main(argv, plan=[...])``) writes the
   task data of every column (a cache shared by the jobs, written here once, never by two jobs at
   a time) and lists the runs whose protocol key has no results yet: the serial runner's own skip rule.
2. run: one job per run: scripts/zeroshot.py restricted to that run (``--sweep-unit``) writes its
   records to its own shard ``<sweep-dir>/<run>/{results,items}.jsonl`` and ``DONE`` when complete.
3. merge: this process appends every complete shard to ``<out>/results.jsonl`` and ``items.jsonl``
   under a file lock, leaving out lines that are already there (a merge cut short is redone without
   duplicates). No two processes ever append to one file at the same time; a failed job's shard is
   never merged. Complete shards left by an interrupted sweep are merged at the start of the next.
4. ``--grid``: a column's lr x epochs grid is one job of the first round, its seeds the next round.
5. tables: the serial runner over the same command, which finds every run done: the tables it prints
   and writes are the serial runner's.

Pretraining (``python scripts/sweep.py pretrain --pair en-fr --cs ibm1,none --seeds 1,2,3
--launcher slurm ... [-- recipe options]``): the data preparation of
scripts/recipes/pair.sh (``--prep-only``) first, as one job; then one job per
(code-switching, seed), run name ``<cs>-seed<seed>``, skipped when its ``.done`` and MLM result exist;
each run's MLM accuracy is appended to ``<save-root>/pretrain_results.jsonl`` and a summary (mean ±
std over seeds per code-switching kind) printed at the end.
"""
import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

ZEROSHOT = os.path.join(ROOT, "scripts", "zeroshot.py")
RECIPE = os.path.join(ROOT, "scripts", "recipes", "pair.sh")
LAUNCHERS = ("serial", "local", "slurm")


def log(msg):
    print(f"[sweep] {msg}", flush=True)


def add_launcher_args(p):
    """The launcher options (shared by scripts/zeroshot.py and ``sweep.py pretrain``)."""
    g = p.add_argument_group("launcher (scripts/sweep.py)")
    g.add_argument("--launcher", default="serial", choices=LAUNCHERS,
                   help="serial: one run after another here; local: submitit's local executor, --jobs at once; "
                        "slurm: one SLURM job per run")
    g.add_argument("--jobs", type=int, default=None,
                   help="runs at once (local: default GPUs // --gpus-per-job, or 1 without GPUs; slurm: the job "
                        "array's parallelism, default unlimited)")
    g.add_argument("--gpus-per-job", type=int, default=None,
                   help="GPUs per run (default: 1 when GPUs are visible here (local) or for slurm, else 0)")
    g.add_argument("--slurm-partition", default=None, help="SLURM partition (sbatch --partition)")
    g.add_argument("--slurm-time", default="24:00:00",
                   help="time limit per job: minutes, H:MM:SS or D-HH:MM:SS (also the local executor's limit)")
    g.add_argument("--slurm-cpus-per-task", type=int, default=4, help="CPUs per SLURM job")
    g.add_argument("--slurm-mem-gb", type=float, default=None, help="memory per SLURM job in GB (default: the partition's)")
    g.add_argument("--slurm-extra", action="append", default=[], metavar="KEY=VALUE",
                   help="more sbatch options, e.g. account=proj or qos=high (repeatable)")
    g.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                   help="a shell line run before each job, e.g. 'module load cuda' (repeatable)")
    g.add_argument("--sweep-dir", default=None,
                   help="job logs and per-run shards (default: <out>/sweep; pretrain: <save-root>/sweep)")
    g.add_argument("--sweep-unit", default=None,
                   help="set by the launcher in each job: the one run (JSON: model, task, seed) this process does")
    g.add_argument("--sweep-shard", default=None,
                   help="set by the launcher in each job: the directory this run's records go to")
    return g


def parse_time(value):
    """A SLURM time limit (``M``, ``H:MM:SS``, ``MM:SS``, ``D-HH[:MM[:SS]]``) in minutes (float).

    Raises:
        SystemExit: on anything else.
    """
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(value).strip())
    if not m:
        raise SystemExit(f"--slurm-time {value!r}: expected minutes, H:MM:SS or D-HH:MM:SS")
    d, a, b, c = m.groups()
    if d is not None:  # D-HH[:MM[:SS]]
        return int(d) * 1440 + int(a) * 60 + int(b or 0) + int(c or 0) / 60
    if c is not None:  # H:MM:SS
        return int(a) * 60 + int(b) + int(c) / 60
    if b is not None:  # MM:SS
        return int(a) + int(b) / 60
    return float(a)


def visible_gpus():
    """Ids of the GPUs this process may hand to jobs (ints from CUDA_VISIBLE_DEVICES when set)."""
    try:
        import torch

        n = torch.cuda.device_count()
    except Exception:  # no torch or no driver: no GPU
        n = 0
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env and n:
        ids = [x.strip() for x in env.split(",") if x.strip()]
        if all(x.isdigit() for x in ids):
            return [int(x) for x in ids[:n]]
    return list(range(n))


@contextlib.contextmanager
def file_lock(path):
    """An exclusive ``fcntl.flock`` on ``path`` (created) while the block runs."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _environ(values):
    """``os.environ`` updated with ``values`` while the block runs, restored after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _lines(path):
    """The complete JSON lines of a file, as they are (a truncated last line is left out)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError:
                continue
            out.append(line)
    return out


def append_new_lines(src, dst):
    """Append the lines of ``src`` that ``dst`` lacks (one write, fsynced); the number appended.

    Lines are compared as written (json.dumps with sorted keys), so a merge cut short and redone adds
    nothing twice, and two distinct records are never taken for one.
    """
    have = set(_lines(dst))
    new = [x for x in _lines(src) if x not in have]
    if new:
        os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
        with open(dst, "a", encoding="utf-8") as fh:
            fh.write("\n".join(new) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    return len(new)


def merge_shard(shard, out):
    """Append a complete shard (``DONE`` present) to ``<out>/results.jsonl`` and ``items.jsonl``, then delete it.

    Returns:
        the number of result records appended, or None when the shard is not complete.
    """
    if not os.path.exists(os.path.join(shard, "DONE")):
        return None
    with file_lock(os.path.join(out, ".results.lock")):
        # items first: a results record never points at per-item scores that are not there yet
        append_new_lines(os.path.join(shard, "items.jsonl"), os.path.join(out, "items.jsonl"))
        n = append_new_lines(os.path.join(shard, "results.jsonl"), os.path.join(out, "results.jsonl"))
    shutil.rmtree(shard)
    return n


def unit_id(unit):
    """A directory name for a run: readable, and unique by a digest of the whole unit."""
    text = json.dumps(unit, sort_keys=True)
    name = "-".join(re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(unit[k])) for k in sorted(unit))
    return f"{name[:80]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


class Launcher:
    """Runs named commands as jobs (local or SLURM through submitit, or one after another here).

    ``run(jobs)`` takes ``[(name, argv, on_success)]``; ``on_success(name)`` is called in this process
    as each job ends well. Returns the names of the failed jobs (each with its log path printed).
    """

    poll_s = 30  # seconds between two looks at the SLURM queue (submitit.helpers.as_completed)

    def __init__(self, args, folder):
        self.args, self.folder = args, folder
        self.timeout_min = parse_time(args.slurm_time)
        self.gpus = visible_gpus() if args.launcher == "local" else []
        gpj = args.gpus_per_job
        if gpj is None:
            gpj = 1 if (self.gpus or args.launcher == "slurm") else 0
        if args.launcher == "local" and gpj > len(self.gpus):
            raise SystemExit(f"--gpus-per-job {gpj}: only {len(self.gpus)} GPU(s) visible here")
        self.gpus_per_job = gpj
        if args.launcher == "local":
            if gpj:
                self.slots = [tuple(self.gpus[i:i + gpj]) for i in range(0, len(self.gpus) - gpj + 1, gpj)]
                self.jobs = min(args.jobs or len(self.slots), len(self.slots))
            else:
                self.slots, self.jobs = [()], max(1, args.jobs or 1)
        else:
            self.slots, self.jobs = [()], args.jobs

    def executor(self):
        import submitit

        a = self.args
        if a.launcher == "local":
            ex = submitit.LocalExecutor(folder=os.path.join(self.folder, "logs", "%j"))
            ex.update_parameters(timeout_min=self.timeout_min, gpus_per_node=self.gpus_per_job)
            return ex
        ex = submitit.SlurmExecutor(folder=os.path.join(self.folder, "logs", "%j"))
        ex.update_parameters(**self.slurm_parameters())
        return ex

    def slurm_parameters(self):
        """submitit.SlurmExecutor's parameters (its own names; each becomes an ``#SBATCH`` line)."""
        a = self.args
        extra = {}
        for kv in a.slurm_extra:
            if "=" not in kv:
                raise SystemExit(f"--slurm-extra {kv!r}: expected KEY=VALUE")
            k, v = kv.split("=", 1)
            extra[k] = v
        params = dict(job_name="csfair", time=max(1, int(round(self.timeout_min))), nodes=1, ntasks_per_node=1,
                      cpus_per_task=a.slurm_cpus_per_task, gpus_per_node=self.gpus_per_job,
                      additional_parameters=extra, setup=list(a.slurm_setup))
        if a.slurm_partition:
            params["partition"] = a.slurm_partition
        if a.slurm_mem_gb:
            params["mem"] = f"{int(a.slurm_mem_gb * 1024)}MB"
        if self.jobs:
            params["array_parallelism"] = self.jobs
        return params

    def run(self, jobs):
        if not jobs:
            return []
        if self.args.launcher == "serial":
            return self._run_serial(jobs)
        import submitit

        failed, t0 = [], time.time()
        ex = self.executor()
        job_env = {}
        if self.args.launcher == "local" and not self.gpus_per_job:
            # CPU jobs share the cores: without this each would start one thread per core
            n = str(max(1, (os.cpu_count() or 1) // self.jobs))
            job_env = {v: os.environ.get(v, n) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

        def fn(argv):
            return submitit.helpers.CommandFunction(argv, cwd=os.getcwd(), verbose=True)

        def collect(job, name, on_success):
            try:
                job.result()
            except Exception as e:  # the job's own error; its log says more
                failed.append(name)
                log(f"FAILED {name} (job {job.job_id}): {str(e).strip().splitlines()[-1] if str(e).strip() else e!r}; "
                    f"log: {job.paths.stdout} / {job.paths.stderr}")
                return
            log(f"done {name} (job {job.job_id}, {time.time() - t0:.0f} s since the start)")
            on_success(name)

        if self.args.launcher == "slurm":
            with ex.batch():  # one sbatch call: a job array
                handles = [(ex.submit(fn(argv)), name, ok) for name, argv, ok in jobs]
            log(f"submitted {len(handles)} SLURM job(s): {', '.join(h[0].job_id for h in handles)}")
            by_job = {id(h[0]): h for h in handles}
            for job in submitit.helpers.as_completed([h[0] for h in handles], poll_frequency=self.poll_s):
                collect(*by_job[id(job)])
            return failed

        todo, running, free = list(jobs), [], list(self.slots)
        while todo or running:
            while todo and len(running) < self.jobs:
                name, argv, ok = todo.pop(0)
                slot = free.pop(0) if self.gpus_per_job else ()
                if slot:
                    ex.update_parameters(visible_gpus=list(slot))
                with _environ(job_env):  # the local executor passes this process's environment on
                    job = ex.submit(fn(argv))
                log(f"started {name} (job {job.job_id}" + (f", GPU {','.join(map(str, slot))})" if slot else ")"))
                running.append((job, name, ok, slot))
            time.sleep(0.2)
            for r in [r for r in running if r[0].done()]:
                running.remove(r)
                if r[3]:
                    free.append(r[3])
                collect(*r[:3])
        return failed

    def _run_serial(self, jobs):
        failed = []
        for name, argv, ok in jobs:
            log(f"running {name}: {' '.join(argv)}")
            if subprocess.run(argv).returncode != 0:
                failed.append(name)
                log(f"FAILED {name}")
            else:
                ok(name)
        return failed


# ---------------------------------------------------------------------------------------------- zero-shot

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


def launch_zeroshot(argv, args, main):
    """Run scripts/zeroshot.py's grid through the launcher (see the module docstring); returns its main()'s result."""
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
            cmd = [sys.executable, ZEROSHOT, *base, "--sweep-unit", json.dumps(u, sort_keys=True), "--sweep-shard", shard]
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


# --------------------------------------------------------------------------------------------- pretraining

def _recipe_option(opts, name, default):
    for i, a in enumerate(opts):
        if a == "--":
            break
        if a == name and i + 1 < len(opts):
            return opts[i + 1]
    return default


def pretrain_main(argv=None):
    p = argparse.ArgumentParser(prog="sweep.py pretrain",
                                description="multi-seed code-switched pretraining, one job per (cs, seed)")
    p.add_argument("--pair", required=True, help="language pair of scripts/recipes/pair.sh (e.g. en-fr)")
    p.add_argument("--cs", default="ibm1", help="comma-separated code-switching kinds (ibm1, muse, none)")
    p.add_argument("--seeds", default="1", help="comma-separated pretraining seeds")
    p.add_argument("--dry-run", action="store_true", help="print the jobs that would run, run nothing")
    add_launcher_args(p)
    p.add_argument("recipe", nargs=argparse.REMAINDER,
                   help="after --: options of scripts/recipes/pair.sh (e.g. --max-update 800 -- --fp16)")
    args = p.parse_args(argv)
    opts = args.recipe[1:] if args.recipe[:1] == ["--"] else args.recipe
    own = opts[:opts.index("--")] if "--" in opts else opts  # the recipe's options (fairseq's follow a second --)
    for o in ("--pair", "--cs", "--seed", "--run", "--prep-only"):
        if o in own:
            raise SystemExit(f"{o} is set by the sweep; leave it out of the recipe options")
    pair = args.pair
    save_root = _recipe_option(opts, "--save-root", os.path.join("checkpoints", pair))
    tgt = pair.split("-")[1]
    folder = os.path.abspath(args.sweep_dir or os.path.join(save_root, "sweep"))
    results = os.path.join(save_root, "pretrain_results.jsonl")
    runs = [(cs, int(s)) for cs in args.cs.split(",") for s in args.seeds.split(",")]

    def run_dir(cs, seed):
        return os.path.join(save_root, f"{cs}-seed{seed}")

    def finished(cs, seed):
        d = run_dir(cs, seed)
        return os.path.exists(os.path.join(d, ".done")) and os.path.exists(os.path.join(d, f"mlm_{tgt}.test.json"))

    def record(cs, seed):
        d = run_dir(cs, seed)
        mlm = json.load(open(os.path.join(d, f"mlm_{tgt}.test.json")))
        return dict(pair=pair, cs=cs, seed=seed, run=f"{cs}-seed{seed}", checkpoint=os.path.join(d, "checkpoint_last.pt"),
                    options=opts, mlm_accuracy=mlm.get("accuracy"), mlm_accuracy_se=mlm.get("accuracy_se"), mlm=mlm)

    def collect(cs, seed):
        with file_lock(results + ".lock"):
            line = json.dumps(record(cs, seed), sort_keys=True)
            if line not in set(_lines(results)):
                with open(results, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())

    todo = [(cs, s) for cs, s in runs if not finished(cs, s)]
    for cs, s in runs:
        if (cs, s) not in todo:
            log(f"{cs}-seed{s}: done before ({run_dir(cs, s)}), skipped")
            collect(cs, s)
    recipe = ["bash", RECIPE, "--pair", pair]
    prep = [("prep", recipe + ["--prep-only"] + opts, lambda n: None)]
    jobs = [(f"{cs}-seed{s}", recipe + ["--cs", cs, "--seed", str(s), "--run", f"{cs}-seed{s}"] + opts,
             lambda n, cs=cs, s=s: collect(cs, s)) for cs, s in todo]
    if args.dry_run:
        for name, cmd, _ in (prep if todo else []) + jobs:
            print(f"{name}\t{' '.join(cmd)}")
        return
    launcher = Launcher(args, folder)
    t0 = time.time()
    if todo:
        # the data preparation is shared by every run: once, before them (two runs would race on it)
        if launcher.run(prep):
            raise SystemExit("data preparation failed; no run started")
        failed = launcher.run(jobs)
        if failed:
            raise SystemExit(f"{len(failed)} of {len(jobs)} run(s) failed: {', '.join(failed)}")
    from csfair.evaluation.metrics import mean_std

    recs = [json.loads(x) for x in _lines(results)]
    print(f"\nMLM accuracy on held-out {tgt} text (mean ± std over seeds; {results})")
    for cs in args.cs.split(","):
        vals = {}
        for r in recs:
            if r["cs"] == cs and r["seed"] in {s for c, s in runs if c == cs} and r.get("options") == opts:
                vals[r["seed"]] = r["mlm_accuracy"]
        if vals:
            m, sd, _ = mean_std([vals[s] for s in sorted(vals)])
            print(f"  {cs:<6} {m:.4f} ± {sd:.4f} (n={len(vals)}: seeds {','.join(map(str, sorted(vals)))})")
    log(f"sweep wall time {time.time() - t0:.1f} s")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["pretrain"]:
        return pretrain_main(argv[1:])
    if argv[:1] == ["zeroshot"]:
        import runpy

        sys.argv = [ZEROSHOT] + argv[1:]
        return runpy.run_path(ZEROSHOT, run_name="__main__")
    raise SystemExit("usage: sweep.py pretrain ... | sweep.py zeroshot ... (= scripts/zeroshot.py ...; see --help)")


if __name__ == "__main__":
    main()
