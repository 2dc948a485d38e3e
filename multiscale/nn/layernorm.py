"""``LayerNorm``: ``nn.LayerNorm`` with a faster CPU backward.

PyTorch's CPU LayerNorm backward reduces the weight and bias gradients over the tokens with
per-thread buffers. On the 2-core machine of this project the whole backward of a (50, 51, 40)
input took 38 us on one thread, 52 us on two, and 159 us on two in the phases when the shared
machine was slow (then 1.6 of the 16 ms of kernel time of a training step; tools/reference/microbench.py,
docs/performance.md). Here the input gradient is computed by the native kernel with every thread
(15-18 us), and the weight and bias gradients by the same kernel on one thread. Forward, inference,
autocast, ONNX export and other devices: unchanged.
"""

from contextlib import contextmanager

import torch
import torch.nn as nn


@contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, shape, eps):
        out, mean, rstd = torch.native_layer_norm(x, shape, weight, bias, eps)
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        ctx.shape = shape
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        backward = torch.ops.aten.native_layer_norm_backward
        grad_x = grad_weight = grad_bias = None
        if need_x:
            grad_x = backward(grad, x, ctx.shape, mean, rstd, weight, bias, [True, False, False])[0]
        if need_weight or need_bias:
            with one_thread():
                _, grad_weight, grad_bias = backward(grad, x, ctx.shape, mean, rstd, weight, bias,
                                                     [False, need_weight, need_bias])
        return grad_x, grad_weight, grad_bias, None, None


class LayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type != "cpu"
            or not torch.is_grad_enabled()
            or torch.is_autocast_enabled("cpu")
            or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export()
            or torch.get_num_threads() == 1
        ):
            return super().forward(x)
        return _LayerNormFunction.apply(x, self.weight, self.bias, tuple(self.normalized_shape), self.eps)


def replace_layer_norms(module: nn.Module) -> nn.Module:
    """Swap every ``nn.LayerNorm`` inside ``module`` (e.g. weaver's ``Embed``) for ``LayerNorm``,
    keeping its parameters; returns ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.LayerNorm:
            new = LayerNorm(child.normalized_shape, child.eps, child.elementwise_affine,
                            bias=child.bias is not None, device=child.weight.device if child.weight is not None else None)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            replace_layer_norms(child)
    return module
