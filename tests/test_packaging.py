"""The package stands on its own: built as a wheel and installed (not editable) away from the
checkout, it builds the network from a data config, exports it to ONNX and runs it in onnxruntime,
with nothing read from the repository but the data config a user would bring."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

USE_THE_INSTALLED_PACKAGE = """
import json, sys, torch
import multiscale
from multiscale.onnx_export import export_like_weaver, max_abs_difference, onnx_session
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config

data_config = load_data_config("jets_kin.yaml")  # the package's own YAML functions (jet alignment)
torch.manual_seed(0)
model, info = build_model(data_config, fusion="cross", for_inference=True, jet_dim=16, jet_heads=2, jet_layers=1,
                          obj_dim=16, obj_heads=2, obj_layers=1, cross_layers=1, mlp_dims=(16,), dropout=0.0)
export_like_weaver(model.eval(), info, "model.onnx")
inputs = synthetic_inputs(info, 4, generator=torch.Generator().manual_seed(1))
diff = max_abs_difference(model, onnx_session("model.onnx"), info["input_names"], inputs)
print(json.dumps({"package": multiscale.__file__, "diff": diff}))
"""


@pytest.mark.slow
def test_wheel_installed_elsewhere_builds_exports_and_runs_a_model(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # built from a copy: setuptools leaves build/ and *.egg-info beside the sources, and a stale build/
    # in the checkout would put deleted modules into later wheels
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT / "multiscale", source / "multiscale", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source)
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"multiscale"}  # no tests, tools, benchmarks
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True, capture_output=True)

    work = tmp_path / "user"
    work.mkdir()
    shutil.copy(REPO_ROOT / "data" / "jets_kin.yaml", work)
    result = subprocess.run([sys.executable, "-c", USE_THE_INSTALLED_PACKAGE], cwd=work, capture_output=True,
                            text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(site)  # not the checkout's editable install
    assert report["diff"] < 1e-4
