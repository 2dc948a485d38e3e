"""``tools/generate_events.py --lhe / --hepmc``: real MadGraph, Pythia 6 and EPOS files through the same
reconstruction as Pythia's built-in processes, and one clear line for each kind of bad input."""

import gzip
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from multiscale.check_inputs import check_files, needed_branches
from multiscale.weaver_io import load_data_config
from conftest import CKKWL_FILE, Z_THRESHOLDS
from tests.helpers import generate
from multiscale.generation import run, slices
from multiscale.generation.pythia_setup import make_pythia
from multiscale.generation.sources import inspect_hepmc, inspect_lhe

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
MADGRAPH = DATA / "madgraph5-3.5.8-pp_to_jj.lhe.gz"
TEVATRON_TTBAR = DATA / "pythia-6.413-ttbar.lhe"
EPOS = DATA / "eposlhc.hepmc3"
PYTHIA6 = DATA / "pythia6.hepmc3"
LOW_THRESHOLDS = ("--fj1-ptmin", "30", "--fj2-ptmin", "20")  # these files are not boosted
CONFIG = REPO / "data" / "jets_kin.yaml"


def sidecar(outdir):
    (path,) = Path(outdir).glob("*_0.json")
    return json.loads(path.read_text())


def first_events(path, n_events, target):
    """The Les Houches file ``path`` cut after its first ``n_events`` events (header and closing tag kept)."""
    text = gzip.open(path, "rt").read() if Path(path).suffix == ".gz" else Path(path).read_text()
    head, *events = text.split("<event>")
    assert len(events) > n_events  # so that none of the kept events holds the closing tag
    Path(target).write_text(head + "".join("<event>" + event for event in events[:n_events]) + "</LesHouchesEvents>\n")
    return Path(target)


@pytest.mark.slow
def test_madgraph_lhe_through_the_chain(tmp_path):
    """The cross section and the beams come from the file's <init> block, and weaver's reader takes the output."""
    madgraph = first_events(MADGRAPH, 250, tmp_path / "pp_to_jj.lhe")  # 250 of its 1000 events: ~90 accepted
    outdir = tmp_path / "out"
    generate("--process", "qcd", "--lhe", madgraph, "--outdir", outdir, *LOW_THRESHOLDS, "--jobs", "1")
    meta = sidecar(outdir)
    assert meta["source"]["beam_energies_gev"] == [6500.0, 6500.0]
    assert meta["xsec_fb"] == pytest.approx(6.996707e8 * 1e3, rel=1e-6)  # XSECUP of the <init> block, pb -> fb
    assert "<init> block" in meta["xsec_source"]
    assert meta["n_generated"] + meta["n_pythia_failures"] == 250  # every event of the file was read
    assert 0 < meta["n_accepted"] < 250
    events = uproot.open(outdir / "qcd_1_0.root")["Events"].arrays(["weight", "label", "is_signal", "fj1_pt"])
    assert np.all(events.label == 0) and np.all(events.is_signal == 0) and np.all(events.fj1_pt > 30)
    # weights: the accepted events' share of the file's cross section
    assert ak.sum(events.weight) == pytest.approx(meta["xsec_fb"] * meta["acceptance"], rel=1e-6)
    read_with_weaver(outdir / "qcd_1_0.root", meta["n_accepted"])


def read_with_weaver(path, n_events):
    """Every branch the data config needs, through weaver's own ROOT reader (and the project's check)."""
    from weaver.utils.data.fileio import _read_files

    check_files(str(CONFIG), [str(path)])
    branches = needed_branches(load_data_config(CONFIG))
    table = _read_files([str(path)], branches, treename="Events")
    assert len(table) == n_events and set(branches) <= set(table.fields)


@pytest.mark.slow
def test_lhe_signal_trains_with_the_unchanged_data_config(tmp_path):
    """An LHE sample labelled signal fills the branches the data configs read (label, is_signal, mH)."""
    generate("--process", "hh4b", "--mH", "1000", "--lhe", TEVATRON_TTBAR, "--outdir", tmp_path, *LOW_THRESHOLDS)
    events = uproot.open(next(tmp_path.glob("*.root")))["Events"].arrays(["label", "is_signal", "is_background", "mH"])
    assert np.all(events.label == 1) and np.all(events.is_signal == 1) and np.all(events.is_background == 0)
    assert np.all(events.mH == 1000)
    read_with_weaver(next(tmp_path.glob("*.root")), len(events))


