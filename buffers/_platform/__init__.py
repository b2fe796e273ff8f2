"""What the buffers need of the operating system, behind one small interface.

==================  ===================================  =====================================
mechanism           portable (every platform)            fast path (Linux, unless forced off)
==================  ===================================  =====================================
segments            ``multiprocessing.shared_memory``    ``shm_open`` + ``MAP_POPULATE``
owner's liveness    ``psutil``: pid + start token        (the same)
buffer lock         OS file lock on a registry file      (the same: ``flock``)
                    (``flock``; ``msvcrt.locking``)
finding segments    the per-user registry directory      (the same)
                    (``platformdirs``)
listing segments    /dev/shm on Linux; none on macOS     (the same)
                    and Windows
yield, fork hooks   ``sched_yield`` / ``sleep(0)``;      (the same)
                    ``register_at_fork`` where it exists
==================  ===================================  =====================================

``MAGACQ_PORTABLE=1`` forces the portable ways (:mod:`._choice`). Memory fences are in
:mod:`buffers._ordering`.
"""

from . import _registry as registry
from ._choice import ENV as PORTABLE_ENV
from ._choice import choose
from ._filelock import lock, try_lock, unlock
from ._process import after_fork_in_child, before_fork, owner_alive, process_token, yield_cpu
from ._shm import Block, attach_block, create_block, list_blocks, read_block, unlink_block

__all__ = [
    "PORTABLE_ENV",
    "Block",
    "after_fork_in_child",
    "attach_block",
    "before_fork",
    "choose",
    "create_block",
    "list_blocks",
    "lock",
    "owner_alive",
    "process_token",
    "read_block",
    "registry",
    "try_lock",
    "unlock",
    "unlink_block",
    "yield_cpu",
]
