#!/usr/bin/env python3
"""Truth-tag background ntuples: each event gets its b-tag configurations with their probabilities
as weights (multiscale/generation/truth_tagging.py explains how).

    python tools/truth_tag.py --mode test --outdir DIR FILES...
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from multiscale.generation.truth_tagging import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
