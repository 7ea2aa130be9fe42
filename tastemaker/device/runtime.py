"""The reference device runtime: a device bundle (`bundle.py`) answering SuggestStickers offline,
as the server would — the same normalisation and features (`stickers.text`), the message tower
run by the LiteRT interpreter (`ai-edge-litert`), the same candidates and scores
(`stickers.scoring`: the sticker vectors searched exactly, the chat head blended in), the same
re-rank and exploration (`bandits`), with exact propensities — and logging each list it shows as a
`DeviceDecision` to upload later (`Feedback.ReportDeviceDecisions`).

Nothing here imports TensorFlow or the server (an import contract and a test hold it to that):
a phone app ports this file and `spec.py`, not the service.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.bandits.sticker_rerank import static_scores
from tastemaker.bandits.strategies import Candidates, EpsilonGreedy, rank_with_constraints
from tastemaker.device import spec
from tastemaker.device.bundle import DeviceBundleError, DeviceBundleFile, read_device_bundle
from tastemaker.optional import require
from tastemaker.stickers.head import StickerHead
from tastemaker.stickers.index import IndexHolder, StickerIndex, StickerMeta
from tastemaker.stickers.scoring import CANDIDATES, candidates
from tastemaker.stickers.text import BUCKETS, MAX_FEATURES, features, normalise
from tastemaker.stickers.typeahead import complete


class LiteRTEncoder:
    """The message tower of a device bundle, run by the LiteRT interpreter on one thread."""

    def __init__(self, flatbuffer: bytes, kept: np.ndarray, version: str) -> None:
        interpreter_module = require("ai_edge_litert.interpreter", "device", "the device runtime")
        self._interpreter = interpreter_module.Interpreter(model_content=flatbuffer, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._dim = int(self._interpreter.get_output_details()[0]["shape"][-1])
        #: bucket → its compact row (1-based), 0 for a bucket the bundle dropped
        bits = np.unpackbits(kept)[:BUCKETS].astype(bool)
        self._compact = np.where(bits, np.cumsum(bits), 0).astype(np.int32)
        self._version = version
        self._ids = np.zeros((1, MAX_FEATURES), dtype=np.int32)

    @property
    def version(self) -> str:
        return self._version

    def compact(self, text: str) -> np.ndarray:
        """The text's hashed features as the bundle's compact rows (1-based; features it dropped
        are left out, as padding is)."""
        rows = self._compact[np.asarray(features(text), dtype=np.int64)]
        return rows[rows > 0]

    def messages(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rows = self.compact(text)
            if not len(rows):
                continue
            self._ids[:] = 0
            self._ids[0, : len(rows)] = rows
            self._interpreter.set_tensor(self._input, self._ids)
            self._interpreter.invoke()
            out[i] = self._interpreter.get_tensor(self._output)[0]
        return out


@dataclass(frozen=True)
class DeviceModel:
    """A loaded device bundle in the shape `stickers.scoring` reads (`Scorer`)."""

    encoder: LiteRTEncoder
    index: IndexHolder
    head: StickerHead | None
    head_weight: float
    prefixes: dict[str, str]
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def _dequantised(raw: DeviceBundleFile, values: str, scale: str) -> np.ndarray:
    return raw.array(values).astype(np.float32) * raw.array(scale)[:, None]


def _decoded(raw: DeviceBundleFile, codes: str, book: str) -> np.ndarray:
    """Product-quantised rows (n, m) uint8 codes over an (m, 256, w) codebook → (n, m·w) float16."""
    codebook = raw.array(book)
    pieces = raw.array(codes).astype(np.int64)
    return codebook[np.arange(codebook.shape[0]), pieces].reshape(len(pieces), -1).astype(np.float16)


def load_model(raw: DeviceBundleFile) -> DeviceModel:
    """The model of a read bundle; `DeviceBundleError` when its tokeniser or parts do not fit."""
    manifest = raw.manifest
    try:
        spec.check_spec(manifest.get("tokeniser"))
        encoder = LiteRTEncoder(raw.members["encoder.tflite"], raw.array("encoder_rows.npy"), raw.version)
        meta = [StickerMeta(s["id"], s["pack"], frozenset(s["languages"])) for s in raw.json("stickers.json")]
        index = StickerIndex(_dequantised(raw, "stickers.npy", "stickers_scale.npy"), meta, raw.version, "exact")
        head = None
        if manifest.get("head"):
            head = StickerHead(
                rows=raw.array("head_rows.npy").astype(np.int64),
                weights=_decoded(raw, "head_codes.npy", "head_book.npy")[:, : len(raw.json("head.json"))],
                bias=raw.array("head_bias.npy"),
                labels=tuple(raw.json("head.json")),
                prior=raw.array("head_prior.npy"),
            )
        prefixes = {str(k): str(v) for k, v in raw.json("prefixes.json").items()}
    except (KeyError, ValueError) as exc:
        raise DeviceBundleError(f"device bundle {raw.manifest.get('version')!r}: {exc}") from exc
    weight = float(manifest["head"]["weight"]) if head is not None else 0.0
    return DeviceModel(encoder, IndexHolder(index), head, weight, prefixes, manifest)


@dataclass(frozen=True)
class DeviceSuggestion:
    sticker_id: str
    score: float
    propensity: float


@dataclass(frozen=True)
class DeviceDecision:
    """One suggestion list as the device showed it: what `ReportDeviceDecisions` uploads."""

    decision_id: str
    served_at_ms: int
    model_version: str
    policy: str
    epsilon: float
    #: the text as typed (normalised, at most 200 characters) and whether it was unfinished
    message: str
    partial: bool
    language: str
    candidate_ids: tuple[str, ...]
    candidate_scores: tuple[float, ...]
    ranking_propensity: float
    suggestions: tuple[DeviceSuggestion, ...] = field(default=())


class DeviceSuggester:
    """Suggestions from a device bundle: `DeviceSuggester.load(path).suggest("happy bday")`."""

    def __init__(
        self,
        model: DeviceModel,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        candidates: int = CANDIDATES,
    ) -> None:
        self.model = model
        exploration = model.manifest.get("exploration") or {}
        self._strategy = EpsilonGreedy(float(exploration.get("epsilon", 0.1)) if epsilon is None else epsilon)
        self._rng = rng or np.random.default_rng()
        self._clock_ms = clock_ms
        self._candidates = candidates

    @classmethod
    def load(cls, path: Path, **kwargs: Any) -> DeviceSuggester:
        return cls(load_model(read_device_bundle(path)), **kwargs)

    def suggest(
        self, message: str, k: int = 5, language: str = "", partial: bool = False, previous_message: str = ""
    ) -> DeviceDecision:
        """The top `k` for `message` (`partial`: the text typed so far, its last word perhaps
        unfinished); ValueError for a message with nothing to match on."""
        if not 1 <= k <= self._candidates:
            raise ValueError(f"k must be in [1, {self._candidates}], got {k}")
        text = complete(message, self.model.prefixes) if partial else message
        if not features(text):  # as the server: nothing left after normalisation
            raise ValueError("the message has nothing to match on after normalisation")
        # zero when every feature is one the bundle dropped: the head and the prior still answer
        vector = self.model.encoder.messages([text])[0]
        ids, _, model_score = candidates(self.model, text, vector, self._candidates, language or None, previous_message)
        if not ids:
            raise ValueError(f"no sticker has phrases in {language!r}")
        scores = static_scores(model_score, np.zeros(len(ids)))
        placement = rank_with_constraints(
            self._strategy, Candidates(ids, scores, np.column_stack([np.ones(len(ids)), scores])), k, self._rng
        )
        shown = tuple(
            DeviceSuggestion(sid, placement.scores[sid], float(p))
            for sid, p in zip(placement.ids, placement.propensities, strict=True)
        )
        return DeviceDecision(
            decision_id=str(uuid.uuid4()),
            served_at_ms=self._clock_ms(),
            model_version=self.model.version,
            policy=self._strategy.name,
            epsilon=self._strategy.epsilon,
            message=normalise(message)[:200],
            partial=partial,
            language=language,
            candidate_ids=ids,
            candidate_scores=tuple(float(s) for s in scores),
            ranking_propensity=float(placement.ranking_probability),
            suggestions=shown,
        )
