"""The generator's --pythia-setting: one more Pythia setting for a built-in process, checked before any event."""

import json

import pytest

from multiscale.generation.cli import generate_main, parse_config


def test_a_setting_reaches_pythia_and_the_sidecar(tmp_path):
    out = tmp_path / "run"
    assert generate_main(["--process", "qcd", "--events", "5", "--pthat-min", "300", "--seed", "3",
                          "--pythia-setting", "PartonLevel:MPI = off", "--outdir", str(out)]) == 0
    sidecar = json.loads((out / "qcd_3_0.json").read_text())
    assert sidecar["settings"]["pythia_settings"] == ["PartonLevel:MPI = off"]
    assert sidecar["n_accepted"] == 5


@pytest.mark.parametrize("line, why", [
    ("PartonLevel:MPI", "not of the form 'Key = value'"),
    ("PartonLevel:NoSuchThing = on", "Pythia does not know it"),
    ("Random:seed = 5", "Random:seed is set by the generator"),
    ("HadronLevel:all = on", "HadronLevel:all is set by the generator"),
])
def test_a_setting_pythia_or_the_generator_refuses_is_one_line(tmp_path, capsys, line, why):
    with pytest.raises(SystemExit):
        parse_config(["--process", "qcd", "--events", "5", "--pythia-setting", line, "--outdir", str(tmp_path)])
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"--pythia-setting {line!r}: {why}" in error[0]


def test_input_files_refuse_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_config(["--process", "hh4b", "--lhe", str(tmp_path / "x.lhe"), "--pythia-setting",
                      "PartonLevel:MPI = off", "--outdir", str(tmp_path)])
    assert "--pythia-setting applies to Pythia's built-in processes" in capsys.readouterr().err