@pytest.mark.integration
def test_a_model_trains_on_an_lhe_signal_with_the_unchanged_config(generated_dir, tmp_path):
    """train_multiscale.sh on LHE-showered events labelled signal against Pythia's QCD: no config edited."""
    import os
    import subprocess

    data = tmp_path / "data"
    # the file's first 200 events (~75 accepted) showered twice, and one of the two QCD files each: enough for
    # three steps of 32 and a test set of both classes
    for split, seed, background in (("train", "1", "qcd_1_0.root"), ("test", "2", "qcd_1_1.root")):
        generate("--process", "hh4b", "--lhe", MADGRAPH, "--events", "200", "--outdir", data / split,
                 *LOW_THRESHOLDS, "--seed", seed)
        os.symlink(generated_dir / background, data / split / background)
    env = {**os.environ, "DATADIR_hh4b": str(data), "MS_OUTDIR": str(tmp_path / "training")}
    result = subprocess.run(["./train_multiscale.sh", "cross", "paper", "--num-epochs", "1", "--batch-size", "32",
                             "--in-memory", "--steps-per-epoch", "3", "--num-workers", "0"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = uproot.open(tmp_path / "training" / "cross_paper" / "pred.root")["Events"].arrays(
        ["is_signal", "score_is_signal", "process"], library="np")
    assert set(np.unique(scores["process"])) == {0, 2} and np.all(np.isfinite(scores["score_is_signal"]))


def _pythia_to_hepmc(path, seed, n_events):
    """Write the first ``n_events`` successful Pythia hh4b events of ``seed`` as HepMC3. The history is kept
    through the first mother only (a consistent graph, and all the b-hadron labels read: a hadron's chain
    runs through mother1), parents written before their children as the ASCII format needs."""
    import pyhepmc

    pythia = make_pythia("hh4b", seed)
    events = ak.drop_none(pythia.nextBatch(n_events + 20, errorMode="none"))[:n_events]
    with pyhepmc.open(path, "w") as writer:
        for number, event in enumerate(events):
            prt = event.prt[1:]  # Pythia's entry 0 is the event as a whole
            mother = ak.to_numpy(prt.mother1) - 1  # -1: none
            status = ak.to_numpy(prt.status)
            status = np.where(status > 0, 1, np.where(np.abs(status) == 12, 4, 2))
            momenta = np.column_stack([ak.to_numpy(prt.p[c]) for c in ("px", "py", "pz", "e")]).astype(np.float64)
            particles = [pyhepmc.GenParticle(pyhepmc.FourVector(*momenta[i]), int(pid), int(status[i]))
                         for i, pid in enumerate(ak.to_numpy(prt.id))]
            depth = np.zeros(len(particles), dtype=int)
            for i in range(len(particles)):  # initial-state showers put mothers after their daughters
                j = i
                while mother[j] >= 0:
                    depth[i] += 1
                    j = mother[j]
            hepmc = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            hepmc.event_number = number
            end_vertex = {}
            for i in np.argsort(depth, kind="stable"):
                hepmc.add_particle(particles[i])
                if mother[i] >= 0:
                    if mother[i] not in end_vertex:
                        end_vertex[mother[i]] = pyhepmc.GenVertex()
                        end_vertex[mother[i]].add_particle_in(particles[mother[i]])
                        hepmc.add_vertex(end_vertex[mother[i]])
                    end_vertex[mother[i]].add_particle_out(particles[i])
            hepmc.weights = [1.0]
            hepmc.cross_section = pyhepmc.GenCrossSection()
            hepmc.cross_section.set_cross_section(1.0, 0.1)  # pb
            writer.write(hepmc)


@pytest.mark.slow
def test_hepmc_of_pythia_events_gives_the_builtin_reconstruction(tmp_path):
    """One reconstruction path: Pythia's own events read back from HepMC3 give the same fat jets, b-hadron
    labels and object tokens as the built-in generation of the same events."""
    builtin, readback = tmp_path / "builtin", tmp_path / "hepmc"
    generate("--process", "hh4b", "--events", "12", "--seed", "5", "--outdir", builtin)
    meta = sidecar(builtin)
    hepmc_file = tmp_path / "hh4b.hepmc3"
    _pythia_to_hepmc(hepmc_file, meta["pythia_seed"], meta["n_generated"])
    generate("--process", "hh4b", "--hepmc", hepmc_file, "--seed", "5", "--outdir", readback)
    fields = ["fj1_pt", "fj1_sdmass", "fj2_tau2", "fj1_sj1_flavour", "fj2_sj2_flavour", "fj1_part_px", "fj2_part_charge",
              "obj_eta", "met"]
    expected = uproot.open(builtin / "hh4b_mH1000_5_0.root")["Events"].arrays(fields)
    got = uproot.open(readback / "hh4b_mH1000_5_0.root")["Events"].arrays(fields)
    assert len(got) == len(expected) == 12
    for field in fields:
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(got[field], axis=None)),
                                   ak.to_numpy(ak.flatten(expected[field], axis=None)), rtol=1e-5, atol=1e-5)
    assert sidecar(readback)["xsec_fb"] == pytest.approx(1e3)  # the file's GenCrossSection, pb -> fb


