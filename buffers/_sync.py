"""The process-shared primitives the buffers synchronise and block on.

The reference API passes ``locks: dict[str, Lock]`` from the creating process to every child.
:func:`make_locks` builds that dict, adding for each blocking buffer two semaphores used purely
as wake-up signals (``"<name>.ready"``: data became readable, ``"<name>.space"``: a slot became
free). The shared state always lives in the segment, so a missing, lost or extra wake-up never
corrupts anything: a waiter re-checks the state after every wake. Pass the dict to children as a
``Process`` argument (it pickles under both fork and spawn), and create it with the same
multiprocessing context as those processes.
"""

import multiprocessing
from multiprocessing.context import BaseContext
from typing import Any

READY = ".ready"
SPACE = ".space"
BLOCKING = ("VideoBuffer",)


def make_locks(*names: str, context: BaseContext | None = None) -> dict[str, Any]:
    """Build the ``locks`` dict for the buffers named ``names``.

    Parameters
    ----------
    *names : str
        Buffer names (``"VideoBuffer"``, a MatrixBuffer's name, ...); ``"VideoBuffer"`` if none.
    context : multiprocessing context, optional
        The context the consumer processes are started with (default: the current default).

    Returns
    -------
    dict
        ``name -> Lock`` for every name, plus ``name + ".ready"`` and ``name + ".space"``
        semaphores for the buffers that can block (VideoBuffer).
    """
    ctx = context if context is not None else multiprocessing.get_context()
    locks: dict[str, Any] = {}
    for name in names or ("VideoBuffer",):
        locks[name] = ctx.Lock()
        if name in BLOCKING:
            locks[name + READY] = ctx.Semaphore(0)
            locks[name + SPACE] = ctx.Semaphore(0)
    return locks
