"""Nothing connects to the network at run time: index, ask (every reader) with outbound sockets blocked.

The browser test (tests/test_browser.py) runs the app's server the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.neural_reader import packaged_model
from tests.conftest import ROOT

BLOCKER = ROOT / "tests" / "no_network"


def offline_env(netlog: Path) -> dict[str, str]:
    """This environment with outbound IP sockets blocked and attempts logged to `netlog`."""
    path = os.pathsep.join(p for p in (str(BLOCKER), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "RAG_NETLOG": str(netlog)}


def test_the_blocker_blocks_and_logs(tmp_path: Path) -> None:
    netlog = tmp_path / "net.log"
    code = "import socket; s = socket.socket(); s.settimeout(1); s.connect(('192.0.2.1', 80))"
    run = subprocess.run(
        [sys.executable, "-c", code], env=offline_env(netlog), capture_output=True, text=True
    )
    assert run.returncode != 0 and "outbound network blocked" in run.stderr
    assert "192.0.2.1" in netlog.read_text()


@pytest.mark.slow
def test_index_and_ask_never_connect(tmp_path: Path, seed_corpus: Path) -> None:
    netlog = tmp_path / "net.log"
    env = offline_env(netlog) | {"RAG_INDEX_HOME": str(tmp_path / "index-home")}
    readers = ["heuristic", "hybrid"] if packaged_model() else ["heuristic"]
    commands = [["index", "--corpus", str(seed_corpus), "--quiet"]] + [
        ["ask", "Who is Jibril al-Mouhajer?", "--corpus", str(seed_corpus), "--reader", r] for r in readers
    ]
    for args in commands:
        run = subprocess.run([sys.executable, "-m", "rag", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        if args[0] == "ask":
            assert "Diaby" in run.stdout, run.stdout
    assert not netlog.exists(), netlog.read_text()[:3000]
