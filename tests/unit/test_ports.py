"""Port helpers and the metrics server's error when its port is taken."""

from __future__ import annotations

import socket

import pytest

from tastemaker.features.metrics import ProcessorMetrics
from tastemaker.services.embedded import free_ports


def test_free_ports_are_consecutive_and_all_bindable() -> None:
    first = free_ports(3)
    with socket.socket() as a, socket.socket() as b, socket.socket() as c:
        for sock, port in zip((a, b, c), range(first, first + 3), strict=True):
            sock.bind(("127.0.0.1", port))


def test_metrics_on_a_taken_port_names_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            ProcessorMetrics().serve(port)
