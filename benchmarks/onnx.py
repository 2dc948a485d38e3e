"""Export as ``weaver --export-onnx`` does, then speed and agreement in onnxruntime."""

import os
import tempfile
from collections import Counter

import numpy as np
import torch

from multiscale.onnx_export import export_like_weaver, max_abs_difference, onnx_session

from .timing import median_time

# operators of the ONNX standard that onnxruntime leaves as they are; the rest are its fusions
_STANDARD = {"MatMul", "Add", "Mul", "Softmax", "Transpose", "Reshape", "Gemm", "Div", "Sub", "Erf", "Concat",
             "Slice", "Gather", "Unsqueeze", "Shape", "Cast", "Where", "ReduceMean", "ReduceSum", "Pow", "Sqrt",
             "Expand", "Greater", "Not", "And", "ConstantOfShape", "Equal", "Pad", "Squeeze", "BatchNormalization",
             "Identity", "Constant", "Clip", "Max", "Min", "Sigmoid", "Range", "Split"}


def _op_counts(path):
    import onnx

    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def onnx_figures(model, model_info, inputs, repeats=5, threads=None):
    """Events/s in onnxruntime (intra-op threads = torch's), max |torch - onnxruntime|, and what
    the graph optimiser made of the graph (node counts, fused operators)."""
    threads = threads or torch.get_num_threads()
    feed = {name: np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
            for name, x in zip(model_info["input_names"], inputs)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        optimized = os.path.join(tmp, "model.opt.onnx")
        export_like_weaver(model.eval().cpu(), model_info, path)
        session = onnx_session(path, threads, optimized)
        speed = inputs[0].shape[0] / median_time(lambda: session.run(None, feed), repeats)
        diff = max_abs_difference(model, session, model_info["input_names"], [x.cpu() for x in inputs])
        exported, after = _op_counts(path), _op_counts(optimized)
    return {
        "onnx_events_per_s": speed,
        "onnx_max_abs_diff": diff,
        "onnx_nodes_exported": sum(exported.values()),
        "onnx_nodes_optimized": sum(after.values()),
        "onnx_fused_ops": {op: n for op, n in sorted(after.items()) if op not in _STANDARD},
    }
