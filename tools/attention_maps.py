#!/usr/bin/env python3
"""Self- and cross-attention maps of a trained model, averaged over signal and background events.

    python tools/attention_maps.py -c data/jets_kin.yaml -n networks/multiscale_cross.py -m MODEL.pt \\
        --files 'datasets/hh4b/test/*.root' --outdir DIR [--events N] [--layer -1] [-o NAME VALUE ...]

See docs/interpretability.md and `python tools/attention_maps.py --help`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from multiscale.interpret.cli import attention_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(attention_main())
