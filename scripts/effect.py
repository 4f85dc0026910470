#!/usr/bin/env python
"""What code-switching does (csfair issue 24; protocol and results: docs/experiments.md).

    python scripts/effect.py synthetic            # A: English vs a script-mapped copy, none/ibm1/dict x 3 seeds
    python scripts/effect.py pair --pair en-fr    # B: the real pair, none/ibm1/muse x 3 seeds
    python scripts/effect.py synthetic --pilot    # the sizing pilot (dev measures vs updates)

The logic is csfair.experiments.effect (this file is its command line).
"""
from csfair.experiments.effect import main

if __name__ == "__main__":
    main()
