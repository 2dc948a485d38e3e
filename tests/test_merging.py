"""Merged multi-jet samples (multiscale/generation/merging.py): a MadGraph file of several jet
multiplicities is showered only with the merging it was made for, or refused in one line.

Real files (tests/data/README.md): MadGraph 2.2.1 Z + 0, 1, 2 jets made for CKKW-L, the same file given
an MLM run card (conftest.mlm_sample), and aMC@NLO Z + 0, 1 jets made for FxFx. Before merging was set
up, each was showered event by event: every jet multiplicity kept in full, at the files' XSECUP.
"""

import gzip
import json

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import CKKWL_FILE, FXFX_FILE, MERGED_INPUT_EVENTS, mlm_sample

from multiscale.generation import cli, merging
from multiscale.generation.pythia_setup import GenerationError
from multiscale.generation.sources import inspect_lhe
from test_external_inputs import MADGRAPH

PB_TO_FB = 1e3


def sidecar(directory):
    (path,) = directory.glob("*_0.json")
    return json.loads(path.read_text())


def jet_xsec(meta):
    """Cross section (fb) of each matrix-element jet multiplicity (the sidecar's record)."""
    return {int(n): entry["xsec_fb"] for n, entry in meta["merging"]["me_jet_multiplicity"].items()}


def shares(xsec):
    return {n: value / sum(xsec.values()) for n, value in xsec.items()}


# --- what the header says ------------------------------------------------------------------------------------


def test_the_real_headers_are_read():
    ckkwl, fxfx, dijet = (inspect_lhe(path).madgraph for path in (CKKWL_FILE, FXFX_FILE, MADGRAPH))
    assert ckkwl.jet_multiplicities == [0, 1, 2] and [p.tag for p in ckkwl.processes] == ["1", "2", "3"]
    assert ckkwl.number("ickkw", int) == 0 and ckkwl.number("xqcut") == 3 and ckkwl.number("ktdurham") == -1
    assert not ckkwl.nlo and merging.pythia_process("f", ckkwl) == "pp>LEPTONS,NEUTRINOS"
    assert fxfx.jet_multiplicities == [0, 1] and fxfx.nlo and fxfx.number("ickkw", int) == 3 and fxfx.number("ptj") == 10
    assert dijet.jet_multiplicities == [2]
    plan = merging.plan("pp_to_jj", dijet)
    assert plan.scheme == "none" and plan.settings == ()  # one multiplicity, LO: showered as before


def header(processes, run_card, defines="define p = g u c d s u~ c~ d~ s~\ndefine j = g u c d s u~ c~ d~ s~\n"):
    text = f"<MG5ProcCard>\n{defines}{processes}\n</MG5ProcCard>\n<MGRunCard>\n{run_card}\n</MGRunCard>"
    return merging.read_madgraph_header(text)


@pytest.mark.parametrize("processes, expected", [
    ("generate p p > e+ e- @0\nadd process p p > e+ e- j @1", "pp>e+e-"),
    ("generate p p > t t~ $ h @0\nadd process p p > t t~ j @1\nadd process p p > t t~ j j @2", "pp>tt~"),
    ("generate p p > w+, w+ > l+ vl @0\nadd process p p > w+ j, w+ > l+ vl @1", "pp>w+"),
])
def test_merging_process_from_the_lowest_multiplicity(processes, expected):
    card = header(processes, " 0 = ickkw\n 20 = ktdurham\n 4 = maxjetflavor")
    plan = merging.plan("f", card)
    assert plan.scheme == "CKKW-L" and f"Merging:Process = {expected}" in plan.settings
    assert "Merging:TMS = 20" in plan.settings and "Merging:doKTMerging = on" in plan.settings
    assert f"Merging:nJetMax = {len(card.jet_multiplicities) - 1}" in plan.settings


def test_ptlund_gives_lund_merging_and_the_option_overrides_the_process():
    card = header("generate p p > go go @1\nadd process p p > go go j @2", " 0 = ickkw\n 30 = ptlund")
    with pytest.raises(GenerationError, match="f: cannot translate its hard process 'p p > go go'.*--merging-process"):
        merging.plan("f", card)
    plan = merging.plan("f", card, process="pp>{go,1000021}{go,1000021}")
    assert "Merging:doPTLundMerging = on" in plan.settings and "Merging:TMS = 30" in plan.settings
    assert "Merging:Process = pp>{go,1000021}{go,1000021}" in plan.settings


