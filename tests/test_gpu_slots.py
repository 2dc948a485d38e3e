"""multiscale.study.gpu_slots: trainings share the GPUs, each command on the GPU of the first free slot."""

import os
import subprocess
import sys

from multiscale.study import gpu_slots


def run_on_a_slot(lock_dir, *options, env=None):
    """CUDA_VISIBLE_DEVICES as the command run through gpu_slots sees it."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"} if env is None else env
    shown = subprocess.run([sys.executable, "-m", "multiscale.study.gpu_slots", *options, "--lock-dir", str(lock_dir),
                            "--", "sh", "-c", "echo ${CUDA_VISIBLE_DEVICES-unset}"],
                           capture_output=True, text=True, env=env, check=True)
    return shown.stdout.strip()


def test_each_command_takes_the_first_free_slot_and_frees_it_when_it_ends(tmp_path):
    first, fd = gpu_slots.take_slot(tmp_path, 2)
    second, _ = gpu_slots.take_slot(tmp_path, 2)
    assert (first, second) == (0, 1)
    os.close(fd)  # a command that ends frees its slot
    assert gpu_slots.take_slot(tmp_path, 2)[0] == 0


def test_slots_fill_one_gpu_then_the_next(tmp_path):
    """--per-gpu 2: slots 0 and 1 are GPU 0, slot 2 is GPU 1."""
    assert run_on_a_slot(tmp_path, "--gpus", "2", "--per-gpu", "2") == "0"  # every slot free
    held = [gpu_slots.take_slot(tmp_path, 4)[1] for _ in range(2)]  # two commands running on GPU 0
    assert run_on_a_slot(tmp_path, "--gpus", "2", "--per-gpu", "2") == "1"
    os.close(held[0])
    assert run_on_a_slot(tmp_path, "--gpus", "2", "--per-gpu", "2") == "0"


def test_the_command_holds_its_slot_while_it_runs(tmp_path):
    command = subprocess.Popen([sys.executable, "-m", "multiscale.study.gpu_slots", "--gpus", "1", "--lock-dir",
                                str(tmp_path), "--", "sleep", "30"],
                               env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
                               stderr=subprocess.PIPE, text=True)
    try:
        assert "slot 0" in command.stderr.readline()  # it has its slot, and has become the command
        assert run_on_a_slot(tmp_path, "--gpus", "2") == "1"  # slot 0 is taken
    finally:
        command.kill()
        command.wait()
    assert run_on_a_slot(tmp_path, "--gpus", "2") == "0"  # the kernel released it with the process


def test_a_gpu_chosen_by_the_batch_system_is_kept(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "3"}
    assert run_on_a_slot(tmp_path, "--gpus", "2", env=env) == "3"
    assert not list(tmp_path.glob("*.lock"))  # no slot taken
