"""Run weaver's trainer under ``torchrun``, on GPUs (nccl) or CPUs (gloo).

    torchrun --standalone --nproc_per_node=2 -m multiscale.weaver_ddp --backend gloo --gpus '' ... --log-file LOG

Two things stand between torchrun and weaver-core 0.5.3:

1. torchrun's argument parser (Python 3.11 argparse) takes weaver's ``--log`` for an ambiguous
   abbreviation of its own ``--log-dir``/``--logs-specs`` and stops. Pass ``--log-file`` instead;
   it is handed to weaver as ``--log``.
2. On CPUs (``--gpus ''``):
weaver starts the process group only on its GPU path (``--gpus`` set, then
   ``torch.cuda.set_device``), and on the CPU path it wraps the model in DDP with an undefined
   ``local_rank`` and converts BatchNorm to SyncBatchNorm, which needs a GPU. This runs weaver's
   own ``train.py`` with those three spots adjusted, so the multi-process path can be trained and
   tested without GPUs. Each patch must apply exactly once: a weaver version with a different
``train.py`` fails here loudly instead of training something else.
"""

import sys
import types

import weaver.train

_PATCHES = (
    (  # start the process group on the CPU path too
        "    # device\n    if args.gpus:\n",
        "    # device\n"
        "    if args.backend is not None and not args.gpus:\n"
        "        local_rank = args.local_rank\n"
        "        torch.distributed.init_process_group(backend=args.backend)\n"
        "        _logger.info(f'Using distributed PyTorch with {args.backend} backend on CPU')\n"
        "    if args.gpus:\n",
    ),
    (  # SyncBatchNorm needs a GPU; on CPU keep plain BatchNorm (statistics stay per process)
        "            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)\n",
        "            if gpus:\n                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)\n",
    ),
    (  # DDP of a CPU module takes neither device_ids nor output_device
        "output_device=local_rank, find_unused_parameters=False",
        "output_device=local_rank if gpus else None, find_unused_parameters=False",
    ),
)


def patched_weaver_train() -> types.ModuleType:
    with open(weaver.train.__file__) as f:
        source = f.read()
    for old, new in _PATCHES:
        if source.count(old) != 1:
            raise RuntimeError(
                f"multiscale.weaver_ddp: cannot adapt {weaver.train.__file__} for CPU DDP "
                f"(expected weaver-core 0.5.3); the code it patches has changed: {old.strip()[:60]!r}"
            )
        source = source.replace(old, new)
    module = types.ModuleType("weaver_train_cpu_ddp")
    module.__file__ = weaver.train.__file__
    exec(compile(source, weaver.train.__file__, "exec"), module.__dict__)
    return module


def weaver_argv(argv: list[str]) -> list[str]:
    """``--log-file X`` -> ``--log X`` (see the module docstring)."""
    return ["--log" if arg == "--log-file" else ("--log=" + arg[len("--log-file="):] if arg.startswith("--log-file=") else arg)
            for arg in argv]


def runs_on_cpu(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--gpus":
            return i + 1 >= len(argv) or argv[i + 1] == ""
        if arg.startswith("--gpus="):
            return arg == "--gpus="
    return False  # weaver's default is GPU 0


def main():
    argv = weaver_argv(sys.argv[1:])
    if "--backend" not in argv:
        sys.exit("multiscale.weaver_ddp: pass --backend nccl|gloo; it is meant to run under torchrun")
    sys.argv = [sys.argv[0]] + argv
    trainer = patched_weaver_train() if runs_on_cpu(argv) else weaver.train
    trainer.main()


if __name__ == "__main__":
    main()
