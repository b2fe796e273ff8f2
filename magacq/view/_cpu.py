"""How much CPU the machine has left: the viewer slows its refresh when the run needs it all."""

import time

import psutil


class IdleCpu:
    """Idle CPU of the whole machine (in cores) between two calls (psutil: every OS)."""

    def __init__(self) -> None:
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float]:
        t = psutil.cpu_times()
        return time.monotonic(), t.idle + getattr(t, "iowait", 0.0)  # iowait: Linux only

    def cores(self) -> float | None:
        """Idle cores (0 .. CPU count) since the previous call; None if unknown."""
        now = self._sample()
        last, self._last = self._last, now
        if now[0] <= last[0]:
            return None
        return max(0.0, (now[1] - last[1]) / (now[0] - last[0]))
