"""Message-to-sticker retrieval on the real CLDR catalog (a subset of 287 stickers): the
trained encoder serves the TensorFlow model's embeddings, finds fitting stickers in English,
Hindi, Tamil and romanised Hindi, survives garbage, logs correct propensities, and its index is
swapped under concurrent requests without a failure.

Training the subset takes 1 to 5 minutes depending on the machine (each step updates the whole
2^18-row text table), and it happens in the first test's set-up, so this module's per-test
timeout is a hang guard sized for a slow day, not a speed check (that is `make bench`)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.stickers import StickerService
from tastemaker.stickers.bundle import build_index, load_bundle, save_bundle
from tastemaker.stickers.catalog import Phrases, Sticker, read_catalog, write_catalog
from tastemaker.stickers.encoder import EncoderError
from tastemaker.training.modeling.sticker_training import train_encoder
from tests.support.stickers import CATALOG, WORDS

pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not CATALOG.is_file():
        pytest.fail(f"{CATALOG} is missing: run `make stickers-catalog`")
    catalog = read_catalog(CATALOG)
    subset = [s for s in catalog if any(w in s.phrases["en"].name for w in WORDS)]
    subset += [s for i, s in enumerate(catalog) if i % 10 == 0 and s not in subset]
    directory = tmp_path_factory.mktemp("stickers")
    write_catalog(subset, directory / "catalog-in.jsonl")
    result = train_encoder(subset, version="test-encoder", epochs=12, batch_size=2048, dim=64)
    save_bundle(directory / "bundle", result.encoder, subset, directory / "catalog-in.jsonl")
    return result, subset, directory / "bundle"


def _names(bundle, suggestions) -> list[str]:  # type: ignore[no-untyped-def]
    return [bundle.catalog[s.sticker_id].phrases["en"].name for s in suggestions]


def test_served_embeddings_equal_the_tensorflow_model(trained) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = trained
    texts = ["happy birthday", "जन्मदिन", "dil", "🎂", "இதயம்", "x" * 3000]
    np.testing.assert_allclose(result.encoder.messages(texts), result.reference(texts), atol=1e-5)


@pytest.mark.parametrize(
    ("text", "lang", "expect"),
    [
        ("happy birthday", "en", ("birthday", "cake", "party", "gift", "balloon")),
        ("जन्मदिन की शुभकामनाएं", "hi", ("birthday", "cake", "party", "gift", "balloon")),
        ("இதயம்", "ta", ("heart",)),
        ("lal dil", "hi", ("heart",)),
    ],
)
def test_fitting_stickers_in_four_kinds_of_query(trained, text: str, lang: str, expect: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    bundle = load_bundle(trained[2])
    service = StickerService(bundle, EpsilonGreedy(0.0))
    names = _names(bundle, service.suggest("u", text, lang, 5).suggestions)
    assert any(word in name for name in names for word in expect), (text, names)


def test_garbage_gets_a_clear_error_or_a_sensible_answer(trained) -> None:  # type: ignore[no-untyped-def]
    bundle = load_bundle(trained[2])
    service = StickerService(bundle, EpsilonGreedy(0.0))
    for empty in ("", "   \n\t "):
        with pytest.raises(InvalidArgument) as info:
            service.suggest("u", empty, "en", 5)
        assert info.value.field == "message"
    assert len(service.suggest("u", "birthday " * 12_000, "en", 5).suggestions) == 5  # ~100 KB: cut, answered
    assert len(service.suggest("u", "🎂🎂🎂", "", 5).suggestions) == 5  # emoji only
    assert len(service.suggest("u", "happy जन्मदिन bday", "hi", 5).suggestions) == 5  # mixed scripts
    with pytest.raises(InvalidArgument) as info:
        service.suggest("u", "hello", "xx", 5)
    assert info.value.field == "language"


def test_logged_propensities_match_suggestion_frequencies(trained) -> None:  # type: ignore[no-untyped-def]
    bundle = load_bundle(trained[2])
    service = StickerService(bundle, EpsilonGreedy(0.3), rng=np.random.default_rng(0))
    n, counts, logged = 20_000, Counter(), {}
    for _ in range(n):
        result = service.suggest("u", "red heart", "en", 3)
        for position, s in enumerate(result.suggestions):
            counts[(s.sticker_id, position)] += 1
            assert logged.setdefault((s.sticker_id, position), s.propensity) == s.propensity
    for key, p in logged.items():
        assert abs(counts[key] / n - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9, (key, counts[key] / n, p)
    assert result.decision.surface == "stickers" and result.decision.shown[0].cards


def test_index_swaps_under_concurrent_requests_fail_none_and_new_stickers_need_no_retrain(trained) -> None:  # type: ignore[no-untyped-def]
    result, subset, directory = trained
    bundle = load_bundle(directory)
    service = StickerService(bundle, EpsilonGreedy(0.1))
    errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                assert service.suggest("u", "happy birthday", "en", 5).suggestions
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test
                errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    # a sticker added after training, described in words the model knows
    rocket = Sticker("custom-birthday-cat", "🐱", "custom",
                     {"en": Phrases("birthday cat", ("birthday", "cat", "party cat", "cat cake"))})  # fmt: skip
    for version in range(5):
        stickers = subset + ([rocket] if version % 2 else [])
        bundle.index.rebuild_in_background(lambda s=stickers, v=version: build_index(result.encoder, s, f"v{v}")).join()
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert bundle.index.swaps == 5 and bundle.index.index.version == "v4"
    # the sticker added after training, found by its phrases alone (its id was never trained)
    bundle.index.swap(build_index(result.encoder, subset + [rocket], "with-new-sticker"))
    greedy = StickerService(bundle, EpsilonGreedy(0.0))
    found = [s.sticker_id for s in greedy.suggest("u", "birthday cat", "en", 5).suggestions]
    assert "custom-birthday-cat" in found, found


def test_the_served_float16_table_is_memory_mapped_and_keeps_float32_s_top_10(trained) -> None:  # type: ignore[no-untyped-def]
    import json
    from dataclasses import replace

    from tastemaker.stickers.scoring import catalog_scores

    result, _, directory = trained
    served = load_bundle(directory)
    assert isinstance(served.encoder.text_table, np.memmap) and served.encoder.text_table.dtype == np.float16
    full = replace(served, encoder=result.encoder)  # the float32 table training produced
    assert full.encoder.text_table.dtype == np.float32
    chat = Path(__file__).resolve().parents[1] / "data" / "chat_stickers.jsonl"
    texts = [json.loads(line)["text"] for line in chat.read_text(encoding="utf-8").splitlines() if line.strip()]
    _, lean = catalog_scores(served, texts)
    _, exact = catalog_scores(full, texts)
    top = lambda scores: np.sort(np.argsort(-scores, axis=1, kind="stable")[:, :10], axis=1)  # noqa: E731
    same = (top(lean) == top(exact)).all(axis=1)
    assert same.mean() >= 0.99, same.mean()


def test_a_changed_bundle_is_refused(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(trained[2], copy)
    weights = copy / "encoder" / "encoder.npz"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(EncoderError, match="checksum"):
        load_bundle(copy)
    shutil.copytree(trained[2], tmp_path / "mapped")
    table = tmp_path / "mapped" / "encoder" / "text_table.npy"
    table.write_bytes(table.read_bytes()[:-100])
    with pytest.raises(EncoderError, match="text_table.npy does not match its checksum"):
        load_bundle(tmp_path / "mapped")


def test_suggest_stickers_over_grpc(trained) -> None:  # type: ignore[no-untyped-def]
    import grpc

    from tastemaker.bandits.engagement_model import EngagementLinearModel
    from tastemaker.bandits.reward_models import EngagementScorer
    from tastemaker.bandits.simulator import SimulatedWorld
    from tastemaker.bandits.strategies import EpsilonGreedy
    from tastemaker.services.feedback import FeedbackService
    from tastemaker.services.grpc_server import build_server
    from tastemaker.services.home import HomeRankingService
    from tastemaker.v1 import api_pb2, api_pb2_grpc
    from tests.support.fakes import FixedFeatures

    bundle = load_bundle(trained[2])
    world = SimulatedWorld()
    home = HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(0.1), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=3, default_max_cards=3, reward_window_s=1.0,
    )  # fmt: skip
    published = []
    stickers = StickerService(bundle, EpsilonGreedy(0.1), lambda *a: published.append(a) or True)
    server = build_server(home, FeedbackService(lambda *a: True, "unused"), port=0, stickers=stickers)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = api_pb2_grpc.StickersStub(channel)
            response = stub.SuggestStickers(
                api_pb2.SuggestStickersRequest(user_id="u1", message="happy birthday", language="en", k=4), timeout=10
            )
            assert len(response.suggestions) == 4 and response.decision_id
            assert all(0 < s.propensity <= 1 for s in response.suggestions)
            assert response.model_version.startswith("test-encoder")
            with pytest.raises(grpc.RpcError) as error:
                stub.SuggestStickers(api_pb2.SuggestStickersRequest(user_id="u1", message=""), timeout=10)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "message" in (error.value.details() or "")
    finally:
        server.stop(0)
    assert published and published[0][0] == "tastemaker.decisions"


def test_the_users_sends_move_a_sticker_up_and_an_outage_only_degrades(trained) -> None:  # type: ignore[no-untyped-def]
    bundle = load_bundle(trained[2])
    plain = StickerService(bundle, EpsilonGreedy(0.0))
    before = [s.sticker_id for s in plain.suggest("u", "happy birthday", "en", 10).suggestions]
    favourite = before[-1]  # the 10th: a user who sends it all the time

    def sends(user_id: str, ids) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.array([500.0 if i == favourite else 0.0 for i in ids])

    personal = StickerService(bundle, EpsilonGreedy(0.0), engagement=sends)
    result = personal.suggest("u", "happy birthday", "en", 10)
    after = [s.sticker_id for s in result.suggestions]
    assert after.index(favourite) < before.index(favourite)
    names = list(result.decision.feature_names)
    assert f"sends:{favourite}" in names and result.decision.feature_values[names.index(f"sends:{favourite}")] == 500

    def broken(user_id: str, ids) -> np.ndarray:  # type: ignore[no-untyped-def]
        raise ConnectionError("redis is down")

    degraded = StickerService(bundle, EpsilonGreedy(0.0), engagement=broken)
    assert [s.sticker_id for s in degraded.suggest("u", "happy birthday", "en", 10).suggestions] == before


def test_the_cli_refuses_invalid_utf8_and_answers_a_message(trained, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from tastemaker.cli import main

    bundle = str(trained[2])
    assert main(["stickers", "suggest", "bad \udcff bytes", "--model", bundle]) == 2  # as argv decodes invalid UTF-8
    assert "not valid UTF-8" in capsys.readouterr().err
    assert main(["stickers", "suggest", "   ", "--model", bundle]) == 2
    assert main(["stickers", "suggest", "happy birthday", "--lang", "en", "--model", bundle, "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5
