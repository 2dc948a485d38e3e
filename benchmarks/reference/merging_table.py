"""What merging did to Les Houches runs of tools/generate_events.py, from their sidecars and files:
the markdown table of docs/generation.md ("What each kind of file gets"). In the repository root:

    python -m benchmarks.reference.merging_table /tmp/merge/*/

One row per output directory (one run): the merging applied and its scale, the input events read,
kept and vetoed, the cross section before (XSECUP) and after the merging, the cross-section shares
of the matrix-element jet multiplicities, then over the written events (weighted with ``weight``,
signs included): the fraction with an extra small-R jet (object slot ``jet``), the mean HT, the
fraction of negative weights and N_eff / N; last the shower time per input event and core (the
chunks' ``wall_time_s``, Pythia's initialisation included).
"""

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from multiscale.schema import OBJECT_SLOTS

FB_TO_PB = 1e-3


def run_row(directory):
    chunks = [json.loads(path.read_text()) for path in sorted(Path(directory).glob("*.json"))
              if not path.name.endswith(".manifest.json")]
    if not chunks:
        raise SystemExit(f"{directory}: no chunk sidecars")
    merging = [chunk["merging"] for chunk in chunks]
    n_input = np.array([m["n_input_events"] for m in merging], dtype=np.float64)
    after = np.average([chunk["xsec_fb"] for chunk in chunks], weights=n_input) * FB_TO_PB
    before = merging[0]["xsec_before_fb"] * FB_TO_PB
    jets = {}
    for m in merging:
        for n, entry in m["me_jet_multiplicity"].items():
            jets[int(n)] = jets.get(int(n), 0.0) + entry["xsec_fb"] * m["n_input_events"]
    total = sum(jets.values())
    events = ak.concatenate([uproot.open(Path(directory) / chunk["file"])["Events"].arrays(["weight", "obj_mask", "ht"])
                             for chunk in chunks])
    weight = ak.to_numpy(events.weight)
    extra_jet = ak.to_numpy(events.obj_mask[:, OBJECT_SLOTS.index("jet")])
    scale = merging[0].get("merging_scale_gev")
    return {
        "run": Path(directory).name,
        "merging": merging[0]["scheme"] + (f" ({scale:g} GeV)" if scale else ""),
        "read": int(n_input.sum()),
        "kept": sum(m["n_kept"] for m in merging),
        "vetoed": sum(m["n_vetoed"] for m in merging),
        "XSECUP pb": f"{before:.0f}",
        "after pb": f"{after:.0f}",
        "after / XSECUP": f"{after / before:.3f}",
        "ME jets 0 / 1 / 2 (xsec share)": " / ".join(f"{jets.get(n, 0.0) / total:.2f}" for n in range(3)),
        "written": len(weight),
        "extra jet": f"{(weight * extra_jet).sum() / weight.sum():.3f}",
        "mean HT GeV": f"{(weight * ak.to_numpy(events.ht)).sum() / weight.sum():.1f}",
        "w < 0": f"{(weight < 0).mean():.3f}",
        "N_eff / N": f"{weight.sum() ** 2 / np.square(weight).sum() / len(weight):.2f}",
        "ms / input event": f"{1e3 * sum(chunk['wall_time_s'] for chunk in chunks) / n_input.sum():.1f}",
    }


def markdown(rows):
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    lines += ["| " + " | ".join(str(row[key]) for key in keys) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference.merging_table", description=__doc__)
    parser.add_argument("directories", nargs="+", help="output directories of generate_events.py --lhe runs")
    print(markdown([run_row(directory) for directory in parser.parse_args(argv).directories]))


if __name__ == "__main__":
    main()
