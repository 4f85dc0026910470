"""Does a fairseq masked-LM task draw new masks every epoch with DataLoader workers?

Builds the task and its training iterator from ``fairseq-train`` arguments, exactly as
``fairseq-train`` does (``task.get_batch_iterator`` with the run's ``--num-workers``, then
``next_epoch_itr`` per epoch), iterates ``--epochs`` epochs without training, and prints, for each
pair of consecutive epochs, how many items have an identical (masked, code-switched) input.
Stock ``--task masked_lm`` replays epoch 1 whenever ``--num-workers`` > 0 (fairseq 0.12 reuses
the DataLoader and its persistent workers); csfair's tasks draw anew.

Usage (everything after the script's own options is passed to fairseq's parser)::

    python scripts/check_epoch_draws.py --epochs 3 -- data-bin/en-fr/fr --task masked_lm --num-workers 1 \\
        --tokens-per-sample 128 --sample-break-mode complete --batch-size 16 --arch roberta_base --criterion masked_lm

The command of ``scripts/check_epoch_draws.py`` (``main(argv)``).
"""
import argparse
import sys
import zlib

import numpy as np


def epoch_digests(fairseq_args, epochs):
    """{epoch: {item id: crc32 of its input}} for ``epochs`` epochs of the training iterator."""
    from fairseq import options, tasks, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), fairseq_args)
    if getattr(args, "user_dir", None):
        utils.import_user_module(args)
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset(cfg.dataset.train_subset, epoch=1)
    itr = task.get_batch_iterator(
        dataset=task.dataset(cfg.dataset.train_subset),
        max_tokens=cfg.dataset.max_tokens,
        max_sentences=cfg.dataset.batch_size,
        max_positions=task.max_positions(),
        seed=cfg.common.seed,
        ignore_invalid_inputs=cfg.dataset.skip_invalid_size_inputs_valid_test,
        num_workers=cfg.dataset.num_workers,
        epoch=1,
    )
    out = {}
    for epoch in range(1, epochs + 1):
        seen = {}
        for sample in itr.next_epoch_itr(shuffle=True):
            tokens, lengths = sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"]
            for row, i in enumerate(sample["id"].tolist()):
                seen[i] = zlib.crc32(tokens[row, : int(lengths[row])].numpy().astype(np.int64).tobytes())
        out[epoch] = seen
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    own, fairseq_args = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else ([], argv)
    p = argparse.ArgumentParser(prog="check_epoch_draws.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(own)
    digests = epoch_digests(fairseq_args, args.epochs)
    task = fairseq_args[fairseq_args.index("--task") + 1] if "--task" in fairseq_args else "?"
    workers = fairseq_args[fairseq_args.index("--num-workers") + 1] if "--num-workers" in fairseq_args else "1"
    for e in range(1, args.epochs):
        a, b = digests[e], digests[e + 1]
        same = sum(a[i] == b[i] for i in a if i in b)
        print(f"task {task}, --num-workers {workers}: items with identical input in epochs {e} and {e + 1}: "
              f"{same} / {len(a)}")

