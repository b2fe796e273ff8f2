"""The live force estimate: each tethered bead's force from its recent lateral motion.

A thread of the writer (:class:`LiveForce`) keeps the last ``window_s`` seconds of the position
rows the writer drains and, every ``interval_s``, fits each tethered bead's lateral trace on the
axis perpendicular to the field with the Allan variance (:func:`magacq.analysis.fit_allan`,
camera blur and aliasing modelled). The lever is ``l + R``: ``l`` is the configured extension
(``live_force.extension_nm``, when the run starts) plus the bead's z change since its first
estimate, drift-corrected by the reference beads. It publishes one row per bead into the
``forces`` MatrixBuffer (``FORCE_COLUMNS``, newest rows last; :func:`read_forces` reads them)
and the median over the tethered beads into the run's counters (the terminal status and the
``status`` buffer).
"""

import logging
import math
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger("magacq.writer")

#: Name of the published-forces MatrixBuffer in the run's namespace.
FORCES = "forces"
#: Its columns (float64): estimate time (the newest frame's, camera clock), bead id, force and
#: its error (pN), extension (nm), corner frequency (Hz), seconds of trace fitted.
FORCE_COLUMNS = ("t", "bead_id", "force_pn", "force_err_pn", "extension_nm", "corner_hz",
                 "seconds")  # fmt: skip


def force_rows(n_beads: int) -> int:
    """Rows of the ``forces`` buffer for ``n_beads`` beads: a few estimates of each."""
    return max(256, 4 * n_beads)


#: Fewest frames a bead needs in the window for an estimate.
MIN_FRAMES = 128
#: Most of the window's frames a bead may have lost (filled in linearly).
MAX_LOST = 0.1
#: An estimate above this (pN) is a stuck bead's, not a tether's: left out of the median.
STUCK_PN = 200.0
KB_PN_NM_PER_K = 1.380649e-2


@dataclass(frozen=True)
class LiveForceSpec:
    """What the writer's live force is given (``config.LiveForceConfig`` and the camera's)."""

    axis: int  # 0 x, 1 y
    window_s: float
    interval_s: float
    extension_nm: float
    bead_radius_nm: float
    exposure_s: float
    kt: float  # pN nm
    references: tuple[int, ...]  # reference bead ids (drift correction, no estimate)


def live_force_spec(cfg: Any, bead_radius_nm: float, exposure_ms: float) -> LiveForceSpec:
    """The spec of ``cfg.live_force`` (a ``RunConfig``) on a camera exposing ``exposure_ms``
    (NaN: unknown) beads of ``bead_radius_nm``."""
    lf = cfg.live_force
    return LiveForceSpec(
        axis="xy".index(lf.axis), window_s=lf.window_s, interval_s=lf.interval_s,
        extension_nm=lf.extension_nm, bead_radius_nm=float(bead_radius_nm),
        exposure_s=exposure_ms / 1000 if math.isfinite(exposure_ms) else 0.0,
        kt=KB_PN_NM_PER_K * lf.temperature_k, references=tuple(cfg.beads.reference),
    )  # fmt: skip


def estimate_forces(rows: np.ndarray, spec: LiveForceSpec, zero: dict[int, float]) -> np.ndarray:
    """One ``FORCE_COLUMNS`` row per tethered bead estimated from position ``rows`` (time,
    frame, bead id, x, y, z, ...; frames mapped). ``zero`` holds each bead's z at its first
    estimate (filled in here; a tethered bead's drift-corrected, about the references' first
    z): its extension is ``extension_nm`` plus its z since.
    A bead with too few frames, or whose fit fails, has no row."""
    # here, not at the top: every child of a run imports this channel, one process fits
    from magacq.analysis import correct_drift, fill_gaps, fit_allan, reference_drift

    rows = rows[rows[:, 1] >= 0]
    if not len(rows):
        return np.empty((0, len(FORCE_COLUMNS)))
    frames = rows[:, 1].astype(np.int64)
    f0, f1 = int(frames.min()), int(frames.max())
    n = f1 - f0 + 1
    ids, col = np.unique(rows[:, 2].astype(np.int64), return_inverse=True)
    grid = np.full((3, len(ids), n), np.nan)
    for axis in range(3):
        grid[axis, col, frames - f0] = rows[:, 3 + axis]
    times = np.full(n, np.nan)
    times[frames - f0] = rows[:, 0]
    known = np.flatnonzero(np.isfinite(times))
    if n < MIN_FRAMES or times[known[-1]] <= times[known[0]]:
        return np.empty((0, len(FORCE_COLUMNS)))
    frame_rate = (known[-1] - known[0]) / (times[known[-1]] - times[known[0]])
    exposure = min(spec.exposure_s, 1.0 / frame_rate)
    refs = np.isin(ids, spec.references)
    lateral = correct_drift(grid[spec.axis, ~refs], grid[spec.axis, refs])
    z = grid[2, ~refs]
    if refs.any():  # about each reference's z at its first estimate: the same zero every time
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no z (no Z-LUT): NaN
            origin = [zero.setdefault(int(b), float(np.nanmean(g)))
                      for b, g in zip(ids[refs], grid[2, refs], strict=True)]  # fmt: skip
        z = z - reference_drift(grid[2, refs], np.array(origin))
    out = []
    for bead, x, zb in zip(ids[~refs].tolist(), lateral, z, strict=True):
        try:
            x, _ = fill_gaps(x, MAX_LOST)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # no z (no Z-LUT): NaN
                z_mean = float(np.nanmean(zb))
            ext = spec.extension_nm
            if math.isfinite(z_mean):
                ext += z_mean - zero.setdefault(bead, z_mean)
            fit = fit_allan(x, frame_rate, ext + spec.bead_radius_nm, exposure_s=exposure,
                            kt=spec.kt)  # fmt: skip
        except (ValueError, np.linalg.LinAlgError):
            continue
        out.append((times[known[-1]], bead, fit.force_pn, fit.force_err_pn, ext, fit.corner_hz,
                    len(x) / frame_rate))  # fmt: skip
    return np.array(out, dtype=np.float64).reshape(-1, len(FORCE_COLUMNS))


