"""What a generated sample costs in the analysis region: its effective MC events (N_eff) there per core-hour of
generation, the figure that says which sample to enlarge when the background's MC statistics limit a study.

    python -m multiscale.study.sample_cost --min-tags 3 datasets/mass_scan/truth_test/*.root

Each events file (truth-tagged test copies, or generator output) is paired with the generator's sidecar of the
same chunk, ``<generated>/<stem>.json`` (``--generated``: by default ``../generated`` beside the events), whose
``cpu_time_s`` is the chunk's generation time. A sample is the chunks of one generator run (the stem without its
``_<chunk>``). N_eff counts the truth-tag copies of one event as one MC event (yields.mc_statistics).
"""

import argparse
import json
from pathlib import Path

from ..cli_common import OneLineParser
from ..definitions import LUMINOSITY_FB
from ..evaluation.yields import event_index, mc_statistics, yield_weights
from ..schema import run_stem
from .predictions import read_events


def sample_of(path):
    """The generator run of a chunk file: ``qcd_hf_13_4.root`` -> ``qcd_hf_13``."""
    return run_stem(Path(path).stem)


def sidecar_of(path, generated=None):
    path = Path(path)
    return (Path(generated) if generated else path.parent.parent / "generated") / f"{path.stem}.json"


def cpu_seconds(sidecars):
    """The summed generation time of the chunks' sidecars (a missing one or one without ``cpu_time_s``: an error
    naming it, since the cost would be understated)."""
    total = 0.0
    for sidecar in sidecars:
        if not sidecar.is_file():
            raise SystemExit(f"{sidecar}: no generator sidecar for this chunk (pass --generated DIR)")
        seconds = json.loads(sidecar.read_text()).get("cpu_time_s")
        if seconds is None:
            raise SystemExit(f"{sidecar}: has no cpu_time_s (written by an older generator): its cost is unknown")
        total += float(seconds)
    return total


def sample_costs(files, min_tags, generated=None, luminosity_fb=LUMINOSITY_FB):
    """{sample: {chunks, core_hours, region_yield, effective_events, effective_per_core_hour, region_yield_share}}
    in the region of >= ``min_tags`` b-tagged subjets."""
    by_sample = {}
    for path in files:
        by_sample.setdefault(sample_of(path), []).append(Path(path))
    costs = {}
    for sample, paths in sorted(by_sample.items()):
        events = read_events(paths, min_tags)
        # one half of a stitched process on its own: its yields are its own cross section's
        statistics = mc_statistics(yield_weights(events, luminosity_fb, check_stitching=False), event_index(events))
        hours = cpu_seconds(sidecar_of(p, generated) for p in paths) / 3600.0
        costs[sample] = {"chunks": len(paths), "core_hours": hours, "region_yield": statistics["yield"],
                         "effective_events": statistics["effective_events"],
                         "effective_per_core_hour": statistics["effective_events"] / hours if hours > 0 else None}
    background = sum(c["region_yield"] for s, c in costs.items() if not s.startswith("hh4b"))
    for sample, cost in costs.items():
        cost["background_share"] = None if sample.startswith("hh4b") or not background else cost["region_yield"] / background
    return costs


def markdown(costs, min_tags):
    lines = [f"| sample | chunks | core-hours | N_eff at >= {min_tags} tags | N_eff per core-hour | share of the background |",
             "|---|---|---|---|---|---|"]
    for sample, c in costs.items():
        rate = "–" if c["effective_per_core_hour"] is None else f"{c['effective_per_core_hour']:,.0f}"
        share = "–" if c["background_share"] is None else f"{c['background_share']:.2f}"
        lines.append(f"| {sample} | {c['chunks']} | {c['core_hours']:.3f} | {c['effective_events']:.0f} | {rate} | {share} |")
    return "\n".join(lines)


def main(argv=None):
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="events files (truth-tagged test copies or generator output)")
    parser.add_argument("--min-tags", type=int, default=3, help="the region: >= this many b-tagged subjets (default 3)")
    parser.add_argument("--generated", help="the folder of the generator's sidecars (default: ../generated beside each file)")
    args = parser.parse_args(argv)
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        parser.error(f"no such events file: {missing[0]}")
    print(markdown(sample_costs(args.files, args.min_tags, args.generated), args.min_tags))


if __name__ == "__main__":
    main()
