"""Reading logs into, and results out of, the OPE pipelines with nothing but `Create`, `ParDo`,
`GroupByKey` and `Flatten`: the transforms every Beam runner translates, Beam's DaskRunner
included (it has no `Read`, no splittable DoFn and no `WriteToText`).

Files are listed and opened through Beam's `FileSystems` (a local path, or gs://, s3://, hdfs://
where their extras are installed). A text file is cut into byte ranges that a worker each reads
line by line (a line belongs to the range it starts in, as Beam's own text source does); a Parquet
file into its row groups. Results leave through `ShardSink`: one file per bundle, named by the hash
of what it holds, so a bundle a runner retries rewrites the same file instead of adding a copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tastemaker.optional import MissingExtra

try:
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtra(
        "the Beam engine needs `apache_beam`, which is not installed: pip install 'tastemaker[beam]'"
    ) from exc

# Beam logs every string annotation it cannot resolve (this package's `from __future__ import
# annotations`) at INFO, a line per transform: noise in `evaluate`'s output
logging.getLogger("apache_beam.typehints.native_type_compatibility").setLevel(logging.WARNING)

#: a text file is split into pieces of at most this many bytes, and into at least `PIECES_PER_FILE`
#: pieces of at least `MIN_PIECE_BYTES` (so one large file still spreads over the workers)
MAX_PIECE_BYTES = 64 << 20
MIN_PIECE_BYTES = 1 << 20
PIECES_PER_FILE = 8
#: Beam's in-process runner, the default (DirectRunner would first fetch a Prism binary from GitHub)
DEFAULT_RUNNER = "FnApiRunner"

#: (path, start byte, end byte, lines to skip at the file's start) or (path, row group, -1, -1)
Piece = tuple[str, int, int, int]


class NoSuchLog(FileNotFoundError):
    """Nothing matches the path or glob given."""


def match(pattern: str) -> list[tuple[str, int]]:
    """The files a path or glob names, with their sizes, sorted by path."""
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # noqa: BLE001 - every file system raises its own kind
        raise NoSuchLog(f"{pattern}: {exc}") from None
    files = sorted((m.path, int(m.size_in_bytes)) for m in found)
    if not files:
        raise NoSuchLog(f"{pattern}: no such file")
    return files


def text_pieces(pattern: str, skip_header_lines: int = 0) -> list[Piece]:
    """Byte ranges covering every file the pattern names (an empty file gives one empty range)."""
    pieces: list[Piece] = []
    for path, size in match(pattern):
        step = max(MIN_PIECE_BYTES, min(MAX_PIECE_BYTES, -(-size // PIECES_PER_FILE)))
        starts = range(0, max(size, 1), step)
        pieces.extend((path, start, min(start + step, size), skip_header_lines) for start in starts)
    return pieces


def read_text_piece(piece: Piece) -> Iterator[str]:
    """The lines (without their line ends) that start in [start, end) of the file."""
    path, start, end, skip = piece
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        position = start
        if start > 0:  # the line running into the range belongs to the range before
            handle.seek(start - 1)
            position = start - 1 + len(handle.readline())
        elif skip:
            for _ in range(skip):
                position += len(handle.readline())
        while position < end:
            line = handle.readline()
            if not line:
                return
            position += len(line)
            yield line.decode("utf-8").rstrip("\r\n")


def parquet_pieces(pattern: str) -> list[Piece]:
    """One piece per row group of every file the pattern names."""
    import pyarrow.parquet as pq

    pieces: list[Piece] = []
    for path, _size in match(pattern):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            groups = pq.ParquetFile(handle).num_row_groups
        pieces.extend((path, group, -1, -1) for group in range(max(groups, 1)))
    return pieces


def parquet_columns(path: str) -> list[str]:
    """The column names of one Parquet file."""
    import pyarrow.parquet as pq

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return list(pq.ParquetFile(handle).schema_arrow.names)


def first_line(path: str) -> str:
    """A text file's first line ("" for an empty file)."""
    return next(read_text_piece((path, 0, 1, 0)), "")


def read_parquet_piece(piece: Piece, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of one row group, as dicts of the named columns (all when None)."""
    import pyarrow.parquet as pq

    path, group, _, _ = piece
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        parquet = pq.ParquetFile(handle)
        if group >= parquet.num_row_groups:
            return
        yield from parquet.read_row_group(group, columns=list(columns) if columns else None).to_pylist()


class ShardSink(beam.DoFn):  # type: ignore[misc]
    """Writes each bundle's lines to `PREFIX-<sha256 of the lines>` (nothing for an empty bundle)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._lines: list[str] = []

    def start_bundle(self) -> None:
        self._lines = []

    def process(self, line: str) -> None:
        self._lines.append(line)

    def finish_bundle(self) -> None:
        if not self._lines:
            return
        body = "".join(f"{line}\n" for line in self._lines).encode("utf-8")
        name = f"{self._prefix}-{hashlib.sha256(body).hexdigest()[:20]}.jsonl"
        with FileSystems.create(name) as out:
            out.write(body)
        self._lines = []


def _tagged(name: str) -> Callable[[Any], str]:
    return lambda value: json.dumps([name, value])


def run_and_collect(
    build: Callable[[beam.Pipeline], dict[str, beam.PCollection]],
    pipeline_args: Sequence[str] = (),
    output_prefix: str | None = None,
) -> dict[str, list[Any]]:
    """Build and run a pipeline (on Beam's FnApiRunner in this process unless `pipeline_args` name
    another runner) whose named results are written as JSON lines under `output_prefix` (a temporary
    directory by default; on a cluster of machines a path the workers and this process share, e.g.
    gs://…), then read them back: {name: [value, ...]}."""
    workdir = None
    if output_prefix is None:
        workdir = tempfile.mkdtemp(prefix="tastemaker-beam-")
        output_prefix = str(Path(workdir) / "sums")
    output_prefix = f"{output_prefix}-{uuid.uuid4().hex[:12]}"  # this run's shards only, whatever lies there
    options = PipelineOptions(list(pipeline_args) or [f"--runner={DEFAULT_RUNNER}"])
    try:
        with beam.Pipeline(options=options) as pipeline:
            outputs = build(pipeline)
            tagged = [pcoll | f"tag {name}" >> beam.Map(_tagged(name)) for name, pcoll in outputs.items()]
            _ = tagged | "merge" >> beam.Flatten() | "write" >> beam.ParDo(ShardSink(output_prefix))
        collected: dict[str, list[Any]] = {}
        shards = [m.path for m in FileSystems.match([f"{output_prefix}-*.jsonl"])[0].metadata_list]
        for shard in sorted(shards):
            with FileSystems.open(shard, compression_type=CompressionTypes.UNCOMPRESSED) as lines:
                for line in lines.read().decode("utf-8").splitlines():
                    name, value = json.loads(line)
                    collected.setdefault(name, []).append(value)
        if workdir is None and shards:  # a shared prefix: leave it as it was found
            FileSystems.delete(shards)
        return collected
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
