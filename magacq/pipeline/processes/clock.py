"""One clock for a run: the camera's timestamps mapped onto the host's ``time.monotonic()``.

A camera stamps frames on a clock of its own (the host's, one that starts with the acquisition,
a free-running counter) that may drift against the host's. The producer records when each frame
reached it on the host's clock; :class:`CameraClock` fits ``host = offset + rate * stamp`` to
the recent frames (the rate by least squares, the offset on the lower envelope: a frame never
arrives before it was taken, and the least delayed frames show the clock), updated as the run
goes, and anew when the camera's clock jumps (reset, or a driver switching clocks). Events,
motor samples and lock actions, which carry host time, meet frames through it.
"""

import numpy as np

_WINDOW_S = 60.0  # frames the fit uses: those that arrived in the last minute
_MIN_SPAN_S = 1.0  # a rate needs this much of the camera's time; until then it is 1
# frames earlier than the fit by this, or all later than it by _STALL_S (more than a camera
# buffers): the camera's clock was reset or switched; refit from them
_JUMP_S, _STALL_S = 1.0, 30.0


class CameraClock:
    """The fitted mapping from a camera's timestamps to host monotonic time."""

    def __init__(self) -> None:
        self._pairs = np.empty((0, 2))  # stamp, arrival of recent frames
        self.offset = 0.0
        self.rate = 1.0
        self.fitted = False

    def add(self, stamps: np.ndarray, arrivals: np.ndarray) -> None:
        """Frames' camera timestamps and host arrival times (NaN: unknown, left out)."""
        new = np.column_stack([stamps, arrivals])
        new = new[np.isfinite(new).all(axis=1)]
        if not len(new):
            return
        late = new[:, 1] - self.to_host(new[:, 0])
        if self.fitted and (late.min() < -_JUMP_S or late.min() > _STALL_S):
            self._pairs = self._pairs[:0]  # a new clock (a driver that switched to host time)
        pairs = np.concatenate([self._pairs, new])
        self._pairs = pairs[pairs[:, 1] >= pairs[:, 1].max() - _WINDOW_S]
        stamp, arrival = self._pairs.T
        span = stamp.max() - stamp.min()
        self.rate = float(np.polyfit(stamp, arrival, 1)[0]) if span >= _MIN_SPAN_S else 1.0
        self.offset = float(np.min(arrival - self.rate * stamp))
        self.fitted = True

    def to_host(self, stamps: np.ndarray) -> np.ndarray:
        return self.offset + self.rate * np.asarray(stamps, dtype=np.float64)

    def to_camera(self, host: np.ndarray) -> np.ndarray:
        return (np.asarray(host, dtype=np.float64) - self.offset) / self.rate


class Latency:
    """Host arrival of a frame to its positions in the ``positions`` buffer, s: live percentiles
    over the recent frames, and the run's in a fixed histogram (bounded memory over hours)."""

    _EDGES = np.geomspace(1e-6, 1e6, 2401)  # 1.2 % a bin

    def __init__(self) -> None:
        self._counts = np.zeros(len(self._EDGES) + 1, dtype=np.int64)
        self._recent = np.empty(0)
        self._max = 0.0

    def add(self, latencies: np.ndarray) -> None:
        lat = latencies[np.isfinite(latencies)]
        if not len(lat):
            return
        self._counts += np.bincount(np.searchsorted(self._EDGES, lat), minlength=len(self._counts))
        self._recent = np.concatenate([self._recent[-4000:], lat])
        self._max = max(self._max, float(lat.max()))

    def recent(self) -> tuple[float, float, float]:
        if len(self._recent) == 0:
            return 0.0, 0.0, 0.0
        p50, p99 = np.percentile(self._recent, [50, 99])
        return float(p50), float(p99), float(self._recent.max())

    def summary(self) -> dict[str, float]:
        total = int(self._counts.sum())
        if not total:
            return {}
        cum = np.cumsum(self._counts)
        upper = np.append(self._EDGES, np.inf)

        def pct(q: float) -> float:  # the bin's upper edge: an upper bound within 1.2 %
            return float(min(upper[np.searchsorted(cum, q * total)], self._max))

        return {"latency_p50_s": pct(0.5), "latency_p99_s": pct(0.99), "latency_max_s": self._max}
