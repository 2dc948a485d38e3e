"""Nothing silent: non-finite inputs and losses, the best epoch across a resume, options that change
the model, and one-line errors of the tools. Small models and synthetic tensors."""

import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot

from multiscale import best_epoch
from multiscale.check_inputs import needed_branches
from multiscale.evaluation.cli import evaluate_main
from multiscale.interpret import cli as interpret_cli
from multiscale.interpret.data import EventSample
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import CheckpointError, build_model, import_file, load_data_config, load_trained_model
from tests.helpers import hand_case  # a small prediction file

REPO_ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(jet_dim=16, jet_heads=2, jet_layers=1, obj_dim=16, obj_heads=2, obj_layers=1, cross_layers=1,
             mlp_dims=(16,), dropout=0.0)
NETWORK = import_file(REPO_ROOT / "networks" / "multiscale_cross.py", "_network_under_test")


@pytest.fixture(scope="module")
def configs():
    return {name: load_data_config(REPO_ROOT / "data" / f"{name}.yaml") for name in ("jets_kin", "jets")}


def make(data_config, fusion="cross", **options):
    torch.manual_seed(0)
    model, info = build_model(data_config, fusion=fusion, **{**SMALL, **options})
    return model.eval(), info


def inputs_for(info, batch=6):
    return synthetic_inputs(info, batch, min_valid=3, generator=torch.Generator().manual_seed(1))


def set_value(inputs, info, group, channel, value, event=0, token=0):
    out = [x.clone() for x in inputs]
    out[info["input_names"].index(group)][event, channel, token] = value
    return out


# ---------------------------------------------------------------- 1. one infinite value


BAD_VALUES = [("pf_vectors", 3, float("inf")), ("pf_vectors", 0, float("nan")), ("pf_features", 3, float("inf")),
              ("pf_features", 0, float("nan")), ("ev_features", 0, float("-inf"))]


