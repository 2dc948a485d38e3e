"""Processes that never outlive their parent (the generator's workers, the workflow's jobs)."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid):
    """Linux: the kernel sends SIGTERM to this process when the parent dies, even by SIGKILL, so no
    orphan writes files after the command ended. Elsewhere: nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the prctl call
        os.kill(os.getpid(), signal.SIGTERM)
