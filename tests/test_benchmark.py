"""The benchmarks (``python -m benchmarks``, not part of the installed package; pytest finds them
through ``pythonpath`` in pyproject.toml) in their quick form, the weaver-log parser, and the weaver
loop on generated files."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.weaver_loop import parse_weaver_log, weaver_throughput

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_writes_finite_figures(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--configs", "matched", "cross3",
                    "--out", str(out)], cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert [row["config"] for row in result["configs"]] == ["matched", "cross3"]
    for row in result["configs"]:
        for key in ("train_events_per_s", "train_adamw_fused_events_per_s", "eager_events_per_s",
                    "onnx_events_per_s", "forward_flops_per_event"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert row["onnx_max_abs_diff"] < 1e-4
        assert row["parameters"] > 0 and row["train_peak_rss_mb"] is not None
    matched, cross3 = result["configs"]
    assert cross3["forward_flops_per_event"] > matched["forward_flops_per_event"]  # 2 x 64 + 9 tokens vs 50
    for optimizer in ("adamw", "adamw_fused"):
        figures = result["matched_training"][optimizer]
        assert 0 < figures["min"] <= figures["median"] <= figures["max"]
    assert result["machine"]["cores"] >= 1 and len(result["machine"]["loadavg_at_start"]) == 3
    assert not (tmp_path / "bench.json.part").exists()


def test_weaver_log_parser_keeps_training_epochs_only():
    log = "\n".join([
        "[INFO] Processed 3000 entries in total (avg. speed 812.5 entries/s)",
        "[INFO] Train AvgLoss: 0.69000, AvgAcc: 0.50000",
        "[INFO] Processed 600 entries in total (avg. speed 4000.0 entries/s)",  # validation
        "[INFO] Evaluation metric ...",
        "[INFO] Processed 3000 entries in total (avg. speed 1500.0 entries/s)",
        "[INFO] Train AvgLoss: 0.65000, AvgAcc: 0.60000",
    ])
    assert parse_weaver_log(log) == [{"entries": 3000, "events_per_s": 812.5},
                                     {"entries": 3000, "events_per_s": 1500.0}]


def test_doc_tables_are_the_saved_json():
    """docs/performance.md's CPU tables are what ``python -m benchmarks --tables docs/benchmark_cpu.json``
    prints: a figure changed in one place and not the other fails here."""
    from benchmarks.report import markdown_tables

    doc = (REPO_ROOT / "docs" / "performance.md").read_text()
    tables = markdown_tables(json.loads((REPO_ROOT / "docs" / "benchmark_cpu.json").read_text()))
    assert tables.count("\n\n") == 2  # configurations, constituent count, batch size
    missing = [line for line in tables.splitlines() if line and line not in doc]
    assert not missing, missing


def test_ab_variant_settings():
    """``ab_matched`` variants: upper-case settings go to the environment, lower-case ones are network options."""
    from benchmarks.reference.ab_matched import parse_variant

    assert parse_variant("/tmp/before") == ("/tmp/before", {}, {})
    path, env, options = parse_variant(".:cpu_kernels=False,OMP_NUM_THREADS=1")
    assert path == str(Path.cwd()) and env == {"OMP_NUM_THREADS": "1"} and options == {"cpu_kernels": False}


@pytest.mark.integration
def test_weaver_loop_on_generated_files(generated_dir):
    result = weaver_throughput([f"sig:{generated_dir}/hh4b_*.root", f"bkg:{generated_dir}/qcd_*.root"],
                               batch=20, steps=3, epochs=2)
    assert [epoch["entries"] for epoch in result["epochs"]] == [60, 60]
    assert all(epoch["events_per_s"] > 0 for epoch in result["epochs"])
    assert result["steady_events_per_s"] == result["epochs"][-1]["events_per_s"]


def test_accelerator_figures_and_mfu_on_cpu():
    """The GPU code path (no GPU in CI): run on the CPU with a made-up peak, check the MFU arithmetic
    against FLOPs counted here, and the peak table's lookup by device name."""
    from benchmarks.configs import build, inputs_for
    from benchmarks.gpu import gpu_figures, peak_bf16
    from benchmarks.timing import forward_flops

    result = gpu_figures(names=("matched",), batches=(4,), repeats=1, device="cpu", compile=False, peak=1e12,
                         log=lambda message: None)
    (row,) = result["configs"]
    model, info = build("matched")
    train_flops = 3 * forward_flops(model, inputs_for(info, 4)) / 4
    assert train_flops > 1e6 and math.isclose(row["train_flops_per_event"], train_flops)
    for key in ("train_fp32", "train_bf16", "infer_fp32", "infer_bf16"):
        assert row[f"{key}_events_per_s"] > 0, key
    assert math.isclose(row["mfu"], row["train_bf16_events_per_s"] * train_flops / 1e12)
    assert row["mfu_variant"] == "bf16" and "1e+12 FLOP/s" in row["mfu_formula"]
    assert peak_bf16("NVIDIA H100 PCIe") == 756e12 and peak_bf16("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_bf16("NVIDIA H200") == 989e12 and peak_bf16("NVIDIA A100-SXM4-80GB") is None


def test_profile_and_weaver_timing_helpers():
    """The profile's kernel categories and the weaver wrapper's per-loop summary (no GPU in CI)."""
    from benchmarks.gpu import _category
    from benchmarks.weaver_timed import summarise

    assert _category("fmha_cutlassF_bf16_aligned_64x64_rf_sm80") == "attention (SDPA kernels)"
    assert _category("nvjet_tst_128x64_64x8_1x1_v_bz_TNT").startswith("matrix products")
    assert _category("void at::native::(anonymous namespace)::fused_adamw_kernel") == "optimizer (fused AdamW)"
    assert _category("triton_per_fused_native_layer_norm_0") == "layer norm"
    assert _category("triton_poi_fused_add_mul_3").startswith("triton")
    # batches start at 0, 1, 3, 6 s and wait 0.5 (the first), 0.2, 0.3, 0.1 s: batches 2 and 3
    # are timed over [1, 6): waits 0.5 s of 5 s
    summary = summarise({"train": True, "starts": [0.0, 1.0, 3.0, 6.0], "waits": [0.5, 0.2, 0.3, 0.1]})
    assert summary["batches"] == 4 and summary["first_wait_s"] == 0.5 and summary["steps_timed"] == 2
    assert math.isclose(summary["wait_s"], 0.5) and math.isclose(summary["wait_fraction"], 0.1)


def test_weaver_matched_interleaves_and_divides_by_its_own_round(monkeypatch):
    """benchmarks.weaver_matched: the order rotates from round to round, and each weaver figure is
    divided by the model figure of its own round."""
    from benchmarks import weaver_matched

    calls = []
    model_speeds = iter([1000.0, 2000.0])
    monkeypatch.setattr(weaver_matched, "model_alone", lambda: calls.append("model") or next(model_speeds))
    monkeypatch.setattr(weaver_matched, "through_weaver", lambda data, name, steps: calls.append(name) or {
        "steady_events_per_s": {"batched": 900.0, "per-event": 500.0}[name], "first_epoch_events_per_s": 1.0,
        "wall_s": 1.0, "command": "weaver ..."})
    result = weaver_matched.run(["sig:x.root"], ["batched", "per-event"], rounds=2, steps=5, log=lambda *a: None)
    assert calls == ["model", "batched", "per-event", "batched", "per-event", "model"]
    fractions = result["summary"]["batched"]["fraction_of_model"]
    assert fractions["values"] == [0.9, 0.45] and fractions["median"] == 0.675
    assert result["summary"]["model"]["events_per_s"]["median"] == 1500.0
