"""How a run starts its processes: ``fork`` on Linux, ``spawn`` (the only one Windows has, and
macOS's default) elsewhere; ``MAGACQ_START_METHOD`` chooses one (the tests run both).

Nothing of a run relies on fork: every child gets what it needs pickled in its
:class:`~magacq.pipeline.wiring.RunWiring`, control flags are pipes (:mod:`.flag`), and a child
notices its parent's death through the parent's sentinel (:func:`watch_parent`).
"""

import multiprocessing as mp
import multiprocessing.connection
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeAlias, cast

if sys.platform == "win32":
    from multiprocessing.context import SpawnContext

    #: The context of one start method (BaseContext declares no ``Process`` to type checkers).
    RunContext: TypeAlias = SpawnContext
else:
    from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext

    RunContext: TypeAlias = ForkContext | ForkServerContext | SpawnContext

ENV = "MAGACQ_START_METHOD"


def start_context() -> RunContext:
    """The multiprocessing context of a run's children."""
    method = os.environ.get(ENV) or ("fork" if sys.platform.startswith("linux") else "spawn")
    if method not in mp.get_all_start_methods():
        raise ValueError(f"{ENV}={method!r}: this platform has {mp.get_all_start_methods()}")
    return cast(RunContext, mp.get_context(method))  # typed BaseContext for a str method


def watch_parent(on_death: Callable[[], None]) -> None:
    """Call ``on_death`` (in a daemon thread) when this child's parent process ends, however it
    ends (killed too), on every platform: the parent's sentinel becomes ready."""
    parent = mp.parent_process()
    if parent is None:  # not a multiprocessing child
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        on_death()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
