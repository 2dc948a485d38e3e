"""Facts written once and read everywhere: the model list (multiscale/definitions.py MODELS) orders the study's
tables and plot legends and gives every model its own style; the presets (definitions.PRESETS) are the driver's
FEATURES, the network wrapper's -o preset and what its errors list. A second copy that diverges fails here."""

import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib.colors import to_rgba

from multiscale import definitions
from multiscale.study import plots, report
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config

REPO = Path(__file__).resolve().parents[1]
WRAPPER = REPO / "networks" / "multiscale_cross.py"
REFERENCES = ["cut-based", "cut-based pooled"]  # the cut-based taggers the study reports beside the models
# small widths: the presets' own feature limits and layer counts stay as they are
SMALL = dict(jet_dim=16, jet_heads=2, obj_dim=16, obj_heads=2, cross_heads=2, mlp_dims=(8,))


@pytest.fixture(scope="module")
def jets_kin():
    return load_data_config(REPO / "data" / "jets_kin.yaml")


def definitions_cli(*args):
    """python -S: without site-packages, as the driver runs it before the venv exists."""
    return subprocess.run([sys.executable, "-S", "-m", "multiscale.definitions", *args], cwd=REPO,
                          capture_output=True, text=True)


def test_the_cli_lists_the_presets_and_models_with_the_standard_library_alone():
    presets, models = definitions_cli("presets"), definitions_cli("models")
    assert presets.returncode == 0, presets.stderr
    assert presets.stdout.split() == list(definitions.PRESETS)
    assert models.stdout.split() == list(definitions.MODELS)
    assert presets.stdout.split()[0] == definitions.DEFAULT_PRESET  # "the default first", as the wrapper's help says


@pytest.mark.parametrize("preset", list(definitions.PRESETS))
def test_every_preset_is_a_feature_set_the_wrapper_builds(jets_kin, preset):
    """Each preset: a FEATURES of the driver, and a -o preset of the weaver wrapper that builds a working model."""
    options = definitions.network_options("cross", preset)
    assert options["preset"] == preset
    torch.manual_seed(0)
    model, info = build_model(jets_kin, WRAPPER, **options, **SMALL)
    out = model.eval()(*synthetic_inputs(info, 2, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    for name, value in definitions.PRESETS[preset].items():
        if name not in SMALL:
            assert getattr(model.config, name) == value, f"preset {preset!r}: {name}"


def test_an_unknown_preset_is_refused_naming_every_preset(jets_kin):
    with pytest.raises(ValueError, match="unknown preset 'bogus'") as refused:
        build_model(jets_kin, WRAPPER, preset="bogus")
    assert all(name in str(refused.value) for name in definitions.PRESETS)
    with pytest.raises(ValueError, match="unknown FEATURES 'bogus'") as refused:
        definitions.network_options("cross", "bogus")
    assert all(name in str(refused.value) for name in definitions.PRESETS)


def test_the_default_preset_has_one_name_and_the_old_one_builds_the_same(jets_kin):
    """'full' (FEATURES) and 'default' (-o preset) were one preset under two names: one name now, the old one kept
    for weaver command lines written with it."""
    built = {name: build_model(jets_kin, WRAPPER, **({"preset": name} if name else {}))[0].config
             for name in (None, definitions.DEFAULT_PRESET, *definitions.PRESET_ALIASES)}
    assert len(set(built.values())) == 1
    assert definitions.DEFAULT_PRESET in definitions.FEATURES
    assert not set(definitions.PRESET_ALIASES) & set(definitions.PRESETS)


def summary_of(models):
    """A mass-scan summary with one entry per model, in the order given."""
    spread = {"mean": 0.8, "std": 0.01, "n": 2}
    entry = {"auc": spread, "limit_fb": spread, "significance": spread}
    return {"summary": {model: {"1000": entry, "2000": entry} for model in models},
            "luminosity_fb": definitions.LUMINOSITY_FB, "min_background_events": 10}


def shuffled_models():
    names = [*definitions.MODELS, *REFERENCES]
    random.Random(3).shuffle(names)
    assert names[:len(definitions.MODELS)] != list(definitions.MODELS)  # the order has to come from somewhere
    return names


def test_the_report_lists_every_model_in_the_order_of_the_definitions():
    table = report.mass_table(summary_of(shuffled_models()), "1000")
    rows = [line.split("|")[1].split(" (")[0].strip() for line in table.splitlines()[4:]]
    assert rows == [*definitions.MODELS, *REFERENCES]


def test_every_model_has_its_own_plot_style_and_the_report_order(tmp_path):
    fig = plots.limit_vs_mass(summary_of(shuffled_models()), tmp_path / "limit.png")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [*definitions.MODELS, *REFERENCES]
    styles = [(to_rgba(line.get_color()), line.get_marker()) for line in lines]
    assert len(set(styles)) == len(styles), "two models drawn alike"
    for line in lines:  # the colour of every other plot of the study (the ROC takes plots.STYLES)
        assert to_rgba(line.get_color()) == to_rgba(plots.STYLES[line.get_label()][0])