@pytest.mark.parametrize("pair_bias", [False, True])
@pytest.mark.parametrize("group,channel,value", BAD_VALUES)
def test_one_non_finite_input_leaves_loss_and_gradients_finite(configs, pair_bias, group, channel, value):
    model, info = make(configs["jets_kin"], pair_bias=pair_bias)
    model.train()
    inputs = set_value(inputs_for(info), info, group, channel, value)
    loss = NETWORK.get_loss(None)(model(*inputs), torch.tensor([0, 1, 0, 1, 0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_token_with_non_finite_four_vector_counts_as_padding(configs):
    model, info = make(configs["jets_kin"], pair_bias=True)
    inputs = inputs_for(info)
    broken = set_value(inputs, info, "pf_vectors", 3, float("inf"), token=1)
    masked = set_value(inputs, info, "pf_mask", 0, 0.0, token=1)
    with torch.no_grad():
        torch.testing.assert_close(model(*broken), model(*masked), atol=1e-6, rtol=1e-5)


def test_non_finite_feature_reads_as_zero(configs):
    model, info = make(configs["jets_kin"], pair_bias=True)
    inputs = inputs_for(info)
    with torch.no_grad():
        torch.testing.assert_close(model(*set_value(inputs, info, "pf_features", 2, float("nan"))),
                                   model(*set_value(inputs, info, "pf_features", 2, 0.0)))


def test_non_finite_loss_stops_training_with_a_clear_error():
    loss_fn = NETWORK.get_loss(None)
    target = torch.tensor([0, 1])
    finite = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    assert torch.equal(loss_fn(finite, target), torch.nn.CrossEntropyLoss()(finite, target))
    with pytest.raises(FloatingPointError, match="non-finite training loss .*inputs.*learning rate"):
        loss_fn(torch.tensor([[float("nan"), 0.0], [0.5, 2.0]]), target)
    with torch.no_grad(), pytest.raises(FloatingPointError, match="non-finite validation loss"):
        loss_fn(torch.tensor([[float("inf"), float("-inf")], [0.5, 2.0]]), target)


# ---------------------------------------------------------------- 4. a batch with no constituent at all


@pytest.mark.parametrize("training", [True, False])
def test_pair_bias_batch_without_any_constituent(configs, training):
    model, info = make(configs["jets_kin"], pair_bias=True)
    model.train(training)
    inputs = inputs_for(info)
    for i, name in enumerate(info["input_names"]):
        if name.startswith("pf_"):
            inputs[i] = torch.zeros_like(inputs[i])  # every particle slot masked, in every event
    out = model(*inputs)
    assert torch.isfinite(out).all()
    if not training:  # the pair bias of padding is zero anyway: same result as without pair_bias weights
        model.encoders["pf"].pair_embed = None
        torch.testing.assert_close(model(*inputs), out)


# ---------------------------------------------------------------- 3. options that change the model


def weaver_records(caplog, level):
    return [r.getMessage() for r in caplog.records if r.name == "weaver" and r.levelno == level]


def test_resolved_configuration_is_logged(configs, caplog):
    caplog.set_level(logging.INFO, logger="weaver")
    build_model(configs["jets_kin"], preset="paper", jet_dim=30)
    (line,) = [m for m in weaver_records(caplog, logging.INFO) if m.startswith("multiscale_cross:")]
    for expected in ("fusion='cross'", "preset='paper'", "jet_dim=30", "jet_heads=5", "pair_bias=False",
                     "jet_max_features=3", "obj_max_features=5", "mlp_dims=(128, 64)", "pf (14 features x 128 tokens"):
        assert expected in line


def test_unused_features_and_tokens_are_named(configs, caplog):
    caplog.set_level(logging.INFO, logger="weaver")
    build_model(configs["jets_kin"], preset="paper", jet_max_tokens=64)
    warnings = weaver_records(caplog, logging.WARNING)
    pf = next(m for m in warnings if "stream 'pf' uses 3 of its 14 features" in m)
    assert "pf_e_log" in pf and "pf_isfj2" in pf and "pf_phi" not in pf
    assert any("stream 'ev' uses 5 of its 7 features" in m and "obj_btag, obj_type" in m for m in warnings)
    assert any("first 64 of its 128 tokens" in m for m in warnings)
    caplog.clear()
    build_model(configs["jets_kin"])
    assert not weaver_records(caplog, logging.WARNING)


def test_explicit_none_means_no_limit(configs):
    model, _ = build_model(configs["jets_kin"], preset="paper", jet_max_features=None)
    assert model.encoders["pf"].in_features == 14 and model.encoders["ev"].in_features == 5
    with pytest.raises(ValueError, match="jet_dim=None"):
        build_model(configs["jets_kin"], jet_dim=None)
    with pytest.raises(ValueError, match="jet_max_features=0: give a positive integer"):
        build_model(configs["jets_kin"], jet_max_features=0)


def test_fusion_on_a_one_stream_config_warns(configs, caplog):
    caplog.set_level(logging.INFO, logger="weaver")
    model, _ = build_model(configs["jets"], fusion="cross", **SMALL)
    assert model.fusion == "single"
    assert any("fusion='cross' is ignored" in m and "one stream ('pf')" in m for m in weaver_records(caplog, logging.WARNING))
    caplog.clear()
    build_model(configs["jets"], **SMALL)  # no fusion asked for: nothing to warn about
    assert not weaver_records(caplog, logging.WARNING)


@pytest.mark.parametrize("saved,loaded,expected", [
    (dict(pair_bias=True), dict(pair_bias=False), "has pair-bias weights: -o pair_bias True"),
    (dict(pair_bias=False), dict(pair_bias=True), "has no pair-bias weights: -o pair_bias False"),
    (dict(preset="paper"), dict(preset="default"), "input feature count"),
    (dict(fusion="cross"), dict(fusion="concat"), "fusion differs"),
])
def test_checkpoint_of_other_options_says_which(configs, tmp_path, saved, loaded, expected):
    path = tmp_path / "net_best_epoch_state.pt"
    torch.save(build_model(configs["jets_kin"], **saved)[0].state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load_trained_model(configs["jets_kin"], path, **loaded)
    message = str(err.value)
    assert "\n" not in message and "trained with other options" in message and expected in message


# ---------------------------------------------------------------- 4. one-line errors of the tools


def interpret_args(model, tmp_path, *options):
    return ["-c", str(REPO_ROOT / "data" / "jets_kin.yaml"), "-m", str(model), "--files", str(tmp_path / "none*.root"),
            "--outdir", str(tmp_path / "out"), *options]


def one_line_exit(main, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    message = str(exit_.value.code)
    prog, _, _ = message.partition(": error: ")  # the form of every tool: cli_common.fail
    assert prog in ("attention_maps.py", "gradcam.py") and "\n" not in message
    return message


@pytest.mark.parametrize("main", [interpret_cli.attention_main, interpret_cli.gradcam_main])
def test_interpret_tools_bad_model_file_is_one_line(tmp_path, main):
    assert "no such model file" in one_line_exit(main, interpret_args(tmp_path / "missing.pt", tmp_path))
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    assert "is not a PyTorch checkpoint" in one_line_exit(main, interpret_args(text, tmp_path))


def test_interpret_tools_wrong_preset_is_one_line(configs, tmp_path, monkeypatch):
    model, info = build_model(configs["jets_kin"], fusion="cross", preset="paper")
    path = tmp_path / "paper.pt"
    torch.save(model.state_dict(), path)
    sample = EventSample(tuple(info["input_names"]), inputs_for(info, batch=2))
    monkeypatch.setattr(interpret_cli, "load_events", lambda *a, **k: (configs["jets_kin"], {"signal": sample, "background": sample}))
    message = one_line_exit(interpret_cli.gradcam_main, interpret_args(path, tmp_path, "-o", "preset", "'default'"))
    assert "trained with other options" in message and "input feature count" in message


@pytest.mark.parametrize("where", ["outdir is a file", "parent is a file"])
def test_evaluate_unwritable_outdir_is_one_line(tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    outdir = blocker if where == "outdir is a file" else blocker / "eval"
    with pytest.raises(SystemExit) as exit_:
        evaluate_main([str(hand_case(tmp_path)), "--outdir", str(outdir), "--min-bkg-events", "1"])
    message = str(exit_.value.code)
    assert "\n" not in message and f"--outdir {outdir}" in message and "is a file, not a directory" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_evaluate_read_only_outdir_is_one_line(tmp_path):
    tmp_path.joinpath("ro").mkdir(mode=0o555)
    with pytest.raises(SystemExit, match="is not writable"):
        evaluate_main([str(hand_case(tmp_path)), "--outdir", str(tmp_path / "ro" / "eval"), "--min-bkg-events", "1"])


def test_readme_weaver_example_runs_on_cpu():
    readme = (REPO_ROOT / "README.md").read_text()
    example = readme.split("Training is plain weaver:", 1)[1].split("```", 2)[1]
    assert '--gpus ""' in example and "--gpus 0 " not in example.replace("--gpus 0 (", "")


# ---------------------------------------------------------------- 2. the best epoch across a resume


def metric_line(epoch, metric, best):
    # what weaver 0.5.3 logs, bold ANSI codes included
    return f"[2024-01-01 00:00:00,000] INFO: \x1b[1mEpoch #{epoch}: Current validation metric: {metric:.5f} (best: {best:.5f})\x1b[0m\n"


def previous_run(rundir, metrics):
    """A first training run of len(metrics) epochs as weaver leaves it: log, per-epoch files, best files."""
    rundir.mkdir(parents=True, exist_ok=True)
    best, best_epoch_ = 0.0, None
    with open(rundir / "train.log", "a") as log:
        for epoch, metric in enumerate(metrics):
            for kind in ("state", "optimizer"):
                (rundir / f"net_epoch-{epoch}_{kind}.pt").write_text(f"{kind} of epoch {epoch}")
            if metric > best:
                best, best_epoch_ = metric, epoch
            log.write(metric_line(epoch, metric, best))
    for kind in ("state", "optimizer"):
        (rundir / f"net_best_epoch_{kind}.pt").write_text(f"{kind} of epoch {best_epoch_}")


def resumed_run(rundir, load_epoch, metrics):
    """weaver 0.5.3 after --load-epoch: best metric reset to 0, so the first resumed epoch becomes 'best'."""
    previous_best = 0.0
    with open(rundir / "train.log", "a") as log:
        for epoch, metric in enumerate(metrics, start=load_epoch + 1):
            for kind in ("state", "optimizer"):
                (rundir / f"net_epoch-{epoch}_{kind}.pt").write_text(f"{kind} of epoch {epoch}")
            if metric > previous_best:
                previous_best = metric
                for kind in ("state", "optimizer"):
                    (rundir / f"net_best_epoch_{kind}.pt").write_text(f"{kind} of epoch {epoch}")
            log.write(metric_line(epoch, metric, previous_best))


def test_best_epoch_survives_a_resume(tmp_path):
    previous_run(tmp_path, [0.80, 0.90, 0.85])
    prefix, log = tmp_path / "net", tmp_path / "train.log"
    assert best_epoch.check(prefix, log, 2) == 1
    resumed_run(tmp_path, 2, [0.84, 0.86])
    assert (tmp_path / "net_best_epoch_state.pt").read_text() == "state of epoch 4"  # weaver's wrong choice
    assert best_epoch.main(["restore", str(prefix), str(log)]) == best_epoch.RESTORED
    assert (tmp_path / "net_best_epoch_state.pt").read_text() == "state of epoch 1"
    assert (tmp_path / "net_best_epoch_optimizer.pt").read_text() == "optimizer of epoch 1"
    assert best_epoch.main(["restore", str(prefix), str(log)]) == 0  # already right: nothing to redo


def test_better_resumed_epoch_stays_best_and_rerun_epochs_count_once(tmp_path):
    previous_run(tmp_path, [0.80, 0.90, 0.99])  # epoch 2 will be trained again from epoch 1
    resumed_run(tmp_path, 1, [0.85, 0.95])
    assert best_epoch.validation_metrics(tmp_path / "train.log") == {0: 0.8, 1: 0.9, 2: 0.85, 3: 0.95}
    assert best_epoch.restore(tmp_path / "net", tmp_path / "train.log") == (3, False)


def test_resume_is_refused_when_the_best_cannot_be_kept(tmp_path, capsys):
    previous_run(tmp_path, [0.80, 0.90, 0.85])
    prefix, log = str(tmp_path / "net"), str(tmp_path / "train.log")
    assert best_epoch.main(["check", prefix, log, "3"]) == 1
    assert "no validation metric for epoch(s) 3" in capsys.readouterr().err
    (tmp_path / "net_epoch-1_state.pt").unlink()
    assert best_epoch.main(["check", prefix, log, "2"]) == 1
    assert "net_epoch-1_state.pt (the best epoch so far) is missing" in capsys.readouterr().err


FAKE_WEAVER = r"""
import shutil, sys
from pathlib import Path
args = sys.argv[1:]
def value(name):  # the last occurrence wins, as in argparse
    return args[len(args) - args[::-1].index(name)] if name in args else None
prefix = value("--model-prefix")
if "--predict" in args:  # the prediction holds the name of the model it was made with
    Path(value("--predict-output")).write_text(Path(prefix).read_text())
    sys.exit(0)
log = value("--log")
Path(log + ".args").write_text("\n".join(args))
resume, epochs = int(value("--load-epoch")), int(value("--num-epochs"))
best = 0.0
for epoch in range(resume + 1, epochs):  # as weaver 0.5.3: best reset to 0 on resume
    metric = 0.5 + 0.01 * epoch
    for kind in ("state", "optimizer"):
        Path(f"{prefix}_epoch-{epoch}_{kind}.pt").write_text(f"{kind} of epoch {epoch}")
    if metric > best:
        best = metric
        for kind in ("state", "optimizer"):
            shutil.copy(f"{prefix}_epoch-{epoch}_{kind}.pt", f"{prefix}_best_epoch_{kind}.pt")
    with open(log, "a") as f:
        f.write(f"INFO: Epoch #{epoch}: Current validation metric: {metric:.5f} (best: {best:.5f})\n")
Path(value("--predict-output")).write_text(Path(prefix + "_best_epoch_state.pt").read_text())
"""


def fake_datasets(root):
    """Files holding every branch data/kin.yaml needs (the driver checks them before weaver runs)."""
    branches = needed_branches(load_data_config(REPO_ROOT / "data" / "kin.yaml"))
    for name in ("train/hh4b_0.root", "train/qcd_0.root", "test/test_0.root"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        with uproot.recreate(root / name) as f:
            f.mktree("Events", {b: np.float32 for b in sorted(branches)})  # a TTree, as weaver reads
            f["Events"].extend({b: np.full(3, b == ("is_signal" if "hh4b" in name else "is_background"), dtype=np.float32)
                                for b in sorted(branches)})  # one class per file: the driver wants both to train


def run_driver(tmp_path, *args):
    script = tmp_path / "fake_weaver.py"
    script.write_text(FAKE_WEAVER)
    env = {**os.environ, "DATADIR_hh4b": str(tmp_path / "data"), "MS_OUTDIR": str(tmp_path / "training"),
           "BASH_FUNC_weaver%%": f'() {{ python "{script}" "$@"; }}'}  # a function wins over the venv's weaver
    env.pop("DDP_NGPUS", None)
    return subprocess.run([str(REPO_ROOT / "train_multiscale.sh"), "kin", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_driver_keeps_the_best_across_load_epoch(tmp_path):
    fake_datasets(tmp_path / "data")
    rundir = tmp_path / "training" / "kin_full"
    previous_run(rundir, [0.80, 0.90, 0.85])
    result = run_driver(tmp_path, "--load-epoch", "2", "--num-epochs", "5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--load-epoch\n2" in (rundir / "train.log.args").read_text()
    assert (rundir / "net_best_epoch_state.pt").read_text() == "state of epoch 1"
    assert (rundir / "pred.root").read_text() == "state of epoch 1"  # predicted again with the restored best

    (rundir / "train.log").write_text("")  # no metric left to tell the best by: refuse before weaver runs
    (rundir / "train.log.args").unlink()
    result = run_driver(tmp_path, "--load-epoch", "2", "--num-epochs", "5")
    assert result.returncode == 1 and "cannot keep the best epoch across --load-epoch 2" in result.stderr
    assert not (rundir / "train.log.args").exists()
