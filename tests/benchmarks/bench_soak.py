"""Soak: RankHome and ReportOutcome (and SuggestStickers when a sticker model is configured,
TASTEMAKER_STICKER_MODEL) against a real server process, embedded broker and Redis, on loopback, at
~70% of the rate measured in the same run, for `--minutes`. Prints per minute: calls, errors,
p50/p99 latency and each process's RSS. Exits 1 if any call failed or the server's or Redis's RSS grew
by more than 10% after the first minute (a leak), else 0. The embedded Tansu broker's RSS is printed
but not judged: with memory storage it keeps every record it is sent.

    python -m tests.benchmarks.bench_soak --minutes 10      # make bench runs it with --minutes 10
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

from tastemaker.services.embedded import EmbeddedStack, free_port
from tastemaker.v1 import api_pb2, api_pb2_grpc


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Load:
    """Callers on their own connections, paced to `rate` calls/s in all; one RankHome then (every
    other time) a ReportOutcome for one of its cards, and a SuggestStickers when asked."""

    def __init__(self, address: str, threads: int, stickers: bool) -> None:
        self.address, self.threads, self.stickers = address, threads, stickers
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def _one(self, stubs: tuple, i: int) -> None:  # type: ignore[type-arg]
        home, feedback, stickers = stubs
        start = time.perf_counter()
        try:
            response = home.RankHome(api_pb2.RankHomeRequest(user_id=f"soak-{i % 500}", max_shelves=6), timeout=10)
            if i % 2 and response.shelves and response.shelves[0].cards:
                card = response.shelves[0].cards[0].card_id
                feedback.ReportOutcome(
                    api_pb2.ReportOutcomeRequest(decision_id=response.decision_id, item_id=card, reward=1.0), timeout=10
                )
            if self.stickers and i % 3 == 0:
                stickers.SuggestStickers(
                    api_pb2.SuggestStickersRequest(user_id=f"soak-{i}", message="party cake"), timeout=10
                )
            elapsed = time.perf_counter() - start
            with self._lock:
                self.latencies.append(elapsed)
                self.calls += 1
        except grpc.RpcError as exc:
            with self._lock:
                self.errors.append(f"{exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]

    def run(self, rate: float | None, seconds: float) -> float:
        """Calls/s achieved; paced to `rate` when given, else as fast as the callers go."""
        deadline = time.perf_counter() + seconds
        per_thread = None if rate is None else rate / self.threads

        def worker(slot: int) -> None:
            with grpc.insecure_channel(self.address) as channel:
                stubs = (api_pb2_grpc.HomeRankingStub(channel), api_pb2_grpc.FeedbackStub(channel),
                         api_pb2_grpc.StickersStub(channel))  # fmt: skip
                n, started = 0, time.perf_counter()
                while time.perf_counter() < deadline:
                    self._one(stubs, slot * 1_000_000 + n)
                    n += 1
                    if per_thread:
                        time.sleep(max(0.0, started + n / per_thread - time.perf_counter()))

        before, start = self.calls, time.perf_counter()
        with futures.ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(worker, range(self.threads)))
        return (self.calls - before) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--share", type=float, default=0.7, help="share of the measured maximum rate (default 0.7)")
    args = parser.parse_args()
    if args.minutes <= 0 or not 0 < args.share <= 1:
        print("bench_soak: --minutes must be positive and --share in (0, 1]", file=sys.stderr)
        return 2
    stickers = bool(os.environ.get("TASTEMAKER_STICKER_MODEL"))
    with EmbeddedStack() as stack:
        port = free_port()
        env = {
            **os.environ,
            "TASTEMAKER_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "TASTEMAKER_REDIS_URL": stack.redis_url,
            "TASTEMAKER_GRPC_PORT": str(port),
            "TASTEMAKER_LOG_LEVEL": "WARNING",
            "TASTEMAKER_KAFKA_CLIENT": "confluent",
        }
        server = subprocess.Popen([sys.executable, "-m", "tastemaker.cli", "serve"], env=env)
        processes = {"server": server.pid, **{c.name: c.process.pid for c in stack.children}}
        address = f"127.0.0.1:{port}"
        try:
            load = Load(address, args.threads, stickers)
            deadline = time.monotonic() + 60
            while True:  # wait for the server
                try:
                    with grpc.insecure_channel(address) as channel:
                        api_pb2_grpc.HomeRankingStub(channel).RankHome(
                            api_pb2.RankHomeRequest(user_id="warm"), timeout=5
                        )
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            maximum = load.run(None, 10.0)
            rate = args.share * maximum
            load.latencies.clear()
            skipped = " (SuggestStickers skipped: no TASTEMAKER_STICKER_MODEL)"
            print(f"soak: maximum {maximum:.0f} iterations/s measured over 10 s; running at {rate:.0f}/s "
                  f"({args.share:.0%}) for {args.minutes:g} min, {args.threads} callers"
                  f"{', with SuggestStickers' if stickers else skipped}")  # fmt: skip
            names = list(processes)
            header = f"{'minute':>6}{'calls':>8}{'errors':>8}{'p50 ms':>8}{'p99 ms':>8}"
            print(header + "".join(f"{n.split()[0] + ' MB':>12}" for n in names))
            rss: list[list[float]] = []
            minutes = max(1, round(args.minutes))
            per_minute = args.minutes * 60 / minutes
            for minute in range(1, minutes + 1):
                errors_before = len(load.errors)
                load.latencies.clear()
                load.run(rate, per_minute)
                lat = np.array(load.latencies) * 1e3 if load.latencies else np.array([np.nan])
                sizes = [_rss_mb(processes[n]) for n in names]
                rss.append(sizes)
                row = f"{minute:>6}{len(load.latencies):>8}{len(load.errors) - errors_before:>8}"
                row += f"{np.percentile(lat, 50):>8.2f}{np.percentile(lat, 99):>8.2f}"
                print(row + "".join(f"{s:>12.0f}" for s in sizes))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    growth = {n: (rss[-1][i] / rss[0][i] - 1.0) for i, n in enumerate(names) if len(rss) > 1 and rss[0][i] > 0}
    failed = len(load.errors)
    # the embedded Tansu broker keeps every record in memory (no retention): its growth is the data
    # sent, not a leak, and is printed but not judged
    leaking = {n: g for n, g in growth.items() if g > 0.10 and not n.startswith("kafka broker")}
    print(f"errors: {failed}" + (f" (first: {load.errors[0]})" if failed else ""))
    print("RSS growth after the first minute: " + ", ".join(f"{n} {g:+.1%}" for n, g in growth.items()))
    if failed or leaking:
        print(f"SOAK FAILED: {failed} failed calls; RSS grew over 10%: {leaking or 'none'}")
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
