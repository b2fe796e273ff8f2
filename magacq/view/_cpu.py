"""How much CPU the machine has left: the viewer slows its refresh when the run needs it all."""

import os
import time


class IdleCpu:
    """Idle CPU of the whole machine (in cores) between two calls, from ``/proc/stat``.

    Where ``/proc/stat`` cannot be read (not Linux), :meth:`cores` returns None.
    """

    def __init__(self) -> None:
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float] | None:
        try:
            with open("/proc/stat", "rb") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != b"cpu" or len(fields) < 6:
            return None
        idle = int(fields[4]) + int(fields[5])  # idle + iowait
        return time.monotonic(), idle / os.sysconf("SC_CLK_TCK")

    def cores(self) -> float | None:
        """Idle cores (0 .. CPU count) since the previous call; None if unknown."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        return max(0.0, (now[1] - last[1]) / (now[0] - last[0]))
