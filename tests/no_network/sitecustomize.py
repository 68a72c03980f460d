"""Loaded by Python at start-up when this folder is on PYTHONPATH: outbound IP sockets fail.

Every attempt is appended to the file named by $RAG_NETLOG (with a short stack), so a test can
prove that nothing tried to connect, not only that nothing needed to.
"""

import os
import socket
import traceback

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _record(address: object) -> None:
    with open(os.environ.get("RAG_NETLOG", os.devnull), "a", encoding="utf-8") as log:
        log.write(f"connect {address!r}\n{''.join(traceback.format_stack(limit=10))}\n")


def _blocked_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _record(address)
        raise OSError(f"outbound network blocked by the test: {address!r}")
    _connect(self, address)


def _blocked_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _record(address)
        return 111  # ECONNREFUSED
    return _connect_ex(self, address)


socket.socket.connect = _blocked_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _blocked_connect_ex  # type: ignore[method-assign]
