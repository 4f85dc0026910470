"""Loss and accuracy curves (PNG) from fairseq training logs (``--log-format simple``).

Reads ``train_inner`` lines (``loss=..., accuracy=..., num_updates=...``) and validation lines
(``valid on 'valid' subset | loss ... | num_updates ...``) of one or more logs, e.g. the
``train.log`` the recipes write, and plots them against updates, one colour per log.

Usage:
    python scripts/plot_training.py checkpoints/en-fr/ibm1/train.log checkpoints/en-fr/none/train.log \\
        --labels ibm1 none --out curves.png
(For TensorBoard instead: add ``--tensorboard-logdir DIR`` to fairseq-train, e.g. after ``--`` in the
recipes, and run ``tensorboard --logdir DIR``.)

The command of ``scripts/plot_training.py`` (``main(argv)``).
"""
import argparse
import re
import sys

# metric names may hold a language direction (cs_tok_en-fr)
TRAIN = re.compile(r"\| train_inner \| .*?((?:[\w-]+=[-0-9.e]+, ?)+)")
VALID = re.compile(r"\| valid \| .*valid on '[^']+' subset \| (.*)$")


def parse(path):
    """``{"train": {metric: [(update, value)]}, "valid": {...}}`` of one log.

    Raises:
        ValueError: the log has no training lines (names the file).
    """
    out = {"train": {}, "valid": {}}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = TRAIN.search(line)
            if m:
                kv = dict(x.split("=") for x in m.group(1).replace(" ", "").strip(",").split(","))
                u = int(float(kv.get("num_updates", "nan")))
                for k in kv:
                    if k in ("loss", "accuracy", "cs_inst", "cs_word") or k.startswith("cs_tok_"):
                        out["train"].setdefault(k, []).append((u, float(kv[k])))
                continue
            m = VALID.search(line)
            if m:
                kv = dict(x.strip().split(" ", 1) for x in m.group(1).split("|") if " " in x.strip())
                u = int(float(kv.get("num_updates", "nan")))
                for k in ("loss", "accuracy"):
                    if k in kv:
                        out["valid"].setdefault(k, []).append((u, float(kv[k])))
    if not out["train"]:
        raise ValueError(f"{path}: no 'train_inner' lines (was it written with --log-format simple?)")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="plot_training.py", description=__doc__.split("\n\n")[0])
    p.add_argument("logs", nargs="+")
    p.add_argument("--labels", nargs="*", default=None)
    p.add_argument("--out", default="training_curves.png")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = args.labels or args.logs
    try:
        runs = [parse(f) for f in args.logs]
    except (ValueError, FileNotFoundError) as e:
        print(f"plot_training: error: {e}", file=sys.stderr)
        sys.exit(2)
    metrics = ["loss"] + (["accuracy"] if any("accuracy" in r["train"] for r in runs) else [])
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (run, label) in enumerate(zip(runs, labels)):
            color = f"C{i}"
            for split, style in (("train", "-"), ("valid", "o--")):
                pts = run[split].get(metric)
                if pts:
                    ax.plot([u for u, _ in pts], [v for _, v in pts], style, color=color, label=f"{label} {split}")
        ax.set_xlabel("updates")
        ax.set_ylabel(metric + (" (bits)" if metric == "loss" else ""))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")

