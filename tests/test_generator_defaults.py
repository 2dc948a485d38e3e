"""The generator's defaults are written once: the command line, the run settings and the reconstruction's
preselection read RunConfig and definitions.Preselection, and every tool's default m_H is the benchmark's."""

from dataclasses import asdict, fields, replace

import pytest

from multiscale.definitions import BENCHMARK_MASS, PRESELECTION, Preselection
from multiscale.evaluation import CutBasedSelection
from multiscale.evaluation.cli import evaluate_parser
from multiscale.generation.cli import parse_config, preselection_options
from multiscale.generation.pythia_setup import process_settings
from multiscale.generation.run import RunConfig


def parsed(tmp_path, *options):
    return parse_config(["--process", "hh4b", "--events", "10", "--outdir", str(tmp_path), *options])


def test_the_command_line_without_options_is_the_run_configs_defaults(tmp_path):
    """Every default of generate_events.py (seed, chunking, m_H, pT-hat, cuts, tagging, merging) is RunConfig's."""
    assert parsed(tmp_path) == RunConfig(process="hh4b", events=10, outdir=str(tmp_path))


def test_a_default_run_applies_the_preselection_of_definitions(tmp_path):
    config = parsed(tmp_path)
    assert config.selection() == PRESELECTION
    # the sidecars and manifests record the cuts among the settings (a rerun compares them)
    settings = asdict(config)
    assert {name: settings[name] for name in asdict(PRESELECTION)} == asdict(PRESELECTION)


@pytest.mark.parametrize("cut", [field.name for field in fields(Preselection)])
def test_each_cut_is_an_option_that_changes_that_cut_only(tmp_path, cut):
    """preselection_options (a config's cuts as options) reaches every cut of Preselection through the command line."""
    value = getattr(PRESELECTION, cut) * 2  # within every cut's valid range (pT cuts below sqrt(s)/2)
    config = parsed(tmp_path, *preselection_options({cut: value}))
    assert config.selection() == replace(PRESELECTION, **{cut: value})


def test_a_preselection_option_that_is_no_cut_is_refused():
    with pytest.raises(ValueError, match="'fj3_ptmin' is no cut; the cuts are fj1_ptmin"):
        preselection_options({"fj1_ptmin": 250, "fj3_ptmin": 100})


def test_every_default_mass_is_the_benchmarks(tmp_path):
    """The generator's m_H, Pythia's H mass, the cut-based m_jj window and the evaluation's --mH agree."""
    assert parsed(tmp_path).mH == BENCHMARK_MASS
    assert f"35:m0 = {BENCHMARK_MASS}" in process_settings("hh4b")
    assert CutBasedSelection().mH == BENCHMARK_MASS
    assert evaluate_parser().parse_args(["pred.root", "--outdir", str(tmp_path)]).mH == BENCHMARK_MASS
