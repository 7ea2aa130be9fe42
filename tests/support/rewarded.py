"""A small random rewarded home decision (two rows of three cards, engagement features), for the
learner's tests and benchmark."""

from __future__ import annotations

import numpy as np

from tastemaker.v1 import records_pb2


def random_rewarded(i: int, rng: np.random.Generator) -> records_pb2.RewardedDecision:
    decision = records_pb2.DecisionLog(decision_id=f"d{i}", user_id=f"u{i % 7}", surface="home")
    names, values = [], []
    for row in range(2):
        shelf = decision.shown.add(shelf_id=f"s{(i + row) % 5}", position=row, propensity=0.5)
        names.append(f"shelf:{shelf.shelf_id}")
        values.append(float(rng.poisson(3)))
        for col in range(3):
            card = shelf.cards.add(card_id=f"{shelf.shelf_id}c{col}", position=col, propensity=0.4)
            names.append(f"card:{card.card_id}")
            values.append(float(rng.poisson(1)))
    decision.feature_names.extend(names)
    decision.feature_values.extend(values)
    outcomes = [
        records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0)
        for s in decision.shown
        for c in s.cards
        if rng.random() < 0.2
    ]
    return records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(outcomes)))
