"""The demo's simulated chat users: messages in the ten languages built from the catalog's phrases
(never from the hand-written chat set), and send probabilities that fall with position and rise
with fit and taste."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tastemaker.stickers.catalog import LANGUAGES, read_catalog
from tastemaker.stickers.chat_world import ChatWorld
from tests.support.stickers import CATALOG

CHAT = Path(__file__).resolve().parents[1] / "data" / "chat_stickers.jsonl"


@pytest.fixture(scope="module")
def world() -> ChatWorld:
    if not CATALOG.is_file():
        pytest.fail(f"{CATALOG} is missing: run `make stickers-catalog`")
    return ChatWorld(read_catalog(CATALOG), n_users=100, seed=3)


def test_messages_come_in_every_language_and_never_from_the_chat_set(world: ChatWorld) -> None:
    rng = np.random.default_rng(0)
    messages = [world.message(rng) for _ in range(2000)]
    assert set(Counter(m.language for m in messages)) == set(LANGUAGES)
    assert all(m.text.strip() for m in messages)
    assert any(m.text.isascii() for m in messages if m.language == "hi")  # romanised Hindi
    assert any(not m.text.isascii() for m in messages if m.language == "hi")  # Devanagari
    written = {json.loads(line)["text"] for line in CHAT.read_text(encoding="utf-8").splitlines()}
    assert not written & {m.text for m in messages}


def test_send_probability_falls_with_position_and_rises_with_fit(world: ChatWorld) -> None:
    rng = np.random.default_rng(1)
    message = world.message(rng)
    meant = [world.send_probability(message, message.meant, j) for j in range(5)]
    assert all(a > b for a, b in zip(meant, meant[1:], strict=False))
    stranger = next(s for s in world._order if world.fit(message, s) == 0.03)
    assert world.send_probability(message, stranger, 0) < meant[0]
    sends = Counter(world.respond(message, [message.meant, stranger], rng) for _ in range(4000))
    assert sends[message.meant] > 10 * sends[stranger] > 0
    assert sends[None] > 0  # users do not always send
