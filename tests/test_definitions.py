"""The experiment's definitions written once (multiscale/definitions.py) and read everywhere: the driver hands weaver
each model as the module defines it, the presets and the parameterised model's masses, and the study
(multiscale/study/workflow.py) is what config/mass_scan.yaml says, checked against its schema. No value of the config
is restated here: the tests hold whatever the config holds."""

import ast
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from multiscale import definitions
from multiscale.definitions import preselection_options
from multiscale.interpret.data import feature_index
from multiscale.preprocessing import mass_hypothesis
from multiscale.study.workflow import Study, link_split, parse_masses, write_param_config
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config
from tests.helpers import REPO, default_config

SMALL = dict(jet_dim=16, jet_heads=2, jet_layers=1, obj_dim=16, obj_heads=2, obj_layers=1, cross_layers=1, mlp_dims=(16,))

# a stand-in for weaver that writes its command line to $FAKE_WEAVER_ARGS
FAKE_WEAVER = "import json, os, sys\nopen(os.environ['FAKE_WEAVER_ARGS'], 'w').write(json.dumps(sys.argv[1:]))\n"


def driver(*args, **env):
    return subprocess.run(["bash", str(REPO / "train_multiscale.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, **env})


def weaver_options(words):
    """{"--data-config": path, "-o": {name: value}} of a weaver command line (values as weaver's literal_eval reads them)."""
    options = {"-o": {}}
    for i, word in enumerate(words):
        if word == "-o":
            options["-o"][words[i + 1]] = ast.literal_eval(words[i + 2])
        elif word == "--data-config":
            options[word] = words[i + 1]
    return options


def test_the_driver_hands_weaver_each_model_of_the_module(tmp_path):
    """Every MODEL of multiscale.definitions, with each FEATURES: the driver runs weaver with that model's data config
    and network options (exported with a stand-in weaver that records its command line)."""
    fake_weaver = tmp_path / "fake_weaver.py"
    fake_weaver.write_text(FAKE_WEAVER)
    weaver = {"BASH_FUNC_weaver%%": f'() {{ "{sys.executable}" "{fake_weaver}" "$@"; }}'}  # a function wins over the venv's
    for model, features in zip(definitions.MODELS, itertools.cycle(definitions.FEATURES)):
        rundir = tmp_path / f"{model}_{features}"
        rundir.mkdir()
        (rundir / "net_best_epoch_state.pt").write_text("")
        recorded = tmp_path / f"{model}.json"
        result = driver("export", model, features, MS_OUTDIR=str(tmp_path), FAKE_WEAVER_ARGS=str(recorded), **weaver)
        assert result.returncode == 0, result.stderr
        words = json.loads(recorded.read_text())
        assert weaver_options(words) == {"--data-config": definitions.MODELS[model].data_config,
                                         "-o": definitions.network_options(model, features)}, (model, features)
        assert str(rundir / "net_best_epoch_state.pt") in words


def test_the_driver_refuses_what_the_module_does_not_define():
    unknown = driver("nomodel")
    assert unknown.returncode == 2 and "unknown MODEL 'nomodel' (" + " | ".join(definitions.MODELS) in unknown.stderr
    bogus = driver("cross", "bogus")
    assert bogus.returncode == 2 and "unknown FEATURES 'bogus' (" + " | ".join(definitions.FEATURES) in bogus.stderr


def test_the_definitions_command_line_prints_the_module(capsys):
    """What the driver reads: the model names, and a model's data config and network options."""
    assert definitions.main(["models"]) == 0
    assert capsys.readouterr().out.split() == list(definitions.MODELS)
    for model in definitions.MODELS:
        assert definitions.main(["weaver-options", model, "paper"]) == 0
        words = capsys.readouterr().out.split("\n")[:-1]
        assert words[0] == definitions.MODELS[model].data_config
        assert weaver_options(words)["-o"] == definitions.network_options(model, "paper")
    assert definitions.main(["weaver-options", "nomodel", "paper"]) == 2
    assert "unknown MODEL 'nomodel'" in capsys.readouterr().err


@pytest.mark.parametrize("features", list(definitions.FEATURES))
def test_every_model_builds_with_its_data_config_and_sees_its_mass_hypothesis(features):
    """Each model's options build a network on its data config; a parameterised model's output moves with the m_H
    hypothesis, whatever preset limits the object features (small widths on top of the preset: the inputs are the point)."""
    for model, definition in definitions.MODELS.items():
        data_config = load_data_config(REPO / definition.data_config)
        torch.manual_seed(0)
        built, info = build_model(data_config, **definitions.network_options(model, features), **SMALL)
        inputs = synthetic_inputs(info, 4, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            output = built.eval()(*inputs)
        assert torch.isfinite(output).all()
        if definition.mass_hypothesis:
            hypothesis = feature_index(data_config, "ev_features", "obj_mhyp")
            other_mass = [x.clone() for x in inputs]
            other_mass[info["input_names"].index("ev_features")][:, hypothesis] += 1.0
            with torch.no_grad():
                assert not torch.allclose(built(*other_mass), output), f"{model} {features} ignores the m_H hypothesis"
    with pytest.raises(ValueError, match="unknown MODEL"):
        definitions.network_options("nomodel", features)


def test_the_parameterised_configs_carry_the_masses_they_are_written_with(tmp_path):
    hypothesis = load_data_config(REPO / "data" / "jets_kin_param.yaml").var_funcs["mass_hyp"]
    assert hypothesis == "mass_hypothesis(mH, event_id)"  # the study's masses: the function's default
    background = mass_hypothesis([0.0] * 1000, range(1000))
    assert set(background) == set(definitions.STUDY_MASSES)
    write_param_config([800.0], tmp_path / "mH800.yaml")
    write_param_config([600.0, 1500.0], tmp_path / "train.yaml")
    assert load_data_config(tmp_path / "mH800.yaml").var_funcs["mass_hyp"] == "mass_hypothesis(mH, event_id, [800])"
    assert load_data_config(tmp_path / "train.yaml").var_funcs["mass_hyp"] == "mass_hypothesis(mH, event_id, [600, 1500])"


def validate_against_the_schema(config):
    from snakemake.utils import validate

    validate(config, str(REPO / "workflow" / "schemas" / "mass_scan.schema.yaml"))


def test_the_config_follows_its_schema():
    """config/mass_scan.yaml as the workflow checks it: the schema takes it, and refuses a wrong type or an unknown key."""
    from snakemake.exceptions import WorkflowError

    validate_against_the_schema(default_config())
    for wrong in ({"folds": "five"}, {"models": "cross"}, {"epochs": 0}, {"typo_key": 1}):
        with pytest.raises(WorkflowError):
            validate_against_the_schema(default_config(**wrong))


def test_the_study_is_what_its_config_says():
    """Samples, files and trainings follow from config/mass_scan.yaml, whatever its values: each mass's signal with the
    signal's events and seed + m_H, the backgrounds as listed, folds x chunks_per_fold files per sample, every model
    at every mass (repeats_ref of them at ref_mass), the parameterised model once over all masses."""
    config = default_config()
    study = Study(config)
    assert study.masses == [float(m) for m in parse_masses(config["masses"]) or definitions.STUDY_MASSES]
    assert study.chunks == config["folds"] * config["chunks_per_fold"]
    for mass, signal in study.signals.items():
        assert (signal.process, signal.events, signal.seed) == (
            config["signal"]["process"], int(config["signal"]["events"] * config["scale"]), config["signal"]["seed"] + mass)
        arguments = signal.generator_arguments(config["preselection"])
        assert arguments[arguments.index("--mH") + 1] == f"{mass:g}"
        assert arguments[arguments.index("--seed") + 1] == str(signal.seed)
    assert [(s.name, s.process, s.events, s.seed) for s in study.backgrounds] == [
        (name, sample["process"], int(sample["events"] * config["scale"]), sample["seed"])
        for name, sample in config["backgrounds"].items()]
    for sample in study.samples():
        arguments = sample.generator_arguments(config["preselection"])
        assert " ".join(preselection_options(config["preselection"])) in " ".join(arguments)  # every sample: the same cuts
        assert len(study.generated(sample)) == study.chunks >= sample.events / sample.events_per_file
    # every training predicts its test fold and its validation fold
    assert 2 * len(study.trainings()) == len(study.predictions())

    everything = Study(default_config(masses=None, ref_mass=definitions.STUDY_MASSES[0], repeats=2, repeats_ref=3,
                                      param=True))
    models = config["models"]
    assert everything.masses == [float(m) for m in definitions.STUDY_MASSES]
    at_masses = [run for run in everything.trainings() if run[0] != "param"]
    assert len(at_masses) == len(models) * (3 + 2 * (len(definitions.STUDY_MASSES) - 1))
    assert {run for run in everything.trainings() if run[0] == "param"} == {("param", "cross_param", 0),
                                                                            ("param", "cross_param", 1)}
    # the parameterised model predicts every mass
    assert len(everything.predictions()) == 2 * (len(at_masses) + 2 * len(definitions.STUDY_MASSES))
    scaled = Study(default_config(scale=2 * config["scale"], chunks_per_fold=2 * config["chunks_per_fold"]))
    assert [s.events for s in scaled.samples()] == [2 * s.events for s in study.samples()]
    assert scaled.chunks == 2 * study.chunks


@pytest.mark.parametrize("overrides, message", [
    ({"models": ["cross", "nomodel"]}, "models: unknown"),
    ({"features": "bogus"}, "features: unknown"),
    ({"signal": {"process": "hh4b", "events": 3, "seed": 1}}, "cannot be cut into 5 files"),
    ({"backgrounds": {"a": {"process": "qcd", "events": 100, "seed": 3}, "b": {"process": "qcd", "events": 50, "seed": 3}}},
     "would write the same files"),
    # training r tests on fold r: no fold 2, 3, 4 to test on
    ({"folds": 3, "repeats": 5}, "repeats: 5 trainings need 5 folds .* folds is 3"),
    ({"folds": 3, "repeats": 2, "repeats_ref": 4}, "repeats_ref: 4 trainings need 4 folds"),
    # ... and chooses its cuts on fold r + 1: two folds leave nothing to train on
    ({"folds": 2, "repeats": 2, "repeats_ref": 2}, "folds: 2 folds leave no training events .* give at least 3"),
    # the heavy-flavour halves of a process come together (the evaluation stitches them), without the inclusive one
    ({"backgrounds": {"qcd": {"process": "qcd", "events": 100, "seed": 3, "options": ["--hf-filter", "veto"]}}},
     "process qcd has qcd \\(--hf-filter veto\\): add its other half, a sample with --hf-filter require"),
    ({"backgrounds": {"qcd_hf": {"process": "qcd", "events": 100, "seed": 3, "options": ["--hf-filter", "require"]},
                      "ttbar": {"process": "ttbar", "events": 100, "seed": 4}}}, "--hf-filter veto"),
    ({"backgrounds": {"qcd": {"process": "qcd", "events": 100, "seed": 3},
                      "qcd_hf": {"process": "qcd", "events": 100, "seed": 4, "options": ["--hf-filter", "require"]}}},
     "the inclusive sample overlaps the heavy-flavour halves"),
    ({"masses": "600,x"}, "masses: 'x' is not a number"),
])
def test_a_wrong_study_is_refused_before_anything_runs(overrides, message):
    with pytest.raises(ValueError, match=message):
        Study(default_config(**overrides))


@pytest.mark.parametrize("given, masses", [
    (1000, [1000]), ("1000,2000", [1000, 2000]), ("1000, 1500.5", [1000, 1500.5]), (["600", "1000"], [600, 1000]),
    ([800.0], [800]), ("[600,1000]", [600, 1000]), (None, None)])
def test_masses_are_numbers_however_they_are_given(given, masses):
    """--config masses=1000 arrives as a number, masses=1000,2000 as a string, masses=[600,1000] as strings."""
    assert parse_masses(given) == masses
    assert all(type(mass) is type(want) for mass, want in zip(parse_masses(given) or [], masses or []))


def four_backgrounds():
    """The default study with ttbar in two heavy-flavour halves: a fourth background sample, ttbar_hf."""
    config = default_config(masses=[1000], chunks_per_fold=1)
    config["backgrounds"] = {**config["backgrounds"],
                             "ttbar": {**config["backgrounds"]["ttbar"], "options": ["--hf-filter", "veto"]},
                             "ttbar_hf": {"process": "ttbar", "events": 500, "seed": 14, "options": ["--hf-filter", "require"]}}
    return Study(config)


def test_every_sample_of_the_config_is_in_training_test_and_evaluation():
    """Samples come from the config, file by file: a fourth background is in every training set, every test set
    and every file list of the evaluation (the cut-based reference and the networks' test sets)."""
    study = four_backgrounds()
    stems = {sample.name: sample.stem(0).rsplit("_", 1)[0] for sample in study.samples()}
    assert stems["ttbar_hf"] == "ttbar_hf_14" and len(study.backgrounds) == 4
    for fold in range(study.folds):
        files = study.split_files("mH1000", fold)
        validation = (fold + 1) % study.folds  # training r chooses its cuts on fold r + 1, and does not train on it
        for split, chunks in (("train", [c for c in range(study.folds) if c not in (fold, validation)]), ("test", [fold]),
                              ("validation", [validation])):
            names = sorted(path.name for path in files[split])
            assert names == sorted(f"{stem}_{c}.root" for stem in stems.values() for c in chunks), (fold, split)
            assert {path.parent for path in files[split]} == {study.split_directory("mH1000", fold) / split}
    words = study.evaluation_arguments()
    sections = {}
    for word in words:
        if word.startswith("--"):
            sections[word] = []
        else:
            sections[list(sections)[-1]].append(word)
    assert sections["--signal-events"][0] == "1000"
    for option, directory in (("--background-events", "truth_test"), ("--training-backgrounds", "truth_train_physical")):
        assert sorted(Path(f).name for f in sections[option]) == sorted(
            f"{stem}_{c}.root" for name, stem in stems.items() if name != "hh4b_mH1000" for c in range(study.folds))
        assert {Path(f).parent.name for f in sections[option]} == {directory}


def test_a_split_links_the_test_and_validation_folds_and_trains_on_the_others(tmp_path):
    files = []
    for directory, stem in (("generated", "hh4b_mH1000_2000"), ("truth_train_physical", "qcd_11"), ("truth_test", "qcd_11")):
        (tmp_path / directory).mkdir()
        for chunk in range(6):
            files.append(tmp_path / directory / f"{stem}_{chunk}.root")
            files[-1].write_text(f"{directory} {chunk}")
    link_split(tmp_path / "splits" / "mH1000_fold2", 2, 3, files)
    split = tmp_path / "splits" / "mH1000_fold2"
    content = {sub: sorted((path.name, path.read_text()) for path in (split / sub).iterdir())
               for sub in ("train", "test", "validation")}
    assert content["test"] == [("hh4b_mH1000_2000_2.root", "generated 2"), ("hh4b_mH1000_2000_5.root", "generated 5"),
                               ("qcd_11_2.root", "truth_test 2"), ("qcd_11_5.root", "truth_test 5")]
    # the validation fold (2 + 1) % 3 = 0: its test copies (one per tag class), as the test fold's
    assert content["validation"] == [("hh4b_mH1000_2000_0.root", "generated 0"), ("hh4b_mH1000_2000_3.root", "generated 3"),
                                     ("qcd_11_0.root", "truth_test 0"), ("qcd_11_3.root", "truth_test 3")]
    assert content["train"] == [("hh4b_mH1000_2000_1.root", "generated 1"), ("hh4b_mH1000_2000_4.root", "generated 4"),
                                ("qcd_11_1.root", "truth_train_physical 1"), ("qcd_11_4.root", "truth_train_physical 4")]
    assert all(not os.path.isabs(os.readlink(path)) for path in (split / "train").iterdir())  # the tree can move
