"""Generator inputs as they really come (docs/robustness.md, "Generator inputs"): copies of the real files
of tests/data edited as tools and people do (a header missing a card or with its blocks reordered, slices
of different cross sections, a file given twice, corrupt events, a replaced input, a truncated output,
leftovers of a killed run). Each either does the right thing or stops with one line naming the file."""

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import uproot
from conftest import CKKWL_FILE, FXFX_FILE, Z_THRESHOLDS, mlm_sample

from multiscale import check_inputs
from multiscale.generation import cli, merging
from multiscale.generation.pythia_setup import GenerationError
from multiscale.generation.sources import (MAX_SKIPPED_FRACTION, HepMCSource, inspect_hepmc, inspect_inputs,
                                           inspect_lhe)
from test_external_inputs import LOW_THRESHOLDS, PYTHIA6, TEVATRON_TTBAR, halves
from tests.helpers import generate

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "data" / "jets_kin.yaml"


def one_line_error(result, *words):
    message = result.stderr.strip()
    assert result.returncode != 0 and "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, (word, message)
    return message


def main_error(argv):
    """The one-line SystemExit message of generate_main(argv)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.generate_main(list(map(str, argv)))
    message = str(exit_info.value.code)
    assert "\n" not in message, message
    return message


def read_text(path):
    return gzip.open(path, "rt").read() if str(path).endswith(".gz") else Path(path).read_text()


def without(text, card):
    """The Les Houches text with the header block ``card`` deleted (sed '/<card>/,/<\\/card>/d')."""
    edited = re.sub(rf"[ \t]*<{card}>.*?</{card}>[^\n]*\n", "", text, count=1, flags=re.DOTALL)
    assert edited != text, card
    return edited


REWEIGHTING = ("<initrwgt>\n<weightgroup name=\"scale\" combine=\"envelope\">\n<weight id=\"1\"> muR=0.5 </weight>\n"
               "<weight id=\"2\"> muR=2.0 </weight>\n</weightgroup>\n</initrwgt>\n")


# --- 1, 2: merged headers as they come ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlm_file(tmp_path_factory):
    """conftest's MLM sample, written (and gzip-compressed: ~1.5 s) once for the tests of this module."""
    return mlm_sample(tmp_path_factory.mktemp("mlm") / "z.lhe.gz")


def test_a_header_with_initrwgt_before_the_cards_is_read(tmp_path):
    """POWHEG and MadGraph often put <initrwgt> first: the cards after it are still the header's."""
    reordered = tmp_path / "ckkwl_rwgt.lhe"
    reordered.write_text(read_text(CKKWL_FILE).replace("<MGVersion>", REWEIGHTING + "<MGVersion>", 1))
    assert inspect_lhe(reordered).madgraph.jet_multiplicities == [0, 1, 2]
    # without a merging scale the CKKW-L file is refused, as the original is (it was showered unmerged)
    message = main_error(["--process", "qcd", "--lhe", reordered, "--events", "50", "--outdir", tmp_path / "out"])
    assert f"{reordered}: 3 jet multiplicities" in message and "--merging-scale GEV" in message, message


@pytest.mark.slow
def test_an_mlm_header_without_its_process_card_is_merged(tmp_path, mlm_file):
    """A MadGraph 4 / MadEvent header: the run card alone. The jet multiplicities come from the events, the
    merging from the run card, and the sidecar says which cards were found."""
    mg4 = tmp_path / "z_mg4.lhe"
    mg4.write_text(without(without(read_text(mlm_file), "MG5ProcCard"), "MGProcCard"))
    outdir = tmp_path / "out"
    result = generate("--process", "qcd", "--lhe", mg4, "--events", "100", *Z_THRESHOLDS, "--outdir", outdir)
    assert "MLM merging; jets 0, 1, 2" in result.stdout, result.stdout
    meta = json.loads((outdir / "qcd_1_0.json").read_text())
    record = meta["merging"]
    assert record["scheme"] == "MLM" and record["header_cards"] == ["MGRunCard"]
    assert record["jet_multiplicities"] == [0, 1, 2] and record["jet_multiplicities_from"].startswith("the events")
    assert meta["xsec_fb"] < 0.9 * record["xsec_before_fb"]  # the veto's cross section, not XSECUP


