"""The process-shared wake-up signals of the blocking buffers.

The buffers need no lock from their caller: each takes its own segment lock
(:mod:`buffers._lock`), which any process can take and the kernel frees when its holder dies.
The reference API's ``locks`` dict remains, optional, for two things: :func:`make_locks` puts in
it, for each blocking buffer, two semaphores used purely as wake-up signals (``"<name>.ready"``:
data became readable, ``"<name>.space"``: a slot became free), so that waits use no CPU; and a
caller may still put a lock under a buffer's name (reference-style code), which the buffer then
takes around its own. The shared state always lives in the segment, so a missing, lost or extra
wake-up never corrupts anything: a waiter re-checks the state after every wake, and at least
every 50 ms. Pass the dict to children as a ``Process`` argument (it pickles under both fork and
spawn), and create it with the same multiprocessing context as those processes. A process that
cannot get the dict (one started on its own) passes ``locks=None``: it is still excluded
correctly, and polls to wait.
"""

import multiprocessing
from collections.abc import Sequence
from multiprocessing.context import BaseContext
from typing import Any

from ._groups import check_groups, ready_key

READY = ".ready"
SPACE = ".space"
BLOCKING = ("VideoBuffer",)


def make_locks(
    *names: str, context: BaseContext | None = None, groups: Sequence[str] = ()
) -> dict[str, Any]:
    """Build the ``locks`` dict for the buffers named ``names``.

    Parameters
    ----------
    *names : str
        Buffer names (``"VideoBuffer"``, a MatrixBuffer's name, ...); ``"VideoBuffer"`` if none.
        Names of buffers that never block are accepted and add nothing.
    context : multiprocessing context, optional
        The context the consumer processes are started with (default: the current default).
    groups : sequence of str, optional
        The consumer groups of a VideoBuffer created with ``groups=``: one more semaphore per
        group (``"VideoBuffer.ready.<group>"``), so that a group's waiters are woken for it.

    Returns
    -------
    dict
        ``name + ".ready"`` and ``name + ".space"`` semaphores for the buffers that can block
        (VideoBuffer). No locks: the buffers lock their own segments (:mod:`buffers._lock`).
    """
    ctx = context if context is not None else multiprocessing.get_context()
    locks: dict[str, Any] = {}
    for name in names or ("VideoBuffer",):
        if name in BLOCKING:
            locks[name + READY] = ctx.Semaphore(0)
            locks[name + SPACE] = ctx.Semaphore(0)
            for group in check_groups(groups) if groups else ():
                locks[ready_key(name, group)] = ctx.Semaphore(0)
    return locks
