import io

from tastemaker.training.progress import progress


def test_long_loops_draw_a_bar_that_ends_at_the_total() -> None:
    stream = io.StringIO()
    assert list(progress(list(range(5000)), "cells", stream=stream, min_items=10)) == list(range(5000))
    text = stream.getvalue()
    assert text.startswith("\rcells") and "5,000/5,000" in text and text.endswith("\n")


def test_short_loops_and_non_terminals_draw_nothing() -> None:
    stream = io.StringIO()
    assert list(progress([1, 2, 3], "cells", stream=stream, min_items=10)) == [1, 2, 3]
    assert stream.getvalue() == ""


def test_training_progress_shows_epoch_step_loss_and_eta_on_a_terminal() -> None:
    from tastemaker.training.progress import TrainingProgress

    stream = io.StringIO()
    meter = TrainingProgress("training stickers", epochs=2, steps_per_epoch=3, stream=stream)
    for epoch in range(2):
        for step in range(1, 4):
            meter.step(epoch, step, loss=2.5 - epoch)
        meter.epoch(epoch, 2.0)
    meter.close()
    text = stream.getvalue()
    assert "epoch 1/2  step 3/3  loss 2.500" in text and "epoch 2/2  step 3/3  loss 1.500" in text
    assert "ETA 0:00" in text and text.endswith("\n")


def test_training_progress_logs_one_line_per_epoch_elsewhere(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from tastemaker.training.progress import TrainingProgress

    caplog.set_level(logging.INFO, logger="tastemaker.training")
    meter = TrainingProgress("training stickers", epochs=3, steps_per_epoch=5)  # no terminal under pytest
    meter.epoch(0, 4.25)
    meter.close()
    assert [r.getMessage() for r in caplog.records][0].startswith("training stickers: epoch 1/3, loss 4.2500")
