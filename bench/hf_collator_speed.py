#!/usr/bin/env python
"""Tokens/s of csfair_hf's code-switching collator, against transformers' stock MLM collator.

On the real English monolingual text (``$CSFAIR_DATA/mono/derived/en.txt``, the first ``--lines``
lines, line by line, ``max_seq_length`` 128) with the small local models of ``tests/hf_models.py``
(built offline in a temporary directory; the collator's cost does not depend on the weights) and an
en->es table built by ``csfair-lexicon table --hf-tokenizer`` from the full MUSE en-es dictionary:
``DataCollatorForLanguageModeling`` (stock), ``DataCollatorForCodeSwitchedLM`` with ``cs_mode=none``
and with ``multiview`` at the paper's defaults (50% of instances, 3% of words), each on unkeyed
examples (a stateful generator, as the stock collator) and on keyed ones (``draw_key``: masks and
code-switching from generators keyed on (seed, epoch, index), as ``CodeSwitchMLMTrainer`` feeds it;
masks drawn per example), batch 32, one process. Modes alternate over ``--rounds`` rounds; tokens/s
counts the non-padding input tokens of the produced batches; the median over rounds is reported.

Usage: PYTHONPATH=tests python bench/hf_collator_speed.py [--families bert,xlmr,roberta] [--lines 20000] [--rounds 2]
Writes bench/results/hf_collator_speed.json and prints a Markdown table.
"""
import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="bert,xlmr,roberta", help="tokenizer families (tests/hf_models.py)")
    p.add_argument("--lines", type=int, default=20000, help="lines of en.txt collated per round")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds per mode")
    p.add_argument("--batch-size", type=int, default=32, help="examples per batch")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "hf_collator_speed.json"), help="JSON output")
    args = p.parse_args()

    import torch
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling

    try:
        import hf_models  # tests/hf_models.py
    except ModuleNotFoundError:
        raise SystemExit("hf_collator_speed.py builds its models with tests/hf_models.py: run it as "
                         "PYTHONPATH=tests python bench/hf_collator_speed.py")
    from csfair_cli.lexicon import main as lexicon_main
    from csfair.paths import data_file
    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.tokenization import read_lines, tokenize_lines

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="hf_collator_speed."))
    lines = hf_models.mono_lines(("en", "es"), 2000)
    lexicon_main(["muse", "--muse-dict", str(data_file("dict/muse/en-es.txt")), "--src-lang", "en", "--tgt-lang", "es",
                  "--out", str(tmp / "muse.en-es.tsv")])
    text = read_lines(str(data_file("mono/derived/en.txt")), args.lines)
    (tmp / "en.txt").write_text("\n".join(lines["en"]) + "\n", encoding="utf-8")
    (tmp / "es.txt").write_text("\n".join(lines["es"]) + "\n", encoding="utf-8")
    results = {}
    for fam in args.families.split(","):
        if fam == "xlmr":
            path = hf_models.build_xlmr(tmp / fam, hf_models.train_spm(tmp / "spm" / "spm", lines))
        else:
            path = getattr(hf_models, f"build_{'bert' if fam == 'bert' else 'roberta'}")(tmp / fam, lines["en"] + lines["es"])
        t0 = time.time()
        lexicon_main(["table", "--lexicon", str(tmp / "muse.en-es.tsv"), "--hf-tokenizer", str(path), "--out",
                      str(tmp / f"table.{fam}"), "--src-corpus", str(tmp / "en.txt"), "--tgt-corpus", str(tmp / "es.txt"),
                      "--quiet"])
        table_s = time.time() - t0
        tok = AutoTokenizer.from_pretrained(path)
        table = SubstitutionTable.load(tmp / f"table.{fam}")
        t0 = time.time()
        ex = tokenize_lines(tok, text, 128)
        tok_s = time.time() - t0
        stock_ex = [{k: v for k, v in e.items() if k != "word_ids"} for e in ex]
        keyed_ex = [dict(e, draw_key=(0, i)) for i, e in enumerate(ex)]
        speeds = {"stock": [], "none": [], "multiview": [], "none keyed": [], "multiview keyed": []}
        rates = None
        # warm-up, not timed: numba compiles (or loads from its cache) the word scan on first use
        DataCollatorForCodeSwitchedLM(tok, seed=1, cs_tables=[table], max_seq_length=128)(keyed_ex[:args.batch_size])
        for _ in range(args.rounds):
            for mode in speeds:
                if mode == "stock":
                    col, data = DataCollatorForLanguageModeling(tok, seed=1), stock_ex
                else:
                    col = DataCollatorForCodeSwitchedLM(tok, seed=1, cs_tables=[table], cs_mode=mode.split()[0],
                                                        max_seq_length=128)
                    data = keyed_ex if mode.endswith("keyed") else ex
                n_tok = 0
                t0 = time.perf_counter()
                for a in range(0, len(data), args.batch_size):
                    b = col(data[a:a + args.batch_size])
                    n_tok += int(b["attention_mask"].sum())
                speeds[mode].append(n_tok / (time.perf_counter() - t0))
                if mode == "multiview keyed":
                    rates = col.cs_rates()
        results[fam] = dict(tokens_per_s={m: statistics.median(v) for m, v in speeds.items()}, rounds=speeds,
                            cs_rates=rates, table_entries=len(table), table_build_s=round(table_s, 1),
                            tokenize_s=round(tok_s, 1), examples=len(ex))
    report = dict(lines=args.lines, batch_size=args.batch_size, rounds=args.rounds, max_seq_length=128,
                  machine=dict(platform=platform.platform(), cpus=os.cpu_count(), torch_threads=1),
                  results=results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1)
    print("| tokenizer | stock | cs none | cs multiview | none keyed | multiview keyed | multiview keyed / stock "
          "| cs_inst | cs_word | cs_tok |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for fam, r in results.items():
        t = r["tokens_per_s"]
        c = r["cs_rates"]
        print(f"| {fam} | {t['stock']:,.0f} | {t['none']:,.0f} | {t['multiview']:,.0f} | {t['none keyed']:,.0f} "
              f"| {t['multiview keyed']:,.0f} | {t['multiview keyed'] / t['stock']:.2f} "
              f"| {c['cs_inst']:.4f} | {c['cs_word']:.4f} | {c['cs_tok']:.4f} |")


if __name__ == "__main__":
    main()
