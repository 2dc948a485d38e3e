"""The package stands alone: installed (not editable), it finds what the study reads (the weaver data
configs) inside itself, with no checkout around it."""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from multiscale.definitions import MODELS

REPO_ROOT = Path(__file__).resolve().parents[1]

# run in a Python that sees the installed copy and the venv's dependencies, not the checkout: the study's
# param_config job (write_param_config) and what gpu_check builds its models from (every model's data config)
STUDY_READS_DATA_CONFIGS = textwrap.dedent("""
    import sys
    from pathlib import Path
    import multiscale
    from multiscale.study.workflow import write_param_config
    from multiscale.weaver_io import load_data_config

    installed = Path(sys.argv[1]).resolve()
    assert installed in Path(multiscale.__file__).resolve().parents, f"imported {multiscale.__file__}"
    write_param_config([800.0, 1500.0], Path("param_mH800.yaml"))
    assert "[800, 1500]" in Path("param_mH800.yaml").read_text()
    load_data_config("param_mH800.yaml")

    from multiscale.definitions import MODELS, data_config_file
    for model in MODELS:
        path = data_config_file(model).resolve()
        assert installed in path.parents, f"{model}: {path} is not in the installed package"
        print(model, len(load_data_config(path).input_names), "input groups")
""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package installed with pip (a wheel built from a copy of its sources) into a folder of its own."""
    source, target = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("site-packages")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source)
    shutil.copytree(REPO_ROOT / "multiscale", source / "multiscale", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(source)], check=True, capture_output=True, timeout=120)
    return target


@pytest.mark.slow
def test_installed_package_runs_the_study_without_the_checkout(installed, tmp_path):
    # -S: no site-packages .pth files, so the venv's editable install (which points at the checkout) stays out
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]])}
    result = subprocess.run([sys.executable, "-S", "-c", STUDY_READS_DATA_CONFIGS, str(installed)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(MODELS)


def test_repository_data_configs_are_the_packaged_ones():
    """weaver --data-config data/X.yaml (the driver, the README) reads the very file the package ships."""
    from multiscale.definitions import data_config_file

    for model, definition in MODELS.items():
        assert (REPO_ROOT / definition.data_config).resolve() == data_config_file(model).resolve(), model
