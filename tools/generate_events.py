#!/usr/bin/env python3
"""Generate Pythia 8 events, cluster them with FastJet and write ntuples (see docs/generation.md).

    python tools/generate_events.py --process {hh4b,qcd,ttbar} --events N --outdir DIR [--seed S] [--jobs J] ...
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from multiscale.generation.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
