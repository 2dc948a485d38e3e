"""The shell of the workflow's jobs (``workflow/scripts/job_shell -c COMMAND``, set in workflow/Snakefile): bash, in
a process group of its own, that ends with Snakemake.

Snakemake's local executor runs each job as a child shell. Killed with SIGKILL, Snakemake leaves those running:
orphans that would go on writing outputs while a rerun redoes their jobs. This shell asks the kernel for SIGTERM
when its parent dies (``processes.die_with_parent``), runs ``bash -c COMMAND`` in a new process group, and passes
SIGTERM, SIGINT and SIGHUP on to the whole group as SIGTERM (SIGKILL if bash has not ended ``GRACE_SECONDS`` later),
so a job's processes never outlive the command that started them. Exit status: bash's, or 128 + the signal.
"""

import os
import signal
import subprocess
import sys
import threading

from ..processes import die_with_parent

GRACE_SECONDS = 10.0  # for the generator to remove its partial files


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:  # the group has ended
        pass


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent(os.getppid())
    job = subprocess.Popen(["bash", *argv], start_new_session=True)
    stopped_by = []

    def stop(signum, frame):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # one is enough: let the group stop
        stopped_by.append(signum)
        _signal_group(job.pid, signal.SIGTERM)
        # what has not stopped after the grace period is killed (job.wait below returns when bash has ended)
        killer = threading.Timer(GRACE_SECONDS, _signal_group, (job.pid, signal.SIGKILL))
        killer.daemon = True
        killer.start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    status = job.wait()
    return 128 + stopped_by[0] if stopped_by else status


if __name__ == "__main__":
    sys.exit(main())
