"""Multi-seed pretraining, one job per run (``python scripts/sweep.py pretrain --pair en-fr --cs ibm1,none
--seeds 1,2,3 --launcher slurm ... [-- recipe options]``).

The data preparation of scripts/recipes/pair.sh (``--prep-only``) first, as one job; then one job per
(code-switching, seed), run name ``<cs>-seed<seed>``, skipped when its ``.done`` and MLM result exist;
each run's MLM accuracy is appended to ``<save-root>/pretrain_results.jsonl`` and a summary (mean ±
std over seeds per code-switching kind) printed at the end. Jobs run through
:class:`csfair.evaluation.launch.Launcher` (serial, local or SLURM).
"""
import argparse
import json
import os
import time

from csfair.evaluation.launch import Launcher, add_launcher_args, file_lock, json_lines, log
from csfair.paths import REPO_ROOT

RECIPE = os.path.join(str(REPO_ROOT), "scripts", "recipes", "pair.sh")


def _recipe_option(opts, name, default):
    for i, a in enumerate(opts):
        if a == "--":
            break
        if a == name and i + 1 < len(opts):
            return opts[i + 1]
    return default


def main(argv=None):
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
            if line not in set(json_lines(results)):
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

    recs = [json.loads(x) for x in json_lines(results)]
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
