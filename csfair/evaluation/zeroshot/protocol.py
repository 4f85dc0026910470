"""What defines a zero-shot run, and what one evaluation records.

* :func:`protocol_of`: everything that defines a run but its seed (hashed by
  :func:`csfair.evaluation.results.protocol_key`): fine-tuning hyperparameters (Visser et al., 2025,
  Table 2), data sizes and format, the task's declaration, the code version (:func:`code_version`) and
  the column's starting point (a backend's ``column_digest``);
* :func:`score`: a task's metrics of (gold, predicted) pairs; :func:`run_record`: the fields of one
  evaluation's record (metrics, dev-only exclusion flags, test-time notes, ``<unk>`` rates, per-item
  scores for the significance test); :func:`majority_vote`: the taggers' seed ensemble.
"""
import os
import subprocess

from csfair.evaluation import metrics as M
from csfair.evaluation.results import append_items, failure_flags, item_scores, items_key
from csfair.paths import REPO_ROOT

ROOT = str(REPO_ROOT)

DATA_FORMAT = 2  # bump when the written task data changes (2: unseen-label policy in the label dictionary)

GRID_LR = (2e-5, 5e-5, 1e-4)
GRID_EPOCHS = (3, 4, 5)

FINETUNE_POSITIONS = 128  # the paper's fine-tuning length (Visser et al., 2025, Table 2)


def score(spec, pairs):
    gold = [g for g, _ in pairs]
    pred = [p for _, p in pairs]
    if spec.metric_fn == "span_f1":
        return M.span_f1(gold, pred)
    if spec.metric_fn == "token_accuracy":
        return M.token_accuracy(gold, pred)
    return M.sentence_metrics(gold, pred)


def majority_vote(runs):
    """Per word, the label most seeds predicted (ties: the earliest seed's label)."""
    out = []
    for sent_preds in zip(*runs):
        gold = sent_preds[0][0]
        voted = []
        for w in range(len(gold)):
            labels = [p[1][w] for p in sent_preds]
            voted.append(max(labels, key=lambda lab: (labels.count(lab), -labels.index(lab))))
        out.append((gold, voted))
    return out


def code_version():
    """The git commit of the code (``+<digest>`` of uncommitted changes to the code's tracked files:
    csfair/, csfair_hf/, user_dir/, scripts/, setup.py, requirements/), else csfair.__version__. Documentation
    and run outputs (README, docs/, runs/) are left out of the digest: a snapshot of a table committed next to
    the README must not change the protocol of the runner's next run."""
    import hashlib

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "csfair", "csfair_hf", "user_dir", "scripts", "setup.py",
                               "requirements"],
                              cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        import csfair

        return f"csfair-{csfair.__version__}"
    return head + (f"+{hashlib.sha256(diff).hexdigest()[:12]}" if diff else "")


def protocol_of(spec, model, args, arch_args, max_pos, stats, lr, epochs, code, start):
    """Everything that defines a run but its seed (csfair.evaluation.results.protocol_key hashes it);
    ``start`` is the column's starting point (its backend's ``column_digest``)."""
    return dict(
        task=spec.name, kind=model.kind, start=start,
        arch=[a for a in arch_args if not os.path.isabs(a)], max_positions=max_pos,
        lr=lr, epochs=epochs, batch_size=args.batch_size, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, optimizer="adam(0.9,0.999,1e-8)", scheduler="polynomial_decay(power=1,end=0)",
        freeze_encoder=bool(args.freeze_encoder and model.kind in ("pretrained", "hf")), crf=bool(args.crf or model.kind == "tagger"),
        class_weighting=args.class_weighting, focal_gamma=args.focal_gamma, grid=bool(args.grid),
        max_train=args.max_train, max_eval=args.max_eval, data_seed=1, data_format=DATA_FORMAT,
        data={k: v["examples"] for k, v in sorted(stats.items())}, unseen_labels=args.unseen_labels,
        selection=f"best epoch on {spec.source_lang} dev {spec.metric}", code=code, task_declaration=spec.digest,
    )


def run_record(spec, pairs, stats, lang, split, proto, seed, items_path, run_flags=(), majority=None):
    """Metrics, flags, unk rates and per-item scores of one evaluation (the record's fields).

    ``flags`` exclude the run from the tables and come from dev evidence only: ``run_flags`` (the
    training language's dev set, checked after fine-tuning, before any test set is read) and, for a
    dev or grid record, this evaluation's own checks. A test evaluation's checks (predictions
    collapsed to one label, e.g. on a script the vocabulary lacks) go to ``eval_flags``: a note in
    the tables, the value stays in the mean (csfair issue 19, section 2).
    """
    gold = [g for g, _ in pairs]
    pred = [p for _, p in pairs]
    m = score(spec, pairs)
    checks = failure_flags(m[spec.metric] if majority is not None else None, majority, gold, pred)
    dev = split in ("valid", "grid")
    flags = sorted(set(run_flags) | set(checks if dev else ()))
    st = stats.get(f"{lang}.{split}", {})
    rec = dict(lang=lang, split=split, metrics=m, n=len(pairs), flags=flags, eval_flags=[] if dev else sorted(checks),
               unk_rate=st.get("unk_rate"), unk_word_rate=st.get("unk_word_rate"),
               unseen_labels=st.get("unseen_labels", {}))
    if majority is not None:
        rec["majority_baseline"] = majority
    its = item_scores(spec.metric_fn, gold, pred)
    if its is not None and split != "grid":
        key = items_key(proto, seed, lang, split)
        append_items(items_path, key, its)
        rec["items"] = key
    return rec