@pytest.mark.parametrize("sample, cards, words", [
    ("mlm", ["MGRunCard"], ["holds MG5ProcCard and MGProcCard (3 jet multiplicities: 0, 1, 2 jets) but no MGRunCard",
                            "--merging none"]),
    ("ckkwl", ["MG5ProcCard", "MGProcCard"], ["has no process card (MG5ProcCard)", "--merging-process"]),
    ("fxfx", ["MG5ProcCard"], ["FxFx sample (ickkw = 3, no @N tags: 0, 1 jets)", "--merging-scale GEV"]),
])
def test_a_header_missing_a_card_is_merged_or_refused_naming_the_option(tmp_path, mlm_file, sample, cards, words):
    source = {"mlm": mlm_file, "ckkwl": CKKWL_FILE, "fxfx": FXFX_FILE}[sample]
    text = read_text(source)
    for card in cards:
        text = without(text, card)
    edited = tmp_path / f"{sample}.lhe"
    edited.write_text(text)
    scale = ["--merging-scale", "20"] if sample == "ckkwl" else []
    message = main_error(["--process", "qcd", "--lhe", edited, *scale, "--events", "50", "--outdir", tmp_path / "o"])
    assert message.startswith(f"generate_events.py: error: {edited}: "), message
    for word in words:
        assert word in message, (word, message)
    assert not list((tmp_path / "o").glob("*.root"))


def test_the_sidecar_names_the_cards_it_found():
    details = merging.plan("f", inspect_lhe(CKKWL_FILE).madgraph, scale=20).details
    assert details["header_cards"] == ["MG5ProcCard", "MGProcCard", "MGRunCard"]
    assert details["jet_multiplicities_from"] == "MG5ProcCard"


# --- 3: slices ------------------------------------------------------------------------------------------------


def scaled_xsec(path, target, factor):
    """A copy of the Les Houches file with every XSECUP (and XERRUP) of its <init> block times ``factor``."""
    head, init, rest = re.split(r"(<init>.*?</init>)", Path(path).read_text(), maxsplit=1, flags=re.DOTALL)
    lines = init.splitlines()
    for i in range(2, len(lines) - 1):  # the process lines: XSECUP XERRUP XMAXUP LPRUP
        fields = lines[i].split()
        fields[0], fields[1] = (f"{float(value) * factor:.6E}" for value in fields[:2])
        lines[i] = "  " + "  ".join(fields)
    target.write_text(head + "\n".join(lines) + rest)
    return target


@pytest.mark.slow
def test_slices_of_different_cross_sections_are_refused(tmp_path):
    first, second = halves(TEVATRON_TTBAR, tmp_path)
    inspect_inputs("lhe", [first, second])  # two parts of one sample: accepted
    slice_ = scaled_xsec(second, tmp_path / "slice.lhe", 55.0)
    result = generate("--process", "ttbar", "--lhe", first, slice_, "--outdir", tmp_path / "out", check=False)
    one_line_error(result, f"{slice_}: cross section", "slices of a process", "--xsec-fb")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.root"))
    inspect_inputs("lhe", [first, slice_], xsec_given=True)  # declared one sample


# --- 8, 13, 14: reruns, duplicates, leftovers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ttbar_run(tmp_path_factory):
    """The Pythia 6 ttbar file (a copy) generated in two chunks: (input, output directory, arguments)."""
    base = tmp_path_factory.mktemp("ttbar_run")
    source = base / "ttbar.lhe"
    shutil.copy(TEVATRON_TTBAR, source)
    args = ["--process", "ttbar", "--lhe", source, "--events-per-file", "50", *LOW_THRESHOLDS]
    generate(*args, "--outdir", base / "out")
    return source, base / "out", args


def copied_run(ttbar_run, tmp_path):
    source, outdir, args = ttbar_run
    copy = tmp_path / "out"
    shutil.copytree(outdir, copy)
    return source, copy, [*args, "--outdir", copy]


@pytest.mark.slow
def test_a_replaced_input_of_as_many_events_is_another_run(ttbar_run, tmp_path):
    _, outdir, args = copied_run(ttbar_run, tmp_path)
    source = tmp_path / "ttbar.lhe"
    args = [source if arg == ttbar_run[0] else arg for arg in args]
    manifest = json.loads((outdir / "ttbar_1.manifest.json").read_text())
    assert manifest["settings"]["input_sha256"] == [inspect_lhe(ttbar_run[0]).sha256]
    # the same content under this name: kept; another content with as many events: refused
    shutil.copy(ttbar_run[0], source)
    manifest["settings"]["inputs"] = [str(source)]
    (outdir / "ttbar_1.manifest.json").write_text(json.dumps(manifest))
    for path in outdir.glob("*.json"):
        meta = json.loads(path.read_text())
        if "settings" in meta and "chunk" in meta:
            meta["settings"]["inputs"] = [str(source)]
            path.write_text(json.dumps(meta))
    assert "complete: kept" in generate(*args).stdout
    scaled_xsec(ttbar_run[0], source, 55.0)
    message = one_line_error(generate(*args, check=False), "written with other settings: input_sha256")
    assert "ttbar_1.manifest.json" in message


