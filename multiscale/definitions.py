"""The experiment's definitions, each written once: the models, the feature sets, the generator's
preselection, the luminosity and the mass points of the study.

Read by ``train_multiscale.sh`` (through the command line below), the workflow (``workflow/``), the
generator, the evaluation, the study code and the benchmarks: a change of a cut or a model is one edit
here. The ntuple's branch names live beside it in ``schema.py``; the study's sizes and samples in
``config/mass_scan.yaml``. Standard library only: the driver reads it before the venv exists.

    python3 -m multiscale.definitions models                     # the model names, one a line
    python3 -m multiscale.definitions weaver-options MODEL FEATURES
        # the data config, then weaver's network options (-o NAME VALUE), one word a line
"""

import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]  # where data/ lives (the data configs below are relative to it)

# integrated luminosity of the expected yields and limits (HL-LHC), fb^-1
LUMINOSITY_FB = 3000.0

# the heavy-scalar masses of the mass scan (GeV); the parameterised model's background draws its
# hypothesis from them (data/jets_kin_param.yaml)
STUDY_MASSES = (600, 800, 1000, 1500, 2000)


@dataclass(frozen=True)
class Preselection:
    """The two leading fat jets (anti-kT R = 1.0, |eta| below ``fj_etamax``) above these pT; constituents
    kept per fat jet."""

    fj1_ptmin: float = 450.0
    fj2_ptmin: float = 250.0
    fj_etamax: float = 2.0
    max_constituents: int = 128


# the generator's defaults (tools/generate_events.py); the mass scan lowers fj1_ptmin (config/mass_scan.yaml)
PRESELECTION = Preselection()


@dataclass(frozen=True)
class Model:
    data_config: str  # weaver data config, relative to the repository root
    fusion: str | None  # how the scales meet ('cross', 'concat'); None: one stream, nothing to fuse
    streams: str
    paper: str  # the model of arXiv:2401.00452 it stands for
    # the data config appends the m_H hypothesis to the object features (a parameterised network)
    mass_hypothesis: bool = False


# ./train_multiscale.sh MODEL [FEATURES]: the README's model table
MODELS = {
    "cross": Model("data/jets_kin.yaml", "cross", "both jets' constituents + 9 objects", "model_3"),
    "concat": Model("data/jets_kin.yaml", "concat", "same", "baseline"),
    "jets": Model("data/jets.yaml", None, "constituents only", "model_1 (local)"),
    "kin": Model("data/kin.yaml", None, "objects only", "model_1 (global)"),
    "cross3": Model("data/jet1_jet2_kin.yaml", "cross", "fj1, fj2 constituents + objects", "model_2"),
    "cross_param": Model("data/jets_kin_param.yaml", "cross", "as cross, + the m_H hypothesis on every object token",
                         "parameterised (arXiv:1601.07913)", mass_hypothesis=True),
}

# FEATURES -> the network preset (multiscale/nn/config.py): full (the defaults), paper (the talk's
# configuration), paperb (paper + the objects' b-tag, as used by the mass scan)
FEATURES = {"full": "default", "paper": "paper", "paperb": "paperb"}

# position (1-based) of the m_H hypothesis among the object features of data/jets_kin_param.yaml: a
# preset that keeps only the first object features keeps this many for a parameterised model
MASS_HYPOTHESIS_FEATURE = 7


def network_options(model, features):
    """weaver's network options (``-o NAME VALUE``) of MODEL with the FEATURES preset, as a dict."""
    if model not in MODELS:
        raise ValueError(f"unknown MODEL '{model}' ({' | '.join(MODELS)})")
    if features not in FEATURES:
        raise ValueError(f"unknown FEATURES '{features}' ({' | '.join(FEATURES)})")
    definition, preset = MODELS[model], FEATURES[features]
    options = {"fusion": definition.fusion} if definition.fusion else {}
    options["preset"] = preset
    if definition.mass_hypothesis and preset != "default":
        options["obj_max_features"] = MASS_HYPOTHESIS_FEATURE
    return options


def weaver_arguments(model, features):
    """[data config, '-o', NAME, VALUE, ...]: the values as weaver's literal_eval reads them."""
    words = [MODELS[model].data_config] if model in MODELS else []
    for name, value in network_options(model, features).items():
        words += ["-o", name, repr(value)]
    return words


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv == ["models"]:
            print("\n".join(MODELS))
        elif len(argv) == 3 and argv[0] == "weaver-options":
            print("\n".join(weaver_arguments(*argv[1:])))
        else:
            raise ValueError("usage: python3 -m multiscale.definitions models | weaver-options MODEL FEATURES")
    except ValueError as error:
        print(f"multiscale.definitions: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
