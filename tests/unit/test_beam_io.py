"""Logs read by byte ranges and row groups: every line (every row) exactly once, wherever the
ranges are cut, with or without a header, CRLF or not, a last line with or without its end."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastemaker.training.evaluation import beam_io
from tastemaker.training.evaluation.beam_io import (
    NoSuchLog,
    parquet_pieces,
    read_parquet_piece,
    read_text_piece,
    text_pieces,
)


@pytest.mark.parametrize("end", ["\n", "\r\n"])
@pytest.mark.parametrize("last", [True, False])
@pytest.mark.parametrize("header", [0, 1])
def test_every_cut_reads_every_line_once(tmp_path: Path, end: str, last: bool, header: int) -> None:
    lines = ["head", "a", "", "bb", "ccc", "ü-multibyte", "d" * 7]
    body = end.join(lines) + (end if last else "")
    path = tmp_path / "log.txt"
    path.write_bytes(body.encode("utf-8"))
    size = path.stat().st_size
    for cut in range(size + 1):
        for second in range(cut, size + 1):
            pieces = [(str(path), 0, cut, header), (str(path), cut, second, header), (str(path), second, size, header)]
            got = [line for piece in pieces for line in read_text_piece(piece)]
            assert got == lines[header:], (cut, second)


def test_pieces_spread_a_large_file_and_cover_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beam_io, "MIN_PIECE_BYTES", 100)
    path = tmp_path / "log.csv"
    rows = [f"{i},{i * i}" for i in range(500)]
    path.write_text("a,b\n" + "\n".join(rows) + "\n")
    pieces = text_pieces(str(path), skip_header_lines=1)
    assert len(pieces) == beam_io.PIECES_PER_FILE
    assert [line for piece in pieces for line in read_text_piece(piece)] == rows
    (tmp_path / "empty.csv").write_text("")
    assert [list(read_text_piece(p)) for p in text_pieces(str(tmp_path / "empty.csv"))] == [[]]
    with pytest.raises(NoSuchLog, match="no such file"):
        text_pieces(str(tmp_path / "missing-*.csv"))


def test_row_groups_read_every_row_once(tmp_path: Path) -> None:
    table = pa.table({"record": [bytes([i]) for i in range(100)], "n": list(range(100))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=30)
    pq.write_table(table.slice(0, 5), tmp_path / "b.parquet")
    pieces = parquet_pieces(str(tmp_path / "*.parquet"))
    assert len(pieces) == 4 + 1
    rows = [row for piece in pieces for row in read_parquet_piece(piece, ["n"])]
    assert [r["n"] for r in rows] == list(range(100)) + list(range(5)) and set(rows[0]) == {"n"}
