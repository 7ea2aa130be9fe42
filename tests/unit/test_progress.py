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
