"""weaver's training batches gathered whole, instead of event by event.

weaver 0.5.3 hands its loop one event at a time: ``_SimpleIter.__next__`` builds three dicts of
numpy views per event (``get_data``) and torch's DataLoader collates ``batch_size`` of them
(``default_collate``: a tensor per event and input, then ``torch.stack``). On the CPU that Python
work is paid by the training process itself; on a GPU it leaves the GPU idle (docs/performance.md).

When the loader runs in the training process (``--num-workers 0``, the way ``--in-memory`` data
trains fastest), the events already sit in weaver's table of numpy arrays, with weaver's own
shuffled order in the iterator's ``indices`` and its position in ``cursor``. ``BatchedLoader``
takes the next ``batch_size`` positions of that order and gathers each input with one numpy
indexing: the same events in the same order as the DataLoader gives, as the same tensors
(tests/test_weaver_batches.py). At the end of the loaded events it calls weaver's own ``__next__``
once (re-shuffle with --in-memory, the next fetch otherwise, or the end of the data) and puts that
event back, so weaver's bookkeeping and log lines stay its own.

The network config hands weaver this through ``get_train_fn`` / ``get_evaluate_fn``
(``multiscale.network``), which wrap weaver's unchanged training and evaluation functions. Switch:
the network option ``batched_loader`` (default True; ``-o batched_loader False`` restores weaver's
per-event path). With workers, or for a loader of another kind, weaver's loader is used as it is.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import default_collate

try:
    from weaver.utils.dataset import SimpleIterDataset, _SimpleIter
except ImportError:  # another weaver layout: the per-event path stays
    SimpleIterDataset = _SimpleIter = None


def can_batch(loader) -> bool:
    """True for the loaders ``BatchedLoader`` reproduces: weaver's dataset read in this process,
    batched by the DataLoader with its default collation."""
    return (
        SimpleIterDataset is not None
        and isinstance(loader, DataLoader)
        and isinstance(loader.dataset, SimpleIterDataset)
        and loader.num_workers == 0
        and loader.batch_size is not None
        and loader.collate_fn is default_collate
    )


def _as_batch(value):
    """A gathered column as default_collate would give it: numpy -> tensor, anything else (an
    awkward array of a jagged observer) as it is."""
    return torch.from_numpy(value) if isinstance(value, np.ndarray) and value.dtype != object else value


class BatchedLoader:
    """Iterates ``loader``'s batches ((X, y, Z) dicts of tensors), built with one gather per field."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.dataset = loader.dataset  # weaver's loops read loader.dataset.config
        self.batch_size = loader.batch_size
        self.drop_last = loader.drop_last
        self.pin = loader.pin_memory and torch.cuda.is_available()

    def __iter__(self):
        # what starting a DataLoader epoch does besides: one draw from torch's generator (its workers'
        # base seed), so that the training's random numbers (dropout) stay those of weaver's path
        torch.empty((), dtype=torch.int64).random_(generator=self.loader.generator)
        events = iter(self.dataset)  # as the DataLoader does once per epoch (a kept iterator for --in-memory)
        if not isinstance(events, _SimpleIter):
            yield from self.loader
            return
        config = self.dataset.config
        fields = ([("_" + k, k) for k in config.input_names], [(k, k) for k in config.label_names],
                  [(k, k) for k in config.z_variables])
        while True:
            parts = _take(events, self.batch_size)
            count = sum(len(idx) for _, idx in parts)
            if count == 0 or (self.drop_last and count < self.batch_size):
                return
            batch = tuple({name: _gather(parts, column) for column, name in group} for group in fields)
            if self.pin:
                batch = tuple({k: v.pin_memory() if torch.is_tensor(v) else v for k, v in d.items()} for d in batch)
            yield batch


def _take(events, n):
    """The next ``n`` events of weaver's order as [(table, positions)], advancing its cursor; fewer
    at the end of the data. At the end of the loaded events weaver's ``__next__`` runs once for its
    refill (which may re-shuffle ``indices`` in place: positions are copied) and the event it
    returned is put back."""
    parts = []
    while n > 0:
        available = len(events.indices) - events.cursor
        if available <= 0:
            try:
                next(events)
            except StopIteration:
                break
            events.cursor -= 1  # __next__ ends with cursor += 1 after the refill: un-take that event
            continue
        take = min(n, available)
        positions = np.asarray(events.indices[events.cursor:events.cursor + take]).copy()
        parts.append((events.table, positions))
        events.cursor += take
        n -= take
    return parts


def _gather(parts, column):
    values = [table[column][positions] for table, positions in parts]
    if len(values) == 1:
        return _as_batch(values[0])
    if isinstance(values[0], np.ndarray):
        return _as_batch(np.concatenate(values))
    import awkward as ak
    return ak.concatenate(values)


_told = set()  # the loaders whose path was logged (weaver's loops ask once per epoch)


def batched(loader):
    """``BatchedLoader(loader)`` where it reproduces the loader, else the loader itself."""
    use = can_batch(loader)
    if id(loader) not in _told:
        _told.add(id(loader))
        from weaver.utils.logger import _logger

        name = getattr(getattr(loader, "dataset", None), "_name", "?")
        if use:
            _logger.info(f"data loader '{name}': batches gathered whole in this process (multiscale.weaver_batches)")
        elif getattr(loader, "num_workers", 0) > 0 and getattr(loader.dataset, "_in_memory", False):
            _logger.info(f"data loader '{name}': --in-memory with {loader.num_workers} worker(s): weaver builds the "
                         f"batches event by event in them; --num-workers 0 gathers them whole in this process, "
                         f"faster on a CPU with few cores (docs/performance.md)")
    return BatchedLoader(loader) if use else loader
