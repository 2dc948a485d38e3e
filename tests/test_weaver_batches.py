"""weaver's batches gathered whole (``multiscale.weaver_batches``): the same batches as weaver's
per-event DataLoader, in memory and streamed, and the same training through the ``weaver``
command with the switch on and off."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from multiscale.network import get_evaluate_fn, get_model, get_train_fn
from multiscale.weaver_batches import BatchedLoader, batched, can_batch
from multiscale.weaver_io import load_data_config, register_custom_functions

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


def weaver_loader(files, data_config, batch, in_memory, fetch_step=1.0, drop_last=True, num_workers=0):
    """The training DataLoader as weaver's train_load builds it (train range 0-0.8)."""
    from weaver.utils.dataset import SimpleIterDataset

    register_custom_functions()
    dataset = SimpleIterDataset(files, str(REPO_ROOT / "data" / data_config), batch_size=batch, for_training=True,
                                load_range_and_fraction=((0, 0.8), 1, 1), fetch_step=fetch_step,
                                infinity_mode=in_memory, in_memory=in_memory, name="train")
    return DataLoader(dataset, batch_size=batch, drop_last=drop_last, pin_memory=True, num_workers=num_workers)


def batches(loader, count=None, seed=3):
    """The first ``count`` batches (None: all) of one epoch, with numpy's generator (weaver's shuffles) seeded."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    out = []
    for batch in loader:
        out.append(batch)
        if count is not None and len(out) == count:
            break
    return out, torch.rand(1)  # the torch generator's state after the epoch's start


def assert_same_batches(expected, got):
    (expected, expected_rng), (got, got_rng) = expected, got
    assert len(got) == len(expected) > 0
    for (xe, ye, ze), (xg, yg, zg) in zip(expected, got):
        for want, have in ((xe, xg), (ye, yg), (ze, zg)):
            assert list(have) == list(want)
            for name in want:
                assert have[name].dtype == want[name].dtype and have[name].shape == want[name].shape, name
                assert torch.equal(have[name], want[name]), name
    assert torch.equal(got_rng, expected_rng)  # the same draws from torch's generator (dropout after it)


@pytest.fixture(scope="module")
def files(generated_dir):
    return {"sig": sorted(map(str, generated_dir.glob("hh4b_*.root"))),
            "bkg": sorted(map(str, generated_dir.glob("qcd_*.root")))}


def test_in_memory_batches_are_weavers_across_reshuffles(files):
    # 480 training events at batch 64: 20 batches are 2.7 passes, so the batches straddle weaver's
    # re-shuffles (a batch takes the end of one order and the start of the next)
    loader = weaver_loader(files, "jets.yaml", 64, in_memory=True)
    assert can_batch(loader)
    expected = batches(loader, 20)
    got = batches(BatchedLoader(weaver_loader(files, "jets.yaml", 64, in_memory=True)), 20)
    assert_same_batches(expected, got)


@pytest.mark.parametrize("drop_last", [True, False])
def test_streamed_batches_are_weavers_to_the_end_of_the_data(files, drop_last):
    """Files read a quarter at a time (weaver's fetches, in a loading thread): batches straddle the
    fetches, and the epoch ends with weaver's (a last short batch unless drop_last)."""
    make = lambda: weaver_loader(files, "kin.yaml", 50, in_memory=False, fetch_step=0.25, drop_last=drop_last)
    expected = batches(make())
    got = batches(BatchedLoader(make()))
    assert_same_batches(expected, got)
    assert (len(expected[0][-1][1]["_label_"]) == 50) == drop_last  # 480 events: 9 x 50 + 30


def test_prediction_batches_with_observers_are_weavers(files):
    """weaver's --predict loader (not for training: observers in Z, whole files per fetch, no
    shuffling, a last short batch)."""
    from weaver.utils.dataset import SimpleIterDataset

    register_custom_functions()

    def make():
        dataset = SimpleIterDataset({"": files["sig"] + files["bkg"]}, str(REPO_ROOT / "data" / "jets_kin.yaml"),
                                    for_training=False, load_range_and_fraction=((0, 1), 1, 1), fetch_by_files=True,
                                    fetch_step=1, name="test_")
        return DataLoader(dataset, batch_size=64, drop_last=False, pin_memory=True, num_workers=0)

    expected = batches(make())
    assert {"event_id", "weight", "fj1_sdmass"} <= set(expected[0][0][2])
    assert_same_batches(expected, batches(BatchedLoader(make())))
    assert sum(len(batch[1]["_label_"]) for batch in expected[0]) == 600


def test_loaders_it_cannot_reproduce_are_left_alone(files):
    loader = weaver_loader(files, "kin.yaml", 50, in_memory=True, num_workers=1)
    assert not can_batch(loader) and batched(loader) is loader  # the events are in the worker processes
    plain = DataLoader(list(range(10)), batch_size=5)
    assert batched(plain) is plain


def test_network_config_hands_weaver_its_own_loops_with_the_switch(files, monkeypatch):
    """get_train_fn / get_evaluate_fn call weaver's functions with the loader batched, or with
    weaver's own loader for -o batched_loader False; get_model accepts the option."""
    import weaver.utils.nn.tools as tools

    seen = {}
    monkeypatch.setattr(tools, "train_classification", lambda model, *args, **kwargs: seen.update(train=args[3]))
    monkeypatch.setattr(tools, "evaluate_classification", lambda model, loader, *a, **k: seen.update(evaluate=loader))
    monkeypatch.setattr(tools, "train_regression", lambda model, *args, **kwargs: seen.update(regression=args[3]))
    loader = weaver_loader(files, "kin.yaml", 50, in_memory=True)
    config = loader.dataset.config
    get_model(config, batched_loader=False)

    get_train_fn(config)(None, None, None, None, loader, "cpu", 0)
    get_evaluate_fn(config)(None, loader, "cpu", 0)
    assert isinstance(seen["train"], BatchedLoader) and isinstance(seen["evaluate"], BatchedLoader)
    get_train_fn(config, batched_loader=False)(None, None, None, None, loader, "cpu", 0)
    get_evaluate_fn(config, batched_loader=False)(None, loader, "cpu", 0)
    assert seen["train"] is loader and seen["evaluate"] is loader
    args = type("Args", (), {"regression_mode": True})()
    get_train_fn(config)(None, None, None, None, loader, "cpu", 0, extra_args={"args": args})
    assert isinstance(seen["regression"], BatchedLoader)


# weaver with numpy seeded and its file loading made synchronous (weaver loads and shuffles the next chunk in a
# thread that draws from numpy's global generator); with PYTHONHASHSEED fixed as well (without it, two weaver runs
# of the same command trained on one of two event orders, at random, whichever the loader)
_SEEDED_WEAVER = """
import concurrent.futures, sys, numpy
import weaver.utils.dataset

class Synchronous(concurrent.futures.Executor):
    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future

weaver.utils.dataset.ThreadPoolExecutor = lambda max_workers=1: Synchronous()
numpy.random.seed(0)
sys.argv[0] = "weaver"
from weaver.train import main
main()
"""


def test_weaver_training_is_the_same_with_and_without_the_switch(files, tmp_path):
    """The weaver command, numpy seeded (weaver's shuffles) and -o seed 1: two epochs with the
    batched loader give bit for bit the weights, losses and validation of weaver's per-event path."""
    results = {}
    for switch in (True, False):
        prefix = tmp_path / str(switch) / "net"
        cmd = [sys.executable, "-c", _SEEDED_WEAVER, "--data-config", "data/kin.yaml",
               "--network-config", "networks/multiscale_cross.py", "--custom-functions", "data/jet_functions.py",
               "-o", "seed", "1", "-o", "batched_loader", str(switch), "--gpus", "",
               "--data-train", *[f"{name}:{f}" for name, fs in files.items() for f in fs],
               "--in-memory", "--fetch-step", "1", "--steps-per-epoch", "12", "--num-epochs", "2", "--batch-size", "50",
               "--num-workers", "0", "--optimizer", "adamw", "--model-prefix", str(prefix), "--log", str(prefix) + ".log"]
        subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"})
        log = open(str(prefix) + ".log").read()
        results[switch] = (torch.load(f"{prefix}_epoch-1_state.pt"),
                           [line.split("]", 1)[-1] for line in log.splitlines() if "AvgLoss" in line or "metric" in line])
    (weights_on, lines_on), (weights_off, lines_off) = results[True], results[False]
    assert len(lines_on) >= 4 and lines_on == lines_off
    assert weights_on.keys() == weights_off.keys()
    for name in weights_on:
        assert torch.equal(weights_on[name], weights_off[name]), name
