#!/usr/bin/env python3
"""Evaluate weaver prediction files: ROC, AUC, background rejection, S/sqrt(B), cut-based reference.

    python tools/evaluate.py PRED.root [PRED.root ...] --outdir DIR [--names NAME ...] [--lumi 3000] [--mH 1000]

Files given the same --names entry are repeated trainings of one model (mean and +-1 std band).
Writes roc.png, roc.pdf, scores.png, metrics.json and metrics.md to DIR. See docs/evaluation.md.

The same command is installed as ``multiscale-evaluate``. The package comes from ``source env.sh``
(an editable install), hence no sys.path edit here.
"""

import sys

from multiscale.evaluation.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
