"""The surfaces a decision log names (`DecisionLog.surface`)."""

from __future__ import annotations

HOME = "home"
#: SuggestStickers, answered by the server
STICKERS = "stickers"
#: suggestion lists a device showed offline and uploaded later (ReportDeviceDecisions)
STICKERS_DEVICE = "stickers-device"
#: the sticker surfaces evaluation and retraining read together, each decision once
STICKER_SURFACES = (STICKERS, STICKERS_DEVICE)
