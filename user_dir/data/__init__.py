from .codeswitch_mask_tokens_dataset import CodeSwitchField, CodeSwitchMaskTokensDataset  # noqa: F401
from .tagging_target_dataset import TaggingTargetDataset  # noqa: F401
from .tlm_dataset import TlmDataset  # noqa: F401
from .weam_dataset import WeamDataset  # noqa: F401
