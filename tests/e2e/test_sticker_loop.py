"""The sticker loop end to end, as an operator runs it: `tastemaker up --demo` serves a sticker
bundle to simulated chat users with a uniformly exploring bucket and exports its logs; the
registry's current bundle is a poor one (it ranks every candidate backwards, as the home test's
anti-engagement model); `tastemaker retrain --surface stickers` trains a candidate from the
(message, sent sticker) pairs, gates it by its off-policy estimate of sends per suggestion on the
later logs and promotes it; a serving process that follows the registry swaps the bundle and its
index without a restart, under requests that never fail."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from tastemaker.records.log_files import read_export
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.stickers.bundle import save_bundle
from tastemaker.stickers.catalog import read_catalog, write_catalog
from tastemaker.training.evaluation.sticker_ope import encoder_scorer, sticker_decisions
from tastemaker.training.lifecycle.registry import STICKERS_KIND, Registry
from tastemaker.training.modeling.sticker_training import train_encoder
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.support.stickers import CATALOG, WORDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

CLI = [sys.executable, "-m", "tastemaker.cli"]


def sent_reciprocal_ranks(decisions: list[records_pb2.RewardedDecision], bundle: Path) -> np.ndarray:
    """1 / (the rank of each sent sticker among its decision's logged candidates) under a bundle's scores."""
    score = encoder_scorer(bundle)
    out = []
    for rewarded in decisions:
        ids = list(rewarded.decision.shown[0].card_candidates.item_ids)
        sent = {o.item_id for o in rewarded.outcomes if o.reward > 0}
        if not sent:
            continue
        order = [ids[i] for i in np.argsort(-score(rewarded.decision), kind="stable")]
        out.extend(1.0 / (order.index(s) + 1) for s in sent if s in order)
    return np.asarray(out)


def test_sticker_retrain_gate_promote_and_hot_swap_from_demo_logs(settings: Settings, tmp_path: Path) -> None:
    if not CATALOG.is_file():
        pytest.fail(f"{CATALOG} is missing: run `make stickers-catalog`")
    subset = [s for s in read_catalog(CATALOG) if any(w in s.phrases["en"].name for w in WORDS)]
    write_catalog(subset, tmp_path / "catalog.jsonl")
    served = train_encoder(subset, version="stickers-served", epochs=3, dim=32)
    save_bundle(tmp_path / "served", served.encoder, subset, tmp_path / "catalog.jsonl")
    # the poor current bundle: the same towers with the message tower negated (similarity reversed)
    anti = dataclasses.replace(
        served.encoder, version="stickers-anti", message_w=-served.encoder.message_w,
        message_b=-served.encoder.message_b,
    )  # fmt: skip
    save_bundle(tmp_path / "anti", anti, subset, tmp_path / "catalog.jsonl")

    logs, report = tmp_path / "demo.jsonl", tmp_path / "report.json"
    # uniform exploration over 5 candidates, all shown (k = 5): the logs support any order of them (weights ≤ 5)
    env = {**os.environ, "TASTEMAKER_STICKER_MODEL": str(tmp_path / "served"), "TASTEMAKER_STICKER_CANDIDATES": "5",
           "TASTEMAKER_STICKER_EPSILON": "1.0"}  # fmt: skip
    up = subprocess.run(
        [*CLI, "up", "--demo", "--port", "0", "--duration", "60", "--reward-window-s", "2", "--epsilon", "1.0",
         "--export-logs", str(logs), "--report-json", str(report)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr[-3000:]
    stickers = json.loads(report.read_text())["stickers"]
    assert stickers["n_decisions"] > 400 and stickers["sends"] > 0, stickers
    rate = stickers["on_policy_sends_per_decision"]
    logging = stickers["policies"]["logging"]["estimates"]["snipw"]
    assert logging["lower"] <= rate <= logging["upper"], (rate, logging)
    assert "sticker decisions:" in up.stderr

    root = tmp_path / "registry"
    registry = Registry(root, STICKERS_KIND)
    serving = None
    stop = threading.Event()
    try:
        # the retrain registers the backwards bundle as the baseline, trains and gates without promoting
        done = subprocess.run(
            [*CLI, "retrain", "--surface", "stickers", "--registry", str(root), "--logs", str(logs),
             "--baseline", str(tmp_path / "anti"), "--sticker-epochs", "3", "--no-promote"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout
        assert registry.current() == "stickers-anti"
        candidate = next(e.version for e in registry.versions() if e.version != "stickers-anti")
        following = settings.with_(grpc_port=0, model_registry=str(root), model_refresh_s=0.2)
        prepare_topics(following)
        serving = build_serving(following, seed=0)
        serving.server.start()
        versions: list[str] = []
        failures: list[BaseException] = []

        def ask(port: int) -> None:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                suggest = api_pb2_grpc.StickersStub(channel).SuggestStickers
                while not stop.is_set():
                    try:
                        reply = suggest(
                            api_pb2.SuggestStickersRequest(user_id="u", message="happy birthday", k=3), timeout=5
                        )
                        versions.append(reply.model_version)
                    except grpc.RpcError as exc:
                        failures.append(exc)
                        stop.wait(0.1)

        asker = threading.Thread(target=ask, args=(serving.server.port,))
        asker.start()
        time.sleep(1.0)
        assert versions and versions[-1].startswith("stickers-anti+")

        # the same command again, now promoting: no new training (same logs), the recorded gate decides
        again = subprocess.run(
            [*CLI, "retrain", "--surface", "stickers", "--registry", str(root), "--logs", str(logs),
             "--sticker-epochs", "3"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:] + again.stdout
        assert "already registered" in again.stdout
        gate = registry.manifest(candidate)["gate"]
        assert (gate["decision"] == "promote") == (gate["candidate"]["lower"] > gate["current"]["value"])
        # the backwards bundle is worse: the gate's two estimates are too noisy to order on 60 s of logs (one
        # slot in five matches a greedy order under uniform exploration), so the test ranks each held-out
        # sent sticker among its logged candidates under both bundles instead (one run: mean reciprocal rank
        # 0.62 vs 0.45 over 87 sends, about four standard errors apart; CI once saw the estimates 0.24 vs 0.27)
        held_out = sorted(sticker_decisions(read_export(logs)), key=lambda d: d.decision.served_at_ms)
        held_out = held_out[int(len(held_out) * 0.7) :]
        trained_rr = sent_reciprocal_ranks(held_out, registry.path(candidate))
        anti_rr = sent_reciprocal_ranks(held_out, tmp_path / "anti")
        assert len(trained_rr) >= 20, len(trained_rr)
        assert trained_rr.mean() > anti_rr.mean(), (trained_rr.mean(), anti_rr.mean())
        if gate["decision"] == "promote":
            assert registry.current() == candidate and "promoted" in again.stdout
        else:  # the interval was too wide on this run's logs: the operator promotes by hand
            assert registry.current() == "stickers-anti" and "not promoted" in again.stdout
            promoted = subprocess.run(
                [*CLI, "models", "promote", "--kind", "stickers", "--registry", str(root), candidate],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert promoted.returncode == 0, promoted.stderr

        deadline = time.monotonic() + 30
        while not versions[-1].startswith(candidate + "+") and time.monotonic() < deadline:
            time.sleep(0.2)
        # phones fetch the promoted version's device bundle, exported when it was registered
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            chunks = list(api_pb2_grpc.StickersStub(channel).GetDeviceBundle(api_pb2.GetDeviceBundleRequest()))
        stop.set()
        asker.join()
        assert versions[-1].startswith(candidate + "+"), versions[-5:]
        assert chunks and chunks[0].version == f"{candidate}-device"
        assert not failures, failures[:3]
        assert len(read_export(logs)) > 0
    finally:
        stop.set()  # never leave the asking thread running past a failed assertion
        if serving is not None:
            serving.stop(grace_s=1)
