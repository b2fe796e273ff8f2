"""OS file locks on an open descriptor: exclusive, and released by the OS when the holder dies.

POSIX: ``flock`` (one lock per open file description). Windows: ``msvcrt.locking`` on the
file's first byte (per handle), which has no blocking form that waits for ever: a blocking
take polls. Both are dropped by the OS when the process ends, however it ends.
"""

import os
import sys
import time

_POLL_S = 0.0005

if sys.platform == "win32":
    import msvcrt

    def try_lock(fd: int) -> bool:
        """Take the lock of ``fd`` if free; False at once if another holds it."""
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def lock(fd: int) -> None:
        """Take the lock of ``fd``, waiting as long as it takes."""
        while not try_lock(fd):
            time.sleep(_POLL_S)

    def unlock(fd: int) -> None:
        """Release the lock of ``fd``."""
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def try_lock(fd: int) -> bool:
        """Take the lock of ``fd`` if free; False at once if another holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def lock(fd: int) -> None:
        """Take the lock of ``fd``, waiting as long as it takes."""
        fcntl.flock(fd, fcntl.LOCK_EX)

    def unlock(fd: int) -> None:
        """Release the lock of ``fd``."""
        fcntl.flock(fd, fcntl.LOCK_UN)
