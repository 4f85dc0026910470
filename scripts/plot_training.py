#!/usr/bin/env python
"""Loss and accuracy curves (PNG) from fairseq training logs (``--log-format simple``).

The command of user_dir/training_curves.py (``--help``).
"""
import sys

try:
    from user_dir.training_curves import main
except ModuleNotFoundError as e:
    if e.name not in ("user_dir", "csfair"):
        raise
    sys.exit("plot_training.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")

if __name__ == "__main__":
    main()
