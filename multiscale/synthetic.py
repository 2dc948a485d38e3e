"""Synthetic network inputs of the right shapes, for unit tests and benchmarks only (never training)."""

import torch


def synthetic_inputs(model_info, batch_size, num_tokens=None, min_valid=1, generator=None):
    """Random inputs for every weaver input group: features ~ N(0, 1), physical four-vectors
    (E > |p|), and masks with a random number of valid tokens in [min_valid, P] per event.

    ``num_tokens`` maps a stream prefix (``pf``, ``ev``, ...) to a token count overriding the config's.
    """
    num_tokens = num_tokens or {}
    shapes = {name: model_info["input_shapes"][name] for name in model_info["input_names"]}
    counts = {}
    inputs = []
    for name, shape in shapes.items():
        prefix = name.rpartition("_")[0]
        length = num_tokens.get(prefix, shape[2])
        if prefix not in counts:
            counts[prefix] = torch.randint(min(min_valid, length), length + 1, (batch_size,), generator=generator)
        valid = (torch.arange(length)[None, :] < counts[prefix][:, None]).float()
        if name.endswith("_mask"):
            x = valid[:, None, :]
        elif name.endswith("_vectors"):
            p = torch.randn(batch_size, 3, length, generator=generator) * 20
            energy = p.norm(dim=1, keepdim=True) + torch.rand(batch_size, 1, length, generator=generator)
            x = torch.cat([p, energy], dim=1) * valid[:, None, :]
        else:
            x = torch.randn(batch_size, shape[1], length, generator=generator) * valid[:, None, :]
        inputs.append(x)
    return inputs
