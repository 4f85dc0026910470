"""Zero-shot cross-lingual transfer: fine-tune on the training language, evaluate on others.

For each pretrained checkpoint (a table column), task and seed: write the task's data with the
checkpoint's sentencepiece model and dictionary, fine-tune with ``fairseq-train`` (Visser et al.,
2025, Table 2: max length 128, batch 32, lr 5e-5, weight decay 0.01, warmup ratio 0.25, linear
decay, 3 epochs for NER/POS, 4 for NLI), score the training language's dev set after every epoch
and keep the best epoch (model selection as in XTREME and Hugging Face's ``load_best_model_at_end``;
the epoch is recorded), evaluate every target language's test set with it, and append one JSON
line per evaluation to ``<out>/results.jsonl`` (per-item scores for the significance test in
``<out>/items.jsonl``; ``<out>`` is ``runs/zeroshot`` by default, git-ignored).

A column ``NAME=hf:PATH_OR_ID`` is a Hugging Face transformers encoder (a model directory, or a Hub id
already in the local cache: nothing is downloaded), fine-tuned with ``AutoModelForTokenClassification``
/ ``AutoModelForSequenceClassification`` on the same data, seeds, hyperparameters, selection rule and
metrics (csfair_hf/zeroshot.py); its protocol holds the digest of its weights, config and tokenizer
files instead of the checkpoint SHA-256.

Every record carries a protocol key (csfair.evaluation.results.protocol_key) over every fine-tuning
hyperparameter, the data sizes, the code version (git commit, plus a digest of uncommitted
changes; csfair.__version__ outside git) and the pretrained checkpoint's SHA-256: finished runs
are skipped only when the key matches, and tables show the current command's protocols only.
A run whose English (training-language) dev score does not beat the majority-class baseline, or whose
dev predictions are (nearly) all one label, is flagged (``flags``), marked in the tables and left
out of the mean in every language; exclusion never depends on a test set (a test set's collapse is
``eval_flags``: a note next to a value that stays in the mean). At the end, tables of mean ± std
(n = kept seeds, items = test items per run) are printed and written to
``<out>/tables/<task>.{md,csv,json}`` with ``<task>.manifest.json`` (commit, command, checkpoint
SHA-256s, protocol keys, where the predictions are); with ``--reference NAME`` each cell is compared
with that column by :func:`csfair.evaluation.stats.hierarchical_bootstrap` (fine-tuning seeds,
pretrained checkpoints and test items; ``*`` in Markdown, the interval in CSV/JSON) and
``<task>.forest.png`` shows every difference with its interval. A column name given more than once
(``--checkpoint ibm1=seed1.pt --checkpoint ibm1=seed2.pt``) is one column of several pretrained
checkpoints (pretraining seeds: the test's third level).

Usage:
    python scripts/zeroshot.py --checkpoint mbert=hf:bert-base-multilingual-cased --checkpoint xlmr=hf:xlm-roberta-base \\
        --checkpoint ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt --tasks pos --reference mbert
    python scripts/zeroshot.py --checkpoint ibm1=checkpoints/en-fr/ibm1/checkpoint_last.pt \\
        --checkpoint nocs=checkpoints/en-fr/none/checkpoint_last.pt --tasks pos,ner-wikiann,xnli \\
        --seeds 1,2,3 [--max-train 2000 --max-eval 1000] [--grid] [--freeze-encoder] [--crf] [--reference nocs]
        [--launcher local --jobs 2 | --launcher slurm --slurm-partition gpu --slurm-time 4:00:00 --gpus-per-job 1]
    python scripts/zeroshot.py --checkpoint ... --paper --tasks ner-wikiann,xnli   # MNLI/XNLI 1.0 and PAN-X where present
    python scripts/zeroshot.py --checkpoint ... --tasks-file my_tasks.toml --tasks pawsx

Tasks are declared in csfair/evaluation/tasks.toml (more with --tasks-file or $CSFAIR_TASKS_FILE).
``--launcher local|slurm`` runs the same grid as one submitit job per run (csfair.evaluation.zeroshot.sweep), collected
into the same results.jsonl, skipping the same finished runs, with the same tables at the end.
"""
import argparse
import os

from csfair.evaluation.launch import add_launcher_args
from csfair.evaluation.tasks import TASKS
from csfair.paths import REPO_ROOT

