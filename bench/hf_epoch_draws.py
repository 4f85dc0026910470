#!/usr/bin/env python
"""Do masks change between epochs, and do they depend on the number of DataLoader workers?

The transformers analogue of ``scripts/check_epoch_draws.py``: real English lines (the first
``--lines`` of ``$CSFAIR_DATA/mono/derived/en.txt``, line by line, 64 tokens) and the small local BERT
tokenizer of ``tests/hf_models.py`` (built in a temporary directory), batches of 4 through a
``torch.utils.data.DataLoader`` for 2 epochs, sequential order, with 0 workers, 2 workers (re-created
every epoch, ``Trainer``'s default) and 2 persistent workers:

* ``stock``: ``DataCollatorForLanguageModeling(seed=1)`` (its generator is created lazily in each
  worker copy, seeded ``seed + worker id``);
* ``keyed``: ``DataCollatorForCodeSwitchedLM(seed=1, cs_mode="none")`` on ``KeyedExamples`` sampled by
  ``EpochKeyedSampler`` (``set_epoch`` per epoch, as ``CodeSwitchMLMTrainer`` does).

Prints, per setting, the batches whose labels (the masks) are identical in epochs 1 and 2, and the
epoch-1 batches identical to those of 0 workers.

Usage: PYTHONPATH=tests python bench/hf_epoch_draws.py [--lines 32]
"""
import argparse
import tempfile
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=32, help="lines of en.txt (batches of 4)")
    args = p.parse_args()

    import torch
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling

    try:
        import hf_models  # tests/hf_models.py
    except ModuleNotFoundError:
        raise SystemExit("hf_epoch_draws.py builds its models with tests/hf_models.py: run it as "
                         "PYTHONPATH=tests python bench/hf_epoch_draws.py")
    from csfair.paths import data_file
    from csfair_hf.collator import DataCollatorForCodeSwitchedLM
    from csfair_hf.tokenization import read_lines, tokenize_lines
    from csfair_hf.trainer import EpochKeyedSampler, KeyedExamples

    tmp = Path(tempfile.mkdtemp(prefix="hf_epoch_draws."))
    lines = hf_models.mono_lines(("en", "es"), 2000)
    tok = AutoTokenizer.from_pretrained(hf_models.build_bert(tmp / "bert", lines["en"] + lines["es"]))
    ex = tokenize_lines(tok, read_lines(str(data_file("mono/derived/en.txt")), args.lines), 64)
    n_batches = -(-len(ex) // 4)
    print(f"| collator | workers | batches with the same masks in epochs 1 and 2 | epoch-1 batches equal to 0 workers' |")
    print("|---|---|---|---|")
    for name in ("stock", "keyed"):
        ref = None
        for workers, persistent in ((0, False), (2, False), (2, True)):
            if name == "stock":
                data = [{k: v for k, v in e.items() if k != "word_ids"} for e in ex]
                col, sampler = DataCollatorForLanguageModeling(tok, seed=1), None
            else:
                data, col = KeyedExamples(ex), DataCollatorForCodeSwitchedLM(tok, seed=1, cs_mode="none")
                sampler = EpochKeyedSampler(len(ex), seed=1, shuffle=False)
            dl = torch.utils.data.DataLoader(data, batch_size=4, num_workers=workers, collate_fn=col, sampler=sampler,
                                             persistent_workers=persistent)
            epochs = []
            for epoch in range(2):
                if sampler is not None:
                    sampler.set_epoch(epoch)
                epochs.append([b["labels"] for b in dl])
            same = sum(torch.equal(a, b) for a, b in zip(*epochs))
            if ref is None:
                ref = epochs[0]
            equal0 = sum(torch.equal(a, b) for a, b in zip(ref, epochs[0]))
            label = f"{workers}{' persistent' if persistent else ''}"
            print(f"| {name} | {label} | {same}/{n_batches} | {equal0}/{n_batches} |", flush=True)


if __name__ == "__main__":
    main()
