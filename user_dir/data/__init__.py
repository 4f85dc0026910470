from .codeswitch_mask_tokens_dataset import CodeSwitchField, CodeSwitchMaskTokensDataset  # noqa: F401
