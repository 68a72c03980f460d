"""The machine line of the generated docs names the CPU model: times and int8 results depend on it."""

from __future__ import annotations

import os
from pathlib import Path

from rag.machine import cpu_model, describe


def test_the_cpu_model_is_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n")  # fmt: skip
    assert cpu_model(info) == "AMD EPYC 7B13"
    line = describe(info)
    assert "AMD EPYC 7B13" in line and f"{os.cpu_count()} CPUs" in line and "Python 3." in line


def test_without_cpuinfo_or_a_model_name_it_still_says_something(tmp_path: Path) -> None:
    assert cpu_model(tmp_path / "absent")  # the platform's guess, or "unknown CPU"
    blank = tmp_path / "cpuinfo"
    blank.write_text("processor\t: 0\nmodel name\t: \n")
    assert cpu_model(blank)
