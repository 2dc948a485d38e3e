"""The benchmark runs end to end in its quick mode and writes sane figures (no timing asserts)."""

import json
import math
import subprocess
import sys

from multiscale.weaver_io import REPO_ROOT


def test_quick_benchmark_writes_finite_figures(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "tools/benchmark.py", "--quick", "--configs", "matched_model1", "cross",
                    "--out", str(out)], cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert [row["config"] for row in result["configs"]] == ["matched_model1", "cross"]
    for row in result["configs"]:
        for key in ("train_events_per_s", "eager_events_per_s", "onnx_events_per_s", "forward_flops_per_event"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert row["onnx_max_abs_diff"] < 1e-4
    matched, cross = result["configs"]
    assert cross["forward_flops_per_event"] > matched["forward_flops_per_event"]  # 138 tokens vs 50, wider
    assert result["machine"]["cores"] >= 1