ROOT = str(REPO_ROOT)


def build_parser():
    """The runner's options (scripts/zeroshot.py's command line; this module's docstring is its --help)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--checkpoint", action="append", required=True,
                   help="a table column: NAME=PATH (pretrained checkpoint), NAME=hf:PATH_OR_ID (a transformers model "
                        "directory or a Hub id in the local cache), NAME=scratch:LAYERS[:HIDDEN] (random init, "
                        "hidden 768 unless given), NAME=mme or NAME=hme (meta-embedding taggers)")
    p.add_argument("--tasks", default="pos,ner-wikiann,xnli",
                   help=f"comma-separated, declared in csfair/evaluation/tasks.toml: {', '.join(TASKS)}")
    p.add_argument("--tasks-file", action="append", default=[],
                   help="a TOML file of more tasks (the keys of csfair/evaluation/tasks.toml); repeatable; "
                        "also $CSFAIR_TASKS_FILE")
    p.add_argument("--paper", action="store_true",
                   help="the paper's protocol where its data is present: each task replaced by the task declaring "
                        "it as fallback (xnli -> xnli-mnli: MNLI train, XNLI 1.0 test; ner-wikiann -> panx), a "
                        "task whose data is missing by its fallback (named so in the tables); seeds 1..paper_seeds "
                        "per task (5 XNLI, 10 NER) unless --seeds")
    p.add_argument("--langs", default=None, help="evaluate only these target languages")
    p.add_argument("--seeds", default=None,
                   help="fine-tuning seeds (default 1,2,3; with --paper each task's paper_seeds: 5 for XNLI, 10 for NER)")
    p.add_argument("--max-train", type=int, default=None, help="seeded subset of the training set")
    p.add_argument("--max-eval", type=int, default=None, help="seeded subset of each dev/test set")
    p.add_argument("--lr", type=float, default=5e-5, help="fine-tuning learning rate of pretrained checkpoints")
    p.add_argument("--scratch-lr", type=float, default=1e-3, help="learning rate of scratch models and taggers")
    p.add_argument("--epochs", type=int, default=None, help="default: the task's (3 tagging, 4 NLI)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.25)
    p.add_argument("--grid", action="store_true", help="select lr x epochs on dev with the first seed")
    p.add_argument("--freeze-encoder", action="store_true")
    p.add_argument("--crf", action="store_true", help="CRF output layer (tagging)")
    p.add_argument("--class-weighting", default="none", choices=["none", "balanced"])
    p.add_argument("--focal-gamma", type=float, default=0.0)
    p.add_argument("--spm", default=None, help="sentencepiece model (default: the checkpoint's data dir)")
    p.add_argument("--dict", default=None, help="dictionary (default: the checkpoint's data dir)")
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "zeroshot"),
                   help="results, per-item scores, runs and tables (default: runs/zeroshot, git-ignored)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each run's best-epoch checkpoint_best.pt (hf: columns: the transformers directory hf-best/)")
    p.add_argument("--reference", default=None,
                   help="column to compare every other column with (hierarchical bootstrap over fine-tuning seeds, "
                        "pretrained checkpoints and test items: csfair.evaluation.stats.hierarchical_bootstrap): '*' "
                        "in the Markdown table, interval in CSV/JSON and a forest plot tables/<task>.forest.png")
    p.add_argument("--n-boot", type=int, default=1000, help="item resamples of the significance test (default: 1000)")
    p.add_argument("--boot-seed", type=int, default=12345, help="seed of the significance test's resampling")
    p.add_argument("--unseen-labels", default="never-predicted", choices=["error", "never-predicted"],
                   help="test labels the training language lacks: stop with an error, or score them as a class "
                        "the model never predicts (recorded per evaluation as unseen_labels)")
    p.add_argument("--fasttext-lines", type=int, default=None,
                   help="monolingual lines per language for the taggers' fastText vectors (default: all)")
    p.add_argument("--fasttext-bucket", type=int, default=None,
                   help="fastText's hashed character n-gram rows (default: fastText's 2,000,000 = 800 MB per model at "
                        "dim 100; csfair.baselines.embeddings.FASTTEXT_BUCKET)")
    add_launcher_args(p)
    return p
