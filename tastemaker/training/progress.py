"""A progress bar for long evaluation loops, on stderr, only where a person is watching (a TTY)
and only for loops long enough to need one. No dependency; redraws at most twice a second."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, TypeVar

T = TypeVar("T")

#: loops shorter than this finish before a bar is worth drawing
MIN_ITEMS = 2_000


def watched() -> IO[str] | None:
    """stderr when a person is watching it (a terminal, unless TASTEMAKER_PROGRESS=0; or
    TASTEMAKER_PROGRESS=1), else None: where progress goes."""
    wanted = os.environ.get("TASTEMAKER_PROGRESS", "auto")
    return sys.stderr if wanted == "1" or (wanted == "auto" and sys.stderr.isatty()) else None


def progress(items: Sequence[T], label: str, stream: IO[str] | None = None, min_items: int = MIN_ITEMS) -> Iterator[T]:
    """Yield `items`, drawing `label  42% 4,200/10,000  1.3 s` on `stream` (default: `watched()`)."""
    if stream is None:
        stream = watched()
    total = len(items)
    if stream is None or total < min_items:
        yield from items
        return
    start = last = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= 0.5 or done == total:
            last = now
            stream.write(f"\r{label}  {done / total:4.0%} {done:,}/{total:,}  {now - start:.1f} s")
            stream.flush()
    stream.write("\n")
    stream.flush()


class TrainingProgress:
    """Progress of a training loop: on a terminal one redrawn line (`epoch 3/12  step 40/67  loss
    2.314  1:05 elapsed  ETA 2:10`, at most twice a second); elsewhere one log line per epoch, so
    that a job's log shows the same numbers. TASTEMAKER_PROGRESS=0 keeps the terminal quiet."""

    def __init__(self, label: str, epochs: int, steps_per_epoch: int, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else watched()
        self._label = label
        self._epochs = epochs
        self._steps = max(1, steps_per_epoch)
        self._start = self._last = time.monotonic()
        self._drawn = False

    def _eta(self, done: int) -> str:
        elapsed = time.monotonic() - self._start
        left = elapsed / done * (self._epochs * self._steps - done) if done else 0.0
        return f"{_clock(elapsed)} elapsed  ETA {_clock(left)}"

    def step(self, epoch: int, step: int, loss: float) -> None:
        """After step `step` (1-based) of epoch `epoch` (0-based)."""
        now = time.monotonic()
        if self._stream is None or (now - self._last < 0.5 and step < self._steps):
            return
        self._last = now
        done = epoch * self._steps + step
        self._stream.write(
            f"\r{self._label}  epoch {epoch + 1}/{self._epochs}  step {step}/{self._steps}  "
            f"loss {loss:.3f}  {self._eta(done)}  "
        )
        self._stream.flush()
        self._drawn = True

    def epoch(self, epoch: int, loss: float) -> None:
        """After epoch `epoch` (0-based), its mean loss."""
        if self._stream is None:
            import logging

            logging.getLogger("tastemaker.training").info(
                "%s: epoch %d/%d, loss %.4f, %s",
                self._label, epoch + 1, self._epochs, loss, self._eta((epoch + 1) * self._steps),
            )  # fmt: skip

    def close(self) -> None:
        if self._stream is not None and self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
