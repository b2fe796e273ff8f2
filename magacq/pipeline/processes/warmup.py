"""Compiling the trackers' kernels once, in a child process, while the supervisor starts the run.

A tracker's numba kernels (``magacq.tracking``) are compiled on their first use unless the disk
cache holds them, which on a first run takes several seconds per kernel and CPU core. So the
supervisor starts one :class:`KernelCompile` child before it opens the camera: the child imports
numba and the tracking package meanwhile, compiles the kernels of the run's method for the
camera's pixel type as soon as the supervisor knows it, writes them to the disk cache and exits,
while the supervisor detects the beads, creates the buffers and starts the writer. The trackers,
started once it is done, load the kernels from the cache instead of each compiling them at once
(and so does a tracker restarted later in the run).

Started by spawn (Windows, macOS), the child is a fresh interpreter that imports numba and the
tracking package again: about 1.3 s of CPU while the run starts, on 2 cores a delay of the first
tracked frame. So there it starts only when the kernels are not known to be in the cache: a
compile child that succeeded leaves a note (:func:`warm_note`) naming the cache entry that holds
them, and the next run with the same settings and pixel type finds it, and the entry, without
importing numba. Forked, the child starts at once as before (skipping it did not make a forked
start faster: 2.32 s against 1.83 s, three rounds each of ``bench_startup.py``).
"""

import hashlib
import json
import logging
import multiprocessing.connection
import os
import platform
import signal
import sys
from importlib.metadata import version
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np

from magacq.config import CameraConfig, TrackingConfig
from magacq.pipeline.start_method import RunContext, start_context

logger = logging.getLogger("magacq")


def _enter_child(title: str) -> None:
    """A compile child's title and signals: its parent alone ends it (and its death does)."""
    from setproctitle import setproctitle

    from magacq.pipeline.start_method import watch_parent

    setproctitle(f"magacq {title}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (fork)
    watch_parent(lambda: os._exit(1))


def warm_note(tracking: TrackingConfig, dtype: str) -> Path:
    """The file that names the cache entry holding the kernels of ``tracking`` for ``dtype``
    frames, once a compile child made them: keyed by the tracking package's sources, the
    settings, numba's version and this host (a home directory shared by several machines), and
    found without importing numba. A file, beside the entries (which are directories)."""
    import magacq.tracking
    from magacq.tracking._cache import cache_root, sources_digest

    what = [sources_digest(Path(magacq.tracking.__file__).parent),
            tracking.model_dump(mode="json", exclude={"zlut"}), tracking.zlut is not None, dtype,
            version("numba"), sys.version, platform.node(), platform.machine()]  # fmt: skip
    digest = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]
    return cache_root() / f"warm-{digest}"


def _is_warm(tracking: TrackingConfig, dtype: str) -> bool:
    """A compile child made these kernels, and their cache entry is still there."""
    try:
        return Path(warm_note(tracking, dtype).read_text()).is_dir()
    except (OSError, ValueError):
        return False


def _compile(conn: multiprocessing.connection.Connection, tracking: TrackingConfig) -> None:
    """The child: compile for the pixel type ``conn`` sends (None: nothing to do)."""
    _enter_child("compile")
    import magacq.tracking
    from magacq.tracking import Tracker  # noqa: F401  (numba, the kernels, while the camera opens)
    from magacq.tracking._cache import cache_key, cache_root

    try:
        dtype = conn.recv()
    except EOFError:  # the supervisor is gone
        return
    if dtype is None:
        return
    try:
        _warm(tracking, dtype)
    except Exception:  # e.g. options the method does not take: the trackers report it
        raise SystemExit(1) from None
    note = warm_note(tracking, dtype)
    entry = cache_root() / cache_key(Path(magacq.tracking.__file__).parent)
    try:  # written whole, then renamed: a reader never sees half of it
        part = note.with_suffix(f".{os.getpid()}")
        part.write_text(str(entry))
        os.replace(part, note)
    except OSError:  # a read-only cache: the next run compiles (loads) again
        pass


