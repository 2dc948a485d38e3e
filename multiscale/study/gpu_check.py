"""One training step of each model on the GPU, before a study spends minutes generating events for them:

    python -m multiscale.study.gpu_check cross concat     # the workflow's gpu_check rule (config gpus > 0)
"""

import sys

import torch

from ..definitions import data_config_file, network_options
from ..synthetic import synthetic_inputs
from ..weaver_io import build_model, load_data_config

BATCH = 64


def check(model_name, features="paperb"):
    """A forward and backward pass of ``model_name`` on CUDA with synthetic inputs; a line saying so."""
    model, info = build_model(load_data_config(data_config_file(model_name)), **network_options(model_name, features))
    model = model.cuda().train()
    output = model(*[x.cuda() for x in synthetic_inputs(info, BATCH, generator=torch.Generator().manual_seed(0))])
    output.float().logsumexp(1).mean().backward()
    if not torch.isfinite(output).all():
        raise RuntimeError(f"{model_name}: non-finite output on CUDA")
    return f"{model_name}: a training step on {torch.cuda.get_device_name()}: ok"


def main(argv=None):
    names = sys.argv[1:] if argv is None else argv
    if not torch.cuda.is_available():
        sys.exit("gpu_check: error: no CUDA device (config gpus > 0)")
    for name in names:
        print(check(name), flush=True)


if __name__ == "__main__":
    main()
