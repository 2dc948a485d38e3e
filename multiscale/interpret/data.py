"""Events for the interpretability tools, read through weaver's own data pipeline.

``weaver.utils.dataset.SimpleIterDataset`` in test mode (no shuffling, no reweighting) does the
selection, ``new_variables`` (the jet alignment of ``--custom-functions``), standardisation,
padding and stacking exactly as ``weaver --predict`` does, so the model sees what it saw in training.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from multiscale.check_inputs import expand
from multiscale.weaver_io import load_data_config

CLASSES = ("signal", "background")


@dataclass
class EventSample:
    """Network inputs of a set of events, in ``input_names`` order (what ``model(*inputs)`` takes)."""

    input_names: tuple[str, ...]
    inputs: list[torch.Tensor]

    def __len__(self):
        return 0 if not self.inputs else len(self.inputs[0])

    def batches(self, batch_size):
        for start in range(0, len(self), batch_size):
            yield [x[start : start + batch_size] for x in self.inputs]

    def group(self, name):
        return self.inputs[self.input_names.index(name)]


def expand_files(patterns):
    """File names and glob patterns -> existing files, each once, in the order given."""
    files = expand(map(str, patterns))
    return sorted(set(files), key=files.index)


def signal_class_index(data_config, signal_label="is_signal"):
    """Index of the signal class among the labels (= the logit the tools explain)."""
    if data_config.label_type != "simple":
        raise ValueError(f"only 'simple' labels are supported, the data config has {data_config.label_type!r}")
    values = list(data_config.label_value)
    if signal_label not in values:
        raise ValueError(f"label {signal_label!r} is not among the data config's labels {values}")
    return values.index(signal_label)


def feature_index(data_config, group, variable):
    """Position of ``variable`` in input group ``group`` (e.g. 'pf_features', 'pf_eta'), or None."""
    names = list(data_config.input_dicts.get(group, ()))
    return names.index(variable) if variable in names else None


def load_events(data_config_path, files, events_per_class, custom_functions=None,
                signal_label="is_signal", read_batch=512):
    """Read up to ``events_per_class`` signal and background events (in file order).

    Returns (data_config, {"signal": EventSample, "background": EventSample}). Stops reading as
    soon as both classes are full (files are read one at a time, as ``weaver --predict`` does).
    """
    from weaver.utils.dataset import SimpleIterDataset

    data_config = load_data_config(data_config_path, custom_functions=custom_functions)  # registers the functions
    signal_index = signal_class_index(data_config, signal_label)
    dataset = SimpleIterDataset(
        {"": expand_files(files)},
        str(Path(data_config_path)),
        for_training=False,
        load_range_and_fraction=((0, 1), 1, 1),
        fetch_by_files=True,
        fetch_step=1,
        async_load=False,
        name="interpret",
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=read_batch, num_workers=0)
    names = tuple(data_config.input_names)
    label_name = data_config.label_names[0]
    collected = {c: [] for c in CLASSES}
    counts = dict.fromkeys(CLASSES, 0)
    for X, y, _ in loader:
        is_signal = np.asarray(y[label_name]) == signal_index
        for cls, select in (("signal", is_signal), ("background", ~is_signal)):
            take = np.flatnonzero(select)[: events_per_class - counts[cls]]
            if len(take):
                index = torch.as_tensor(take)
                collected[cls].append([X[name][index].float() for name in names])
                counts[cls] += len(take)
        if all(n >= events_per_class for n in counts.values()):
            break
    samples = {}
    for cls in CLASSES:
        parts = collected[cls]
        inputs = [torch.cat([p[i] for p in parts]) for i in range(len(names))] if parts else []
        samples[cls] = EventSample(names, inputs)
    return data_config, samples
