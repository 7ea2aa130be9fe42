"""Every Lua script and transaction touches the keys of one Redis Cluster slot (a cluster refuses the
others with CROSSSLOT): the keys each call site passes share their entity's hash tag."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from tastemaker.features import keys
from tastemaker.features.definitions import FEATURES, Aggregation
from tastemaker.features.feature_writer import FeatureWriter
from tastemaker.features.folding import UnitUpdate


def one_slot(names: list[str]) -> bool:
    return len({key_slot(name.encode()) for name in names}) == 1


def test_the_checker_catches_keys_of_two_slots() -> None:
    assert one_slot(["tm:user:{u1}:features", "tm:user:{u1}:recent:played"])
    assert not one_slot(["tm:user:{u1}:features", "tm:user:{u2}:features"])


class _Offline:
    """Enough of a client for FeatureWriter to build commands without a server."""

    def register_script(self, script: str) -> object:
        return object()


@pytest.mark.parametrize("user", ["u1", "user-42", "a{b}c", "ünïcode", "x" * 200])
def test_a_user_updates_script_keys_share_the_users_slot(user: str) -> None:
    store = FeatureWriter(_Offline(), namespace="tm")  # type: ignore[arg-type]
    recents = {f.name: (f.max_items, {"item": 1}) for f in FEATURES if f.aggregation is Aggregation.RECENT_ITEMS}
    assert recents, "the catalog defines recent-items features"
    update = UnitUpdate(unit="user", entity_id=user, topic="t", partition=0, first_offset=0, last_offset=1)
    update.recents.update(recents)
    command = store.command(update)
    # the packed EVALSHA names its keys after the numkeys argument
    parts = command.split(b"\r\n")
    numkeys = int(parts[6])  # *N, $7, EVALSHA, $40, sha, $n, numkeys, then $len and each key
    script_keys = [parts[8 + 2 * i].decode() for i in range(numkeys)]
    assert script_keys[0] == keys.user_features("tm", user) and len(script_keys) == 1 + len(recents)
    assert one_slot(script_keys), script_keys


@pytest.mark.parametrize("decision_id", ["d1", "5beecabdf9fb43a786d1adbdef53476b"])
def test_a_decisions_joiner_keys_share_a_slot(decision_id: str) -> None:
    assert one_slot(
        [
            keys.decision("tm", decision_id),
            keys.decision_outcomes("tm", decision_id),
            keys.decision_closed("tm", decision_id),
        ]
    )


def test_the_dead_letter_ledgers_transaction_keys_share_a_slot() -> None:
    topic = "tastemaker.events"
    assert one_slot([keys.dead_letter_watermark("tm", topic), keys.dead_letter_intent("tm", topic)])
