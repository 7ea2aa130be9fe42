"""RankHome over gRPC against its floor: a bare gRPC echo of the same request and response
bytes, on the same machine, in the same run. A request carries 20 candidate shelves × 20 cards
and asks for 10 × 10; each exploration strategy serves it (decision log published by
confluent-kafka; ε-greedy also with kafka-python). Sequential calls give p50/p99 latency;
`--threads` concurrent callers for `--seconds` give throughput. Two rows run `tastemaker serve
--workers 1` and `--workers 2` as real process trees (each caller on its own connection, so the
kernel spreads them over the workers). Reports each one's ratio to the
echo and how far its p99 is above the echo's (the targets: ≥ 0.5× throughput, p99 within 2 ms),
and the same request served in-process without gRPC (what the Python ranking itself costs). A last
row serves only what every RankHome must do — decode and validate the request, read the user's
features for its candidates from Redis — and answers fixed bytes: the ceiling any ranking logic on
this design can reach. The
user has a history (470 stored feature values), the same on every call, so per-context caches
(softmax and Thompson propensities) stay warm: a new context costs those strategies more.

    make bench            # or: python -m tests.benchmarks.bench_rank_home --requests 1000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

from tastemaker.features.redis_connect import connect
from tastemaker.records.layout import pack
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import EmbeddedStack
from tastemaker.services.home import rank_home_response
from tastemaker.services.requests import parse_rank_home
from tastemaker.v1 import api_pb2, api_pb2_grpc


def _bytes_server(service: str, method: str, handle: Callable[[bytes, object], bytes]) -> tuple[grpc.Server, int]:
    """A gRPC server with one raw-bytes unary method `/service/method`, on a free local port."""
    handler = grpc.method_handlers_generic_handler(service, {method: grpc.unary_unary_rpc_method_handler(handle)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _echo_server(response_bytes: bytes) -> tuple[grpc.Server, int]:
    return _bytes_server("bench.Echo", "Echo", lambda request, context: response_bytes)


def _floor_server(redis_url: str, namespace: str, response_bytes: bytes) -> tuple[grpc.Server, int]:
    """RankHome's unavoidable part and nothing else: decode and validate the request, read the
    user's features for its candidates from Redis (one round trip), answer with fixed bytes. No
    scoring, exploration, decision log or response building: what any ranking adds is on top."""

    from tastemaker.features.store import FeatureStore
    from tastemaker.services.feature_reads import read_ranking_features

    store = FeatureStore(connect(redis_url), namespace=namespace)

    def handle(raw: bytes, context: object) -> bytes:
        request = parse_rank_home(api_pb2.RankHomeRequest.FromString(raw))
        read_ranking_features(store, request.user_id, request.candidates)
        return response_bytes

    return _bytes_server("bench.Floor", "Read", handle)


def _time_calls(call: object, payload: object, n: int) -> np.ndarray:
    latencies = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call(payload, timeout=10)  # type: ignore[operator]
        latencies[i] = time.perf_counter() - start
    return latencies


def _throughput(call: object, payload: object, threads: int, seconds: float) -> float:
    """Completed calls per second with `threads` callers in parallel for `seconds`."""
    deadline = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(slot: int) -> None:
        while time.perf_counter() < deadline:
            call(payload, timeout=10)  # type: ignore[operator]
            counts[slot] += 1

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return sum(counts) / (time.perf_counter() - start)


def _throughput_connections(address: str, payload: object, threads: int, seconds: float) -> float:
    """As `_throughput`, each caller on its own connection (so `serve --workers N` spreads them)."""
    channels = [grpc.insecure_channel(address) for _ in range(threads)]
    calls = [api_pb2_grpc.HomeRankingStub(c).RankHome for c in channels]
    deadline = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(slot: int) -> None:
        while time.perf_counter() < deadline:
            calls[slot](payload, timeout=10)
            counts[slot] += 1

    for call in calls:
        call(payload, timeout=30)  # connect and warm up every connection first
    start = time.perf_counter()
    with futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    rate = sum(counts) / (time.perf_counter() - start)
    for channel in channels:
        channel.close()
    return rate


def _worker_processes(settings: Settings, workers: int, request: object, n: int, threads: int, seconds: float):  # type: ignore[no-untyped-def]
    """`tastemaker serve --workers N` as a real process tree: sequential latency on one connection,
    throughput with one connection per caller."""
    import os
    import signal
    import subprocess
    import sys

    from tastemaker.services.embedded import free_port

    port = free_port()
    env = {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": settings.redis_url,
        "TASTEMAKER_REDIS_NAMESPACE": settings.redis_namespace,
        "TASTEMAKER_TOPIC_PREFIX": settings.topic_prefix,
        "TASTEMAKER_KAFKA_CLIENT": "confluent",
        "TASTEMAKER_LOG_LEVEL": "WARNING",
        "TASTEMAKER_METRICS_PORT": "0",
    }
    command = [sys.executable, "-m", "tastemaker.cli", "serve", "--workers", str(workers), "--port", str(port)]
    parent = subprocess.Popen(command, env=env)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        with grpc.insecure_channel(address) as channel:
            rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
            while True:
                try:
                    rank(request, timeout=5)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            _time_calls(rank, request, 100)
            latencies = _time_calls(rank, request, n)
        rate = _throughput_connections(address, request, threads, seconds)
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(60)
    return latencies, rate


def _request(shelves: int, cards: int, show_shelves: int, show_cards: int) -> api_pb2.RankHomeRequest:
    return api_pb2.RankHomeRequest(
        user_id="bench-user",
        max_shelves=show_shelves,
        max_cards_per_shelf=show_cards,
        candidates=[
            api_pb2.Shelf(shelf_id=f"bench-shelf-{s}", card_ids=[f"bench-s{s}-card-{c}" for c in range(cards)])
            for s in range(shelves)
        ],
    )


EXPLANATIONS = ("because-you-played", "popular-near-you", "new-release")


def _rich_request(request: api_pb2.RankHomeRequest) -> api_pb2.RankHomeRequest:
    """The same request with 3 explanation variants and 8 features per shelf, 2 features per card,
    and a context (hour, device, country): what a RankHome with explanations carries."""
    rich = api_pb2.RankHomeRequest()
    rich.CopyFrom(request)
    rich.context.update({"hour": "21", "device": "tv", "country": "se"})
    for s, shelf in enumerate(rich.candidates):
        shelf.explanation_ids.extend(EXPLANATIONS)
        shelf.features.update({f"embedding_{j}": ((s + j) % 7) / 7 for j in range(6)})
        shelf.features.update({"freshness": s / 20, "editorial": 1.0})
        for c, card in enumerate(shelf.card_ids):
            shelf.card_features[card].values.update({"freshness": c / 20, "editorial": (c % 3) / 3})
    return rich


def _rich_rows(settings0: Settings, stack: EmbeddedStack, plain: api_pb2.RankHomeRequest, n: int, threads: int,
               seconds: float) -> dict[str, tuple[np.ndarray, float, np.ndarray, float]]:  # fmt: skip
    """Per (strategy, linear features): the plain request's and the rich one's latencies and
    throughput, on one server, back to back."""
    rich = _rich_request(plain)
    out = {}
    for strategy, features in (("epsilon-greedy", "engagement"), ("linucb", "engagement"), ("linucb", "context")):
        settings = settings0.with_(
            kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, kafka_client="confluent",
            strategy=strategy, linear_features=features,
        )  # fmt: skip
        prepare_topics(settings)
        serving = build_serving(settings, seed=0)
        serving.server.start()
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
            measured = []
            for request in (plain, rich):
                _time_calls(rank, request, 100)
                measured += [_time_calls(rank, request, n), _throughput(rank, request, threads, seconds)]
        serving.stop(grace_s=1)
        out[f"{strategy}, {features} features"] = tuple(measured)
    return out  # type: ignore[return-value]


def _warm_user(redis_url: str, namespace: str, request: api_pb2.RankHomeRequest, events: int = 3000) -> int:
    """Give the request's user a history (plays and card clicks across its shelves and cards), so the
    ranker reads and scores real per-shelf and per-card features, as for an active user. Returns the
    number of stored feature fields the ranker reads."""

    from tastemaker.features.feature_writer import FeatureWriter
    from tastemaker.features.folding import Provenance
    from tastemaker.features.store import FeatureStore
    from tastemaker.v1 import records_pb2

    rng = np.random.default_rng(0)
    client = connect(redis_url)
    store = FeatureStore(client, namespace=namespace)
    batch = []
    for i in range(events):
        shelf = request.candidates[int(rng.integers(len(request.candidates)))]
        card = shelf.card_ids[int(rng.integers(len(shelf.card_ids)))]
        event = records_pb2.UserEvent(
            event_id=f"bench-{i}", user_id=request.user_id, type=("play", "card_click")[i % 2],
            event_time_ms=int(time.time() * 1000) - (events - i) * 1000, shelf_id=shelf.shelf_id, item_id=card,
            listened_seconds=30.0, track_length_seconds=180.0,
        )  # fmt: skip
        batch.append((event, Provenance("bench-events", 0, i)))
    FeatureWriter(client, namespace=namespace).apply(batch)
    features = store.read(request.user_id)
    return sum(len(v) for v in features.keyed.values()) + len(features.values)


class _Preread:
    """A feature reader answering with features read once: ranking without the Redis round trip."""

    def __init__(self, features: object) -> None:
        self._features = features

    def read_for_ranking(self, *args: object) -> object:
        return self._features


def _without_exploration():  # type: ignore[no-untyped-def]
    """A patch of the home ranker that shows each level's first k candidates as given, with
    propensity 1: RankHome with every ranking's cost (drawing, propensities) taken away, the
    ceiling any exploration strategy on this serving path can reach."""
    from unittest import mock

    from tastemaker.bandits.strategies import Placement

    def first_k(strategy, candidates, k, rng, pinned=None, excluded=frozenset()):  # type: ignore[no-untyped-def]
        ids = list(candidates.ids[:k])
        scores = candidates.scores[: len(ids)].tolist()
        return Placement(ids, list(range(len(ids))), np.ones(len(ids)), 1.0, dict(zip(ids, scores, strict=True)))

    def rows(strategy, rows, k, rng):  # type: ignore[no-untyped-def]
        return [first_k(strategy, row, k, rng) for row in rows]

    patches = [mock.patch("tastemaker.bandits.page.rank_with_constraints", first_k),
               mock.patch("tastemaker.bandits.page.rank_rows", rows)]  # fmt: skip

    class _Both:
        def start(self) -> None:
            for p in patches:
                p.start()

        def stop(self) -> None:
            for p in patches:
                p.stop()

    return _Both()


def _rank_only(settings: Settings, request: api_pb2.RankHomeRequest, features: object, n: int) -> np.ndarray:
    """Seconds per page of Tastemaker ranking in-process with the features already read (parse,
    score, explore with every propensity, the packed log built, the response built; no I/O)."""
    from tastemaker.services.bootstrap import default_catalog, reward_model_for, strategy_for
    from tastemaker.services.home import HomeRankingService

    home = HomeRankingService(
        features=_Preread(features),  # type: ignore[arg-type]
        catalog=default_catalog(), model=reward_model_for(settings),
        strategy=strategy_for(settings, "shelf"), card_strategy=strategy_for(settings, "card"),
        publish=lambda *a: True, decisions_topic="unused", default_max_shelves=10, default_max_cards=10,
        reward_window_s=30.0, rng=np.random.default_rng(0),
    )  # fmt: skip
    return _time_calls(lambda r, timeout: rank_home_response(home.rank_home(parse_rank_home(r))), request, n)


def _vw_pages(request: api_pb2.RankHomeRequest, features: object, n: int, learn: bool) -> np.ndarray:
    """Seconds per page of the same page with Vowpal Wabbit `--cb_explore_adf` driven from Python
    the usual way (text examples): one shelf ranking over the candidates, then one card ranking per
    shown shelf, with the same features (the user's counts shared; per action its id and log
    engagement). A ranking: the first action drawn from VW's pmf, the rest in pmf order. With
    `learn`, each ranking's drawn action is also learned with its cost and probability."""
    from vowpalwabbit import Workspace  # type: ignore[import-not-found]

    from tastemaker.bandits.reward_features import COUNT_TYPES

    counts, shelf_eng, card_eng = features.counts, features.shelves, features.cards  # type: ignore[attr-defined]
    shared = "shared |u " + " ".join(f"{t}:{np.log1p(c):.6f}" for t, c in zip(COUNT_TYPES, counts, strict=True))
    starts = np.cumsum([0] + [len(s.card_ids) for s in request.candidates])
    rows, columns = request.max_shelves, request.max_cards_per_shelf
    vw = Workspace("--cb_explore_adf --epsilon 0.1 --quiet --random_seed 1")
    rng = np.random.default_rng(0)

    def rank(lines: list[str], k: int) -> list[int]:
        example = [shared, *lines]
        pmf = np.asarray(vw.predict(example))
        first = int(rng.choice(len(lines), p=pmf / pmf.sum()))
        order = [first] + [int(a) for a in np.argsort(-pmf, kind="stable") if a != first][: k - 1]
        if learn:
            labelled = list(lines)
            labelled[first] = f"0:{-float(rng.random() < 0.1)}:{pmf[first]:.6f} {lines[first]}"
            vw.learn([shared, *labelled])
        return order

    def page(_: object, timeout: float = 0.0) -> None:
        shelves = rank(
            [
                f"|a shelf={s.shelf_id} eng:{np.log1p(e):.6f}"
                for s, e in zip(request.candidates, shelf_eng, strict=True)
            ],
            rows,
        )
        for s in shelves:
            cards = request.candidates[s].card_ids
            engagement = card_eng[starts[s] : starts[s + 1]]
            rank([f"|a card={c} eng:{np.log1p(e):.6f}" for c, e in zip(cards, engagement, strict=True)], columns)

    _time_calls(page, None, 20)  # warm-up
    times = _time_calls(page, None, n)
    vw.finish()
    return times


