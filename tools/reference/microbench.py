#!/usr/bin/env python3
"""Two kernels of a CPU training step against the PyTorch operators they replace, at the shapes of
the matched configuration (docs/performance.md):

- LayerNorm backward on a (50, 51, 40) input: PyTorch's kernel with every thread, the same kernel
  on one thread, and ``multiscale.nn.layernorm.LayerNorm`` (input gradient with every thread,
  weight and bias gradients on one);
- dropout (p = 0.2) forward + backward on (50, 51, 64): ``nn.Dropout`` and
  ``multiscale.nn.blocks.Dropout`` (8 random bits per element).

    python tools/reference/microbench.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from multiscale.nn.blocks import Dropout  # noqa: E402
from multiscale.nn.layernorm import LayerNorm, one_thread  # noqa: E402


def microseconds(fn, calls=400):
    for _ in range(20):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def forward_backward(module, shape):
    x = torch.randn(shape, requires_grad=True)
    grad = torch.randn(shape)

    def run():
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x).backward(grad)

    return run


def main():
    print(f"{torch.get_num_threads()} threads")
    shape = (50, 51, 40)
    x, grad = torch.randn(shape), torch.randn(shape)
    weight, bias = torch.randn(40), torch.randn(40)
    _, mean, rstd = torch.native_layer_norm(x, [40], weight, bias, 1e-5)
    backward = torch.ops.aten.native_layer_norm_backward

    def native():
        backward(grad, x, [40], mean, rstd, weight, bias, [True, True, True])

    def native_one_thread():
        with one_thread():
            native()

    def input_gradient_only():
        backward(grad, x, [40], mean, rstd, weight, bias, [True, False, False])

    print(f"LayerNorm backward {shape}: all threads {microseconds(native):6.1f} us, "
          f"one thread {microseconds(native_one_thread):6.1f} us, "
          f"input gradient only, all threads {microseconds(input_gradient_only):6.1f} us")
    print(f"LayerNorm forward + backward {shape}: nn.LayerNorm "
          f"{microseconds(forward_backward(torch.nn.LayerNorm(40), shape)):6.1f} us, multiscale LayerNorm "
          f"{microseconds(forward_backward(LayerNorm(40), shape)):6.1f} us")
    shape = (50, 51, 64)
    print(f"dropout forward + backward {shape}: nn.Dropout "
          f"{microseconds(forward_backward(torch.nn.Dropout(0.2), shape)):6.1f} us, multiscale Dropout "
          f"{microseconds(forward_backward(Dropout(0.2), shape)):6.1f} us")


if __name__ == "__main__":
    main()
