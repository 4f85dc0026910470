#!/usr/bin/env python
"""Does a fairseq masked-LM task draw new masks every epoch with DataLoader workers?

The command of user_dir/epoch_draws.py (``--help``).
"""
import sys

try:
    from user_dir.epoch_draws import main
except ModuleNotFoundError as e:
    if e.name not in ("user_dir", "csfair"):
        raise
    sys.exit("check_epoch_draws.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")

if __name__ == "__main__":
    main()
