"""One line naming the machine a measurement ran on, for the generated docs.

Absolute times, and int8 results (ONNX Runtime's integer kernels differ by instruction set),
depend on the CPU model, not only on the count of cores, so the line names it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name ("AMD EPYC ..."), or the platform's guess where /proc is absent."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(cpuinfo: Path = CPUINFO) -> str:
    """E.g. "x86_64, AMD EPYC, 2 CPUs, Python 3.11.7"."""
    return (f"{platform.machine()}, {cpu_model(cpuinfo)}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}")  # fmt: skip
