"""The Dask cluster `magacq retrack` runs on: a LocalCluster of worker processes, or an existing
scheduler's."""

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from magacq.errors import ConfigError, RunError

logger = logging.getLogger("magacq.offline")

#: Seconds to wait for a scheduler to answer, and for its first worker.
CONNECT_S = 20.0
WORKERS_S = 60.0


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A ``distributed.Client``: on the scheduler at ``scheduler`` (an address such as
    ``tcp://127.0.0.1:8786``), else on a LocalCluster of ``workers`` single-threaded processes
    listening on loopback only; both closed on exit.

    Raises
    ------
    ConfigError
        The scheduler cannot be reached.
    RunError
        It has no worker within ``WORKERS_S`` seconds.
    """
    from distributed import Client, LocalCluster

    with ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            _check_reachable(scheduler)
            try:
                client = stack.enter_context(Client(scheduler, timeout=CONNECT_S))
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
            try:
                client.wait_for_workers(1, timeout=WORKERS_S)
            except TimeoutError:
                raise RunError(
                    f"the scheduler at {scheduler} has no worker after {WORKERS_S:g} s"
                ) from None
        logger.info("dask: %d worker thread(s) at %s", sum(client.nthreads().values()),
                    client.scheduler.address)  # fmt: skip
        yield client


def _check_reachable(scheduler: str) -> None:
    """Refuse at once a TCP scheduler address that nothing listens on (Dask's client retries a
    refused connection until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    try:
        url = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
        host, port = url.hostname, url.port
    except ValueError:  # a port out of range: Dask's own message says it
        return
    if url.scheme != "tcp" or host is None or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"--scheduler {scheduler}: cannot connect: {exc.strerror or exc}"
        ) from None
