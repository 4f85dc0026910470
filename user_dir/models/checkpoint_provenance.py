"""What a checkpoint was trained with, stored inside the model's state dict.

``codeswitch_masked_lm`` attaches a :class:`CheckpointProvenance` submodule to the models it
builds. It holds no parameters; through PyTorch's ``get_extra_state``/``set_extra_state`` hooks it
writes, in every checkpoint, the csfair version, the dictionary checksum and the checksum of each
substitution table, and it checks them whenever the checkpoint is loaded into a model built by
the task. That covers both ways fairseq loads checkpoints: ``fairseq-train`` resuming from
``checkpoint_last.pt`` (which only calls ``model.load_state_dict``) and
``checkpoint_utils.load_model_ensemble_and_task`` (evaluation, hub, fine-tuning).

A checkpoint without this record (e.g. a stock fairseq RoBERTa) loads without a check.
"""
from typing import Optional

import torch


class CodeSwitchProvenanceError(ValueError):
    """A checkpoint is loaded with other substitution tables or another dictionary than it was trained with."""


class CheckpointProvenance(torch.nn.Module):
    """Records and checks csfair version, dictionary and substitution tables of a checkpoint.

    Args:
        record: ``{"csfair_version": str, "dict_sha256": str, "cs_mode": str,
            "tables": {lang: {"path": str, "checksum": str}}}`` for the current run.
        allow_table_change: accept a checkpoint trained with other tables (deliberate continued
            pretraining with a new table); the dictionary must still match.
    """

    def __init__(self, record: dict, allow_table_change: bool = False):
        super().__init__()
        self.record = dict(record)
        self.allow_table_change = allow_table_change
        self.loaded: Optional[dict] = None

    def get_extra_state(self):
        return dict(self.record)

    def set_extra_state(self, state):
        self.loaded = dict(state)
        self.check(self.loaded)

    def check(self, saved: dict) -> None:
        """Raise :class:`CodeSwitchProvenanceError` saying what differs.

        Raises:
            CodeSwitchProvenanceError: different dictionary, or (unless allowed, and only when
                the current run code-switches) different substitution tables.
        """
        cur = self.record
        if saved.get("dict_sha256") and cur.get("dict_sha256") and saved["dict_sha256"] != cur["dict_sha256"]:
            raise CodeSwitchProvenanceError(
                f"this checkpoint was trained with another dictionary (sha256 {saved['dict_sha256'][:12]}) "
                f"than the data's (sha256 {cur['dict_sha256'][:12]}): token ids would not match"
            )
        if self.allow_table_change or cur.get("cs_mode", "none") == "none":
            return
        saved_tables = saved.get("tables") or {}
        for lang, now in (cur.get("tables") or {}).items():
            then = saved_tables.get(lang)
            if then is None:
                if saved_tables:
                    raise CodeSwitchProvenanceError(
                        f"this checkpoint was trained without a substitution table for {lang!r} text; "
                        f"now {now['path']} is given (pass --cs-allow-table-change to accept)"
                    )
                continue
            if then.get("checksum") != now.get("checksum"):
                raise CodeSwitchProvenanceError(
                    f"substitution table for {lang!r} differs from the one this checkpoint was trained with: "
                    f"trained with {then.get('path')} (checksum {str(then.get('checksum'))[:12]}), "
                    f"now {now['path']} (checksum {str(now.get('checksum'))[:12]}); restore the original table, "
                    f"or pass --cs-allow-table-change to continue with the new one"
                )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # A checkpoint without a record (stock fairseq, or older) is not an error.
        key = prefix + "_extra_state"
        if key in state_dict:
            self.set_extra_state(state_dict[key])

    def forward(self, *unused):  # pragma: no cover - never called
        raise RuntimeError("CheckpointProvenance holds metadata only")
