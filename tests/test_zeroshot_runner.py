"""The zero-shot runner without a framework (csfair issue 22): csfair.evaluation.zeroshot drives any
ZeroShotBackend. A word-lookup tagger written here (trained per epoch on more of the English training
sentences, in a seed's order) stands in for fairseq or transformers, so the one loop (best epoch on
dev, dev-only flags, protocol keys and the skip rule, the launcher's plan, tables) runs in seconds on
the real POS data; the two real backends satisfy the same interface."""
import ast
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT
from csfair.evaluation.corpora import subsample
from csfair.evaluation.results import load_items, load_results
from csfair.evaluation.zeroshot import Finetuned, Prepared, ZeroShotBackend, main


class LookupBackend:
    """Each word's most frequent training tag (the training set's most frequent tag for unseen words); epoch
    ``k`` of ``E`` learns from the first ``k/E`` of the training sentences in the seed's order."""

    def __init__(self):
        self.calls = Counter()
        self.models = {}
        self.loaded = {}

    def resolve(self, column):
        self.calls["resolve"] += 1

    def column_digest(self, column, args):
        return f"lookup:{column.name}"

    def prepare(self, spec, column, args, out):
        if spec.name not in self.loaded:  # read once (the real backends cache their data too)
            self.loaded[spec.name] = spec.load(1)
        data = self.loaded[spec.name]
        parts = {(spec.source_lang, "train"): subsample(data["train"], args.max_train, 1),
                 (spec.source_lang, "valid"): subsample(data["valid"], args.max_eval, 1)}
        for lg in spec.test_langs:
            parts[(lg, "test")] = subsample(data["test"][lg], args.max_eval, 1)
        stats = {f"{lg}.{sp}": {"examples": len(v)} for (lg, sp), v in parts.items()}
        return Prepared(parts, ["lookup"], 128, stats)

    def finetune(self, spec, column, prepared, run_dir, seed, lr, epochs, args, dev_score):
        self.calls["finetune"] += 1
        train = list(prepared.data[(spec.source_lang, "train")])
        random.Random(seed).shuffle(train)
        by_epoch, best = [], None
        for ep in range(1, epochs + 1):
            seen = train[: max(1, len(train) * ep // epochs)]
            tags = {}
            for s in seen:
                for w, t in zip(s.words, s.labels):
                    tags.setdefault(w, Counter())[t] += 1
            top = Counter(t for s in seen for t in s.labels).most_common(1)[0][0]
            model = ({w: c.most_common(1)[0][0] for w, c in tags.items()}, top)
            score = dev_score(self._predict(model, prepared.data[(spec.source_lang, "valid")]))
            by_epoch.append(round(score, 6))
            if best is None or score > best[0]:
                best = (score, ep, model)
        handle = f"{run_dir}#{seed}"
        self.models[handle] = best[2]
        pairs = self._predict(best[2], prepared.data[(spec.source_lang, "valid")])
        return Finetuned(handle, epochs * len(train), best[1], by_epoch, pairs)

    @staticmethod
    def _predict(model, sentences):
        table, top = model
        return [(list(s.labels), [table.get(w, top) for w in s.words]) for s in sentences]

    def train_labels(self, spec, prepared):
        return [list(s.labels) for s in prepared.data[(spec.source_lang, "train")]]

    def predict(self, spec, handle, prepared, lang, split):
        return self._predict(self.models[handle], prepared.data[(lang, split)])

    def count_parameters(self, handle):
        return len(self.models[handle][0])

    def discard(self, handle):
        self.calls["discard"] += 1
        del self.models[handle]


def test_the_runner_drives_any_backend_the_same_way(tmp_path, capsys):
    be = LookupBackend()
    assert isinstance(be, ZeroShotBackend)
    backends = {"fairseq": lambda: be, "hf": lambda: be}
    out = tmp_path / "out"
    argv = ["--checkpoint", "a=scratch:1", "--checkpoint", "b=scratch:2", "--tasks", "pos", "--langs", "fr,de",
            "--seeds", "1,2", "--max-train", "60", "--max-eval", "30", "--epochs", "3", "--reference", "a",
            "--n-boot", "200", "--out", str(out)]
    plan = []
    main(argv, backends=backends, plan=plan)  # the launcher's planning pass: units, nothing run
    assert plan == [dict(model=m, task="pos", seed=s) for m in "ab" for s in (1, 2)] and be.calls["finetune"] == 0
    assert not (out / "results.jsonl").exists()
    capsys.readouterr()
    main(argv, backends=backends)
    printed = capsys.readouterr().out
    assert be.calls["finetune"] == 4 and be.calls["discard"] == 4 and not be.models
    recs = load_results(out / "results.jsonl")
    assert sorted((r["model"], r["seed"], r["lang"], r["split"]) for r in recs) == sorted(
        (m, s, lg, sp) for m in "ab" for s in (1, 2) for lg, sp in (("en", "valid"), ("fr", "test"), ("de", "test")))
    items = load_items(out / "items.jsonl")
    for r in recs:
        dev = r["dev_by_epoch"]  # the runner's dev score after every epoch; the best (earliest on ties) kept
        assert len(dev) == 3 and r["best_epoch"] == dev.index(max(dev)) + 1 and r["updates"] == 3 * 60
        assert r["flags"] == [] and r["params"] > 0 and r["checkpoint"] in ("scratch:1", "scratch:2")
        num, den = items[r["items"]]
        assert len(num) == r["n"] == 30
        assert sum(num) / sum(den) == pytest.approx(r["metrics"]["accuracy"])
        if r["split"] == "valid":  # the runner's majority baseline: the most frequent training tag
            assert 0 < r["majority_baseline"] < r["metrics"]["accuracy"]
    assert len({r["protocol"] for r in recs}) == 2  # one per column (their digests differ)
    table = json.loads((out / "tables" / "pos.json").read_text())
    cols = {k.split(" (")[0]: v for k, v in table["fr"].items()}
    assert sorted(cols) == ["a", "b"] and cols["a"]["n"] == 2 and cols["b"]["sig"]["runs_a"] == 2
    assert "| fr | " in printed and (out / "tables" / "pos.manifest.json").exists()
    # the same command again: every run found by its protocol key, nothing trained
    main(argv, backends=backends)
    assert be.calls["finetune"] == 4 and capsys.readouterr().out.count("done before") == 4
    # --keep-checkpoints (elsewhere): the fine-tuned models are kept, not discarded
    main(argv[:-2] + ["--out", str(tmp_path / "keep"), "--keep-checkpoints"], backends=backends)
    assert be.calls["finetune"] == 8 and be.calls["discard"] == 4 and len(be.models) == 4


def test_both_backends_implement_the_interface():
    from csfair_hf.zeroshot import TransformersBackend
    from user_dir.zeroshot_backend import FairseqBackend

    for be in (FairseqBackend(), TransformersBackend()):
        assert isinstance(be, ZeroShotBackend), type(be).__name__


def test_scripts_and_benchmarks_leave_sys_path_alone():
    """The package is installed (editable): no script or benchmark edits sys.path to find it or another script."""
    bad = []
    for path in sorted((ROOT / "scripts").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                bad.append(str(Path(path).relative_to(ROOT)))
    assert not bad, bad
