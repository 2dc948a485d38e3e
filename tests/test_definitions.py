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
from multiscale.study.workflow import Study, link_split, write_param_config
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
    assert len(study.trainings()) == len(study.predictions()) == 3 * 4 * 3
    everything = Study(default_config(masses=None, repeats_ref=5, param=True))
    trainings = everything.trainings()
    assert everything.masses == [float(m) for m in definitions.STUDY_MASSES]
    assert len(trainings) == 4 * (4 * 3 + 5) + 3 and ("param", "cross_param", 2) in trainings
    assert len(everything.predictions()) == 4 * (4 * 3 + 5) + 3 * 5
    scaled = Study(default_config(scale=2, chunks_per_fold=4))
    assert scaled.backgrounds[0].events == 54000 and scaled.chunks == 20


@pytest.mark.parametrize("overrides, message", [
    ({"models": ["cross", "nomodel"]}, "models: unknown"),
    ({"features": "bogus"}, "features: unknown"),
    ({"signal": {"process": "hh4b", "events": 3, "seed": 1}}, "cannot be cut into 5 files"),
    ({"backgrounds": {"a": {"process": "qcd", "events": 100, "seed": 3}, "b": {"process": "qcd", "events": 50, "seed": 3}}},
     "would write the same files"),
])
def test_a_wrong_study_is_refused_before_anything_runs(overrides, message):
    with pytest.raises(ValueError, match=message):
        Study(default_config(**overrides))


def test_a_split_links_the_test_fold_and_trains_on_the_others(tmp_path):
    files = []
    for directory, stem in (("generated", "hh4b_mH1000_2000"), ("truth_train_physical", "qcd_11"), ("truth_test", "qcd_11")):
        (tmp_path / directory).mkdir()
        for chunk in range(4):
            files.append(tmp_path / directory / f"{stem}_{chunk}.root")
            files[-1].write_text(f"{directory} {chunk}")
    link_split(tmp_path / "splits" / "mH1000_fold1", 1, 2, files)
    split = tmp_path / "splits" / "mH1000_fold1"
    content = {sub: sorted((path.name, path.read_text()) for path in (split / sub).iterdir()) for sub in ("train", "test")}
    assert content["test"] == [("hh4b_mH1000_2000_1.root", "generated 1"), ("hh4b_mH1000_2000_3.root", "generated 3"),
                               ("qcd_11_1.root", "truth_test 1"), ("qcd_11_3.root", "truth_test 3")]
    assert content["train"] == [("hh4b_mH1000_2000_0.root", "generated 0"), ("hh4b_mH1000_2000_2.root", "generated 2"),
                                ("qcd_11_0.root", "truth_train_physical 0"), ("qcd_11_2.root", "truth_train_physical 2")]
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
