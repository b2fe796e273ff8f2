"""Planning a run, before anything starts: open the camera once (its geometry, an image for
bead detection, the magnets' and focus stage's axes), place the bead ROIs, expand and check the
protocol against the devices, and name the run and its file. Everything here either returns
what the run will be or refuses it (ConfigError: exit 2; RunError: exit 1); the supervisor
then builds and runs it.
"""

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from buffers import default_namespace
from magacq.config import RunConfig, format_name
from magacq.errors import ConfigError, RunError
from magacq.pipeline.wiring import Geometry, LocksSpec, ProtocolSpec
from magacq.protocol import Devices, expand

logger = logging.getLogger("magacq")


def run_namespace() -> str:
    """A shared-memory namespace of this run's own (the session namespace plus our pid)."""
    return f"{default_namespace()}-run{os.getpid()}"


def output_path(cfg: RunConfig, config_path: Path) -> Path:
    """Create the run's HDF5 file, empty, exclusively, and return its path (``-1``, ``-2``...
    added when the name is taken, also by a run started at the same moment)."""
    out = Path(cfg.output.dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output.dir: cannot create {out}: {exc.strerror}") from None
    path = out / format_name(cfg.output.name, config=config_path.stem)
    if path.suffix not in (".h5", ".hdf5"):
        path = path.with_name(path.name + ".h5")
    stem, k = path.stem, 0
    while True:
        try:  # its .log must be new too: both are this run's alone
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            pass
        except OSError as exc:
            raise RunError(f"cannot create the run file {path}: {exc.strerror}") from None
        else:
            if not path.with_suffix(".log").exists():
                return path
            path.unlink()
        k += 1
        path = path.with_name(f"{stem}-{k}{path.suffix}")


def _open_camera(cfg: RunConfig) -> Any:
    """The config's camera, opened; its refusals as ConfigError (exit 2), failures RunError."""
    from hal import HalError, UnsupportedSettingError
    from magacq.pipeline.hardware import open_camera

    try:
        return open_camera(cfg.camera)
    except UnsupportedSettingError as exc:  # e.g. a file to replay that cannot be read
        raise ConfigError(f"camera.settings: {exc}") from None
    except HalError as exc:
        raise RunError(f"cannot open camera {cfg.camera.driver!r}: {exc}") from None


def probe_camera(
    cfg: RunConfig, opened: Callable[[str], None] | None = None
) -> tuple[Geometry, np.ndarray | None, Devices]:
    """Open the camera once: its geometry, an averaged image when beads must be detected, and
    the magnets' axes (limits, where they start, top speeds) a protocol is checked against.
    ``opened`` is called with the pixel type as soon as the camera is open."""
    from hal import BeadRadiusSource, GroundTruthSource, HalError

    cam = _open_camera(cfg)
    try:
        if opened is not None:
            opened(str(np.dtype(cam.dtype)))
        geometry = Geometry(
            width=int(cam.width),
            height=int(cam.height),
            bits=int(np.dtype(cam.dtype).itemsize * 8),
            bit_depth=int(cam.bit_depth),
            dtype=str(np.dtype(cam.dtype)),
            pixel_size_nm=float(cam.pixel_size_nm),
            camera_driver=cfg.camera.driver,
            camera_class=f"{type(cam).__module__}.{type(cam).__qualname__}",
            simulated=isinstance(cam, GroundTruthSource),
            exposure_ms=float(cam.exposure_ms),  # NaN: the camera does not say
            # for the force calibration: the config's, else the simulated camera's own
            bead_radius_nm=float(
                cfg.beads.radius_nm
                or (cam.bead_radius_nm if isinstance(cam, BeadRadiusSource) else math.nan)
            ),
        )
        image = None
        if not cfg.beads.rois:
            n = cfg.beads.detect.frames
            frame = np.empty((cam.height, cam.width), dtype=cam.dtype)
            acc = np.zeros(frame.shape)
            cam.start(n)
            for _ in range(n):
                cam.read_frame(frame, timeout=5.0)
                acc += frame
            cam.stop()
            image = acc / n
        devices = motor_axes(cfg, cam)
    except HalError as exc:
        raise RunError(f"camera {cfg.camera.driver!r} failed: {exc}") from None
    finally:
        cam.close()
    return geometry, image, devices


def motor_axes(cfg: RunConfig, cam: Any) -> Devices:
    """The axes a protocol can move: the magnets' (:func:`check_magnets`) and the focus
    stage's (its limits and position; it takes no speed), opened once beside ``cam``."""
    from hal import HalError, UnsupportedSettingError
    from magacq.pipeline.hardware import open_accessory

    devices = check_magnets(cfg, cam) if cfg.magnets is not None else Devices({}, {}, {})
    if cfg.focus_stage is None:
        return devices
    try:
        stage = open_accessory("focus_stage", cfg.focus_stage, cam, cfg.camera.driver)
    except UnsupportedSettingError as exc:  # settings the device refuses, as validate says
        raise ConfigError(f"focus_stage: {exc}") from None
    except HalError as exc:
        raise RunError(f"cannot open focus stage {cfg.focus_stage.driver!r}: {exc}") from None
    try:
        devices.limits["focus"] = stage.limits_nm
        devices.start["focus"] = stage.position_nm
    except HalError as exc:  # the stage's failure, not the camera's
        raise RunError(f"focus stage {cfg.focus_stage.driver!r} failed: {exc}") from None
    finally:
        stage.close()
    return devices


def check_magnets(cfg: RunConfig, cam: Any) -> Devices:
    """Open the magnets once beside ``cam``: their settings work, and the start positions
    the config asks for are inside their limits; returns each axis's limits, start position
    and top speed (or why it takes none).

    Raises
    ------
    ConfigError
        Settings the device refuses (a stage label it lacks, ...), or a start position outside
        the limits or on an axis the magnets lack.
    RunError
        The magnets failed to open.
    """
    from hal import HalError, UnsupportedSettingError
    from magacq.pipeline.hardware import open_accessory

    m = cfg.magnets
    assert m is not None
    try:
        mag = open_accessory("magnets", m, cam, cfg.camera.driver)
    except UnsupportedSettingError as exc:
        raise ConfigError(f"magnets: {exc}") from None
    except HalError as exc:
        raise RunError(f"cannot open magnets {m.driver!r}: {exc}") from None
    devices = Devices(limits={}, start={}, max_velocity={})
    try:
        for axis, key, start in (("height", "height_mm", m.height_mm),
                                 ("rotation", "rotation_turns", m.rotation_turns)):  # fmt: skip
            if axis in mag.axes:
                devices.limits[axis] = mag.limits(axis)
                devices.start[axis] = mag.position(axis) if start is None else start
                try:
                    top = mag.max_velocity(axis)
                except UnsupportedSettingError as exc:  # moves at its own speed only
                    devices.no_velocity[axis] = str(exc)
                    top = math.inf
                if math.isfinite(top):
                    devices.max_velocity[axis] = top
            if start is None:
                continue
            try:
                lo, hi = mag.limits(axis)
            except UnsupportedSettingError as exc:
                raise ConfigError(f"magnets.{key}: {exc}") from None
            if not lo <= start <= hi:
                raise ConfigError(
                    f"magnets.{key}: {start:g} is outside the magnets' {axis} limits "
                    f"[{lo:g}, {hi:g}]"
                )
    except HalError as exc:
        raise RunError(f"magnets {m.driver!r} failed: {exc}") from None
    finally:
        mag.close()
    return devices


def protocol_devices(cfg: RunConfig) -> Devices:
    """The axes as :func:`motor_axes` finds them, opening the camera (which the stages may
    share a connection with) but taking no frame: for `validate` and `--dry-run`."""
    if cfg.magnets is None and cfg.focus_stage is None:
        return Devices(limits={})
    cam = _open_camera(cfg)
    try:
        return motor_axes(cfg, cam)
    finally:
        cam.close()


def protocol_spec(cfg: RunConfig, config_path: Path, devices: Devices) -> ProtocolSpec | None:
    """The config's protocol expanded and checked against ``devices`` (None without one).

    Raises
    ------
    ConfigError
        A step the devices cannot do, a target outside their limits or the force table.
    """
    if cfg.protocol is None:
        return None
    base = config_path.resolve().parent
    plan = expand(cfg.protocol, devices, base=base)
    timeout = plan.script.timeout_s if plan.script is not None else None
    return ProtocolSpec(plan=plan, devices=devices, base=str(base), timeout_s=timeout)


def locks_spec(cfg: RunConfig) -> LocksSpec | None:
    """The run's locks for the protocol process (None without any); the focus stage's sign
    comes from the Z-LUT file's ``stage_moves`` (how its z was defined)."""
    if not cfg.locks.any:
        return None
    sign = 1.0
    if cfg.locks.z_lock is not None:
        import h5py

        from magacq.protocol import stage_sign

        with h5py.File(cfg.tracking.zlut, "r") as f:
            sign = stage_sign(str(f.attrs.get("stage_moves", "objective")))
    return LocksSpec(z_lock=cfg.locks.z_lock, xy_lock=cfg.locks.xy_lock, sign=sign)


def place_rois(cfg: RunConfig, geometry: Geometry, image: np.ndarray | None) -> list[Any]:
    """Bead ROIs ``(id, x0, x1, y0, y1)`` from the config or from automatic detection."""
    side = cfg.tracking.roi_size
    w, h = geometry.width, geometry.height
    if cfg.beads.rois:
        centres = list(cfg.beads.rois)
    else:
        from magacq.tracking import detect_beads

        assert image is not None
        d = cfg.beads.detect
        found = detect_beads(image, side, max_beads=d.max_beads, min_score=d.min_score)
        centres = [(b.x, b.y) for b in sorted(found, key=lambda b: (b.y, b.x))]
        logger.info("detected %d beads", len(centres))
        if not centres:
            raise RunError("no beads found by automatic detection; give beads.rois in the config")
    rois = [roi_around(i, x, y, side) for i, (x, y) in enumerate(centres)]
    for (i, x0, x1, y0, y1), (x, y) in zip(rois, centres, strict=True):
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise ConfigError(
                f"beads.rois.{i}: ROI of {side} px around ({x}, {y}) leaves the {w}x{h} frame"
            )
    return rois


def roi_around(i: int, x: float, y: float, side: int) -> tuple[int, int, int, int, int]:
    """Bead ``i``'s ROI ``(id, x0, x1, y0, y1)`` of ``side`` px centred on ``(x, y)``."""
    x0, y0 = int(x) - side // 2, int(y) - side // 2
    return i, x0, x0 + side, y0, y0 + side
