"""A process-shared flag that no process can wedge by dying.

``multiprocessing.Event`` guards its state with a lock and a condition: a process killed while
holding them (SIGKILL inside ``wait``) leaves every later ``set`` blocked for ever. A :class:`Flag`
is a one-way pipe (a ``multiprocessing`` connection pair): setting it writes one byte, waiting on
it polls the read end, and the kernel holds no lock for anyone. Its ends travel to children
started by fork and by spawn alike.
"""

import multiprocessing as mp


class Flag:
    """Set once; every process the run started sees it set."""

    def __init__(self) -> None:
        self._read, self._write = mp.Pipe(duplex=False)

    def set(self) -> None:
        """Set the flag (never blocks: at most a few bytes are ever written)."""
        if not self.is_set():
            try:
                self._write.send_bytes(b"1")
            except OSError:  # closed here: this process is done with the run
                pass

    def is_set(self) -> bool:
        return self.wait(0.0)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for the flag; return whether it is set."""
        try:
            return self._read.poll(max(0.0, timeout))
        except OSError:  # closed
            return False

    def close(self) -> None:
        """Close this process's ends of the pipe."""
        self._read.close()
        self._write.close()
