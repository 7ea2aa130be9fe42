"""Signed decision ids: genuine ones pass; a changed character, another client or a closed reward
window is told apart; without a key every id passes."""

from __future__ import annotations

import pytest

from tastemaker.records.ids import DecisionIds

KEY = b"0123456789abcdef-test-key"


def test_a_genuine_id_passes_for_its_client_within_its_window() -> None:
    ids = DecisionIds(KEY)
    decision_id = ids.mint(served_at_ms=1_000_000, reward_window_ms=30_000, client_id="web")
    assert ids.check(decision_id, "web", now_ms=1_000_000) is None
    assert ids.check(decision_id, "web", now_ms=1_030_000) is None
    assert ids.mint(1_000_000, 30_000, "web") != decision_id  # a fresh nonce each time


def test_forged_foreign_and_expired_ids_are_told_apart() -> None:
    ids = DecisionIds(KEY)
    decision_id = ids.mint(1_000_000, 30_000, "web")
    nonce, served, window, mac = decision_id.split(".")
    assert ids.check(decision_id, "app", 1_000_001) == "was not issued by this deployment to this client"
    longer = f"{nonce}.{served}.{int(window, 16) * 10:x}.{mac}"  # stretch the window: the MAC breaks
    assert ids.check(longer, "web", 1_000_001) == "was not issued by this deployment to this client"
    flipped = decision_id[:-1] + ("0" if decision_id[-1] != "0" else "1")
    assert ids.check(flipped, "web", 1_000_001) is not None
    assert ids.check("5beecabdf9fb43a786d1adbdef53476b", "web", 1_000_001) == "was not issued by this deployment"
    assert "closed 1 ms ago" in (ids.check(decision_id, "web", 1_030_001) or "")
    other_deployment = DecisionIds(b"another-key-of-16-bytes").mint(1_000_000, 30_000, "web")
    assert ids.check(other_deployment, "web", 1_000_001) is not None


def test_without_a_key_ids_are_random_and_all_pass() -> None:
    ids = DecisionIds()
    assert not ids.signed and len(ids.mint(1, 1, "web")) == 32
    assert ids.check("anything", "anyone", 10**15) is None


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DecisionIds(b"short")
