"""The experiment's definitions written once (multiscale/definitions.py): the driver's model table, the presets,
the parameterised model's masses, and the study's bookkeeping that reads them (multiscale/study/workflow.py)."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from multiscale import definitions
from multiscale.nn.config import resolve
from multiscale.preprocessing import mass_hypothesis
from multiscale.study import gpu_slots
from multiscale.study.workflow import Study, link_split, parse_masses, write_param_config
from multiscale.weaver_io import build_model, load_data_config

REPO = Path(__file__).resolve().parents[1]


def driver(*args, **env):
    return subprocess.run(["bash", str(REPO / "train_multiscale.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_the_driver_takes_its_models_and_features_from_the_module(tmp_path):
    for model in definitions.MODELS:
        for features in definitions.FEATURES:
            # past the model table: stops at the missing checkpoint, naming the run directory of that model
            result = driver("export", model, features, MS_OUTDIR=str(tmp_path))
            assert result.returncode == 1 and f"{tmp_path}/{model}_{features}/net_best_epoch_state.pt" in result.stderr
    unknown = driver("nomodel")
    assert unknown.returncode == 2 and "unknown MODEL 'nomodel' (" + " | ".join(definitions.MODELS) in unknown.stderr
    assert "unknown FEATURES 'bogus'" in driver("cross", "bogus").stderr
    text = (REPO / "train_multiscale.sh").read_text()
    assert "data/jets_kin.yaml" not in text and "'paper'" not in text, "the driver restates the model table"


def test_network_options_of_every_model_build_with_its_data_config():
    assert resolve("paperb").obj_max_features == 6 and resolve("paper").obj_max_features == 5
    for model, definition in definitions.MODELS.items():
        options = definitions.network_options(model, "paperb")
        built, _ = build_model(load_data_config(REPO / definition.data_config), **options)
        assert built.config.obj_max_features == (7 if definition.mass_hypothesis else 6)  # the mass hypothesis kept
        assert definitions.weaver_arguments(model, "paperb")[0] == definition.data_config
    assert definitions.weaver_arguments("cross", "full")[1:] == ["-o", "fusion", "'cross'", "-o", "preset", "'default'"]
    with pytest.raises(ValueError, match="unknown MODEL"):
        definitions.network_options("nomodel", "full")


def test_the_parameterised_configs_carry_the_masses_they_are_written_with(tmp_path):
    hypothesis = load_data_config(REPO / "data" / "jets_kin_param.yaml").var_funcs["mass_hyp"]
    assert hypothesis == "mass_hypothesis(mH, event_id)"  # the study's masses: the function's default
    background = mass_hypothesis([0.0] * 1000, range(1000))
    assert set(background) == set(definitions.STUDY_MASSES)
    write_param_config([800.0], tmp_path / "mH800.yaml")
    write_param_config([600.0, 1500.0], tmp_path / "train.yaml")
    assert load_data_config(tmp_path / "mH800.yaml").var_funcs["mass_hyp"] == "mass_hypothesis(mH, event_id, [800])"
    assert load_data_config(tmp_path / "train.yaml").var_funcs["mass_hyp"] == "mass_hypothesis(mH, event_id, [600, 1500])"


def default_config(**overrides):
    return {**yaml.safe_load((REPO / "config" / "mass_scan.yaml").read_text()), **overrides}


def test_the_default_study_samples_and_trainings():
    """config/mass_scan.yaml: 4000 signal events per mass (seed 1000 + m_H), 27000 heavy-flavour-vetoed QCD (seed 11),
    2500 heavy-flavour-filtered QCD (seed 13) and 3000 ttbar (seed 12) in 5 files each; 3 trainings per model at
    600, 1000 and 2000 GeV; the parameterised model only when asked for."""
    study = Study(default_config())
    assert study.masses == [600.0, 1000.0, 2000.0]
    signal = study.signals[600.0]
    assert (signal.events, signal.seed, signal.events_per_file, signal.stem(4)) == (4000, 1600, 800, "hh4b_mH600_1600_4")
    assert [(s.name, s.events, s.seed, s.events_per_file) for s in study.backgrounds] == [
        ("qcd", 27000, 11, 5400), ("qcd_hf", 2500, 13, 500), ("ttbar", 3000, 12, 600)]
    assert [s.stem(0) for s in study.backgrounds] == ["qcd_nohf_11_0", "qcd_hf_13_0", "ttbar_12_0"]
    assert signal.generator_arguments(study.config["preselection"]) == [
        "--process", "hh4b", "--events", "4000", "--events-per-file", "800", "--seed", "1600", "--mH", "600",
        "--fj1-ptmin", "250", "--fj2-ptmin", "250", "--fj-etamax", "2.0", "--xsec-fb", "10"]
    # every training predicts its test fold and its validation fold
    assert 2 * len(study.trainings()) == len(study.predictions()) == 2 * 3 * 4 * 3
    everything = Study(default_config(masses=None, repeats_ref=5, param=True))
    trainings = everything.trainings()
    assert everything.masses == [float(m) for m in definitions.STUDY_MASSES]
    assert len(trainings) == 4 * (4 * 3 + 5) + 3 and ("param", "cross_param", 2) in trainings
    assert len(everything.predictions()) == 2 * (4 * (4 * 3 + 5) + 3 * 5)
    scaled = Study(default_config(scale=2, chunks_per_fold=4))
    assert scaled.backgrounds[0].events == 54000 and scaled.chunks == 20


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
    config = default_config(masses=[1000])
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
        validation = (fold + 1) % 5  # training r chooses its cuts on fold r + 1, and does not train on it
        for split, chunks in (("train", [c for c in range(5) if c not in (fold, validation)]), ("test", [fold]),
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
            f"{stem}_{c}.root" for name, stem in stems.items() if name != "hh4b_mH1000" for c in range(5))
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


def test_gpu_slots_give_each_command_its_own_gpu(tmp_path):
    first, fd = gpu_slots.take_slot(tmp_path, 2)
    second, fd2 = gpu_slots.take_slot(tmp_path, 2)
    assert (first, second) == (0, 1)
    os.close(fd)  # a command that ends frees its slot
    assert gpu_slots.take_slot(tmp_path, 2)[0] == 0
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    shown = subprocess.run(["python", "-m", "multiscale.study.gpu_slots", "--gpus", "2", "--per-gpu", "2", "--lock-dir",
                            str(tmp_path / "pool"), "--", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"],
                           capture_output=True, text=True, env=env, check=True)
    assert shown.stdout.strip() == "0"