#: decisions per producer batch in the compressed sizes (linger 5 ms at ~1,000 decisions/s: ~5-50)
BATCH = 50


def _log_bytes(decisions: list) -> dict[str, float]:  # type: ignore[type-arg]
    """Bytes per decision: written out (the layout before 2), packed (what serving publishes),
    packed and compressed alone with zstd (level 3, Kafka's default: what a record costs when its
    batch shares nothing), and packed in a batch of BATCH compressed with zstd and lz4 (frame) —
    what the producer sends and the broker keeps. The bench repeats one user's request, so its
    batches share the id table and most numbers: real batches fall between the two."""
    import lz4.frame
    import zstandard

    packed = [pack(d).SerializeToString() for d in decisions]
    batch = b"".join(packed)
    zstd = zstandard.ZstdCompressor(level=3)
    return {
        "zstd_alone": float(np.mean([len(zstd.compress(p)) for p in packed])),
        "written_out": float(np.mean([len(d.SerializeToString()) for d in decisions])),
        "packed": float(np.mean([len(p) for p in packed])),
        "zstd": len(zstd.compress(batch)) / len(packed),
        "lz4": len(lz4.frame.compress(batch)) / len(packed),
    }


def _softmax_new_contexts(contexts: int = 20) -> str:
    """What softmax's Monte-Carlo marginals cost for 20-card contexts it has not seen (k = 10)."""
    from tastemaker.bandits import plackett_luce
    from tastemaker.bandits.strategies import Softmax

    softmax, rng = Softmax(), np.random.default_rng(0)
    kinds = {"log(1 + engagement), engagement ~ Poisson(1)": lambda: np.log1p(rng.poisson(1.0, 20)),
             "one card far ahead (+8)": lambda: np.r_[8.0, np.log1p(rng.poisson(1.0, 19))]}  # fmt: skip
    lines = ["softmax marginals, new 20-card context, 10 positions:"]
    for name, draw in kinds.items():
        times, draws = [], []
        for _ in range(contexts):
            weights = plackett_luce.weights(draw(), softmax.temperature)
            start = time.perf_counter()
            plackett_luce.compute_marginals(
                weights, 10, softmax.exact_limit, softmax.n_samples, softmax.seed, softmax.min_draws
            )
            times.append(time.perf_counter() - start)
            draws.append(plackett_luce.draws_needed(weights, 10, softmax.n_samples, softmax.min_draws))
        lines.append(f"  {name}: median {np.median(times) * 1e3:.1f} ms, {int(np.median(draws))} draws")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--candidates", default="20x20", help="candidate shelves x cards per request")
    parser.add_argument("--show", default="10x10", help="shelves x cards asked for")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the measured rates as JSON (for capacity.py)"
    )
    args = parser.parse_args()
    shelves, cards = (int(x) for x in args.candidates.split("x"))
    show_shelves, show_cards = (int(x) for x in args.show.split("x"))
    request = _request(shelves, cards, show_shelves, show_cards)
    runs = [("epsilon-greedy", "kafka-python")] + [
        (strategy, "confluent") for strategy in ("epsilon-greedy", "softmax", "linucb", "thompson", "squarecb")
    ]
    settings0 = Settings.from_env(grpc_port=0)
    measured: dict[str, tuple[np.ndarray, float]] = {}
    in_process: dict[str, np.ndarray] = {}
    log_bytes: dict[str, dict[str, float]] = {}
    response_bytes = b""
    with EmbeddedStack(settings0.kafka_bootstrap, settings0.redis_url) as stack:
        n_features = _warm_user(stack.redis_url, settings0.redis_namespace, request)
        import tempfile

        from tests.support.redis_cluster import LocalCluster

        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="bench-cluster-"))).start()
        _warm_user(cluster.url, settings0.redis_namespace, request)
        # the same ε-greedy server with its features on a 6-node Redis Cluster (loopback)
        runs.append(("epsilon-greedy", "confluent", cluster.url))  # type: ignore[arg-type]
        # the ε-greedy server with every ranking replaced by the first k as given (propensity 1):
        # scoring, the decision log, publishing and the response stay: what no exploration can save
        runs.append(("epsilon-greedy", "confluent", stack.redis_url, "no exploration"))  # type: ignore[arg-type]
        # the same ceiling with its decision logs dropped instead of published: what producing to
        # Kafka (client thread, compression, the embedded broker on the same cores) costs a request
        runs.append(("epsilon-greedy", "confluent", stack.redis_url, "no exploration", "unpublished"))  # type: ignore[arg-type]
        for strategy, client, *on_cluster in runs:  # type: ignore[misc]
            redis_url = on_cluster[0] if on_cluster else stack.redis_url
            ceiling = on_cluster[1:2] == ["no exploration"]
            unpublished = on_cluster[2:] == ["unpublished"]
            if ceiling:
                strategy = "first k, no exploration"
                client = "confluent, not published" if unpublished else "confluent"
                unranked = _without_exploration()
                unranked.start()
            settings = settings0.with_(
                kafka_bootstrap=stack.kafka_bootstrap,
                redis_url=redis_url,
                kafka_client="confluent" if ceiling else client.split(",")[0],
                strategy="epsilon-greedy" if ceiling else strategy,
            )
            if on_cluster and not ceiling:
                client = "confluent, cluster"
            prepare_topics(settings)
            serving = build_serving(settings, seed=0)
            if unpublished:
                serving.home._publish = lambda *record: True  # type: ignore[method-assign]  # noqa: SLF001
            serving.server.start()
            with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
                rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
                response_bytes = rank(request).SerializeToString()
                _time_calls(rank, request, 100)  # warm-up
                latencies = _time_calls(rank, request, args.requests)
                measured[f"{strategy} [{client}]"] = (latencies, _throughput(rank, request, args.threads, args.seconds))
            # the same work without gRPC: parse, read features, rank, log, answer (one thread)
            in_process[f"{strategy} [{client}]"] = _time_calls(
                lambda r, timeout, home=serving.home: rank_home_response(home.rank_home(parse_rank_home(r))),
                request,
                args.requests // 2,
            )
            log_bytes[f"{strategy} [{client}]"] = _log_bytes(
                [serving.home.rank(parse_rank_home(request)) for _ in range(BATCH)]
            )
            serving.stop(grace_s=1)
            if ceiling:
                unranked.stop()
        cluster.stop()
        with_extras = _rich_rows(settings0, stack, request, args.requests, args.threads, args.seconds)
        for workers in (1, 2):  # whole processes, a connection per caller: what `serve --workers` adds
            settings = settings0.with_(
                kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, kafka_client="confluent"
            )
            measured[f"ε-greedy, serve --workers {workers}"] = _worker_processes(
                settings, workers, request, args.requests, args.threads, args.seconds
            )
        echo_server, echo_port = _echo_server(response_bytes)
        with grpc.insecure_channel(f"127.0.0.1:{echo_port}") as channel:
            echo = channel.unary_unary("/bench.Echo/Echo")
            raw = request.SerializeToString()
            _time_calls(echo, raw, 200)
            floor = _time_calls(echo, raw, args.requests)
            floor_rate = _throughput(echo, raw, args.threads, args.seconds)
        echo_server.stop(0)
        floor_server, floor_port = _floor_server(stack.redis_url, settings0.redis_namespace, response_bytes)
        with grpc.insecure_channel(f"127.0.0.1:{floor_port}") as channel:
            read_only = channel.unary_unary("/bench.Floor/Read")
            _time_calls(read_only, raw, 200)
            measured["decode + validate + read only"] = (
                _time_calls(read_only, raw, args.requests),
                _throughput(read_only, raw, args.threads, args.seconds),
            )
        floor_server.stop(0)
        from tastemaker.features.store import FeatureStore
        from tastemaker.services.feature_reads import read_ranking_features

        features = read_ranking_features(
            FeatureStore(connect(stack.redis_url), namespace=settings0.redis_namespace),
            request.user_id,
            parse_rank_home(request).candidates,
        )
    peers = args.requests // 2
    rank_only = {
        strategy: _rank_only(settings0.with_(strategy=strategy), request, features, peers)
        for strategy in ("epsilon-greedy", "softmax", "linucb", "thompson", "squarecb")
    }
    unranked = _without_exploration()
    unranked.start()
    rank_only["first k, no exploration"] = _rank_only(settings0, request, features, peers)
    unranked.stop()
    vw_predict = _vw_pages(request, features, peers, learn=False)
    vw_learn = _vw_pages(request, features, peers, learn=True)

    def ms(x: np.ndarray, q: float) -> float:
        return float(np.percentile(x, q) * 1e3)

    print(f"\nRankHome, {shelves}x{cards} candidates → {show_shelves}x{show_cards} shown, "
          f"{len(request.SerializeToString())} B request, {len(response_bytes)} B response; "
          f"{args.requests} sequential calls, {args.threads} threads × {args.seconds:.0f} s; "
          f"the user has {n_features} feature values (the same each call: cached propensities stay warm)")  # fmt: skip
    header = (
        f"{'server':<38}{'p50 ms':>8}{'p99 ms':>8}{'p99−echo':>10}{'req/s':>8}{'× echo':>8}{'in-process p50':>16}"
        f"{'log B':>8}{'zstd B':>8}"
    )
    print(header)
    print(f"{'bare gRPC echo':<38}{ms(floor, 50):>8.2f}{ms(floor, 99):>8.2f}{0.0:>10.2f}{floor_rate:>8.0f}{1.0:>7.2f}×")
    result: dict[str, object] = {"echo": {"p50_ms": ms(floor, 50), "p99_ms": ms(floor, 99), "rps": floor_rate}}
    for name, (latencies, rate) in measured.items():
        over = ms(latencies, 99) - ms(floor, 99)
        local = ms(in_process[name], 50) if name in in_process else float("nan")
        sizes = log_bytes.get(name)
        logged = f"{sizes['packed']:>8.0f}{sizes['zstd']:>8.0f}" if sizes else ""
        print(f"{name:<38}{ms(latencies, 50):>8.2f}{ms(latencies, 99):>8.2f}{over:>10.2f}{rate:>8.0f}"
              f"{rate / floor_rate:>7.2f}×{local:>16.2f}{logged}")  # fmt: skip
        entry: dict[str, object] = {"p50_ms": ms(latencies, 50), "p99_ms": ms(latencies, 99), "rps": rate}
        if sizes:
            entry["log_bytes"] = sizes
        if name in in_process:
            entry["in_process_p50_ms"] = ms(in_process[name], 50)
        result[name] = entry
    ceiling_name, floor_name = "first k, no exploration [confluent]", "decode + validate + read only"
    if ceiling_name in measured and floor_name in measured:
        ceiling_latencies, ceiling_rate = measured[ceiling_name]
        print(
            f"\nAgainst the floor and the no-exploration ceiling (targets: ceiling ≥ 0.7× the floor; every "
            f"strategy ≥ 0.8× the ceiling, p99 within 1.5 ms of its): ceiling "
            f"{ceiling_rate / measured[floor_name][1]:.2f}× the floor"
        )
        for name, (latencies, rate) in measured.items():
            if name.endswith("[confluent]") and name != ceiling_name:
                print(
                    f"  {name:<36}{rate / ceiling_rate:>6.2f}× the ceiling, p99 "
                    f"{ms(latencies, 99) - ms(ceiling_latencies, 99):+.2f} ms"
                )
    print(
        f"\nDecision log bytes per decision (log B: packed, as published; zstd B: packed, compressed in "
        f"batches of {BATCH} as the producer sends them; target ≤ 4,096 B packed)"
    )
    print(f"{'strategy':<38}{'written out':>12}{'packed':>8}{'zstd alone':>11}{'zstd':>8}{'lz4':>8}")
    for name, sizes in log_bytes.items():
        print(
            f"{name:<38}{sizes['written_out']:>12.0f}{sizes['packed']:>8.0f}{sizes['zstd_alone']:>11.0f}"
            f"{sizes['zstd']:>8.0f}{sizes['lz4']:>8.0f}"
        )
    print(
        "\nWith explanations and caller features: the same servers answer the request above and the same "
        "with 3 explanations and 8 features per shelf, 2 per card and a 3-key context (target: within 20%)"
    )
    print(f"{'server':<38}{'plain p50':>10}{'rich p50':>10}{'plain req/s':>12}{'rich req/s':>11}{'rich ÷ plain':>13}")
    for name, (plain_times, plain_rate, rich_times, rich_rate) in with_extras.items():
        print(
            f"{name:<38}{ms(plain_times, 50):>10.2f}{ms(rich_times, 50):>10.2f}{plain_rate:>12.0f}{rich_rate:>11.0f}"
            f"{rich_rate / plain_rate:>12.2f}×"
        )
        result[f"explanations+features {name}"] = {
            "plain_p50_ms": ms(plain_times, 50), "rich_p50_ms": ms(rich_times, 50),
            "plain_rps": plain_rate, "rich_rps": rich_rate,
        }  # fmt: skip
    vw_ms = ms(vw_predict, 50)
    print(
        f"\nOne page in-process with the user's features already read (no Redis, no Kafka), p50 of {peers}: "
        f"Tastemaker's ranking (parse, score, explore with every propensity, packed log and response built) "
        f"against Vowpal Wabbit --cb_explore_adf from Python (1 shelf ranking + {show_shelves} card rankings, "
        f"same features; target: Tastemaker ≥ 3× faster per page)"
    )
    print(f"{'ranker':<38}{'p50 ms':>8}{'p99 ms':>8}{'VW predict ÷ this':>19}")
    print(f"{'vowpal wabbit predict':<38}{vw_ms:>8.2f}{ms(vw_predict, 99):>8.2f}{1.0:>18.2f}×")
    print(f"{'vowpal wabbit predict + learn':<38}{ms(vw_learn, 50):>8.2f}{ms(vw_learn, 99):>8.2f}"
          f"{vw_ms / ms(vw_learn, 50):>18.2f}×")  # fmt: skip
    result["vw"] = {"predict_p50_ms": vw_ms, "learn_p50_ms": ms(vw_learn, 50)}
    for strategy, times in rank_only.items():
        print(
            f"{'tastemaker ' + strategy:<38}{ms(times, 50):>8.2f}{ms(times, 99):>8.2f}{vw_ms / ms(times, 50):>18.2f}×"
        )
        result[f"rank only {strategy}"] = {"p50_ms": ms(times, 50), "p99_ms": ms(times, 99)}
    print(_softmax_new_contexts())
    print(json.dumps(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
