"""The device side: a sticker bundle exported for the phone (LiteRT encoder, int8 stickers and
head, tokeniser spec, typeahead table) answers as the server does, through a runtime that never
imports TensorFlow or the server; a changed or foreign bundle is refused; GetDeviceBundle streams
it in chunks, scope-checked, and sends nothing to a device that holds the current one.

The model here is untrained (random weights on 300 real catalog stickers, with a random chat head):
parity is a property of the export and the runtime, not of training. Its 16-dimensional rows are
product-quantised one dimension a byte, so the device should agree with the server almost exactly;
how close a trained 64-dimensional model comes at 5 MB is `bench_stickers`' table."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest

from tastemaker.bandits import epsilon_greedy
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.device.bundle import DeviceBundleError, read_device_bundle
from tastemaker.device.runtime import DeviceSuggester
from tastemaker.services.grpc_server import ErrorMappingInterceptor, StickersServicer
from tastemaker.services.security import AuthInterceptor, Client
from tastemaker.services.stickers import StickerService
from tastemaker.stickers.bundle import DEVICE_BUNDLE, load_bundle
from tastemaker.stickers.typeahead import complete, prefix_table
from tastemaker.training.modeling.device_export import export_device
from tastemaker.v1 import api_pb2, api_pb2_grpc
from tests.support.stickers import MESSAGES, random_bundle

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(server bundle directory, device bundle file) of an untrained model with a chat head."""
    model = random_bundle(tmp_path_factory.mktemp("device"), MESSAGES)
    export_device(load_bundle(model), model / DEVICE_BUNDLE, MESSAGES, budget_bytes=50_000_000)
    return model, model / DEVICE_BUNDLE


def test_the_device_answers_as_the_server_does(exported: tuple[Path, Path]) -> None:
    model, device_file = exported
    server = StickerService(load_bundle(model), EpsilonGreedy(0.0))
    device = DeviceSuggester.load(device_file, epsilon=0.0)
    overlaps, same_first = [], 0
    for message in MESSAGES:
        on_server = {s.sticker_id: s.score for s in server.suggest("u", message, "", 10).suggestions}
        on_device = {s.sticker_id: s.score for s in device.suggest(message, 10).suggestions}
        overlaps.append(len(on_server.keys() & on_device.keys()) / 10)
        same_first += next(iter(on_server)) == next(iter(on_device))
        # quantised stickers and head: the likeliest sticker's blend score moves by hundredths (a random
        # head is the quantiser's worst case: no structure; lower down, near-ties may swap)
        first = next(iter(on_server))
        if first in on_device:
            assert abs(on_server[first] - on_device[first]) < 0.2, (message, on_server, on_device)
    assert np.mean(overlaps) >= 0.9, overlaps
    assert same_first >= len(MESSAGES) - 2


def test_the_device_vectors_are_the_servers_through_litert(exported: tuple[Path, Path]) -> None:
    model, device_file = exported
    server = load_bundle(model)
    device = DeviceSuggester.load(device_file).model
    ours, theirs = device.encoder.messages(MESSAGES), server.encoder.messages(MESSAGES)
    np.testing.assert_allclose((ours * theirs).sum(axis=1), 1.0, atol=0.01)
    np.testing.assert_allclose(device.index.index.vectors, server.index.index.vectors, atol=0.02)


def test_device_propensities_are_the_exploration_s_exact_marginals(exported: tuple[Path, Path]) -> None:
    device = DeviceSuggester.load(exported[1], epsilon=0.3, rng=np.random.default_rng(1))
    decision = device.suggest("happy birthday", 5)
    marginals = epsilon_greedy.marginals(np.asarray(decision.candidate_scores), 5, 0.3)
    position = {sid: i for i, sid in enumerate(decision.candidate_ids)}
    for slot, suggestion in enumerate(decision.suggestions):
        assert suggestion.propensity == pytest.approx(marginals[position[suggestion.sticker_id], slot])
    assert decision.policy == "epsilon-greedy" and decision.model_version.endswith("-device")


def test_the_runtime_imports_neither_tensorflow_nor_the_server(exported: tuple[Path, Path]) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from tastemaker.device.runtime import DeviceSuggester\n"
        f"d = DeviceSuggester.load(Path({str(exported[1])!r}))\n"
        "print(len(d.suggest('happy birthday', 5).suggestions))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'grpc', 'redis') "
        "or m.startswith(('tastemaker.services', 'tastemaker.training', 'tastemaker.features'))]\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["5", "[]"], out.stdout


