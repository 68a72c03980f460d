"""Peak resident memory of a child process, measured from outside while it runs.

`wait4`'s `ru_maxrss` cannot be used: Linux folds the parent's high-water mark into a child at
fork+exec, so a child of a process holding 2 GB of models reports at least 2 GB whatever it does.
`VmHWM` in /proc/<pid>/status belongs to the child's own address space (reset by exec), so it is
polled until the child exits; the last reading before exit is its peak, give or take one poll.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.01


@dataclass(frozen=True)
class Waited:
    status: int  # the exit code (negative: killed by that signal)
    peak_rss_mb: float
    timed_out: bool


def vm_hwm_mb(pid: int) -> float | None:
    """The process's peak resident set so far, or None once it has exited (or on non-Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def wait_with_peak(process: subprocess.Popen[bytes], timeout_s: float | None = None) -> Waited:
    """Wait for `process` (killing it after `timeout_s`) while tracking its peak RSS."""
    deadline = None if timeout_s is None else time.perf_counter() + timeout_s
    peak = 0.0
    timed_out = False
    while True:
        reading = vm_hwm_mb(process.pid)
        if reading is not None:
            peak = max(peak, reading)
        pid, status, _ = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline and not timed_out:
            timed_out = True
            process.kill()
        time.sleep(POLL_S)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Waited(process.returncode, round(peak, 1), timed_out)
