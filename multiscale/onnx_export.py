"""ONNX export with the settings of ``weaver --export-onnx`` and a check against onnxruntime."""

import inspect

import numpy as np
import torch


def export_like_weaver(model, model_info, path, opset=15):
    """Legacy TorchScript exporter, opset 15, traced at size 2 on every dynamic axis of size 1."""
    def trace_shape(name):
        dynamic = model_info["dynamic_axes"].get(name, {})
        return [2 if (axis in dynamic and size == 1) else size for axis, size in enumerate(model_info["input_shapes"][name])]

    inputs = tuple(torch.ones(trace_shape(k)) for k in model_info["input_names"])
    kwargs = dict(
        input_names=model_info["input_names"],
        output_names=model_info["output_names"],
        dynamic_axes=model_info["dynamic_axes"],
        opset_version=opset,
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    torch.onnx.export(model.eval(), inputs, str(path), **kwargs)


def onnx_session(path, threads=None, optimized_path=None):
    """An onnxruntime CPU session, all graph optimisations on; ``threads`` intra-op threads
    (default: onnxruntime's choice); ``optimized_path``: where to save the optimised graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
        options.log_severity_level = 3  # not the warning that a saved optimised graph is machine-specific
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, input_names, inputs):
    feed = {name: np.ascontiguousarray(np.asarray(x, dtype=np.float32)) for name, x in zip(input_names, inputs)}
    return session.run(None, feed)[0]


def max_abs_difference(model, session, input_names, inputs):
    """Largest |PyTorch - onnxruntime| over the outputs (inf if ONNX gives NaN where PyTorch does not)."""
    with torch.no_grad():
        expected = model.eval()(*[torch.as_tensor(x) for x in inputs]).numpy()
    got = run_onnx(session, input_names, [torch.as_tensor(x).numpy() for x in inputs])
    if np.isnan(got).any() and not np.isnan(expected).any():
        return float("inf")
    return float(np.abs(expected - got).max())
