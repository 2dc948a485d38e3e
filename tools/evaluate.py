#!/usr/bin/env python3
"""Evaluate weaver prediction files: ROC, AUC, background rejection, S/sqrt(B), cut-based reference.

    python tools/evaluate.py PRED.root [PRED.root ...] --outdir DIR [--names NAME ...] [--lumi 3000] [--mH 1000]

Files given the same --names entry are repeated trainings of one model (mean and +-1 std band).
Writes roc.png, roc.pdf, scores.png, metrics.json and metrics.md to DIR. See docs/evaluation.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from multiscale.evaluation.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
