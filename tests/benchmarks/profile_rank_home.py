"""Where RankHome's time goes under load: py-spy samples a serving process (embedded Tansu and
Redis, the bench's 20×20 → 10×10 request for a user with a history) while 8 callers in it call
RankHome for `--seconds`, and prints the share of samples in each part of the request and the
throughput it sustained while sampled. `--strategy none` serves the bench's no-exploration
ceiling (every ranking the first k as given).

    python -m tests.benchmarks.profile_rank_home --strategy epsilon-greedy --seconds 12
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: a part of the request → a frame that marks it in a sampled stack
PARTS = {
    "RankHome handler": "_decide (tastemaker/services/home.py",
    "  rankings (bandits/rows.py)": "rank_table (tastemaker/bandits/rows.py",
    "  ranking with pins or exclusions": "rank_with_constraints (tastemaker/bandits/strategies.py",
    "  scoring": "score_level (",
    "  feature read (Redis)": "read_for_ranking (",
    "  packed decision log": "packed_home_page (",
    "  response": "to_response (",
    "  metrics": "observe (tastemaker/services/serving_metrics.py",
    "  publishing (handler side)": "publish (tastemaker/services/publisher.py",
    "request parsing": "parse_rank_home (",
    "calling threads (the load)": "_call (tests/benchmarks/profile_rank_home.py",
    "gRPC server machinery": "grpc/_server.py",
}


def _serve_under_load(strategy: str, seconds: float) -> None:
    """The profiled process: a server and 8 callers for `seconds`; prints `rps N`."""
    import grpc

    from tastemaker.services.bootstrap import build_serving, prepare_topics
    from tastemaker.services.config import Settings
    from tastemaker.services.embedded import EmbeddedStack
    from tastemaker.v1 import api_pb2_grpc
    from tests.benchmarks.bench_rank_home import _request, _warm_user, _without_exploration

    settings = Settings.from_env(grpc_port=0)
    request = _request(20, 20, 10, 10)
    with EmbeddedStack(settings.kafka_bootstrap, settings.redis_url) as stack:
        _warm_user(stack.redis_url, settings.redis_namespace, request)
        if strategy == "none":
            _without_exploration().start()
        settings = settings.with_(
            kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, kafka_client="confluent",
            strategy="epsilon-greedy" if strategy == "none" else strategy,
        )  # fmt: skip
        prepare_topics(settings)
        serving = build_serving(settings, seed=0)
        serving.server.start()
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
            for _ in range(200):
                rank(request)
            end, done = time.monotonic() + seconds, [0] * 8

            def _call(slot: int) -> None:
                while time.monotonic() < end:
                    rank(request, timeout=10)
                    done[slot] += 1

            threads = [threading.Thread(target=_call, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(f"rps {sum(done) / seconds:.0f}", flush=True)
        serving.stop(grace_s=1)


def summarise(raw: Path) -> tuple[int, dict[str, float]]:
    """(samples, share of samples whose stack holds each part) from py-spy's raw (collapsed) output."""
    total, hits = 0, collections.Counter()  # type: ignore[var-annotated]
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for part, frame in PARTS.items():
            if frame in stack:
                hits[part] += int(count)
    return total, {part: hits[part] / max(total, 1) for part in PARTS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", default="epsilon-greedy", help="a serving strategy, or none (the ceiling)")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the profiled child
    args = parser.parse_args()
    if args.serve:
        _serve_under_load(args.strategy, args.seconds)
        return 0
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("profile_rank_home: py-spy is not installed (the dev extra pins it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        child = [sys.executable, "-m", "tests.benchmarks.profile_rank_home", "--serve", "--strategy", args.strategy,
                 "--seconds", str(args.seconds)]  # fmt: skip
        done = subprocess.run(
            [spy, "record", "-r", "200", "-f", "raw", "-o", str(raw), "--nonblocking", "--", *child],
            capture_output=True, text=True, timeout=args.seconds + 300,
        )  # fmt: skip
        if done.returncode != 0 or not raw.exists():
            print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
            return 1
        total, shares = summarise(raw)
    rate = next((line for line in done.stdout.splitlines() if line.startswith("rps ")), "rps ?")
    print(
        f"RankHome under 8 callers, strategy {args.strategy}: {rate.split()[1]} req/s while sampled; {total} "
        "samples (stacks of every busy thread: a thread waiting for the GIL counts where it waits)"
    )
    for part, share in shares.items():
        print(f"  {part:<40}{share:>7.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
