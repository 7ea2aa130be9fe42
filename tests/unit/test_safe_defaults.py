"""Nothing lost or forged by default: where `serve` spools unless told otherwise, the decision key
from a file (and never the shipped placeholder), `serve` beyond loopback refusing unsigned ids,
`keygen`, and stream workers that wait for Redis and Kafka instead of exiting."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import redis

from tastemaker.cli import main
from tastemaker.features.patience import start_patiently, unreachable
from tastemaker.services.config import ConfigError, Settings
from tastemaker.services.security import SecurityError, check_exposure


def test_the_spool_is_on_disk_unless_told_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(state_dir=str(tmp_path), grpc_port=50051).spool_file() == tmp_path / "spool-50051.db"
    assert Settings(state_dir=str(tmp_path), grpc_port=50051, spool_path="/x/s.db").spool_file() == Path("/x/s.db")
    assert Settings(state_dir=str(tmp_path), grpc_port=50051, spool_path="off").spool_file() is None
    assert Settings(state_dir=str(tmp_path), grpc_port=0).spool_file() is None  # no later process could find it
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert Settings(grpc_port=7).spool_file() == tmp_path / "xdg" / "tastemaker" / "spool-7.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings(grpc_port=7).spool_file() == tmp_path / "home" / ".local" / "state" / "tastemaker" / "spool-7.db"


def test_the_decision_key_from_a_file_never_the_placeholder(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("  0123456789abcdef0123  \n")
    assert Settings(decision_key_file=str(key)).decision_key_bytes() == b"0123456789abcdef0123"
    assert Settings(decision_key="0123456789abcdef").decision_key_bytes() == b"0123456789abcdef"
    assert Settings().decision_key_bytes() == b""
    with pytest.raises(ConfigError, match="set one, not both"):
        Settings(decision_key="0123456789abcdef", decision_key_file=str(key))
    with pytest.raises(ConfigError, match="still the placeholder"):
        Settings(decision_key="CHANGE-ME-run-tastemaker-keygen")
    key.write_text("CHANGE-ME-run-tastemaker-keygen")
    with pytest.raises(ConfigError, match="not a key of at least 16 bytes"):
        Settings(decision_key_file=str(key)).decision_key_bytes()
    key.write_text("short")
    with pytest.raises(ConfigError, match="not a key of at least 16 bytes"):
        Settings(decision_key_file=str(key)).decision_key_bytes()
    with pytest.raises(ConfigError, match="No such file"):
        Settings(decision_key_file=str(tmp_path / "missing")).decision_key_bytes()


def test_beyond_loopback_unsigned_ids_are_refused_unless_insecure() -> None:
    check_exposure("127.0.0.1", False, False, False, False)
    check_exposure("0.0.0.0", True, True, False, True)
    check_exposure("0.0.0.0", False, False, True, False)
    with pytest.raises(SecurityError, match=r"without a decision key \(TASTEMAKER_DECISION_KEY or _FILE\)"):
        check_exposure("0.0.0.0", True, True, False, False)
    with pytest.raises(SecurityError, match=r"without TLS .*, tokens .* and a decision key"):
        check_exposure("0.0.0.0", False, False, False, False)


def test_keygen_writes_once_and_keeps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys" / "decision-key"
    assert main(["keygen", "--out", str(out)]) == 0
    first = out.read_text().strip()
    assert len(first) == 64 and int(first, 16) >= 0 and out.stat().st_mode & 0o777 == 0o600
    assert Settings(decision_key_file=str(out)).decision_key_bytes() == first.encode()
    assert main(["keygen", "--out", str(out)]) == 0
    assert out.read_text().strip() == first and "kept" in capsys.readouterr().out
    out.write_text("x")
    assert main(["keygen", "--out", str(out)]) == 2
    assert "shorter than a key" in capsys.readouterr().err
    assert main(["keygen"]) == 0
    printed = capsys.readouterr().out.strip()
    assert len(printed) == 64 and printed != first


def test_a_worker_waits_for_what_does_not_answer(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def start() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
        return "started"

    with caplog.at_level(logging.INFO, logger="tastemaker.features.patience"):
        assert start_patiently("stream processor", start, threading.Event(), first_pause_s=0.01) == "started"
    waits = [r.getMessage() for r in caplog.records if "cannot start yet" in r.getMessage()]
    assert len(waits) == 3 and "attempt 3" in waits[2] and "ConnectionError" in waits[0]
    assert any("started after 4 attempts" in r.getMessage() for r in caplog.records)


def test_a_mistake_is_not_waited_for_and_a_stop_ends_the_wait() -> None:
    def wrong() -> None:
        raise ValueError("TASTEMAKER_REDIS_URL: 'x' is not host:port")

    with pytest.raises(ValueError, match="not host:port"):
        start_patiently("joiner", wrong, threading.Event())
    stop = threading.Event()

    def down() -> None:
        stop.set()  # SIGTERM while waiting
        raise ConnectionRefusedError(111, "Connection refused")

    assert start_patiently("learner", down, stop, first_pause_s=5.0) is None
    assert unreachable(TimeoutError()) and not unreachable(KeyError("x"))
    assert not unreachable(FileNotFoundError(2, "No such file", "/etc/kafka/ca.pem"))  # a mistake, not a wait


def test_a_failed_batch_shows_in_the_processors_metrics() -> None:
    from tastemaker.features.metrics import ProcessorMetrics
    from tastemaker.features.processor import ProcessorStats

    metrics = ProcessorMetrics()
    metrics.update(ProcessorStats(failures=2))
    metrics.update(ProcessorStats(failures=3))
    assert metrics.registry.get_sample_value("tastemaker_features_failed_batches_total") == 3
