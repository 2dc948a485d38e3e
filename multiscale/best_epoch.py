"""Keep weaver's best epoch across ``--load-epoch`` (used by train_multiscale.sh).

weaver-core 0.5.3 starts every run with best metric 0, so after a resume the first resumed epoch is
"best" whatever its metric, and ``<prefix>_best_epoch_state.pt`` (what ``predict`` uses) can end up
worse than an epoch before the resume. The validation metric of every epoch is in the training log
("Epoch #N: Current validation metric: X"), and each epoch's weights in ``<prefix>_epoch-N_state.pt``,
so the best over all runs can be derived again:

    python -m multiscale.best_epoch check PREFIX LOG EPOCH   before resuming from EPOCH: refuse if it cannot be kept
    python -m multiscale.best_epoch restore PREFIX LOG       after: copy the best epoch's files to *_best_epoch_*
                                                             (exit status 3 when that changed the best model)
"""

import filecmp
import re
import shutil
import sys
from pathlib import Path

METRIC_LINE = re.compile(r"Epoch #(\d+): Current validation metric: (\S+) \(best")
RESTORED = 3  # exit status of `restore` when it replaced the best model: predictions must be made again


class ResumeError(RuntimeError):
    pass


def log_files(log) -> list[Path]:
    """The log and its rank-0 twin (weaver appends .000 to --log under torchrun), oldest first."""
    paths = [p for p in (Path(log), Path(f"{log}.000")) if p.is_file()]
    return sorted(paths, key=lambda p: p.stat().st_mtime)


def validation_metrics(log) -> dict[int, float]:
    """{epoch: metric}; a later line wins (a resumed run re-trains the epochs after the resume point)."""
    metrics = {}
    for path in log_files(log):
        for line in path.read_text(errors="replace").splitlines():
            match = METRIC_LINE.search(line)
            if match:
                metrics[int(match.group(1))] = float(match.group(2))
    return metrics


def best_of(metrics: dict[int, float], last: int | None = None) -> int:
    """weaver's choice: the first epoch with the highest metric (classification: higher is better)."""
    epochs = [e for e in sorted(metrics) if last is None or e <= last]
    best = None
    for epoch in epochs:
        if best is None or metrics[epoch] > metrics[best]:
            best = epoch
    return best


def state_file(prefix, epoch) -> Path:
    return Path(f"{prefix}_epoch-{epoch}_state.pt")


def check(prefix, log, load_epoch: int) -> int:
    """The best epoch up to ``load_epoch``, or ResumeError when the best cannot be kept across the resume."""
    metrics = validation_metrics(log)
    lacking = [e for e in range(load_epoch + 1) if e not in metrics]
    if lacking:
        raise ResumeError(f"cannot keep the best epoch across --load-epoch {load_epoch}: {log} has no validation "
                          f"metric for epoch(s) {', '.join(map(str, lacking))} (weaver would let a worse resumed epoch "
                          f"overwrite {prefix}_best_epoch_state.pt); train from scratch or restore the log")
    best = best_of(metrics, load_epoch)
    if not state_file(prefix, best).is_file():
        raise ResumeError(f"cannot keep the best epoch across --load-epoch {load_epoch}: {state_file(prefix, best)} "
                          f"(the best epoch so far) is missing (removed by --auto-clean?)")
    return best


def restore(prefix, log) -> tuple[int, bool]:
    """Copy the best epoch over all runs to ``<prefix>_best_epoch_{state,optimizer}.pt``.
    Returns (best epoch, whether the best model file changed)."""
    metrics = validation_metrics(log)
    if not metrics:
        raise ResumeError(f"{log} has no validation metric: cannot tell the best epoch")
    best = best_of(metrics)
    changed = False
    for kind in ("state", "optimizer"):
        source, target = Path(f"{prefix}_epoch-{best}_{kind}.pt"), Path(f"{prefix}_best_epoch_{kind}.pt")
        if not source.is_file():
            raise ResumeError(f"{source} (best epoch {best}, metric {metrics[best]:g}) is missing: cannot restore it")
        if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
            shutil.copy2(source, target)
            changed |= kind == "state"
    return best, changed


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) == 4 and argv[0] == "check":
            if not argv[3].isdigit():
                raise ResumeError(f"--load-epoch {argv[3]!r}: give an epoch number")
            best = check(argv[1], argv[2], int(argv[3]))
            print(f"best epoch so far: {best}; it is kept if the resumed epochs do not beat it")
            return 0
        if len(argv) == 3 and argv[0] == "restore":
            best, changed = restore(argv[1], argv[2])
            print(f"best epoch over all runs: {best}" + (" (restored: the resumed run had replaced it)" if changed else ""))
            return RESTORED if changed else 0
    except ResumeError as err:
        print(f"best_epoch: {err}", file=sys.stderr)
        return 1
    print(__doc__.split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
