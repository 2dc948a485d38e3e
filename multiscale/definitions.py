"""The experiment's definitions, each written once: the models, the feature sets, the generator's
preselection, the luminosity and the mass points of the study.

Read by ``train_multiscale.sh`` (through the command line below), the workflow (``workflow/``), the
generator, the evaluation, the study code and the benchmarks: a change of a cut or a model is one edit
here. The ntuple's branch names live beside it in ``schema.py``; the study's sizes and samples in
``config/mass_scan.yaml``. Standard library only: the driver reads it before the venv exists.

    python3 -m multiscale.definitions models                     # the model names, one a line
    python3 -m multiscale.definitions presets                    # the presets (FEATURES), one a line
    python3 -m multiscale.definitions weaver-options MODEL FEATURES
        # the data config, then weaver's network options (-o NAME VALUE), one word a line
"""

import sys
from dataclasses import dataclass, fields
from pathlib import Path

# the data configs below (data/*.yaml) are relative to it: they ship inside the package; the
# repository's data/*.yaml link to them, for weaver's command line
PACKAGE_DIR = Path(__file__).resolve().parent

# integrated luminosity of the expected yields and limits (HL-LHC), fb^-1
LUMINOSITY_FB = 3000.0

# the heavy-scalar mass of the paper's benchmark (GeV): the default m_H of the generator and the evaluation
BENCHMARK_MASS = 1000.0

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


def preselection_options(changes):
    """The options of generate_events.py that set the preselection cuts ``changes`` ({field of
    Preselection: value}), e.g. {"fj1_ptmin": 250} -> ["--fj1-ptmin", "250"]: a config can name
    the cuts it changes, the others keep their defaults. ValueError for a name that is no cut."""
    cuts = [field.name for field in fields(Preselection)]
    unknown = [name for name in changes if name not in cuts]
    if unknown:
        raise ValueError(f"preselection: {unknown[0]!r} is no cut; the cuts are {', '.join(cuts)}")
    return [word for name, value in changes.items() for word in (f"--{name.replace('_', '-')}", str(value))]


@dataclass(frozen=True)
class Model:
    data_config: str  # weaver data config, relative to the repository root and to PACKAGE_DIR alike
    fusion: str | None  # how the scales meet ('cross', 'concat'); None: one stream, nothing to fuse
    streams: str
    paper: str  # the model of arXiv:2401.00452 it stands for
    # the data config appends the m_H hypothesis to the object features (a parameterised network)
    mass_hypothesis: bool = False


# ./train_multiscale.sh MODEL [FEATURES]: the README's model table. This order is the study's: its tables and
# plot legends list the models so, and each model's colour and marker follow from its place
# (multiscale/study/report.py, plots.py); the study's models come first, so that theirs stay put.
MODELS = {
    "cross": Model("data/jets_kin.yaml", "cross", "both jets' constituents + 9 objects", "model_3"),
    "concat": Model("data/jets_kin.yaml", "concat", "same", "baseline"),
    "jets": Model("data/jets.yaml", None, "constituents only", "model_1 (local)"),
    "kin": Model("data/kin.yaml", None, "objects only", "model_1 (global)"),
    "cross_param": Model("data/jets_kin_param.yaml", "cross", "as cross, + the m_H hypothesis on every object token",
                         "parameterised (arXiv:1601.07913)", mass_hypothesis=True),
    "cross3": Model("data/jet1_jet2_kin.yaml", "cross", "fj1, fj2 constituents + objects", "model_2"),
}

# The network's presets: named sets of options over the defaults of multiscale.nn.NetworkConfig. A preset's
# name is the FEATURES of ./train_multiscale.sh MODEL [FEATURES] (and of the study's config) and weaver's
# -o preset NAME. Here rather than in multiscale/nn/config.py: the driver reads the names before the venv exists.
_PAPER = dict(
    jet_dim=40, jet_heads=5, jet_layers=2,
    obj_dim=40, obj_heads=5, obj_layers=2,
    ffn_ratio=1.0, jet_max_features=3, obj_max_features=5,
)
PRESETS = {
    # NetworkConfig's defaults, every input feature: what the demo uses
    "full": {},
    # the talk's configuration: jets x 3 features, objects 9 x 5, 5 heads and 2 layers per stream,
    # MLP 128-64. Differences forced by correctness: tokens are embedded (width 40 = 8 per head)
    # instead of attending at the raw feature width, and padding is masked.
    "paper": _PAPER,
    # the talk's configuration + the objects' b-tag (their 6th feature): the mass scan's, as the
    # cut-based selection it is compared with uses b-tags
    "paperb": {**_PAPER, "obj_max_features": 6},
    # 'paper' with 2 heads of 20 per attention layer instead of 5 of 8 (every stream and the
    # cross-attention): the same AUC at m_H = 1 TeV, paired over the mass scan's 5 folds, and faster
    # CPU training (docs/performance.md, "The attention shape")
    "paper_wide": {**_PAPER, "jet_heads": 2, "obj_heads": 2},
}
DEFAULT_PRESET = "full"
# the earlier name of 'full', still taken by -o preset: weaver command lines written with it keep working
PRESET_ALIASES = {"default": "full"}
FEATURES = tuple(PRESETS)  # the driver's word for a preset

# position (1-based) of the m_H hypothesis among the object features of data/jets_kin_param.yaml: a
# preset that keeps only the first object features keeps this many for a parameterised model
MASS_HYPOTHESIS_FEATURE = 7


def data_config_file(model):
    """The path of MODEL's data config as installed (inside the package: no checkout needed)."""
    return PACKAGE_DIR / MODELS[model].data_config


def network_options(model, features):
    """weaver's network options (``-o NAME VALUE``) of MODEL with the FEATURES preset, as a dict."""
    if model not in MODELS:
        raise ValueError(f"unknown MODEL '{model}' ({' | '.join(MODELS)})")
    if features not in PRESETS:
        raise ValueError(f"unknown FEATURES '{features}' ({' | '.join(PRESETS)})")
    definition = MODELS[model]
    options = {"fusion": definition.fusion} if definition.fusion else {}
    options["preset"] = features
    kept = PRESETS[features].get("obj_max_features")
    if definition.mass_hypothesis and kept is not None and kept < MASS_HYPOTHESIS_FEATURE:
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
        elif argv == ["presets"]:
            print("\n".join(PRESETS))
        elif len(argv) == 3 and argv[0] == "weaver-options":
            print("\n".join(weaver_arguments(*argv[1:])))
        else:
            raise ValueError("usage: python3 -m multiscale.definitions models | presets | weaver-options MODEL FEATURES")
    except ValueError as error:
        print(f"multiscale.definitions: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
