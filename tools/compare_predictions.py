#!/usr/bin/env python3
"""Compare two weaver prediction files event by event (e.g. PyTorch vs ONNX scores).

    python tools/compare_predictions.py pred.root pred_onnx.root --tolerance 1e-4

Events are matched by event_id where both files have it, else by entry order; exit status 1 when a
score differs by more than the tolerance or the candidate holds NaN.

The same command is installed as ``multiscale-compare``. The package comes from ``source env.sh``
(an editable install), hence no sys.path edit here.
"""

import sys

from multiscale.evaluation.cli import compare_main

if __name__ == "__main__":
    sys.exit(compare_main())
