#!/usr/bin/env python
"""The code-switching dose a training run would log, without training: per direction, the rates of
``codeswitch_masked_lm``'s items (``cs_inst``, ``cs_word``, ``cs_same``, ``cs_tok``, ``cs_cut``) over
whole epochs of a data-bin, for several block rules and overflow rules (csfair issue 20, part 3).

The command of user_dir/cs_rates.py (``--help``).
"""
import sys

try:
    from user_dir.cs_rates import main
except ModuleNotFoundError as e:
    if e.name not in ("user_dir", "csfair"):
        raise
    sys.exit("cs_rates.py: the csfair package is not installed here: bash scripts/setup.sh (pip install -e .)")

if __name__ == "__main__":
    main()
