"""Run weaver's trainer under ``torchrun`` on CPUs with the gloo backend.

    torchrun --standalone --nproc_per_node=2 -m multiscale.ddp_cpu --backend gloo --gpus '' ...

weaver-core 0.5.3 starts the process group only on its GPU path (``--gpus`` set, then
``torch.cuda.set_device``), and on the CPU path it wraps the model in DDP with an undefined
``local_rank`` and converts BatchNorm to SyncBatchNorm, which needs a GPU. This runs weaver's own
``train.py`` with those three spots adjusted for CPUs, so the multi-process path can be trained
and tested without GPUs. Each patch must apply exactly once: a weaver version with a different
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
                f"multiscale.ddp_cpu: cannot adapt {weaver.train.__file__} for CPU DDP "
                f"(expected weaver-core 0.5.3); the code it patches has changed: {old.strip()[:60]!r}"
            )
        source = source.replace(old, new)
    module = types.ModuleType("weaver_train_cpu_ddp")
    module.__file__ = weaver.train.__file__
    exec(compile(source, weaver.train.__file__, "exec"), module.__dict__)
    return module


def main():
    if "--backend" not in sys.argv:
        sys.exit("multiscale.ddp_cpu: pass --backend gloo (and --gpus ''); it is meant to run under torchrun")
    patched_weaver_train().main()


if __name__ == "__main__":
    main()
