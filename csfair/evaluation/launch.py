"""Launchers: named commands run as jobs, one after another here or through submitit.

* ``serial``: one command after another in this process's machine (``subprocess``);
* ``local``: submitit's ``LocalExecutor`` on this machine, at most ``--jobs`` at once. With GPUs,
  each job gets ``--gpus-per-job`` of them through ``CUDA_VISIBLE_DEVICES`` (``--jobs`` defaults to
  GPUs // gpus-per-job); on CPU each job gets ``OMP_NUM_THREADS`` = cores // jobs unless it is set.
* ``slurm``: submitit's ``SlurmExecutor``, one SLURM job per command (one job array per round;
  ``--jobs`` caps how many run at once, ``--slurm-*`` set partition, time, CPUs, memory).

Results of jobs that run side by side are never appended to one file by two processes: each job
writes its own shard, and :func:`merge_shard` appends a complete shard (``DONE`` present) to the
shared files under a file lock (:func:`file_lock`), leaving out lines already there.

Users: the zero-shot sweep (:mod:`csfair.evaluation.zeroshot.sweep`) and the multi-seed pretraining
sweep (:mod:`csfair.evaluation.pretrain_sweep`). Framework-free: the GPU count is torch's, asked in
a child process (:func:`visible_gpus`).
"""
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


def log(msg):
    print(f"[sweep] {msg}", flush=True)


LAUNCHERS = ("serial", "local", "slurm")


def add_launcher_args(p):
    """The launcher options (shared by scripts/zeroshot.py and ``scripts/sweep.py pretrain``)."""
    g = p.add_argument_group("launcher (csfair.evaluation.launch)")
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


#: torch's count of the GPUs this environment may use, asked in a child process: csfair never imports torch
_GPU_COUNT = "import torch; print(torch.cuda.device_count())"


def visible_gpus():
    """Ids of the GPUs this process may hand to jobs (ints from CUDA_VISIBLE_DEVICES when set).

    The count is ``torch.cuda.device_count()`` (which honours ``CUDA_VISIBLE_DEVICES``), run in a child
    process with this environment: csfair itself never imports torch (nor initialises CUDA in the
    launcher that then starts the jobs).
    """
    try:
        p = subprocess.run([sys.executable, "-c", _GPU_COUNT], capture_output=True, text=True, timeout=300)
        n = int(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else 0
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):  # no torch or no driver: no GPU
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


def json_lines(path):
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
    have = set(json_lines(dst))
    new = [x for x in json_lines(src) if x not in have]
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