def test_device_suggest_on_the_command_line(exported: tuple[Path, Path], tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "tastemaker.cli", "device", "suggest", "--bundle"]
    ok = subprocess.run([*cli, str(exported[1]), "happy birth", "--partial", "--seed", "1"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert len([line for line in ok.stdout.splitlines() if "p=" in line]) == 5
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    bad = subprocess.run([*cli, str(tmp_path / "junk.zip"), "hi"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "not a readable device bundle" in bad.stderr


def _rewrite(source: Path, target: Path, change: dict[str, bytes]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            new.writestr(name, change.get(name, old.read(name)))


def test_a_changed_member_is_refused_by_name(exported: tuple[Path, Path], tmp_path: Path) -> None:
    flatbuffer = bytearray(zipfile.ZipFile(exported[1]).read("encoder.tflite"))
    flatbuffer[len(flatbuffer) // 2] ^= 0xFF
    _rewrite(exported[1], tmp_path / "changed.zip", {"encoder.tflite": bytes(flatbuffer)})
    with pytest.raises(DeviceBundleError, match="encoder.tflite does not match its checksum"):
        read_device_bundle(tmp_path / "changed.zip")


def test_a_bundle_for_another_tokeniser_is_refused(exported: tuple[Path, Path], tmp_path: Path) -> None:
    manifest = json.loads(zipfile.ZipFile(exported[1]).read("manifest.json"))
    manifest["tokeniser"]["encoder"]["buckets"] = 1 << 16
    _rewrite(exported[1], tmp_path / "other.zip", {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(DeviceBundleError, match="tokeniser spec"):
        DeviceSuggester.load(tmp_path / "other.zip")


def test_the_export_keeps_to_its_budget(exported: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = load_bundle(exported[0])
    small = export_device(bundle, tmp_path / "small.zip", MESSAGES, budget_bytes=900_000)
    assert small.bytes <= 900_000
    assert small.encoder_rows < read_device_bundle(exported[1]).manifest["encoder"]["rows"]
    assert DeviceSuggester.load(tmp_path / "small.zip").suggest("happy birthday", 5).suggestions
    with pytest.raises(ValueError, match="does not hold"):
        export_device(bundle, tmp_path / "tiny.zip", MESSAGES, budget_bytes=10_000)


def test_typeahead_completes_the_last_unfinished_word() -> None:
    table = prefix_table(["happy birthday", "happy birthday to you", "birds sing", "hap"] * 3)
    assert table["bir"] == "birthday" and table["birthd"] == "birthday"
    assert "happy" not in table  # a whole word needs no completing
    assert complete("happy birt", table) == "happy birthday"
    assert complete("happy birt ", table) == "happy birt "  # a space: the word is finished
    assert complete("happy b", table) == "happy b"  # shorter than MIN_PREFIX
    assert complete("zzz qq", table) == "zzz qq"


def _server(bundle_dir: Path, clients: list[Client]) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(4), interceptors=[ErrorMappingInterceptor(), AuthInterceptor(clients)]
    )
    api_pb2_grpc.add_StickersServicer_to_server(StickersServicer(StickerService(load_bundle(bundle_dir))), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _token(client: str, scopes: str) -> Client:
    return Client(client, hashlib.sha256(f"{client}-token".encode()).digest(), frozenset(scopes.split(",")))


def test_get_device_bundle_streams_it_and_skips_a_current_copy(exported: tuple[Path, Path]) -> None:
    server, port = _server(exported[0], [_token("app", "stickers"), _token("ranker", "rank")])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = api_pb2_grpc.StickersStub(channel)
            app = (("authorization", "Bearer app-token"),)
            chunks = list(stub.GetDeviceBundle(api_pb2.GetDeviceBundleRequest(), metadata=app))
            data = b"".join(c.data for c in chunks)
            assert data == exported[1].read_bytes() and len(chunks) > 1
            assert [c.offset for c in chunks] == sorted(c.offset for c in chunks)
            assert {c.sha256 for c in chunks} == {hashlib.sha256(data).hexdigest()}
            assert {c.total_bytes for c in chunks} == {len(data)}
            current = api_pb2.GetDeviceBundleRequest(if_none_match=chunks[0].sha256)
            assert list(stub.GetDeviceBundle(current, metadata=app)) == []
            with pytest.raises(grpc.RpcError) as bad:
                list(stub.GetDeviceBundle(api_pb2.GetDeviceBundleRequest(if_none_match="abc"), metadata=app))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "if_none_match" in bad.value.details()
            ranker = (("authorization", "Bearer ranker-token"),)
            refusals = ((None, grpc.StatusCode.UNAUTHENTICATED), (ranker, grpc.StatusCode.PERMISSION_DENIED))
            for metadata, code in refusals:
                with pytest.raises(grpc.RpcError) as refused:
                    list(stub.GetDeviceBundle(api_pb2.GetDeviceBundleRequest(), metadata=metadata))
                assert refused.value.code() == code
    finally:
        server.stop(None)
