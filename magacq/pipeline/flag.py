"""A process-shared flag that no process can wedge by dying.

``multiprocessing.Event`` guards its state with a lock and a condition: a process killed while
holding them (SIGKILL inside ``wait``) leaves every later ``set`` blocked for ever. A :class:`Flag`
is a pipe made before the run's processes are forked: setting it writes one byte, waiting on it
polls the read end, and the kernel holds no lock for anyone.
"""

import os
import select


class Flag:
    """Set once; every process forked after it was made sees it set (fork start method only)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def set(self) -> None:
        """Set the flag (never blocks)."""
        if not self.is_set():
            try:
                os.write(self._write, b"1")
            except BlockingIOError:  # the pipe is full of earlier sets: it is set
                pass

    def is_set(self) -> bool:
        return self.wait(0.0)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for the flag; return whether it is set."""
        poll = select.poll()
        poll.register(self._read, select.POLLIN)
        return bool(poll.poll(max(0, int(timeout * 1000))))

    def close(self) -> None:
        """Close this process's ends of the pipe."""
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass

    def __reduce__(self) -> tuple:
        raise TypeError("a Flag travels to children by fork only")