@pytest.mark.parametrize("case, argv, words", [
    ("ckkwl without a scale", [CKKWL_FILE], ["3 jet multiplicities (@1 @2 @3: 0, 1, 2 jets)", "no ktdurham or ptlund",
                                             "--merging-scale GEV", "xqcut = 3 GeV"]),
    ("ckkwl below the generation cut", [CKKWL_FILE, "--merging-scale", "2"], ["below the generation cut", "xqcut = 3"]),
    ("fxfx without a scale", [FXFX_FILE], ["FxFx sample (ickkw = 3", "ptj = 10 GeV", "--merging-scale GEV"]),
    ("fxfx below qCutME", [FXFX_FILE, "--merging-scale", "8"], ["must lie above", "ptj = 10 GeV"]),
    ("mlm below xqcut", ["mlm", "--merging-scale", "5"], ["below the generation cut xqcut = 10 GeV"]),
    ("process for mlm", ["mlm", "--merging-process", "pp>e+e-"], ["--merging-process applies to CKKW-L only"]),
    ("one multiplicity", [MADGRAPH, "--merging-scale", "20"], ["one jet multiplicity (2 jets)", "nothing to merge"]),
    ("unsupported ickkw", ["ickkw2"], ["ickkw = 2", "--merging none"]),
])
def test_undetermined_merging_is_refused_naming_file_and_option(tmp_path, capsys, case, argv, words):
    if argv[0] == "mlm":
        argv = [mlm_sample(tmp_path / "mlm.lhe.gz"), *argv[1:]]
    elif argv[0] == "ickkw2":
        text = gzip.open(CKKWL_FILE, "rt").read().replace(" 0        = ickkw ", " 2        = ickkw ")
        argv = [tmp_path / "ckkw.lhe", *argv[1:]]
        argv[0].write_text(text)
    outdir = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli.generate_main(["--process", "qcd", "--lhe", str(argv[0]), *map(str, argv[1:]), "--outdir", str(outdir)])
    message = str(exit_info.value.code)
    assert message.startswith(f"generate_events.py: error: {argv[0]}: ") and "\n" not in message, message
    for word in words:
        assert word in message, (word, message)
    assert not list(outdir.glob("*.root"))