def _warm(tracking: TrackingConfig, dtype: str) -> None:
    """Compile (or load) the kernels of a tracker with these settings, for ``dtype`` frames."""
    from magacq.pipeline.processes.tracker import warm_up
    from magacq.runfile import load_zlut
    from magacq.tracking import Tracker

    side = tracking.roi_size
    rois = np.array([[0, 0, side, 0, side]])
    tracker = Tracker(rois, 1.0, tracking.model_dump(mode="json"), load_zlut(tracking.zlut))
    warm_up(tracker, dtype, side, side)


def _compile_for(dtype: str, algorithms: tuple[str, ...]) -> None:
    """A child of :func:`compile_kernels`: every algorithm in turn (they share functions)."""
    _enter_child(f"compile {dtype}")
    for algorithm in algorithms:
        _warm(TrackingConfig.model_validate({"algorithm": algorithm, "roi_size": 64}), dtype)


def _compile_sim() -> None:
    """A child of :func:`compile_kernels`: the simulated camera's kernels (one frame)."""
    from magacq.pipeline.hardware import open_camera

    _enter_child("compile sim")
    cam = open_camera(CameraConfig(driver="sim"))
    try:
        frame = np.empty((cam.height, cam.width), dtype=cam.dtype)
        cam.start(1)
        cam.read_frame(frame, timeout=600.0)
        cam.stop()
    finally:
        cam.close()


def compile_kernels(algorithms: tuple[str, ...], dtypes: tuple[str, ...]) -> None:
    """Compile the trackers' kernels of every algorithm for every pixel type, and the simulated
    camera's, into the disk caches (`magacq compile`, once after installing): one process per
    pixel type and one for the camera, in parallel.

    Raises
    ------
    RunError
        A compile failed.
    """
    from magacq.errors import RunError

    ctx = start_context()
    procs = [ctx.Process(target=_compile_for, args=(d, algorithms), name=f"tracking {d}")
             for d in dtypes]  # fmt: skip
    procs.append(ctx.Process(target=_compile_sim, name="sim camera"))
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    finally:  # Ctrl-C: the children ignore it, end them here
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RunError(f"compiling the kernels failed: {', '.join(failed)}")


class KernelCompile:
    """The compile child of a run (see the module): ``compile(dtype)``, then ``wait``; always
    ``close``.

    Parameters
    ----------
    ctx : multiprocessing context (fork: the child starts at once; spawn: when needed)
    tracking : TrackingConfig
        The run's tracking settings, as the trackers get them (``RunWiring.tracking``).
    """

    def __init__(self, ctx: RunContext, tracking: TrackingConfig) -> None:
        self._ctx, self._tracking = ctx, tracking
        self._conn, self._child = ctx.Pipe()
        self._proc: BaseProcess | None = None
        if ctx.get_start_method() == "fork":  # at once (see the module); spawn: when needed
            self._start()

    def _start(self) -> None:
        self._proc = self._ctx.Process(target=_compile, args=(self._child, self._tracking),
                                       name="compile", daemon=True)  # fmt: skip
        self._proc.start()
        self._child.close()

    def compile(self, dtype: str) -> None:
        """Compile the kernels for frames of ``dtype`` (once)."""
        if self._proc is None:
            if _is_warm(self._tracking, str(dtype)):
                logger.debug("tracking kernels found in the disk cache: no compile child")
                return
            self._start()
        try:
            self._conn.send(str(dtype))
        except OSError:  # the child is gone: the trackers compile for themselves
            pass

    def wait(self, timeout: float) -> bool:
        """True once the child is done (compiled, or gone, or not needed), waiting up to
        ``timeout`` s."""
        if self._proc is None:
            return True
        self._proc.join(timeout)
        return not self._proc.is_alive()

    def close(self) -> None:
        """End the child (if it still runs) and release it."""
        if self._proc is None:
            self._child.close()
            self._conn.close()
            return
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(0.05)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
        if self._proc.exitcode:
            logger.debug("the kernel compile child exited with %s", self._proc.exitcode)