def median_force(forces: np.ndarray) -> tuple[float, int]:
    """The median force (pN) of ``FORCE_COLUMNS`` rows, stuck beads left out, and of how many."""
    f = forces[:, FORCE_COLUMNS.index("force_pn")] if len(forces) else np.empty(0)
    f = f[np.isfinite(f) & (f < STUCK_PN)]
    return (float(np.median(f)) if len(f) else math.nan), len(f)


class LiveForce:
    """The writer's live force: :meth:`add` the drained position rows; a thread estimates.

    Parameters
    ----------
    buf : buffers.MatrixBuffer
        The ``forces`` buffer (created ``overwrite=True``).
    stats : RunStats
        Where the median goes (``force_median_pn``, ``force_beads``).
    spec : LiveForceSpec
    """

    def __init__(self, buf: Any, stats: Any, spec: LiveForceSpec) -> None:
        self.buf, self.stats, self.spec = buf, stats, spec
        self._chunks: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._zero: dict[int, float] = {}
        self._thread = threading.Thread(target=self._loop, name="live force", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30.0)

    def add(self, rows: np.ndarray) -> None:
        """Position rows (frames mapped) the writer saved; those older than the window go."""
        if not len(rows):
            return
        with self._lock:
            self._chunks.append(rows[:, :6].copy())
            newest = self._chunks[-1][-1, 0]
            while self._chunks and self._chunks[0][-1, 0] < newest - self.spec.window_s:
                self._chunks.popleft()

    def window(self) -> np.ndarray:
        """The rows of the last ``window_s`` seconds."""
        with self._lock:
            rows = np.concatenate(self._chunks) if self._chunks else np.empty((0, 6))
        return rows[rows[:, 0] >= rows[:, 0].max() - self.spec.window_s] if len(rows) else rows

    def _loop(self) -> None:
        while not self._stop.wait(self.spec.interval_s):
            started = time.monotonic()
            try:
                forces = estimate_forces(self.window(), self.spec, self._zero)
            except Exception:  # the estimate must never take the writer down
                logger.warning("live force estimate failed", exc_info=True)
                continue
            if len(forces):
                self.buf.write(forces[-self.buf.shape[0] :])
            median, n = median_force(forces)
            self.stats.set("force_median_pn", median)
            self.stats.set("force_beads", n)
            logger.debug("live force of %d beads in %.2f s", len(forces),
                         time.monotonic() - started)  # fmt: skip


def read_forces(namespace: str) -> dict[int, dict[str, float]]:
    """Each bead's newest live force estimate in the run ``namespace`` (``FORCE_COLUMNS`` by
    name; empty: no such run, no live force, or no estimate yet). For programs outside the
    run (``magacq view``): attaches with a private lock and reads a consistent copy."""
    from buffers import MatrixBuffer, SegmentError

    try:
        buf = MatrixBuffer(create=False, locks={FORCES: threading.Lock()}, name=FORCES,
                           namespace=namespace)  # fmt: skip
    except (FileNotFoundError, SegmentError):
        return {}
    try:
        rows = buf.peak_sorted()
    finally:
        buf.close()
    return forces_by_bead(rows)


def forces_by_bead(rows: np.ndarray) -> dict[int, dict[str, float]]:
    """The newest of ``FORCE_COLUMNS`` rows (oldest first; NaN rows unwritten) of each bead."""
    rows = rows[np.isfinite(rows[:, 0])]
    return {int(r[1]): dict(zip(FORCE_COLUMNS, map(float, r), strict=True)) for r in rows}
