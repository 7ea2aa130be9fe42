"""Where the Beam engine runs: `fnapi` (Beam's in-process runner, the default) or `dask` (Beam's
DaskRunner as `dask_runner` amends it, against a `dask.distributed` scheduler: one at
`--dask-scheduler ADDR`, or a `LocalCluster` of N worker processes started for the run and
stopped after it). Any other runner goes through `--beam-arg=--runner=…`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from tastemaker.optional import MissingExtra

RUNNERS = ("fnapi", "dask")
#: worker processes of the LocalCluster started when no scheduler is named
DEFAULT_DASK_WORKERS = 2
DASK_RUNNER = "tastemaker.training.evaluation.dask_runner.DaskRunner"

log = logging.getLogger(__name__)


class RunnerError(ValueError):
    """The runner flags contradict each other; the message names them."""


@dataclass(frozen=True)
class Runner:
    name: str = "fnapi"
    #: a dask.distributed scheduler's address (tcp://host:8786); None: start a LocalCluster
    dask_scheduler: str | None = None
    dask_workers: int = DEFAULT_DASK_WORKERS

    def check(self, beam_args: Sequence[str]) -> None:
        if self.name not in RUNNERS:
            raise RunnerError(f"--runner: {self.name!r} is not one of {', '.join(RUNNERS)}")
        if self.name != "dask" and self.dask_scheduler is not None:
            raise RunnerError("--dask-scheduler is for --runner dask")
        if self.dask_workers < 1:
            raise RunnerError(f"--dask-workers takes a count >= 1, got {self.dask_workers}")
        if self.name == "dask" and any(a.startswith("--runner") for a in beam_args):
            raise RunnerError("--runner dask and --beam-arg=--runner=… name two runners: keep one")


@contextmanager
def pipeline_args(runner: Runner, beam_args: Sequence[str]) -> Iterator[list[str]]:
    """The pipeline options for `runner` (with `beam_args` after them); for Dask without a scheduler,
    a LocalCluster of `dask_workers` processes lives as long as the context."""
    runner.check(beam_args)
    if runner.name == "fnapi":
        yield list(beam_args)
        return
    try:
        from distributed import LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtra("--runner dask needs `distributed`: pip install 'tastemaker[beam]'") from exc
    # each byte range or row group its own partition: the pieces are what spreads over the workers
    options = [f"--runner={DASK_RUNNER}", "--dask_partition_size=1"]
    if runner.dask_scheduler is not None:
        _reachable(runner.dask_scheduler)
        yield [*options, f"--dask_client_address={runner.dask_scheduler}", *beam_args]
        return
    log.info("starting a Dask LocalCluster of %d worker processes", runner.dask_workers)
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).getEffectiveLevel()))
    with LocalCluster(
        n_workers=runner.dask_workers, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard": False},  # no web server: this cluster lives for one run
    ) as cluster:  # fmt: skip
        yield [*options, f"--dask_client_address={cluster.scheduler_address}", *beam_args]


#: seconds to wait for a named scheduler before saying it does not answer
CONNECT_TIMEOUT_S = 10


def _reachable(address: str) -> None:
    """Fail in one line, before any pipeline is built, when no scheduler answers at `address`."""
    from distributed import Client

    try:
        with Client(address, timeout=CONNECT_TIMEOUT_S) as client:
            workers = len(client.scheduler_info(n_workers=-1)["workers"])
    except (OSError, TimeoutError, ValueError) as exc:
        raise RunnerError(f"--dask-scheduler {address}: no scheduler answers ({exc})") from None
    if not workers:
        raise RunnerError(f"--dask-scheduler {address}: the scheduler has no workers")
    log.info("Dask scheduler %s: %d workers", address, workers)
