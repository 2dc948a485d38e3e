#!/usr/bin/env python3
"""Self- and cross-attention maps of a trained model, averaged over signal and background events.

    python tools/attention_maps.py -c data/jets_kin.yaml -n networks/multiscale_cross.py -m MODEL.pt \\
        --files 'datasets/hh4b/test/*.root' --outdir DIR [--events N] [--layer -1] [-o NAME VALUE ...]

See docs/interpretability.md and `python tools/attention_maps.py --help`.

The same command is installed as ``multiscale-attention-maps``. The package comes from ``source env.sh``
(an editable install), hence no sys.path edit here.
"""

import sys

from multiscale.interpret.cli import attention_main

if __name__ == "__main__":
    sys.exit(attention_main())
