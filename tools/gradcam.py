#!/usr/bin/env python3
"""Grad-CAM of the signal logit on the jet stream's last self-attention block, in the aligned (eta, phi) plane.

    python tools/gradcam.py -c data/jets_kin.yaml -n networks/multiscale_cross.py -m MODEL.pt \\
        --files 'datasets/hh4b/test/*.root' --outdir DIR [--events N] [--layer -1] [-o NAME VALUE ...]

See docs/interpretability.md and `python tools/gradcam.py --help`.

The same command is installed as ``multiscale-gradcam``. The package comes from ``source env.sh``
(an editable install), hence no sys.path edit here.
"""

import sys

from multiscale.interpret.cli import gradcam_main

if __name__ == "__main__":
    sys.exit(gradcam_main())