def test_merging_options_need_les_houches_files(capsys):
    for argv in (["--merging-scale", "20", "--events", "5"], ["--merging", "none", "--hepmc", "x.hepmc3"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.parse_config(["--process", "qcd", "--outdir", "/tmp", *argv])
        assert exit_info.value.code == 2
    assert "applies to --lhe files only" in capsys.readouterr().err


# --- the real files, merged ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ckkwl_merging_removes_the_double_counting(merged_runs):
    merged, unmerged = sidecar(merged_runs["ckkwl"]), sidecar(merged_runs["unmerged"])
    record = merged["merging"]
    assert record["scheme"] == "CKKW-L" and record["merging_scale_gev"] == 20
    for setting in ("Merging:doKTMerging = on", "Merging:TMS = 20", "Merging:nJetMax = 2",
                    "Merging:Process = pp>LEPTONS,NEUTRINOS"):
        assert setting in record["pythia_settings"]
    xsecup = 3244.2094144 * PB_TO_FB  # the <init> block's three processes
    # unmerged: XSECUP as before; merged: what the merging kept, well below (double counting removed)
    assert unmerged["merging"]["scheme"] == "none" and unmerged["xsec_fb"] == pytest.approx(xsecup)
    assert merged["xsec_fb"] == record["xsec_after_fb"] and record["xsec_before_fb"] == pytest.approx(xsecup)
    assert merged["xsec_fb"] < 0.8 * xsecup and "after the CKKW-L merging" in merged["xsec_source"]
    assert record["n_input_events"] == MERGED_INPUT_EVENTS and record["n_vetoed"] > 0
    # the matrix-element jet multiplicity: unmerged, the <init> block's shares (0 jets 63%, 2 jets 10%);
    # merged, the 1- and 2-jet events below the merging scale are gone (the shower of 0 jets makes them)
    before, after = jet_xsec(unmerged), jet_xsec(merged)
    assert shares(before)[0] == pytest.approx(2061.04 / 3244.21, abs=0.08)
    assert shares(before)[2] == pytest.approx(336.50 / 3244.21, abs=0.05)
    assert after[1] + after[2] < 0.6 * (before[1] + before[2])
    assert shares(after)[1] + shares(after)[2] < shares(before)[1] + shares(before)[2]
    check_weights(merged_runs["ckkwl"], merged)


def check_weights(directory, meta):
    """The written weights sum to the cross section after merging times the preselection acceptance."""
    weight = uproot.open(directory / "qcd_1_0.root")["Events"]["weight"].array(library="np")
    assert weight.sum() == pytest.approx(meta["xsec_fb"] * meta["acceptance"], rel=1e-9)
    assert np.all(weight != 0)  # CKKW-L's weight-0 vetoes are dropped, not written
    return weight


@pytest.mark.slow
def test_mlm_file_is_merged_with_madgraphs_parameters(merged_runs):
    meta, unmerged = sidecar(merged_runs["mlm"]), sidecar(merged_runs["unmerged"])
    record = meta["merging"]
    assert record["scheme"] == "MLM" and record["merging_scale_gev"] == 10 and "xqcut" in record["scale_from"]
    for setting in ("JetMatching:merge = on", "JetMatching:setMad = on", "JetMatching:nJetMax = 2"):
        assert setting in record["pythia_settings"]
    assert meta["xsec_fb"] < 0.8 * record["xsec_before_fb"] and 0 < record["efficiency"] < 0.8
    before, after = jet_xsec(unmerged), jet_xsec(meta)
    assert after[1] + after[2] < 0.6 * (before[1] + before[2])
    check_weights(merged_runs["mlm"], meta)


@pytest.mark.slow
def test_fxfx_file_is_merged_and_keeps_its_negative_weights(merged_runs):
    meta = sidecar(merged_runs["fxfx"])
    record = meta["merging"]
    assert record["scheme"] == "FxFx" and record["nlo"]
    for setting in ("JetMatching:doFxFx = on", "JetMatching:qCut = 20", "JetMatching:qCutME = 10",
                    "JetMatching:nJetMax = 1", "TimeShower:globalRecoil = on", "SpaceShower:MEcorrections = off"):
        assert setting in record["pythia_settings"]
    xsecup = (1103.1729 + 2315.2232) * PB_TO_FB
    assert record["xsec_before_fb"] == pytest.approx(xsecup) and meta["xsec_fb"] < 0.85 * xsecup
    weight = check_weights(merged_runs["fxfx"], meta)
    assert meta["n_negative_weights"] == int((weight < 0).sum()) > 0.05 * len(weight)
    assert meta["source"]["weight_strategy"] == -4 and meta["source"]["n_negative_weights"] > 0


@pytest.mark.slow
def test_jet_multiplicity_is_read_from_the_hard_process(merged_runs):
    """Unmerged, the multiplicities come in the proportions of the <init> block's XSECUP (the file is
    unweighted): 2061, 847 and 336 pb for 0, 1 and 2 jets."""
    table = sidecar(merged_runs["unmerged"])["merging"]["me_jet_multiplicity"]
    events = np.array([table[str(n)]["events"] for n in range(3)])
    expected = np.array([2061.04, 846.68, 336.50]) / 3244.21 * MERGED_INPUT_EVENTS
    assert events.sum() == MERGED_INPUT_EVENTS
    assert np.all(np.abs(events - expected) < 4 * np.sqrt(expected))


@pytest.mark.slow
def test_merged_events_go_through_the_chain(merged_runs):
    events = uproot.open(merged_runs["ckkwl"] / "qcd_1_0.root")["Events"].arrays(["fj1_pt", "obj_mask"])
    assert len(events) > 100 and ak.all(events.fj1_pt > 20)