@pytest.mark.slow
def test_epos_hepmc_and_its_missing_cross_section(tmp_path):
    compressed = tmp_path / "epos.hepmc3.gz"  # compressed files are read as they are
    compressed.write_bytes(gzip.compress(EPOS.read_bytes()))
    generate("--process", "qcd", "--hepmc", compressed, "--xsec-fb", "1", "--outdir", tmp_path, "--fj1-ptmin", "1",
             "--fj2-ptmin", "1")
    meta = sidecar(tmp_path)
    assert meta["source"]["beam_energies_gev"] == [5000.0, 5000.0] and meta["source"]["has_hadron_record"]
    read_with_weaver(tmp_path / "qcd_1_0.root", meta["n_accepted"])
    result = generate("--process", "qcd", "--hepmc", PYTHIA6, "--outdir", tmp_path / "x", check=False)
    assert_one_line_error(result, PYTHIA6, "no cross section", tmp_path / "x")


def files_in(directory):
    """Every file under ``directory``, hidden ones too (none when it does not exist)."""
    return sorted(path for path in Path(directory).rglob("*") if path.is_file())


def assert_one_line_error(result, path, words, outdir, before=()):
    """A failed run: one line naming ``path`` and saying ``words``, and nothing written to ``outdir`` (the files
    ``before`` the run are all it holds)."""
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert str(Path(path).name) in message and words in message, message
    assert files_in(outdir) == sorted(before)


def _truncated_lhe(tmp_path):
    lines = gzip.open(MADGRAPH, "rt").read().splitlines(keepends=True)
    last_event = max(i for i, line in enumerate(lines) if line.strip().startswith("<event"))
    path = tmp_path / "cut.lhe"
    path.write_text("".join(lines[:last_event + 3]))  # the last event's first lines only
    return path


def _truncated_hepmc(tmp_path):
    path = tmp_path / "cut.hepmc3"
    lines = EPOS.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:len(lines) // 2]))
    return path


def _final_state_only_hepmc(tmp_path):
    """The EPOS event with its decay history dropped: final-state particles hung off the beams."""
    import pyhepmc

    (event,) = list(pyhepmc.open(EPOS))
    final = [p for p in event.particles if p.status == 1]
    beams = [p for p in event.particles if p.status == 4]
    arrays = [np.array([getattr(p.momentum, c) for p in beams + final]) for c in ("px", "py", "pz", "e")]
    out = pyhepmc.GenEvent()
    n = len(beams) + len(final)
    parents = np.array([[-1, -1]] * len(beams) + [[0, 1]] * len(final))
    out.from_hepevt(0, *arrays, np.zeros(n), np.array([p.pid for p in beams + final], dtype=np.int32),
                    np.array([4] * len(beams) + [1] * len(final), dtype=np.int32), parents=parents, fortran=False)
    path = tmp_path / "final_only.hepmc3"
    with pyhepmc.open(path, "w") as writer:
        writer.write(out)
    return path


@pytest.mark.parametrize("case", ["missing", "not_lhe", "truncated_lhe", "truncated_hepmc", "not_hepmc",
                                  "beams_differ", "nothing_passes", "no_hadron_record"])
