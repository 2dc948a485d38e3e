"""The mass scan's settings as the workflow reads them (config/mass_scan.yaml, workflow/schemas/mass_scan.schema.yaml):
the preselection by the generator's cut names, the schema as the rule for folds, the tag categories' default, and one
predict command for every prediction."""

import re
import subprocess
import sys
from dataclasses import fields, replace

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from multiscale.definitions import PRESELECTION, Preselection
from multiscale.generation.cli import parse_config
from multiscale.study.workflow import Study, check_categories, default_categories
from tests.helpers import REPO, default_config

SCHEMA = REPO / "workflow" / "schemas" / "mass_scan.schema.yaml"
TINY = REPO / "tests" / "data" / "mass_scan_tiny.yaml"
TINY_CONFIG = yaml.safe_load(TINY.read_text())


def refused_by_the_schema(config):
    with pytest.raises(WorkflowError):
        validate(config, str(SCHEMA))


def test_the_schemas_preselection_names_the_generators_cuts():
    """The schema's preselection keys are Preselection's fields: a new cut is a key, a removed one is refused."""
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["preselection"]
    assert set(schema["properties"]) == {field.name for field in fields(Preselection)}
    validate(default_config(), str(SCHEMA))
    refused_by_the_schema(default_config(preselection={"fj1_ptmin": 250, "fj3_ptmin": 100}))
    refused_by_the_schema(default_config(preselection=["--fj1-ptmin", 250]))  # a raw command line no more


def test_every_sample_is_generated_with_the_configs_cuts(tmp_path):
    """The generator, handed a sample's arguments, applies the config's cuts and Preselection's defaults for the rest."""
    config = default_config(preselection={"fj1_ptmin": 300})
    for sample in Study(config).samples():
        run = parse_config([*sample.generator_arguments(config["preselection"]), "--outdir", str(tmp_path)])
        assert run.selection() == replace(PRESELECTION, fj1_ptmin=300)
    with pytest.raises(ValueError, match="'fj3_ptmin' is no cut"):
        Study(config).backgrounds[0].generator_arguments({"fj3_ptmin": 100})


@pytest.mark.parametrize("folds, taken", [(2, False), (3, True)])
def test_the_schema_asks_for_three_folds(folds, taken):
    """Training r tests on fold r and chooses its cuts on fold r + 1: two folds leave nothing to train on."""
    config = default_config(folds=folds, repeats=2, repeats_ref=2)
    if taken:
        validate(config, str(SCHEMA))
    else:
        refused_by_the_schema(config)


def test_the_tag_categories_default_to_one_per_tag_count():
    assert Study(default_config(categories=None, min_tags=2)).categories == default_categories(2) == [2, 3, 4]
    assert Study(default_config(categories=[3], min_tags=3)).categories == [3]
    check_categories(default_categories(3), 3)
    for wrong, min_tags in (([2, 3, 4], 3), ([3, 3], 3), ([4, 3], 3), ([2, 5], 2)):
        with pytest.raises(ValueError, match=re.escape(f"categories: {wrong} do not cut the region of >= {min_tags}")):
            check_categories(wrong, min_tags)


def dry_run(tmp_path, overlay):
    """The tiny study's dry run with ``overlay`` (a dict) over its config: (status, Snakemake's output)."""
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory",
               str(tmp_path), "-n", "-p", "--cores", "2", "--configfile", str(TINY), str(tmp_path / "overlay.yaml")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("overlay, message", [
    ({"folds": 2}, "folds: 2 is less than the minimum of 3 (training r tests on fold r, chooses its cuts on fold r + 1"),
    ({"preselection": {"fj3_ptmin": 100}}, "preselection: Additional properties are not allowed ('fj3_ptmin' was "
                                           "unexpected) (the generator's cuts"),
])
def test_a_setting_the_schema_refuses_is_one_line(tmp_path, overlay, message):
    status, log = dry_run(tmp_path, overlay)
    errors = [line for line in log.splitlines() if "error" in line.lower()]
    assert status != 0 and len(errors) == 1 and errors[0].startswith(f"workflow config: error: {message}"), log[-3000:]
    assert errors[0].endswith("(workflow/schemas/mass_scan.schema.yaml)")
    assert "Traceback" not in log


def test_every_prediction_runs_the_same_command(tmp_path):
    """The validation folds and the parameterised model's test and validation folds: one command, its settings alike
    (threads, output directory, run name, the driver), each with its own files, output and log."""
    status, log = dry_run(tmp_path, {})
    assert status == 0, log[-3000:]
    predictions = [command for line in log.splitlines() if "train_multiscale.sh predict" in line
                   for command in line.removeprefix("Shell command: ").split(" && ")]
    assert len(predictions) == 3  # kin's validation fold; cross_param's test and validation folds at 1000 GeV
    threads = TINY_CONFIG["train_threads"]
    pattern = (rf"OMP_NUM_THREADS={threads} MS_OUTDIR=\S+/(mH1000|param) COMMENT=fold0 +\S+/train_multiscale\.sh predict "
               r"(kin|cross_param) \w+ --data-test .+ --predict-output \S+\.root --log \S+\.log >>? \S+\.stdout 2>&1$")
    assert all(re.match(pattern, command) for command in predictions), predictions