@pytest.mark.slow
def test_a_truncated_output_is_regenerated(ttbar_run, tmp_path):
    _, outdir, args = copied_run(ttbar_run, tmp_path)
    before = uproot.open(outdir / "ttbar_1_1.root")["Events"].arrays(["event_id", "fj1_pt"], library="np")
    data = (outdir / "ttbar_1_1.root").read_bytes()
    (outdir / "ttbar_1_1.root").write_bytes(data[:len(data) // 2])
    result = generate(*args)
    assert "ttbar_1_1.root: its bytes differ from those its sidecar records" in result.stderr, result.stderr
    assert "complete: kept" not in result.stdout and "in 1 file(s)" in result.stdout
    after = uproot.open(outdir / "ttbar_1_1.root")["Events"].arrays(["event_id", "fj1_pt"], library="np")
    for name in before:
        assert np.array_equal(before[name], after[name])
    assert "complete: kept" in generate(*args).stdout


@pytest.mark.slow
def test_stale_temporary_files_of_killed_runs_are_removed(ttbar_run, tmp_path):
    _, outdir, args = copied_run(ttbar_run, tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [outdir / f".ttbar_1_0.input.{dead.pid}.tmp", outdir / f".ttbar_1_1.root.{dead.pid}.tmp"]
    live = outdir / f".ttbar_1_0.input.{os.getpid()}.tmp"  # a running process's: not ours to remove
    other_run = outdir / f".qcd_1_0.input.{dead.pid}.tmp"
    for path in (*stale, live, other_run):
        path.write_text("<LesHouchesEvents>")
    result = generate(*args)
    assert "complete: kept" in result.stdout and "removed 2 temporary file(s)" in result.stderr, result.stderr
    assert not any(path.exists() for path in stale) and live.exists() and other_run.exists()


@pytest.mark.slow
def test_a_file_given_twice_is_refused(tmp_path):
    copy = tmp_path / "same.lhe"
    shutil.copy(TEVATRON_TTBAR, copy)
    for files in ([TEVATRON_TTBAR, TEVATRON_TTBAR], [TEVATRON_TTBAR, copy]):
        result = generate("--process", "ttbar", "--lhe", *files, "--outdir", tmp_path / "out", check=False)
        one_line_error(result, f"{files[1]}: the same content as {TEVATRON_TTBAR}", "give each input file once")


@pytest.mark.slow
def test_check_inputs_flags_two_runs_of_the_same_input_events(ttbar_run, tmp_path, capsys):
    source, outdir, args = ttbar_run
    again = tmp_path / "again"
    generate(*args, "--events", "30", "--seed", "2", "--outdir", again)  # other showers of events 0-29
    files = [str(outdir / "ttbar_1_0.root"), str(again / "ttbar_2_0.root")]
    check_inputs.check_files(str(CONFIG), files)
    err = capsys.readouterr().err
    assert "were showered from the same events 0-29 of one input file" in err, err
    check_inputs.check_files(str(CONFIG), [str(outdir / "ttbar_1_1.root"), str(again / "ttbar_2_0.root")])
    assert "same events" not in capsys.readouterr().err  # events 50-99 and 0-29: nothing shared


def test_two_files_joined_into_one_are_refused(tmp_path):
    joined = tmp_path / "joined.lhe"
    joined.write_text(TEVATRON_TTBAR.read_text() * 2)  # cat a.lhe a.lhe > joined.lhe: 200 events, 100 twice
    with pytest.raises(GenerationError, match=r"joined\.lhe: holds 2 <init> blocks: .*separate files"):
        inspect_lhe(joined)


# --- 10: corrupt events ----------------------------------------------------------------------------------------


def corrupt_events(path, target, how, events=(10,)):
    """A copy of the Les Houches file ``path`` with ``events`` (indices) corrupted: a garbage line among the
    particles, a NaN momentum, two particle lines missing, or a NaN weight."""
    lines = Path(path).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "<event>"]
    for event in sorted(events, reverse=True):
        first = starts[event] + 1  # the event line; particles follow
        if how == "garbage":
            lines.insert(first + 2, "this line is no particle")
        elif how == "nan momentum":
            fields = lines[first + 3].split()
            fields[8] = "nan"
            lines[first + 3] = "  ".join(fields)
        elif how == "missing lines":
            del lines[first + 3:first + 5]
        elif how == "nan weight":
            fields = lines[first].split()
            fields[2] = "nan"
            lines[first] = "  ".join(fields)
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.mark.parametrize("how, why", [("garbage", "unreadable particle line"),
                                      ("nan momentum", "non-finite momentum or mass"),
                                      ("missing lines", "fewer particle lines than its NUP"),
                                      ("nan weight", "non-finite weight XWGTUP")])
def test_a_corrupt_lhe_event_is_named(tmp_path, how, why):
    item = inspect_lhe(corrupt_events(TEVATRON_TTBAR, tmp_path / "bad.lhe", how))
    assert item.malformed == ((10, why),) and item.n_events == 100


@pytest.mark.slow
def test_corrupt_events_are_counted_or_refused(tmp_path):
    one = corrupt_events(TEVATRON_TTBAR, tmp_path / "one.lhe", "garbage")
    outdir = tmp_path / "out"
    result = generate("--process", "ttbar", "--lhe", one, "--events-per-file", "50", *LOW_THRESHOLDS,
                      "--outdir", outdir)
    assert f"{one}: 1 of 100 events cannot be read and are skipped (events 10): 1 unreadable particle line" \
        in result.stderr, result.stderr
    assert "1 input event(s) skipped: 1 unreadable particle line" in result.stderr
    metas = [json.loads((outdir / f"ttbar_1_{c}.json").read_text()) for c in range(2)]
    assert metas[0]["skipped_input_events"] == {"unreadable particle line": 1} and metas[0]["n_skipped_input_events"] == 1
    assert metas[1]["skipped_input_events"] == {}
    assert metas[0]["n_generated"] == 49  # the other 49 events of the range
    many = int(MAX_SKIPPED_FRACTION * 100) + 1
    two = corrupt_events(TEVATRON_TTBAR, tmp_path / "two.lhe", "nan momentum", events=range(10, 10 + many))
    result = generate("--process", "ttbar", "--lhe", two, "--outdir", tmp_path / "o2", check=False)
    one_line_error(result, f"{two}: {many} of 100 events cannot be read", "more than 1% of the file")


def many_events_hepmc(path, n_events=8, nan_weight=None):
    """The Pythia 6 HepMC3 event written ``n_events`` times, event ``nan_weight`` with a NaN weight."""
    import pyhepmc

    (event,) = list(pyhepmc.open(PYTHIA6))
    with pyhepmc.open(path, "w") as writer:
        for number in range(n_events):
            event.event_number = number
            event.weights = [float("nan") if number == nan_weight else 1.0]
            writer.write(event)
    return path


def test_a_cut_last_hepmc_event_is_not_dropped_silently(tmp_path):
    lines = many_events_hepmc(tmp_path / "many.hepmc3").read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if "END_EVENT_LISTING" in line)
    cut = tmp_path / "cut.hepmc3"
    cut.write_text("\n".join(lines[:end - 10] + lines[end:]) + "\n")  # still ends with END_EVENT_LISTING
    item = inspect_hepmc(cut)
    assert item.n_events == 8 and item.n_unreadable == 1
    with pytest.raises(GenerationError, match=r"cut\.hepmc3: 1 of 8 events cannot be read and are skipped: 1 cut"):
        inspect_inputs("hepmc", [cut], xsec_given=True)


def test_a_nan_hepmc_weight_is_skipped_and_counted(tmp_path):
    path = many_events_hepmc(tmp_path / "nan.hepmc3", nan_weight=3)
    item = inspect_hepmc(path)
    assert item.malformed == ((3, "non-finite or unreadable weight"),)
    source = HepMCSource(item)
    batch = source.next(20)
    assert batch.particles.n_events == 7 and np.isfinite(batch.weights).all()
    assert source.skipped_events() == {"non-finite or unreadable weight": 1}
    source.close()


# --- 11, 12: messages -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_chunks_of_an_input_run_are_checked_against_its_files(tmp_path):
    common = ["--process", "ttbar", "--lhe", TEVATRON_TTBAR, "--events-per-file", "40", "--outdir", tmp_path]
    result = generate(*common, "--chunks", "5", check=False)
    assert result.returncode == 2
    one_line_error(result, "--chunks 5: the run has chunks 0 to 2")


def test_a_chunk_the_merging_vetoes_entirely_says_so(tmp_path):
    message = main_error(["--process", "qcd", "--lhe", FXFX_FILE, "--merging-scale", "20", "--events", "1",
                          "--fj1-ptmin", "1", "--fj2-ptmin", "1", "--outdir", tmp_path])
    assert "(events 0-0): the FxFx merging vetoed all of its 1 events (merging scale 20 GeV)" in message, message
    assert "--events-per-file" in message and "preselection" not in message