@pytest.mark.slow
def test_bad_inputs_give_one_line_naming_the_file(tmp_path, case):
    outdir = tmp_path / "out"
    text_file = tmp_path / "notes.txt"
    text_file.write_text("these are not events\n")
    inputs = {
        "missing": ("--lhe", tmp_path / "absent.lhe", "no such file"),
        "not_lhe": ("--lhe", text_file, "not a Les Houches file"),
        "truncated_lhe": ("--lhe", _truncated_lhe(tmp_path), "truncated"),
        "truncated_hepmc": ("--hepmc", _truncated_hepmc(tmp_path), "truncated"),
        "not_hepmc": ("--hepmc", text_file, "HepMC3"),
        "beams_differ": ("--lhe", (MADGRAPH, TEVATRON_TTBAR), "beam energies"),
        "nothing_passes": ("--lhe", TEVATRON_TTBAR, "passed the preselection"),
        "no_hadron_record": ("--hepmc", _final_state_only_hepmc(tmp_path), "--no-btag-labels"),
    }
    option, paths, words = inputs[case]
    paths = paths if isinstance(paths, tuple) else (paths,)
    extra = ("--xsec-fb", "1") if option == "--hepmc" else ()
    result = generate("--process", "qcd", option, *paths, *extra, "--outdir", outdir, check=False)
    assert_one_line_error(result, paths[-1], words, outdir)
    if case == "no_hadron_record":  # the way out the message offers
        generate("--process", "qcd", option, *paths, *extra, "--no-btag-labels", "--outdir", outdir,
                 "--fj1-ptmin", "1", "--fj2-ptmin", "1")
        assert list(outdir.glob("*.root"))


