"""`tastemaker up` as a user runs it: a real process with its embedded broker and Redis."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "tastemaker.cli"]


def _child_ports(log: str) -> list[int]:
    return [int(p) for p in re.findall(r"starting (?:kafka broker \(tansu\)|redis) on port (\d+)", log)]


def _is_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_for_a_duration_and_reports(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    done = subprocess.run(
        [
            *CLI,
            "up",
            "--demo",
            "--port",
            "0",
            "--duration",
            "20",
            "--reward-window-s",
            "2",
            "--report-json",
            str(report_path),
            "--export-logs",
            str(tmp_path / "demo.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "decisions" in done.stderr  # the progress line
    report = json.loads(report_path.read_text())
    assert report["decisions_served"] > 0
    assert report["outcomes_joined"] > 0
    assert report["rewarded_decisions"] == report["decisions_served"]
    logging_ips = report["evaluation"]["policies"]["logging"]["estimates"]["ipw"]
    on_policy = report["evaluation"]["on_policy_mean_reward"]
    assert logging_ips["lower"] <= on_policy <= logging_ips["upper"]
    assert report["mean_reward"] == pytest.approx(on_policy)
    # the closing report's propensity self-check: every decision replayed, nothing off
    check = report["propensity_check"]
    assert check["passed"] and check["replayed"] == report["rewarded_decisions"] and not check["mismatches"]
    assert "propensity check: PASSED" in done.stderr
    # … and the live one, which followed the decisions as they were logged (a check every 10 s)
    live = report["live_propensity_check"]
    assert live["decisions_seen"] == report["decisions_served"] and live["checks"] >= 2
    assert live["last_passed"] and live["checks_failed"] == 0 and live["decisions_replayed"] > 0
    assert "live propensity self-check:" in done.stderr
    ports = _child_ports(done.stderr)
    assert len(ports) == 2
    assert not any(_is_listening(p) for p in ports), "a child process outlived `tastemaker up`"
    # the demo's logs, evaluated afterwards: the HTML report and its JSON twin
    evaluated = subprocess.run(
        [*CLI, "evaluate", "--format", "parquet", "--logs", str(tmp_path / "demo.parquet"),
         "--estimators", "ipw,snipw,dr", "--policy", "logging", "--policy", "softmax",
         "--report", str(tmp_path / "demo.html")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    twin = json.loads((tmp_path / "demo.json").read_text())
    assert twin["n_decisions"] == report["rewarded_decisions"]
    assert twin["policies"]["logging"]["estimates"]["ipw"]["value"] == pytest.approx(on_policy)
    page = (tmp_path / "demo.html").read_text()
    assert "<svg" in page and "softmax" in page and "slate-ipw" in page


def test_demo_with_thompson_sampling_learns_online(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    done = subprocess.run(
        [*CLI, "up", "--demo", "--port", "0", "--duration", "20", "--reward-window-s", "2",
         "--strategy", "thompson", "--report-json", str(report_path)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["strategy"] == "thompson" and report["decisions_served"] > 0
    assert report["learner"]["rows_applied"] > 0  # the shared posterior moved while serving
    # Thompson's propensities depend on the posterior the log does not carry: not replayable
    assert report["propensity_check"]["passed"] and report["propensity_check"]["not_replayable"]["thompson"] > 0
    logging = report["evaluation"]["policies"]["logging"]["estimates"]["ipw"]
    assert logging["value"] == pytest.approx(report["evaluation"]["on_policy_mean_reward"])


def _start_serving() -> tuple[subprocess.Popen[str], str]:
    """`tastemaker up` in the background, once it says it serves; returns it and what it printed."""
    process = subprocess.Popen([*CLI, "up", "--port", "0"], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "serving gRPC" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    assert "serving gRPC" in seen, seen
    return process, seen


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    process, seen = _start_serving()
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == 0, rest[-3000:]
    assert not any(_is_listening(p) for p in _child_ports(seen))


def test_children_die_with_a_killed_parent() -> None:
    process, seen = _start_serving()
    ports = _child_ports(seen)
    assert len(ports) == 2 and all(_is_listening(p) for p in ports)
    process.kill()  # SIGKILL: no handler runs, only the kernel's parent-death signal
    process.wait(10)
    deadline = time.monotonic() + 10
    while any(_is_listening(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_is_listening(p) for p in ports), "a child outlived its SIGKILLed parent"


def test_a_taken_port_is_a_clear_error_and_children_are_stopped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CLI, "up", "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"could not bind the gRPC port 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(_is_listening(p) for p in _child_ports(done.stderr))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["up", "--duration", "-5"], {}, "--duration must be positive"),
        (["evaluate", "--logs", "/nonexistent.jsonl"], {}, "no such file"),
        (["evaluate", "--policy", "oracle", "--logs", "x"], {}, "unknown policy 'oracle'"),
        (["serve"], {}, "set TASTEMAKER_KAFKA_BOOTSTRAP"),
        (["evaluate", "--bootstrap", "-1", "--logs", "x"], {}, "--bootstrap must be 0 or"),
        (["evaluate", "--format", "csv", "--logs", "/nonexistent.csv"], {}, "no such file"),
        (["logs", "export", "--out", "x.txt"], {}, "name a .jsonl or a .parquet file"),
        (["evaluate", "--format", "obd"], {}, "--format obd needs --logs"),
        (["up"], {"TASTEMAKER_EPSILON": "lots"}, "TASTEMAKER_EPSILON='lots' is not a valid float"),
        (["bogus-command"], {}, "invalid choice"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    import os

    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_evaluate_rejects_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"decision": 5}\nnot json at all\n')
    done = subprocess.run([*CLI, "evaluate", "--logs", str(garbage)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "garbage.jsonl:1: not a RewardedDecision" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_explains_the_commands() -> None:
    done = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for word in ("up", "serve", "evaluate", "TASTEMAKER_KAFKA_BOOTSTRAP", "TASTEMAKER_REDIS_URL"):
        assert word in done.stdout
