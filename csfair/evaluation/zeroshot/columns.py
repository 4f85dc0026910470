"""Table columns of the zero-shot runner: what ``--checkpoint NAME=...`` names, and how runs of a column are
named on disk and in a launcher's plan."""
import os

SCRATCH_HIDDEN = 768  # scratch:LAYERS columns (BERT-base width)


class Column:
    """A table column: a pretrained checkpoint (NAME=PATH), a randomly initialised Transformer
    (NAME=scratch:LAYERS or NAME=scratch:LAYERS:HIDDEN; hidden 768 by default, FFN 4 x hidden, one
    attention head per 64 dimensions), a meta-embedding tagger (NAME=mme / NAME=hme) or a transformers
    model (NAME=hf:DIRECTORY or NAME=hf:HUB_ID, resolved offline by the transformers backend's
    ``resolve``).

    Attributes:
        name: the column name (several checkpoints may share one: :func:`number_members`).
        kind: ``pretrained``, ``scratch``, ``tagger`` or ``hf``.
        path: a pretrained checkpoint's absolute path (None otherwise).
        layers, hidden: a scratch model's shape.
        tagger: ``mme`` or ``hme``.
        hf: a transformers model's directory (absolute) or Hub id.
        member: the k-th checkpoint of a column of several (None for a column of one).

    Raises:
        SystemExit: a malformed spec, or a checkpoint path that does not exist.
    """

    def __init__(self, spec):
        if "=" not in spec:
            raise SystemExit(f"--checkpoint expects NAME=PATH, NAME=scratch:LAYERS, NAME=mme, NAME=hme or "
                             f"NAME=hf:PATH_OR_ID; got {spec!r}")
        self.spec = spec
        self.name, value = spec.split("=", 1)
        self.kind, self.path, self.layers, self.hidden, self.tagger, self.hf = "pretrained", None, None, None, None, None
        self.member = None  # k-th checkpoint of a column of several (number_members)
        if value.startswith("hf:"):
            ref = value[len("hf:"):]
            self.kind, self.hf = "hf", os.path.abspath(ref) if os.path.isdir(ref) else ref
        elif value.startswith("scratch:"):
            shape = value.split(":")[1:]
            if len(shape) not in (1, 2) or not all(x.isdigit() and int(x) > 0 for x in shape):
                raise SystemExit(f"--checkpoint {spec!r}: expected NAME=scratch:LAYERS[:HIDDEN] with positive integers")
            self.kind, self.layers = "scratch", int(shape[0])
            self.hidden = int(shape[1]) if len(shape) == 2 else SCRATCH_HIDDEN
        elif value in ("mme", "hme"):
            self.kind, self.tagger = "tagger", value
        else:
            if not os.path.exists(value):
                raise SystemExit(f"{value}: checkpoint not found")
            self.path = os.path.abspath(value)


def number_members(columns):
    """A column name given several times names one column of several pretrained checkpoints (pretraining
    seeds of one method): number them (``column.member`` 1, 2, ...; None for a column of one checkpoint)."""
    by_name = {}
    for m in columns:
        by_name.setdefault(m.name, []).append(m)
    for name, ms in by_name.items():
        if len(ms) > 1:
            if any(m.kind not in ("pretrained", "hf") for m in ms):
                raise SystemExit(f"--checkpoint {name}=...: a column name repeats only for pretrained checkpoints "
                                 "(the pretraining seeds of one method)")
            paths = [m.path or m.hf for m in ms]
            if len(set(paths)) < len(paths):
                raise SystemExit(f"--checkpoint {name}=...: the same checkpoint given twice")
        for j, m in enumerate(ms, 1):
            m.member = j if len(ms) > 1 else None


def member_dir(column):
    """Run directory prefix of one checkpoint of a several-checkpoint column ("" otherwise)."""
    return f"ckpt{column.member}-" if column.member else ""


def unit(column, spec, seed):
    """A launcher's unit of work (csfair.evaluation.zeroshot.sweep): one run of the grid."""
    u = dict(model=column.name, task=spec.name, seed=seed)
    if column.member:
        u["member"] = column.member
    return u


def column_key(column):
    """The ``checkpoint`` field of a non-pretrained column's results (``scratch:L``, ``scratch:L:H``, ``tagger:mme``,
    ``hf:PATH_OR_ID``)."""
    if column.kind == "hf":
        return f"hf:{column.hf}"
    if column.kind == "scratch":
        return f"scratch:{column.layers}" + (f":{column.hidden}" if column.hidden != SCRATCH_HIDDEN else "")
    return f"tagger:{column.tagger}"
