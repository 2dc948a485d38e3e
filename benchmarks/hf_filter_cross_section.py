"""The heavy-flavour filtered sample's cross section, measured directly.

Two Pythia runs with the study's QCD settings (pT-hat > 200 GeV, bias power 4), both built by
``pythia_setup.make_pythia`` as the generator builds them:

* unfiltered: the filter's criterion (``hf_filter.has_heavy_flavour``, on the parton-level event, in
  a hook that decides but never vetoes) recorded for every event; sigma_HF = sigma_inclusive x the
  weighted fraction that passes = the cross section x (sum of the passing events' weights / sum of
  all weights), its statistical uncertainty from the passing weights;
* filtered: the generator's ``require`` hook; Pythia's sigmaGen (and sigmaErr) of that run is what
  the generator writes as the filtered sample's ``xsec_fb``.

    python -m benchmarks.hf_filter_cross_section --tries 50000 --out hf_xsec.json   # 2 processes, ~7 core-minutes each

The two runs go in two processes. No preselection: both are cross sections before the fat-jet cuts,
which act on both samples alike.
"""

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from multiscale.generation.hf_filter import HeavyFlavourFilter
from multiscale.generation.pythia_setup import cross_section_fb, make_pythia

SETTINGS = {"pthat_min": 200.0, "pthat_bias": 4.0}


class RecordingFilter(HeavyFlavourFilter):
    """The filter's decision for every event, with its weight; vetoes nothing."""

    def __init__(self):
        super().__init__("require")
        self.records = []

    def doVetoPartonLevel(self, event):
        before = self.counts.n_passed
        super().doVetoPartonLevel(event)
        self.records.append((self.pythia.infoPython().weight(), self.counts.n_passed > before))
        return False


def unfiltered(tries, seed):
    hook = RecordingFilter()
    pythia = make_pythia("qcd", seed, user_hooks=hook, **SETTINGS)
    hook.attach(pythia)
    start = time.process_time()
    while len(hook.records) < tries:
        pythia.next()
    weight, passed = np.array(hook.records[:tries]).T
    passed = passed.astype(bool)
    fraction = weight[passed].sum() / weight.sum()
    # the ratio estimator's variance: sum w^2 (p - f)^2 / (sum w)^2
    fraction_error = np.sqrt(np.sum(weight**2 * (passed - fraction) ** 2)) / weight.sum()
    sigma = cross_section_fb(pythia)
    sigma_error = pythia.infoPython().sigmaErr() * 1e12
    return {"tries": tries, "passed": int(passed.sum()), "passed_fraction_weighted": float(fraction),
            "passed_fraction_error": float(fraction_error), "sigma_inclusive_fb": sigma,
            "sigma_inclusive_error_fb": sigma_error,
            "sigma_hf_fb": sigma * fraction,
            "sigma_hf_error_fb": sigma * fraction * np.hypot(fraction_error / fraction, sigma_error / sigma),
            "cpu_s": time.process_time() - start}


def filtered(tries, seed):
    hook = HeavyFlavourFilter("require")
    pythia = make_pythia("qcd", seed, user_hooks=hook, **SETTINGS)
    hook.attach(pythia)
    start = time.process_time()
    while hook.counts.n_tried < tries:
        pythia.next()
    return {**hook.summary(), "sigma_gen_fb": cross_section_fb(pythia),
            "sigma_gen_error_fb": pythia.infoPython().sigmaErr() * 1e12, "cpu_s": time.process_time() - start}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hf_filter_cross_section",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=50000, help="parton-level events per run (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=41, help="the unfiltered run's seed; the filtered run's is +1")
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    with ProcessPoolExecutor(2) as pool:
        direct = pool.submit(unfiltered, args.tries, args.seed)
        generator = pool.submit(filtered, args.tries, args.seed + 1)
        result = {"settings": SETTINGS, "unfiltered": direct.result(), "filtered": generator.result()}
    d, f = result["unfiltered"], result["filtered"]
    pull = (f["sigma_gen_fb"] - d["sigma_hf_fb"]) / np.hypot(f["sigma_gen_error_fb"], d["sigma_hf_error_fb"])
    result["ratio_filtered_over_direct"] = f["sigma_gen_fb"] / d["sigma_hf_fb"]
    result["pull"] = float(pull)
    print(f"unfiltered: {d['tries']} events, {d['passed']} pass, weighted fraction "
          f"{d['passed_fraction_weighted']:.5f} +- {d['passed_fraction_error']:.5f}, "
          f"sigma {d['sigma_inclusive_fb']:.4g} fb "
          f"-> sigma_HF = {d['sigma_hf_fb']:.4g} +- {d['sigma_hf_error_fb']:.2g} fb ({d['cpu_s']:.0f} s CPU)")
    print(f"filtered: {f['n_tried']} tried, {f['n_passed']} kept, sigmaGen {f['sigma_gen_fb']:.4g} +- "
          f"{f['sigma_gen_error_fb']:.2g} fb ({f['cpu_s']:.0f} s CPU)")
    print(f"filtered / direct = {result['ratio_filtered_over_direct']:.3f}, pull {pull:+.2f}")
    if args.out:
        with open(args.out, "w") as stream:
            json.dump(result, stream, indent=1)


if __name__ == "__main__":
    main()
