#!/usr/bin/env python3
"""Generate Pythia 8 events, cluster them with FastJet and write ntuples (see docs/generation.md).

    python tools/generate_events.py --process {hh4b,qcd,ttbar} --events N --outdir DIR [--seed S] [--jobs J] ...

The same command is installed as ``multiscale-generate``. The package comes from ``source env.sh``
(an editable install), hence no sys.path edit here.
"""

import sys

from multiscale.generation.cli import generate_main

if __name__ == "__main__":
    sys.exit(generate_main())
