"""The live propensity self-check as its own process (`tastemaker check propensities --follow`)
beside a real serving process, broker and Redis: it follows the decisions as they are logged, and
its /metrics says the check ran on them and passed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request

import grpc
import pytest

from tastemaker.services.bootstrap import Serving
from tastemaker.services.config import Settings
from tastemaker.services.embedded import free_port
from tastemaker.v1 import api_pb2, api_pb2_grpc
from tests.integration.helpers import wait_for
from tests.support.processors import processor_env

pytestmark = pytest.mark.integration


def _sample(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return None if found is None else float(found.group(1))


def test_check_propensities_follow_checks_live_decisions_and_says_so_on_metrics(
    settings: Settings, serving: Serving, channel: grpc.Channel
) -> None:
    port = free_port()
    env = processor_env(settings)  # a worker's environment: the test's broker, topics and Redis
    command = [sys.executable, "-m", "tastemaker.cli", "check", "propensities", "--follow"]
    checker = subprocess.Popen([*command, "--interval", "1", "--metrics-port", str(port)], env=env)
    try:
        rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
        for i in range(160):  # no events: every user without features, one context repeated 160 times
            rank(api_pb2.RankHomeRequest(user_id=f"live-{i % 2}", max_shelves=3, max_cards_per_shelf=3), timeout=10)
        serving.publisher.flush()

        def checked() -> str | None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return None
            seen = _sample(text, "tastemaker_propensity_check_decisions_seen_total")
            replayed = _sample(text, "tastemaker_propensity_check_decisions_replayed_total")
            return text if seen == 160 and replayed == 160 else None

        text = wait_for(checked, timeout_s=90, what="the live check over the 160 decisions")
        assert _sample(text, "tastemaker_propensity_check_passed") == 1.0, text
        assert _sample(text, "tastemaker_propensity_check_mismatches_total") == 0
        assert (_sample(text, "tastemaker_propensity_check_cells_replayed_total") or 0) >= 160 * 4
        assert _sample(text, "tastemaker_propensity_check_contexts_tested") == 1
    finally:
        checker.send_signal(signal.SIGTERM)
        assert checker.wait(30) == 0
    for bad, named in (
        (["--window", "0"], b"--window"),
        (["--json", "x.json"], b"--json"),
        (["--alpha", "2"], b"--alpha"),
    ):
        refused = subprocess.run([*command, *bad], env=env, capture_output=True)
        assert refused.returncode == 2 and named in refused.stderr, (bad, refused.stderr)