@pytest.mark.slow
def test_input_files_are_chunks_and_reruns_keep_them(tmp_path):
    """Each input file is one output file (parallel jobs split the files); a rerun keeps a complete run."""
    copies = halves(TEVATRON_TTBAR, tmp_path)  # two files of one sample (an identical copy is refused)
    outdir = tmp_path / "out"
    generate("--process", "ttbar", "--lhe", *copies, "--jobs", "2", "--outdir", outdir, *LOW_THRESHOLDS)
    assert sorted(p.name for p in outdir.glob("*.root")) == ["ttbar_1_0.root", "ttbar_1_1.root"]
    again = generate("--process", "ttbar", "--lhe", *copies, "--outdir", outdir, *LOW_THRESHOLDS)
    assert "complete: kept" in again.stdout
    for argv in (["--events", "0"], ["--pthat-bias", "2"]):
        result = generate("--process", "ttbar", "--lhe", copies[0], *argv, "--outdir", outdir, check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1
    before = files_in(outdir)
    result = generate("--process", "ttbar", "--lhe", *copies, "--events", "101", "--outdir", outdir, check=False)
    assert_one_line_error(result, "--events 101", "the input files hold 100 events", outdir, before)


def halves(path, directory):
    """The Les Houches file ``path`` split into two files of its first and last events, header kept in both."""
    text = Path(path).read_text()
    head, rest = text.split("<event>", 1)
    events = ("<event>" + rest).replace("</LesHouchesEvents>", "").split("</event>")[:-1]
    middle = len(events) // 2
    files = []
    for name, part in (("a", events[:middle]), ("b", events[middle:])):
        files.append(Path(directory) / f"{name}.lhe")
        files[-1].write_text(head + "</event>".join(part) + "</event>\n</LesHouchesEvents>\n")
    return files


# --- big files -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_events_reads_the_first_n_events(tmp_path):
    """--events N with an input file: its first N events are read (it used to be refused)."""
    generate("--process", "qcd", "--lhe", MADGRAPH, "--events", "100", "--outdir", tmp_path, *LOW_THRESHOLDS)
    meta = sidecar(tmp_path)
    assert meta["n_generated"] + meta["n_pythia_failures"] == 100 and meta["source"]["event_range"] == [0, 100]
    assert meta["xsec_fb"] == pytest.approx(6.996707e8 * 1e3, rel=1e-6)  # still the file's cross section


def chunk_arrays(directory, fields=("event_id", "weight", "fj1_pt", "fj1_part_px", "obj_btag")):
    return {path.name: uproot.open(path)["Events"].arrays(fields) for path in sorted(Path(directory).glob("*.root"))}


@pytest.mark.slow
def test_jobs_split_one_file_into_event_ranges_whatever_jobs(tmp_path):
    """One input file, ranges of --events-per-file events: each its own chunk and file, read from a
    slice of the file; the same files whatever --jobs, and the ranges cover the events read once."""
    first_half, _ = halves(TEVATRON_TTBAR, tmp_path)  # a file of 50 events
    common = ("--process", "ttbar", "--lhe", first_half, "--events-per-file", "20", *LOW_THRESHOLDS)
    generate(*common, "--jobs", "1", "--outdir", tmp_path / "j1")
    generate(*common, "--jobs", "2", "--outdir", tmp_path / "j2")
    one, two = chunk_arrays(tmp_path / "j1"), chunk_arrays(tmp_path / "j2")
    assert list(one) == list(two) == ["ttbar_1_0.root", "ttbar_1_1.root", "ttbar_1_2.root"]
    for name in one:
        for field in one[name].fields:
            assert ak.all(ak.flatten(one[name][field], axis=None) == ak.flatten(two[name][field], axis=None)), field
    metas = [json.loads((tmp_path / "j2" / f"ttbar_1_{c}.json").read_text()) for c in range(3)]
    assert [m["source"]["event_range"] for m in metas] == [[0, 20], [20, 40], [40, 50]]
    assert sum(m["n_generated"] + m["n_pythia_failures"] for m in metas) == 50
    assert not list((tmp_path / "j2").glob(".*"))  # the slices are gone


def PYTHIA6_MANY(tmp_path):
    """The Pythia 6 HepMC3 event written 8 times (event numbers 0-7): a file of several events."""
    import pyhepmc

    (event,) = list(pyhepmc.open(PYTHIA6))
    path = tmp_path / "many.hepmc3"
    with pyhepmc.open(path, "w") as writer:
        for number in range(8):
            event.event_number = number
            writer.write(event)
    return path


def test_event_ranges_and_slices():
    assert slices.event_ranges([5, 3], 2) == [(0, 0, 2), (0, 2, 4), (0, 4, 5), (1, 0, 2), (1, 2, 3)]
    assert slices.event_ranges([5, 3], 4, limit=6) == [(0, 0, 4), (0, 4, 5), (1, 0, 1)]


@pytest.mark.parametrize("kind, path", [("lhe", MADGRAPH), ("hepmc", PYTHIA6_MANY)])
def test_a_slice_holds_the_header_and_the_range_of_events(tmp_path, kind, path):
    path = path(tmp_path) if callable(path) else path
    whole = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
    marker = "<event>" if kind == "lhe" else "\nE "
    pieces = whole.split(marker)
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as lines:
        target = slices.write_slice(kind, path, lines, 2, 5, tmp_path / "slice")
    text = Path(target).read_text()
    assert text.startswith(pieces[0])  # the header, <init> block included
    events = text.split(marker)[1:]
    assert len(events) == 3
    end = "</event>" if kind == "lhe" else "HepMC::"
    for got, expected in zip(events, pieces[3:6]):  # pieces[k]: event k - 1
        assert got.split(end)[0].strip() == expected.split(end)[0].strip()
    assert text.rstrip().endswith("</LesHouchesEvents>" if kind == "lhe" else "END_EVENT_LISTING")
    inspect = inspect_lhe if kind == "lhe" else inspect_hepmc
    assert inspect(target).n_events == 3


@pytest.mark.slow
def test_a_merged_file_split_into_ranges(tmp_path):
    """The merging applies within every range; each range's cross section is its own estimate."""
    generate("--process", "qcd", "--lhe", CKKWL_FILE, "--merging-scale", "20", "--events", "300",
             "--events-per-file", "150", "--jobs", "2", *Z_THRESHOLDS, "--outdir", tmp_path)
    metas = [json.loads((tmp_path / f"qcd_1_{c}.json").read_text()) for c in range(2)]
    for meta in metas:
        assert meta["merging"]["scheme"] == "CKKW-L" and meta["merging"]["n_input_events"] == 150
        assert meta["xsec_fb"] < 0.8 * meta["merging"]["xsec_before_fb"]
