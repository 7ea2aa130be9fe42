"""Simulated users for `tastemaker up --demo`: they open the home page over real gRPC, click
with probabilities set by hidden tastes and position, report outcomes and emit events; with a
sticker model, chat users also send messages, see sticker suggestions and send one now and then
(`stickers.chat_world`), reported through ReportOutcome and as `sticker_sent` events."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

import grpc
import numpy as np

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.services.publisher import BackgroundPublisher
from tastemaker.stickers.chat_world import ChatWorld
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2

log = logging.getLogger(__name__)


@dataclass
class DemoStats:
    requests: int = 0
    clicks: int = 0
    outcomes_reported: int = 0
    events_sent: int = 0
    errors: int = 0
    shown_reward_sum: float = 0.0
    sticker_requests: int = 0
    sticker_sends: int = 0


class DemoTraffic:
    def __init__(
        self,
        target: str,
        world: SimulatedWorld,
        events: BackgroundPublisher,
        events_topic: str,
        n_users: int = 200,
        seed: int = 0,
        max_shelves: int = 5,
        max_cards: int = 6,
        pause_s: float = 0.005,
        chat: ChatWorld | None = None,
        chat_share: float = 0.5,
    ) -> None:
        self._channel = grpc.insecure_channel(target)
        self._home = api_pb2_grpc.HomeRankingStub(self._channel)
        self._feedback = api_pb2_grpc.FeedbackStub(self._channel)
        self._world = world
        self._events = events
        self._events_topic = events_topic
        self._n_users = n_users
        self._rng = np.random.default_rng(seed)
        self._max_shelves = max_shelves
        self._max_cards = max_cards
        self._pause_s = pause_s
        self._chat = chat
        self._chat_share = chat_share
        self._stickers = api_pb2_grpc.StickersStub(self._channel)
        self.stats = DemoStats()

    def _emit(self, event: records_pb2.UserEvent) -> None:
        event.event_id = uuid.uuid4().hex
        event.event_time_ms = int(time.time() * 1000)
        self._events.publish(
            self._events_topic,
            event.SerializeToString(),
            event.user_id.encode(),
            PROTOBUF_HEADERS,
        )
        self.stats.events_sent += 1

    def step(self) -> None:
        user_id = f"user-{int(self._rng.integers(self._n_users)):04d}"
        response = self._home.RankHome(
            api_pb2.RankHomeRequest(
                user_id=user_id,
                max_shelves=self._max_shelves,
                max_cards_per_shelf=self._max_cards,
                context={"device": "demo"},
            ),
            timeout=5,
        )
        self.stats.requests += 1
        self._emit(records_pb2.UserEvent(user_id=user_id, type="home_impression", decision_id=response.decision_id))
        shown = [(s.shelf_id, [c.card_id for c in s.cards]) for s in response.shelves]
        for click in self._world.respond(user_id, shown, self._rng):
            self.stats.clicks += 1
            self._feedback.ReportOutcome(
                api_pb2.ReportOutcomeRequest(
                    decision_id=response.decision_id, item_id=click.card_id, reward=1.0, event_type="click"
                ),
                timeout=5,
            )
            self.stats.outcomes_reported += 1
            self._emit(
                records_pb2.UserEvent(
                    user_id=user_id,
                    type="card_click",
                    item_id=click.card_id,
                    shelf_id=click.shelf_id,
                    decision_id=response.decision_id,
                )
            )

    def chat_step(self, chat: ChatWorld) -> None:
        message = chat.message(self._rng)
        response = self._stickers.SuggestStickers(
            api_pb2.SuggestStickersRequest(
                user_id=message.user_id, message=message.text, language=message.language, k=5
            ),
            timeout=5,
        )
        self.stats.sticker_requests += 1
        sent = chat.respond(message, [s.sticker_id for s in response.suggestions], self._rng)
        if sent is None:
            return
        self.stats.sticker_sends += 1
        self._feedback.ReportOutcome(
            api_pb2.ReportOutcomeRequest(decision_id=response.decision_id, item_id=sent, reward=1.0, event_type="send"),
            timeout=5,
        )
        self.stats.outcomes_reported += 1
        self._emit(
            records_pb2.UserEvent(
                user_id=message.user_id, type="sticker_sent", item_id=sent, decision_id=response.decision_id
            )
        )

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self._chat is not None and self._rng.random() < self._chat_share:
                    self.chat_step(self._chat)
                else:
                    self.step()
            except grpc.RpcError as exc:
                self.stats.errors += 1
                log.warning("demo request failed: %s", exc)
                stop.wait(0.5)
            stop.wait(self._pause_s)
        self._channel.close()
