"""The shell of the workflow's jobs (``multiscale-job-shell -c COMMAND``, set in workflow/Snakefile): bash, in a
process group of its own, that ends with Snakemake.

Snakemake's local executor runs each job as a child shell. Killed with SIGKILL, Snakemake leaves those running:
orphans that would go on writing outputs while a rerun redoes their jobs. This shell asks the kernel for SIGTERM
when its parent dies (``processes.die_with_parent``), runs ``bash -c COMMAND`` in a new process group, and passes
SIGTERM, SIGINT and SIGHUP on to the whole group (SIGKILL after ``GRACE_SECONDS``), so a job's processes never
outlive the command that started them. Exit status: bash's, or 128 + the signal.
"""

import os
import signal
import subprocess
import sys

from ..processes import die_with_parent

GRACE_SECONDS = 10.0  # for the generator to remove its partial files


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent(os.getppid())
    job = subprocess.Popen(["bash", *argv], start_new_session=True)

    def stop(signum, frame):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # one is enough: let the group stop
        try:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    return job.wait()


if __name__ == "__main__":
    sys.exit(main())
