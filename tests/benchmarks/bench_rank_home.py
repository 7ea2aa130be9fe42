"""RankHome over gRPC against its floor: a bare gRPC echo of the same request and response
bytes, on the same machine, in the same run, once per Kafka adapter publishing the decision
log. Reports latencies and each one's ratio to the echo.

    make bench            # or: python -m tests.benchmarks.bench_rank_home --requests 2000
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent import futures

import grpc
import numpy as np

from tastemaker.messaging import KAFKA_CLIENTS
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import EmbeddedStack
from tastemaker.v1 import api_pb2, api_pb2_grpc


def _echo_server(response_bytes: bytes) -> tuple[grpc.Server, int]:
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: response_bytes)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _time_calls(call: object, payload: object, n: int) -> np.ndarray:
    latencies = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call(payload, timeout=10)  # type: ignore[operator]
        latencies[i] = time.perf_counter() - start
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--shelves", type=int, default=8)
    parser.add_argument("--cards", type=int, default=10)
    args = parser.parse_args()

    settings0 = Settings.from_env(grpc_port=0)
    request = api_pb2.RankHomeRequest(user_id="bench-user", max_shelves=args.shelves, max_cards_per_shelf=args.cards)
    ranked: dict[str, np.ndarray] = {}
    with EmbeddedStack(settings0.kafka_bootstrap, settings0.redis_url) as stack:
        for client in KAFKA_CLIENTS:
            settings = settings0.with_(
                kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, kafka_client=client
            )
            prepare_topics(settings)
            serving = build_serving(settings, seed=0)
            serving.server.start()
            with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
                rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
                response_bytes = rank(request).SerializeToString()
                _time_calls(rank, request, 200)  # warm-up
                ranked[client] = _time_calls(rank, request, args.requests)
            serving.stop(grace_s=1)
        echo_server, echo_port = _echo_server(response_bytes)
        with grpc.insecure_channel(f"127.0.0.1:{echo_port}") as channel:
            echo = channel.unary_unary("/bench.Echo/Echo")
            raw = request.SerializeToString()
            _time_calls(echo, raw, 200)
            floor = _time_calls(echo, raw, args.requests)
        echo_server.stop(0)

    def summary(x: np.ndarray) -> dict[str, float]:
        return {"p50_ms": float(np.percentile(x, 50) * 1e3), "p99_ms": float(np.percentile(x, 99) * 1e3)}

    result: dict[str, object] = {
        "requests": args.requests,
        "shelves_x_cards": f"{args.shelves}x{args.cards}",
        "response_bytes": len(response_bytes),
        "bare_grpc_echo": summary(floor),
    }
    for client, latencies in ranked.items():
        result[f"rank_home[{client}]"] = {
            **summary(latencies),
            "ratio_p50_to_echo": float(np.percentile(latencies, 50) / np.percentile(floor, 50)),
            "ratio_p99_to_echo": float(np.percentile(latencies, 99) / np.percentile(floor, 99)),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
