"""Tests of the event generator (tools/generate_events.py, multiscale/generation/).

Most tests read the session samples of the ``generated_dir`` fixture (tests/conftest.py) and
check physics: the signal's fat jets are Higgs-like and its dijet system peaks at m_H, QCD's
are not; constituents add up to their jet; b-tag rates follow the efficiencies.
"""

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import awkward as ak
import fastjet
import numpy as np
import pytest
import uproot
import vector

from multiscale import schema
from multiscale.generation import btagging, cli, run
from multiscale.generation.clustering import KtReclustering, _to_awkward, nsubjettiness
from multiscale.generation.writer import JAGGED_GROUPS
from multiscale.kinematics import rapidity, wrap_phi
from tests.helpers import generate

REPO = Path(__file__).resolve().parents[1]
M_H = 1000.0
M_HIGGS = 125.0
SLOT = {name: i for i, name in enumerate(schema.OBJECT_SLOTS)}


def run_generator(*args, check=True):
    """Run ``tools/generate_events.py`` with ``args`` in a fresh interpreter."""
    command = [sys.executable, str(REPO / "tools" / "generate_events.py"), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return result


def expected_files(process, events, per_file, seed):
    stem = f"hh4b_mH{M_H:g}" if process == "hh4b" else process
    return [f"{stem}_{seed}_{chunk}.root" for chunk in range(-(-events // per_file))]


def load(directory, process):
    """All events of ``process`` in ``directory`` (files in chunk order) as one awkward array."""
    files = sorted(directory.glob(f"{process}_*.root"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return ak.concatenate([uproot.open(f)[schema.TREE_NAME].arrays() for f in files])


@pytest.fixture(scope="module")
def samples(generated_dir, generated_samples):
    return {process: load(generated_dir, process) for process in generated_samples["events"]}


def fraction_in(values, low, high):
    values = np.asarray(values)
    return np.mean((values > low) & (values < high))


# ---------------------------------------------------------------------------------------------
# files and schema


@pytest.mark.slow
def test_files_are_ttrees_with_every_schema_branch(generated_dir, generated_samples):
    written = sorted(p.name for p in generated_dir.glob("*.root"))
    seed = generated_samples["seed"]
    expected = sorted(name for process, (n, k) in generated_samples["events"].items() for name in expected_files(process, n, k, seed))
    assert written == expected
    assert not list(generated_dir.glob(".*")), "temporary files left behind"
    for path in generated_dir.glob("*.root"):
        with uproot.open(path) as f:
            assert [key.split(";")[0] for key in f.keys()] == [schema.TREE_NAME]
            tree = f[schema.TREE_NAME]
            assert tree.classname == "TTree"
            counters = {f"n{group}" for group in JAGGED_GROUPS}  # uproot's, shared by each jagged group
            assert set(tree.keys()) - counters == set(schema.all_branches())  # the schema names every branch written
            assert f.file.fCompress == uproot.LZ4(4).code


@pytest.mark.slow
def test_json_sidecar_matches_file(generated_dir, generated_samples):
    seed = generated_samples["seed"]
    for process, (events, per_file) in generated_samples["events"].items():
        for name in expected_files(process, events, per_file, seed):
            meta = json.loads((generated_dir / name).with_suffix(".json").read_text())
            tree = uproot.open(generated_dir / name)[schema.TREE_NAME]
            assert meta["n_accepted"] == tree.num_entries
            assert meta["n_generated"] >= meta["n_accepted"]
            assert meta["versions"]["pythia8mc"] == metadata.version("pythia8mc")  # the installed one (the pin's)
            assert meta["settings"]["process"] == process and meta["seed"] == seed
            arrays = tree.arrays(["weight", "xsec_fb", "acceptance"], library="np")
            np.testing.assert_allclose(arrays["weight"], meta["xsec_fb"] / meta["n_generated"], rtol=1e-12)
            np.testing.assert_allclose(arrays["acceptance"], meta["n_accepted"] / meta["n_generated"], rtol=1e-12)
            assert meta["xsec_source"] == "pythia sigmaGen"


@pytest.mark.slow
def test_event_scalars(samples, generated_samples):
    for process, (events, _) in generated_samples["events"].items():
        a = samples[process]
        assert len(a) == events
        signal = process in schema.SIGNAL_PROCESSES
        assert np.all(a.process == schema.PROCESS_CODES[process])
        assert np.all(a.label == int(signal))
        assert np.all(a.is_signal == float(signal)) and np.all(a.is_signal + a.is_background == 1.0)
        assert np.all(a.mH == (M_H if signal else 0.0))
        assert len(np.unique(a.event_id)) == events
        assert np.all(a.weight > 0)
        # Pythia's cross sections: QCD (pTHat > 300 GeV) is a few times 1e7 fb, far above ttbar
        assert np.all(a.xsec_fb > 0)
    assert samples["qcd"].xsec_fb[0] > 100 * samples["ttbar"].xsec_fb[0]


@pytest.mark.slow
def test_fatjet_selection(samples):
    for a in samples.values():
        assert np.all(a.fj1_pt > 450) and np.all(a.fj2_pt > 250) and np.all(a.fj1_pt >= a.fj2_pt)
        assert np.all(np.abs(a.fj1_eta) < 2.0) and np.all(np.abs(a.fj2_eta) < 2.0)
        assert np.all(a.fj1_sdmass <= a.fj1_mass + 1e-3)
        # kT axes are not minimised, so tau_N may rise with N in a few jets: compare medians
        taus = np.column_stack([a.fj1_tau1, a.fj1_tau2, a.fj1_tau3])
        assert np.all((taus >= 0) & (taus < 1.5)) and np.all(np.diff(np.median(taus, axis=0)) < 0)


# ---------------------------------------------------------------------------------------------
# physics


@pytest.mark.slow
def test_signal_fatjets_are_higgs_like_and_qcd_not(samples):
    sig, qcd = samples["hh4b"], samples["qcd"]
    sig_sd = np.concatenate([sig.fj1_sdmass, sig.fj2_sdmass])
    qcd_sd = np.concatenate([qcd.fj1_sdmass, qcd.fj2_sdmass])
    assert 105 < np.median(sig_sd) < 135, "signal soft-drop mass should peak near 125 GeV"
    assert fraction_in(sig_sd, 90, 150) > 0.5
    assert np.median(qcd_sd) < 70 and fraction_in(qcd_sd, 90, 150) < 0.3
    # two-prong substructure: tau21 lower for H -> bb than for QCD jets
    assert np.median(sig.fj1_tau2 / sig.fj1_tau1) < np.median(qcd.fj1_tau2 / qcd.fj1_tau1) - 0.1


@pytest.mark.slow
def test_dijet_mass_peaks_at_mH(samples):
    sig, qcd = samples["hh4b"], samples["qcd"]
    m_sig = sig.obj_mass[:, SLOT["H_cand"]].to_numpy()
    m_qcd = qcd.obj_mass[:, SLOT["H_cand"]].to_numpy()
    assert abs(np.median(m_sig) - M_H) < 0.05 * M_H
    window = (0.95 * M_H, 1.05 * M_H)
    assert fraction_in(m_sig, *window) > 0.35
    assert fraction_in(m_sig, *window) > 2 * fraction_in(m_qcd, *window)
    # a peak, not QCD's broad falling spectrum: half the width between the quartiles
    iqr = lambda m: np.subtract(*np.percentile(m, [75, 25]))  # noqa: E731
    assert iqr(m_sig) < 0.5 * iqr(m_qcd)
    # the token is the fj1 + fj2 system
    fj = [vector.array({"pt": sig[f"{p}_pt"], "eta": sig[f"{p}_eta"], "phi": sig[f"{p}_phi"], "E": sig[f"{p}_energy"]})
          for p in ("fj1", "fj2")]
    np.testing.assert_allclose(m_sig, (fj[0] + fj[1]).mass, rtol=1e-3)


@pytest.mark.slow
def test_nsubjettiness_matches_fastjet_contrib(samples):
    """The numpy tau_N equals fjcontrib's NormalizedMeasure(1, R0=1) + KT_Axes (via fastjet's awkward API)."""
    a = samples["ttbar"]
    a = a[a.fj1_nparticles <= 128]  # full constituent lists only
    px, py, pz, e = (ak.to_numpy(ak.flatten(a[f"fj1_part_{f}"])).astype(np.float64) for f in ("px", "py", "pz", "energy"))
    counts = ak.to_numpy(ak.num(a.fj1_part_px))
    ours = nsubjettiness(px, py, pz, e, counts, KtReclustering(px, py, pz, e, counts))
    sequence = fastjet.ClusterSequence(_to_awkward(px, py, pz, e, counts), fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))
    contrib = ak.to_numpy(sequence.njettiness(measure_definition="NormalizedMeasure", axes_definition="KT_Axes",
                                              njets=[1, 2, 3], beta=1.0, R0=1.0))
    np.testing.assert_allclose(ours, contrib, rtol=1e-4)
    np.testing.assert_allclose(ours, np.column_stack([a.fj1_tau1, a.fj1_tau2, a.fj1_tau3]), rtol=1e-4)


@pytest.mark.slow
def test_constituents_sum_to_fatjet(samples):
    for a in samples.values():
        for prefix in schema.FATJET_PREFIXES:
            n = a[f"{prefix}_nparticles"].to_numpy()
            stored = ak.num(a[f"{prefix}_part_px"]).to_numpy()
            np.testing.assert_array_equal(stored, np.minimum(n, 128))
            full = n <= 128
            assert full.mean() > 0.5
            jet = vector.array({f: a[f"{prefix}_{f}"].to_numpy()[full] for f in ("pt", "eta", "phi", "energy")})
            sums = {f: ak.sum(a[f"{prefix}_part_{f}"][full], axis=1).to_numpy() for f in ("px", "py", "pz", "energy")}
            scale = jet.E
            for f, ref in (("px", jet.px), ("py", jet.py), ("pz", jet.pz), ("energy", jet.E)):
                np.testing.assert_allclose(sums[f] / scale, ref / scale, atol=1e-5)
            pt = np.hypot(a[f"{prefix}_part_px"], a[f"{prefix}_part_py"])
            assert ak.all(pt[:, :-1] >= pt[:, 1:]), "constituents must be sorted by pT"


@pytest.mark.slow
def test_deta_dphi_relative_to_jet_axis_and_wrapped(samples):
    for a in samples.values():
        for prefix in schema.FATJET_PREFIXES:
            px, py, pz = (a[f"{prefix}_part_{f}"] for f in ("px", "py", "pz"))
            eta = np.arcsinh(pz / np.hypot(px, py))
            phi = np.arctan2(py, px)
            deta, dphi = a[f"{prefix}_part_deta"], a[f"{prefix}_part_dphi"]
            assert ak.all(np.abs(deta - (eta - a[f"{prefix}_eta"])) < 1e-4)
            expected = wrap_phi(ak.to_numpy(ak.flatten(phi - a[f"{prefix}_phi"])))
            dphi_flat = ak.to_numpy(ak.flatten(dphi))
            assert np.all(np.abs(wrap_phi(dphi_flat - expected)) < 1e-4)
            assert np.all((dphi_flat >= -np.pi) & (dphi_flat < np.pi))
            # near the axis even where the raw azimuths straddle +-pi
            assert np.mean(np.abs(dphi_flat) < 1.0) > 0.99
            # clustered within R = 1 in (rapidity, phi) of the jet, up to axis recoil of soft particles
            e, jet_e = a[f"{prefix}_part_energy"], a[f"{prefix}_energy"]
            jet_pz = a[f"{prefix}_pt"] * np.sinh(a[f"{prefix}_eta"])
            dy = ak.to_numpy(ak.flatten(rapidity(pz, e) - rapidity(jet_pz, jet_e)))
            assert np.mean(np.hypot(dy, dphi_flat) < 1.0) > 0.98
    assert np.any(np.abs(np.concatenate([ak.to_numpy(ak.flatten(a.fj1_part_dphi)) for a in samples.values()])) > 0.5)


@pytest.mark.slow
def test_subjet_btag_rates(samples):
    sig, qcd = samples["hh4b"], samples["qcd"]
    subjets = slice(SLOT["fj1_sj1"], SLOT["fj2_sj2"] + 1)
    sig_rate = ak.mean(sig.obj_btag[:, subjets][sig.obj_mask[:, subjets] == 1])
    qcd_rate = ak.mean(qcd.obj_btag[:, subjets][qcd.obj_mask[:, subjets] == 1])
    assert 0.5 < sig_rate < 0.8, "most signal subjets hold a B hadron, tagged with 77% efficiency"
    assert qcd_rate < 0.15 and sig_rate > 4 * qcd_rate
    # per truth flavour the rate is the configured efficiency (binomial, 4 sigma)
    for flavour, efficiency in ((5, 0.77), (0, 0.01)):
        tags, labels = [], []
        for a in samples.values():
            for name in ("fj1_sj1", "fj1_sj2", "fj2_sj1", "fj2_sj2"):
                present = a.obj_mask[:, SLOT[name]] == 1
                tags.append(a.obj_btag[:, SLOT[name]][present].to_numpy())
                labels.append(a[f"{name}_flavour"][present].to_numpy())
        tags, labels = np.concatenate(tags), np.concatenate(labels)
        selected = tags[labels == flavour]
        assert len(selected) > 300
        sigma = np.sqrt(efficiency * (1 - efficiency) / len(selected))
        assert abs(selected.mean() - efficiency) < 4 * sigma + 1e-3
    nbtag = sig.fj1_nbtag.to_numpy()
    np.testing.assert_array_equal(nbtag, ak.sum(sig.obj_btag[:, SLOT["fj1_sj1"]:SLOT["fj1_sj2"] + 1], axis=1).to_numpy())


@pytest.mark.slow
def test_object_tokens(samples):
    absent_seen = 0
    for a in samples.values():
        assert np.all(ak.num(a.obj_pt) == schema.N_OBJECTS)
        fields = {f: a[f"obj_{f}"].to_numpy() for f in schema.OBJECT_FIELDS}
        present = fields["mask"] == 1
        assert np.all(np.isin(fields["mask"], (0, 1))) and np.all(np.isin(fields["btag"], (0, 1)))
        # absent objects: every field zero (type included, see objects.py)
        for f, values in fields.items():
            assert np.all(values[~present] == 0), f"obj_{f} not zero for an absent object"
        absent_seen += (~present).sum()
        np.testing.assert_array_equal(fields["type"][present], np.nonzero(present)[1] + 1)
        # fat jets, H candidate and MET are always there; the fat-jet tokens repeat the fj branches
        for slot in ("fj1", "fj2", "H_cand", "MET"):
            assert np.all(present[:, SLOT[slot]])
        for slot in ("fj1", "fj2"):
            for f in ("pt", "eta", "phi", "energy", "mass"):
                np.testing.assert_allclose(fields[f][:, SLOT[slot]], a[f"{slot}_{f}"].to_numpy(), rtol=1e-5)
        met = SLOT["MET"]
        np.testing.assert_allclose(fields["pt"][:, met], a.met.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(fields["phi"][:, met], a.met_phi.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(fields["energy"][:, met], fields["pt"][:, met], rtol=1e-6)
        assert np.all(fields["eta"][:, met] == 0) and np.all(fields["mass"][:, met] == 0)
        # the extra jet: small-R, pT > 30 GeV, away from both fat jets, and part of HT
        jet = SLOT["jet"]
        has_jet = present[:, jet]
        assert np.all(fields["pt"][has_jet, jet] > 30) and np.all(np.abs(fields["eta"][has_jet, jet]) < 2.5)
        for slot in ("fj1", "fj2"):
            dr = np.hypot(fields["eta"][:, jet] - fields["eta"][:, SLOT[slot]],
                          wrap_phi(fields["phi"][:, jet] - fields["phi"][:, SLOT[slot]]))
            assert np.all(dr[has_jet] > 1.0)
        assert np.all(a.ht.to_numpy()[has_jet] >= fields["pt"][has_jet, jet] - 1e-3)
        # subjets: two per fat jet, sorted by pT, their sum not exceeding the fat jet's pT by much
        sj = fields["pt"][:, SLOT["fj1_sj1"]:SLOT["fj1_sj2"] + 1]
        assert np.all(sj[:, 0] >= sj[:, 1])
    assert absent_seen > 0, "the samples should contain events without the extra jet"


# ---------------------------------------------------------------------------------------------
# reproducibility and command line


@pytest.mark.slow
def test_same_seed_gives_identical_branches_whatever_jobs(tmp_path):
    """--jobs does not change the events, and a chunk made alone (--chunks, one workflow job) is the whole run's."""
    common = ("--process", "hh4b", "--events", 20, "--events-per-file", 10, "--seed", 7)
    # in this process (the command line has tests of its own): no interpreter start-up per run
    generate(*common, "--jobs", 1, "--outdir", tmp_path / "serial")
    generate(*common, "--jobs", 2, "--outdir", tmp_path / "parallel")
    generate(*common, "--chunks", 1, "--outdir", tmp_path / "one_chunk")
    generate(*common[:-1], 8, "--chunks", 0, "--outdir", tmp_path / "other_seed")  # only its chunk 0 is read
    names = [f"hh4b_mH1000_7_{chunk}.root" for chunk in (0, 1)]
    assert sorted(p.name for p in (tmp_path / "one_chunk").iterdir()) == ["hh4b_mH1000_7_1.json", names[1]]  # no manifest
    for name, other_run in [(names[0], "parallel"), (names[1], "parallel"), (names[1], "one_chunk")]:
        serial = uproot.open(tmp_path / "serial" / name)[schema.TREE_NAME].arrays()
        other = uproot.open(tmp_path / other_run / name)[schema.TREE_NAME].arrays()
        assert serial.fields == other.fields
        for field in serial.fields:
            assert ak.array_equal(serial[field], other[field]), (other_run, field)
    chunk0 = uproot.open(tmp_path / "serial" / names[0])[schema.TREE_NAME].arrays()
    chunk1 = uproot.open(tmp_path / "serial" / names[1])[schema.TREE_NAME].arrays()
    other = uproot.open(tmp_path / "other_seed" / "hh4b_mH1000_8_0.root")[schema.TREE_NAME].arrays()
    assert not np.array_equal(chunk0.fj1_pt, chunk1.fj1_pt), "chunks must use different seeds"
    assert not np.array_equal(chunk0.fj1_pt, other.fj1_pt), "another --seed must give other events"
    np.testing.assert_array_equal(chunk1.event_id, np.arange(10, 20))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--process", "zprime", "--events", "10"], "invalid choice: 'zprime'"),
        (["--process", "qcd", "--events", "0"], "--events must be positive"),
        (["--process", "qcd", "--events", "-3"], "--events must be positive"),
        (["--process", "hh4b", "--events", "10", "--mH", "200"], "not above the hh threshold"),
        # what Pythia would fail on without a reason ("init() failed" or 100 failures in a row)
        (["--process", "hh4b", "--events", "10", "--mH", "250"], "not above the hh threshold"),
        (["--process", "hh4b", "--events", "10", "--mH", "nan"], "--mH must be a finite number"),
        (["--process", "hh4b", "--events", "10", "--mH", "inf"], "--mH must be a finite number"),
        (["--process", "hh4b", "--events", "10", "--mH", "1e6"], "beyond the collision energy"),
        (["--process", "qcd", "--events", "10", "--pthat-min", "1e6"], "--pthat-min must lie in"),
        (["--process", "hh4b", "--events", "10", "--pthat-bias", "4"], "applies to qcd and ttbar"),
        (["--process", "qcd", "--events", "10", "--btag-eff", "1.5"], "--btag-eff: must lie in [0, 1], got 1.5"),
        (["--process", "qcd", "--events", "10", "--light-mistag", "nan"], "--light-mistag: must lie in [0, 1]"),
        (["--process", "qcd", "--events", "10", "--events-per-file", "5", "--chunks", "2"], "the run has chunks 0 to 1"),
    ],
)
def test_bad_input_gives_one_line_error(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_config([*args, "--outdir", str(tmp_path)])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and message in stderr and "Traceback" not in stderr


def test_unwritable_outdir_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    for outdir in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit):
            cli.parse_config(["--process", "qcd", "--events", "10", "--outdir", str(outdir)])
        stderr = capsys.readouterr().err
        assert stderr.count("\n") == 1 and "cannot write to --outdir" in stderr


def test_cli_error_has_no_traceback(tmp_path):
    result = run_generator("--process", "hh4b", "--events", "5", "--mH", "100", "--outdir", tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--mH" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


class _FailingPythia:
    """Every event fails, as a Pythia that cannot make this process would."""

    particleData = None

    def nextBatch(self, n, errorMode):  # noqa: N802 (Pythia's name)
        return ak.Array([None] * n)


def test_persistent_pythia_failures_raise(monkeypatch, tmp_path):
    from multiscale.generation.sources import pythia

    monkeypatch.setattr(pythia, "make_pythia", lambda *args: _FailingPythia())
    config = run.RunConfig(process="qcd", events=5, outdir=str(tmp_path))
    with pytest.raises(run.GenerationError, match="failed .* times in a row"):
        run.generate_chunk(config, 0)
    assert list(tmp_path.iterdir()) == []


def test_failure_runs_are_counted_across_batches():
    from multiscale.generation.sources import MAX_CONSECUTIVE_FAILURES, PythiaSource

    source = PythiaSource(_FailingPythia(), "test")
    for _ in range(MAX_CONSECUTIVE_FAILURES // 20 - 1):  # runs of failures carry over from batch to batch
        source.next(20)
    with pytest.raises(run.GenerationError, match=f"failed {MAX_CONSECUTIVE_FAILURES} times in a row"):
        source.next(20)


def test_chunk_seeds_are_distinct_and_reproducible():
    seeds = {run.chunk_seeds(1, chunk)[0] for chunk in range(50)} | {run.chunk_seeds(2, chunk)[0] for chunk in range(50)}
    assert len(seeds) == 100 and all(1 <= s <= 900_000_000 for s in seeds)
    assert run.chunk_seeds(3, 4)[0] == run.chunk_seeds(3, 4)[0]


# ---------------------------------------------------------------------------------------------
# b-tagging model


def test_heavy_flavour_of_pdg_ids():
    pid = np.array([511, -521, 531, 5122, -5232, 10511, 553, 100553, 421, 4122, -431, 443, 211, 2212, 5, 5101, 21, 22])
    expected = [5, 5, 5, 5, 5, 5, 0, 0, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(btagging.heavy_flavour(pid), expected)


def test_tag_decisions_follow_efficiencies():
    rng = np.random.default_rng(3)
    n = 20000
    flavour = np.repeat([[5, 4, 0]], n, axis=0)
    exists = np.ones_like(flavour, dtype=bool)
    exists[: n // 2, 0] = False
    tags = btagging.apply_tagging(flavour, exists, btagging.TagEfficiencies(0.77, 0.15, 0.01), rng)
    assert not tags[: n // 2, 0].any(), "absent jets are never tagged"
    for column, efficiency, count in ((0, 0.77, n // 2), (1, 0.15, n), (2, 0.01, n)):
        rate = tags[n - count :, column].mean()
        assert abs(rate - efficiency) < 4 * np.sqrt(efficiency * (1 - efficiency) / count)


# ---------------------------------------------------------------------------------------------
# weaver


@pytest.mark.slow
def test_weaver_loads_the_files(generated_dir, tmp_path):
    from torch.utils.data import DataLoader
    from weaver.utils.dataset import SimpleIterDataset

    config = tmp_path / "minimal.yaml"
    config.write_text(textwrap.dedent("""
        treename: Events
        preprocess:
          method: manual
          data_fraction: 1.0
        inputs:
          pf_features:
            length: 32
            pad_mode: constant
            vars:
              - [fj1_part_deta, null]
              - [fj1_part_dphi, null]
          ev_features:
            length: 9
            pad_mode: constant
            vars:
              - [obj_pt, null]
              - [obj_type, null]
              - [obj_mask, null]
        labels:
          type: simple
          value: [is_signal, is_background]
        observers: [event_id, weight, mH]
    """))
    files = {
        "sig": sorted(str(p) for p in generated_dir.glob("hh4b_*.root")),
        "bkg": sorted(str(p) for p in generated_dir.glob("qcd_*.root")),
    }
    dataset = SimpleIterDataset(files, str(config), for_training=False, fetch_by_files=True, fetch_step=4, name="test")
    inputs, labels, observers = next(iter(DataLoader(dataset, batch_size=64, num_workers=0)))
    assert tuple(inputs["pf_features"].shape) == (64, 2, 32)
    assert tuple(inputs["ev_features"].shape) == (64, 3, 9)
    types = inputs["ev_features"][:, 1].numpy()
    assert np.all((types == np.arange(1, 10)) | (types == 0)) and np.all(types[:, :2] == [1, 2])
    assert set(np.unique(labels["_label_"].numpy())) <= {0, 1}
    assert np.all(np.abs(inputs["pf_features"][:, 1].numpy()) < np.pi + 1e-6)
    assert set(observers) >= {"event_id", "weight", "mH"}


def test_tiny_acceptance_warns_and_progress_is_printed_off_a_terminal(capsys, monkeypatch):
    """--pthat-min far below the fat-jet thresholds: almost nothing passes; say so instead of
    looking like a hang, and print progress lines when stderr is not a terminal."""
    monkeypatch.setattr(run._Progress, "LINE_SECONDS", 0.0)
    config = run.RunConfig(process="qcd", events=10, outdir="unused", pthat_min=20.0)
    progress = run._Progress(config)
    progress(2500, 3)
    progress.close()
    err = capsys.readouterr().err
    assert "acceptance 0.0012 after 2500 generated qcd events" in err and "--pthat-min" in err
    assert "qcd: 3/10 accepted, 2500 generated" in err
