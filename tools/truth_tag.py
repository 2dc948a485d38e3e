#!/usr/bin/env python3
"""Truth-tag background ntuples: each event gets its b-tag configurations with their probabilities
as weights (multiscale/generation/truth_tagging.py explains how).

    python tools/truth_tag.py --mode test --outdir DIR FILES...

The same command is installed as ``multiscale-truth-tag``. The package comes from ``source env.sh``
(an editable install), hence no sys.path edit here.
"""

import sys

from multiscale.generation.cli import truth_tag_main

if __name__ == "__main__":
    sys.exit(truth_tag_main())
